// One OpenAI-compatible endpoint (vLLM, llama.cpp's server, Ollama, OpenAI, or our own `rlhf serve`) asked for text:
// /v1/chat/completions through the OpenAI SDK, or /v1/completions (a raw text prompt, as a pre-trained or story-world
// model expects) through the same SDK pipeline. Both share one retry loop: a timeout, a 429, a 5xx or a dropped
// connection is retried after what the server's Retry-After asks (seconds or an HTTP date, capped at MaxRetryAfter),
// else a jittered exponential back-off d = InitialBackoff·2^(attempt−1), waited as d/2 + U(0, d/2) ("equal jitter", so
// clients that failed together do not retry together). A 400 with code context_length_exceeded becomes
// ContextTooSmallException (the caller decides: the AI judge skips that query); any other refusal is one clear line.
// The AI judge (AiJudge) and Constitutional AI's policy and critic (Alignment/Constitutional) all speak through this.
using System.ClientModel;
using System.ClientModel.Primitives;
using System.Text.Json.Nodes;
using OpenAI;
using OpenAI.Chat;

namespace RlhfSharp.Feedback.Labelers;

/// <summary>The request's prompt did not fit the endpoint model's context (the server's words are the message).</summary>
public sealed class ContextTooSmallException(string message) : Exception(message);

/// <summary>Where an OpenAI-compatible endpoint lives and how it is called.</summary>
/// <param name="BaseUrl">The API root that holds /chat/completions and /completions, e.g. http://127.0.0.1:8080/v1.</param>
/// <param name="Model">The model name sent with each request.</param>
/// <param name="ApiKeyVariable">Name of the environment variable holding the API key; null for servers that need none.</param>
/// <param name="Timeout">Per-request time limit (default 60 s).</param>
/// <param name="MaxRetries">Retries after a timeout, a 429 or a 5xx before giving up.</param>
/// <param name="InitialBackoff">Wait before the first retry (default 1 s); doubled for each further one.</param>
public sealed record ChatEndpointOptions(
    string BaseUrl,
    string Model,
    string? ApiKeyVariable = "OPENAI_API_KEY",
    TimeSpan? Timeout = null,
    int MaxRetries = 3,
    TimeSpan? InitialBackoff = null);

/// <summary>What one request asks for: sampling temperature, most tokens, a seed (servers that honour one), stop strings.</summary>
public sealed record GenerationRequest(float Temperature, int MaxTokens, long? Seed = null, IReadOnlyList<string>? Stop = null);

public sealed class ChatEndpoint
{
    /// <summary>Longest Retry-After honoured; a server asking for more gets this (a run should not stall for hours).</summary>
    public static readonly TimeSpan MaxRetryAfter = TimeSpan.FromSeconds(60);

    private readonly ChatEndpointOptions _options;
    private readonly ChatClient _client;
    private readonly TimeSpan _timeout;
    private readonly TimeSpan _backoff;

    /// <param name="role">What the endpoint is to the caller ("AI judge", "policy", "critic"): every error message starts with it.</param>
    public ChatEndpoint(ChatEndpointOptions options, string role)
    {
        _options = options ?? throw new ArgumentNullException(nameof(options));
        Role = role;
        if (!Uri.TryCreate(options.BaseUrl, UriKind.Absolute, out var endpoint))
            throw new ArgumentException($"{role} base URL \"{options.BaseUrl}\" is not an absolute URL.");
        if (string.IsNullOrWhiteSpace(options.Model)) throw new ArgumentException($"{role} model name is empty.");
        if (options.MaxRetries < 0) throw new ArgumentException($"{role} max retries must be ≥ 0; got {options.MaxRetries}.");
        string key = "unused";
        if (options.ApiKeyVariable is { } variable)
            key = Environment.GetEnvironmentVariable(variable) is { Length: > 0 } k ? k
                : throw new ArgumentException($"{role} API key: environment variable {variable} is not set.");
        _timeout = options.Timeout ?? TimeSpan.FromSeconds(60);
        _backoff = options.InitialBackoff ?? TimeSpan.FromSeconds(1);
        // The SDK's own retries are off: ours below count attempts, back off and honour the overall timeout.
        _client = new ChatClient(options.Model, new ApiKeyCredential(key), new OpenAIClientOptions
        {
            Endpoint = endpoint,
            RetryPolicy = new ClientRetryPolicy(0),
            NetworkTimeout = _timeout,
        });
    }

    public string Role { get; }

    public string BaseUrl => _options.BaseUrl;

    /// <summary>
    /// Refuses an endpoint nothing answers at, before any work is spent on it (the retries are for a busy server, not a
    /// missing one). Any HTTP answer, even a 404 from a server without /models, counts as reachable.
    /// </summary>
    public async Task EnsureReachableAsync(CancellationToken ct = default)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        try
        {
            using var _ = await http.GetAsync(_options.BaseUrl.TrimEnd('/') + "/models", ct);
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            throw new FeedbackException($"{Role} at {_options.BaseUrl}: no {Role} answers there ({ex.Message}).", 503);
        }
    }

    /// <summary>The assistant's reply to <paramref name="messages"/> (/v1/chat/completions).</summary>
    public Task<string> ChatAsync(IReadOnlyList<ChatMessage> messages, GenerationRequest request, CancellationToken ct = default)
    {
        var options = new ChatCompletionOptions { Temperature = request.Temperature, MaxOutputTokenCount = request.MaxTokens };
        if (request.Stop is { } stop) foreach (var s in stop) options.StopSequences.Add(s);
#pragma warning disable OPENAI001 // Seed is marked experimental in the SDK; vLLM, llama.cpp and `rlhf serve` honour it.
        if (request.Seed is long seed) options.Seed = seed;
#pragma warning restore OPENAI001
        return WithRetriesAsync(async token =>
        {
            ChatCompletion completion = await _client.CompleteChatAsync(messages, options, token);
            return string.Concat(completion.Content.Where(p => p.Kind == ChatMessageContentPartKind.Text).Select(p => p.Text));
        }, ct);
    }

    /// <summary>The continuation of the raw text <paramref name="prompt"/> (/v1/completions: no chat template applied).</summary>
    public Task<string> CompleteTextAsync(string prompt, GenerationRequest request, CancellationToken ct = default)
    {
        var body = new JsonObject
        {
            ["model"] = _options.Model, ["prompt"] = prompt, ["temperature"] = request.Temperature, ["max_tokens"] = request.MaxTokens,
        };
        if (request.Seed is long seed) body["seed"] = seed;
        if (request.Stop is { Count: > 0 } stop) body["stop"] = new JsonArray([.. stop.Select(s => (JsonNode?)s)]);
        var uri = new Uri(_options.BaseUrl.TrimEnd('/') + "/completions");
        return WithRetriesAsync(async token =>
        {
            var pipeline = _client.Pipeline;
            using var message = pipeline.CreateMessage();
            message.Request.Method = "POST";
            message.Request.Uri = uri;
            message.Request.Headers.Set("Content-Type", "application/json");
            message.Request.Headers.Set("Accept", "application/json");
            message.Request.Content = BinaryContent.Create(BinaryData.FromString(body.ToJsonString()));
            message.Apply(new RequestOptions { CancellationToken = token });
            await pipeline.SendAsync(message);
            var response = message.Response!;
            if (response.IsError) throw await ClientResultException.CreateAsync(response);
            var reply = JsonNode.Parse(response.Content.ToString());
            return reply?["choices"]?[0]?["text"]?.GetValue<string>()
                ?? throw new FeedbackException($"{Role} at {_options.BaseUrl}: /completions answered without choices[0].text.", 502);
        }, ct);
    }

    private async Task<string> WithRetriesAsync(Func<CancellationToken, Task<string>> call, CancellationToken ct)
    {
        Exception? last = null;
        TimeSpan? retryAfter = null;
        for (int attempt = 0; attempt <= _options.MaxRetries; attempt++)
        {
            if (attempt > 0) await Task.Delay(RetryDelay(attempt, _backoff, retryAfter, Random.Shared.NextDouble()), ct);
            retryAfter = null;
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(_timeout);
            try
            {
                return await call(timeout.Token);
            }
            catch (ClientResultException ex) when (ex.Status == 429 || ex.Status >= 500 || ex.Status == 0)
            {
                last = ex;
                if (ex.GetRawResponse() is { } response && response.Headers.TryGetValue("Retry-After", out string? value))
                    retryAfter = ParseRetryAfter(value, DateTimeOffset.UtcNow);
            }
            catch (OperationCanceledException ex) when (!ct.IsCancellationRequested)
            {
                last = new TimeoutException($"no reply within {_timeout.TotalSeconds:0.###} s", ex);
            }
            catch (HttpRequestException ex)
            {
                last = ex;
            }
            catch (ClientResultException ex) when (ex.Status == 400 && ServerError(ex) is { Code: "context_length_exceeded" } error)
            {
                throw new ContextTooSmallException(error.Message);
            }
            catch (ClientResultException ex)
            {
                throw new FeedbackException($"{Role} at {_options.BaseUrl} refused the request (HTTP {ex.Status}): {ex.Message}", 502);
            }
        }
        throw new FeedbackException($"{Role} at {_options.BaseUrl} failed after {_options.MaxRetries + 1} attempts: {last?.Message}", 503);
    }

    /// <summary>
    /// The wait before retry <paramref name="attempt"/> (1-based): the server's Retry-After when it gave one (capped at
    /// <see cref="MaxRetryAfter"/>), else equal-jitter exponential back-off with <paramref name="uniform"/> in [0, 1).
    /// </summary>
    internal static TimeSpan RetryDelay(int attempt, TimeSpan backoff, TimeSpan? retryAfter, double uniform)
    {
        if (retryAfter is TimeSpan asked) return asked < TimeSpan.Zero ? TimeSpan.Zero : asked > MaxRetryAfter ? MaxRetryAfter : asked;
        var d = backoff * Math.Pow(2, attempt - 1);
        return d / 2 + d / 2 * uniform;
    }

    /// <summary>Retry-After as seconds ("120") or an HTTP date, relative to <paramref name="now"/>; null when absent or unreadable.</summary>
    internal static TimeSpan? ParseRetryAfter(string? value, DateTimeOffset now)
    {
        if (string.IsNullOrWhiteSpace(value)) return null;
        if (double.TryParse(value.Trim(), System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double seconds) && seconds >= 0)
            return TimeSpan.FromSeconds(seconds);
        if (DateTimeOffset.TryParse(value.Trim(), System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var at))
            return at - now;
        return null;
    }

    /// <summary>The OpenAI-style {"error":{"message","code"}} of a refused request, or null when the body has none.</summary>
    private static (string Message, string? Code)? ServerError(ClientResultException ex)
    {
        try
        {
            var body = ex.GetRawResponse()?.Content?.ToString();
            if (string.IsNullOrEmpty(body)) return null;
            using var doc = System.Text.Json.JsonDocument.Parse(body);
            if (!doc.RootElement.TryGetProperty("error", out var e) || e.ValueKind != System.Text.Json.JsonValueKind.Object) return null;
            string message = e.TryGetProperty("message", out var m) && m.ValueKind == System.Text.Json.JsonValueKind.String ? m.GetString()! : ex.Message;
            string? code = e.TryGetProperty("code", out var c) && c.ValueKind == System.Text.Json.JsonValueKind.String ? c.GetString() : null;
            return (message, code);
        }
        catch (System.Text.Json.JsonException)
        {
            return null;
        }
    }
}
