// The AI judge (RLAIF, Bai et al. 2022; Lee et al. 2023): an LLM behind any OpenAI-compatible chat-completions
// endpoint picks the better response. It is asked in both orders and the two verdicts are averaged, which
// cancels position bias; an answer it cannot parse becomes a skip with the reason, and so does a query too long for the
// judge's context (a 400 with code context_length_exceeded, as OpenAI, vLLM and `rlhf serve` send); calls time out and retry.
// Retries wait what the server's Retry-After asks (seconds or an HTTP date, capped at MaxRetryAfter), else a jittered
// exponential back-off: d = InitialBackoff·2^(attempt−1), waited as d/2 + U(0, d/2) ("equal jitter", so judges that
// failed together do not retry together). Hand-written rather than Polly: it is these few lines, and the loop also owns
// the per-request timeout and the attempt count the error reports.
using System.ClientModel;
using System.ClientModel.Primitives;
using System.Text;
using System.Text.RegularExpressions;
using OpenAI;
using OpenAI.Chat;

namespace RlhfSharp.Feedback.Labelers;

/// <summary>Where the judge lives and how it is asked.</summary>
/// <param name="BaseUrl">The API root that holds /chat/completions, e.g. http://127.0.0.1:8080/v1.</param>
/// <param name="Model">The model name sent with each request.</param>
/// <param name="ApiKeyVariable">Name of the environment variable holding the API key; null for servers that need none.</param>
/// <param name="Timeout">Per-request time limit.</param>
/// <param name="MaxRetries">Retries after a timeout, a 429 or a 5xx before giving up.</param>
/// <param name="InitialBackoff">Wait before the first retry; doubled for each further one.</param>
/// <param name="Instructions">The system message: what "better" means for this campaign.</param>
public sealed record AiJudgeOptions(
    string BaseUrl,
    string Model,
    string? ApiKeyVariable = "OPENAI_API_KEY",
    TimeSpan? Timeout = null,
    int MaxRetries = 3,
    TimeSpan? InitialBackoff = null,
    string Instructions = AiJudge.DefaultInstructions);

public sealed partial class AiJudge : ILabeler
{
    /// <summary>The default system message (what "better" means); `rlhf judge train` trains a judge on exactly this.</summary>
    public const string DefaultInstructions = "You compare responses to a prompt. Reply with the number of the better response and nothing else, or with the word tie if they are equally good.";

    /// <summary>The most tokens a verdict may take (the request's max_completion_tokens): a judge's context must hold the question and these.</summary>
    public const int MaxAnswerTokens = 16;

    private readonly AiJudgeOptions _options;
    private readonly ChatClient _client;
    private readonly TimeSpan _timeout;
    private readonly TimeSpan _backoff;

    public AiJudge(AiJudgeOptions options, string name = "ai-judge")
    {
        _options = options ?? throw new ArgumentNullException(nameof(options));
        if (!Uri.TryCreate(options.BaseUrl, UriKind.Absolute, out var endpoint))
            throw new ArgumentException($"AI judge base URL \"{options.BaseUrl}\" is not an absolute URL.");
        if (string.IsNullOrWhiteSpace(options.Model)) throw new ArgumentException("AI judge model name is empty.");
        if (options.MaxRetries < 0) throw new ArgumentException($"AI judge max retries must be ≥ 0; got {options.MaxRetries}.");
        string key = "unused";
        if (options.ApiKeyVariable is { } variable)
            key = Environment.GetEnvironmentVariable(variable) is { Length: > 0 } k ? k
                : throw new ArgumentException($"AI judge API key: environment variable {variable} is not set.");
        _timeout = options.Timeout ?? TimeSpan.FromSeconds(60);
        _backoff = options.InitialBackoff ?? TimeSpan.FromSeconds(1);
        // The SDK's own retries are off: ours below count attempts, back off and honour the overall timeout.
        _client = new ChatClient(options.Model, new ApiKeyCredential(key), new OpenAIClientOptions
        {
            Endpoint = endpoint,
            RetryPolicy = new ClientRetryPolicy(0),
            NetworkTimeout = _timeout,
        });
        Name = name;
    }

    public string Name { get; }

    /// <summary>
    /// Refuses an endpoint nothing answers at, before any work is spent on it (the retries in AnswerAsync are for a busy
    /// server, not a missing one). Any HTTP answer, even a 404 from a server without /models, counts as reachable.
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
            throw new FeedbackException($"AI judge at {_options.BaseUrl}: no AI judge answers there ({ex.Message}).", 503);
        }
    }

    public async Task<Answer> AnswerAsync(Query query, CancellationToken ct = default)
    {
        int k = query.Candidates.Count;
        var forward = Enumerable.Range(0, k).ToArray();
        var backward = forward.Reverse().ToArray();
        int? first, second;
        string firstRaw, secondRaw;
        try
        {
            (first, firstRaw) = await VerdictAsync(query, forward, ct);
            (second, secondRaw) = await VerdictAsync(query, backward, ct);
        }
        catch (ContextTooSmallException ex)
        {
            // This query does not fit the judge; others may. The server's words say by how much.
            return Answer.Skip($"the judge's context is too small for this query: {Clip(ex.Message)}");
        }
        if (first is null) return Answer.Skip($"judge answer not understood: \"{Clip(firstRaw)}\"");
        if (second is null) return Answer.Skip($"judge answer not understood: \"{Clip(secondRaw)}\"");
        if (k == 2) return PairVerdict(first.Value, second.Value);
        if (first == second && first >= 0) return Answer.Prefer(first.Value);
        return Answer.Skip($"judge changed its choice with the order of the responses ({first} then {second})");
    }

    /// <summary>
    /// The label of a pair from its two understood verdicts, asked as (0, 1) then (1, 0): each is the candidate that order
    /// named (0 or 1), or −1 for a tie. +1 for candidate 0, −1 for candidate 1, 0 for a tie; the two orders are summed, so
    /// a judge that always names the first position scores 0: a tie rather than a biased label. `rlhf rlaif` labels its
    /// pairs in-process with this same rule.
    /// </summary>
    public static Answer PairVerdict(int first, int second)
    {
        int Vote(int v) => v == -1 ? 0 : v == 0 ? 1 : -1;
        int sum = Vote(first) + Vote(second);
        return sum > 0 ? Answer.Prefer(0) : sum < 0 ? Answer.Prefer(1) : Answer.Tie();
    }

    /// <summary>Asks once with the candidates in <paramref name="order"/>; returns the chosen original index, −1 for a tie, null if unreadable.</summary>
    private async Task<(int? Choice, string Raw)> VerdictAsync(Query query, int[] order, CancellationToken ct)
    {
        var user = UserMessage(query.Prompt, order.Select(i => query.Candidates[i].Content).ToList());
        var raw = await CompleteAsync([new SystemChatMessage(_options.Instructions), new UserChatMessage(user)], ct);
        var parsed = ParseVerdict(raw, order.Length);
        return (parsed is int p && p >= 0 ? order[p] : parsed, raw);
    }

    /// <summary>
    /// The user message that asks for one verdict on <paramref name="responses"/> in the order shown (the system message is
    /// <see cref="AiJudgeOptions.Instructions"/>); a judge trained by `rlhf judge train` learns to answer exactly this.
    /// </summary>
    public static string UserMessage(string prompt, IReadOnlyList<string> responses)
    {
        var text = new StringBuilder();
        text.Append("Prompt:\n").Append(prompt).Append("\n\n");
        for (int i = 0; i < responses.Count; i++)
            text.Append("Response ").Append(i + 1).Append(":\n").Append(responses[i]).Append("\n\n");
        text.Append("Which response is better? Reply with a number from 1 to ").Append(responses.Count).Append(", or tie.");
        return text.ToString();
    }

    /// <summary>
    /// The judge's pick as a 0-based position, −1 for tie, null when the reply names no single position. Surrounding
    /// white space is ignored: our models' chat replies start with a space (" 1", GPT-2's leading-space token).
    /// </summary>
    public static int? ParseVerdict(string reply, int count)
    {
        var text = reply.Trim();
        if (TieWord().IsMatch(text) && !Number().IsMatch(text)) return -1;
        // A number too long for an int (a babbling model's digit run) names no response: int.MaxValue is out of range below.
        var numbers = Number().Matches(text).Select(m => int.TryParse(m.Value, System.Globalization.CultureInfo.InvariantCulture, out int v) ? v : int.MaxValue).Distinct().ToList();
        // Exactly one number and it names a response: anything else ("1 or 2", "3 of 2") is not an answer.
        return numbers.Count == 1 && numbers[0] >= 1 && numbers[0] <= count ? numbers[0] - 1 : null;
    }

    /// <summary>Longest Retry-After honoured; a server asking for more gets this (the judge's run should not stall for hours).</summary>
    public static readonly TimeSpan MaxRetryAfter = TimeSpan.FromSeconds(60);

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

    private async Task<string> CompleteAsync(ChatMessage[] messages, CancellationToken ct)
    {
        var options = new ChatCompletionOptions { Temperature = 0f, MaxOutputTokenCount = MaxAnswerTokens };
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
                ChatCompletion completion = await _client.CompleteChatAsync(messages, options, timeout.Token);
                return string.Concat(completion.Content.Where(p => p.Kind == ChatMessageContentPartKind.Text).Select(p => p.Text));
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
                throw new FeedbackException($"AI judge at {_options.BaseUrl} refused the request (HTTP {ex.Status}): {ex.Message}", 502);
            }
        }
        throw new FeedbackException($"AI judge at {_options.BaseUrl} failed after {_options.MaxRetries + 1} attempts: {last?.Message}", 503);
    }

    private sealed class ContextTooSmallException(string message) : Exception(message);

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

    private static string Clip(string s) => s.Length <= 200 ? s : s[..200] + "…";

    [GeneratedRegex(@"\btie\b", RegexOptions.IgnoreCase)]
    private static partial Regex TieWord();

    [GeneratedRegex(@"\d+")]
    private static partial Regex Number();
}
