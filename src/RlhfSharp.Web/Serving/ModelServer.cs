// `rlhf serve`: a checkpoint behind the OpenAI-compatible API (/v1/chat/completions, /v1/completions with SSE
// streaming, /v1/models), so the AI-judge labeller, the OpenAI SDKs and tools like curl talk to our models as they
// would to vLLM or llama.cpp. Requests are generated one at a time (the model is not shared across threads) behind a
// bounded queue: when MaxQueue requests already wait, another gets 429 with Retry-After instead of waiting without end.
// A prompt must fit the context with room for its max_tokens (400 otherwise, naming both numbers: nothing is cut
// silently), so `usage` always counts exactly the tokens the model saw and made. Every error reply, whatever its status
// (400, 404, 405, 413, 429, 500), carries OpenAI's body: {"error":{"message","type","param","code"}}.
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Encodings.Web;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using RlhfSharp.Models;
using RlhfSharp.Tensors;
using RlhfSharp.Text;

namespace RlhfSharp.Web.Serving;

/// <summary>How the model server listens and generates.</summary>
/// <param name="Host">Address to bind; 127.0.0.1 keeps the server on this machine.</param>
/// <param name="Port">TCP port; 0 picks a free one (tests).</param>
/// <param name="ModelName">The id reported by /v1/models and in every response; requests may name any model.</param>
/// <param name="DefaultMaxTokens">Tokens generated when a request gives no max_tokens.</param>
/// <param name="Seed">Seed of the sampling stream when a request gives no seed.</param>
/// <param name="MaxQueue">Requests that may wait behind the one being generated; one more is refused with 429.</param>
/// <param name="MaxRequestBodyBytes">Largest request body; a larger one is refused with 413.</param>
public sealed record ModelServerOptions(string Host = "127.0.0.1", int Port = 8000, string ModelName = "rlhfsharp", int DefaultMaxTokens = 64, ulong Seed = 1,
    int MaxQueue = 16, long MaxRequestBodyBytes = 1 << 20)
{
    internal void Validate()
    {
        if (MaxQueue < 0) throw new ArgumentException($"model server: max queue must be ≥ 0; got {MaxQueue}.");
        if (MaxRequestBodyBytes < 1024) throw new ArgumentException($"model server: max request body must be ≥ 1024 bytes; got {MaxRequestBodyBytes}.");
        if (Port is < 0 or > 65535) throw new ArgumentException($"model server: port must lie in 0..65535; got {Port}.");
        if (string.IsNullOrWhiteSpace(ModelName)) throw new ArgumentException("model server: the model name is empty.");
        if (DefaultMaxTokens < 1) throw new ArgumentException($"model server: default max tokens must be ≥ 1; got {DefaultMaxTokens}.");
        if (!IPAddress.TryParse(Host, out _)) throw new ArgumentException($"model server: host \"{Host}\" is not an IP address (use 127.0.0.1 or 0.0.0.0).");
    }
}

/// <summary>A request the API refuses with 400 and OpenAI's error shape.</summary>
internal sealed class BadRequestException(string message, string? param = null, string? code = null) : Exception(message)
{
    public string? Param { get; } = param;
    public string? Code { get; } = code;
}

/// <summary>The queue is full: 429, with the seconds to wait before retrying.</summary>
internal sealed class QueueFullException(string message, int retryAfterSeconds) : Exception(message)
{
    public int RetryAfterSeconds { get; } = retryAfterSeconds;
}

public static class ModelServer
{
    // JSON, not HTML: non-ASCII text and '+' go out as they are rather than as \uXXXX escapes.
    private static readonly JsonSerializerOptions Out = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>A ready-to-start app serving <paramref name="model"/>; logging is off unless <paramref name="logging"/> adds providers.</summary>
    public static WebApplication Build(Gpt model, ITokenizer tokenizer, ModelServerOptions options, Action<ILoggingBuilder>? logging = null) =>
        Build(model, tokenizer, options, logging, beforeGenerate: null);

    /// <param name="beforeGenerate">Tests only: awaited while a request holds the model, so a test can fill the queue deterministically.</param>
    internal static WebApplication Build(Gpt model, ITokenizer tokenizer, ModelServerOptions options, Action<ILoggingBuilder>? logging,
        Func<CancellationToken, Task>? beforeGenerate)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (tokenizer.VocabSize > model.Config.VocabSize)
            throw new ArgumentException($"model server: the tokenizer has {tokenizer.VocabSize} tokens but the model's vocab_size is {model.Config.VocabSize}.");
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        logging?.Invoke(builder.Logging);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(IPAddress.Parse(options.Host), options.Port);
            k.Limits.MaxRequestBodySize = options.MaxRequestBodyBytes;
            k.AddServerHeader = false;
        });
        var app = builder.Build();
        var engine = new Engine(model, tokenizer, options, beforeGenerate);
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

        app.Use(async (ctx, next) =>
        {
            try
            {
                await next(ctx);
            }
            catch (BadRequestException ex) when (!ctx.Response.HasStarted)
            {
                await Error(ctx, 400, ex.Message, "invalid_request_error", ex.Param, ex.Code);
                return;
            }
            catch (QueueFullException ex) when (!ctx.Response.HasStarted)
            {
                await Error(ctx, 429, ex.Message, "rate_limit_error", null, "queue_full", ex.RetryAfterSeconds);
                return;
            }
            catch (BadHttpRequestException ex) when (!ctx.Response.HasStarted)
            {
                // Kestrel's own refusals while reading the body: 413 over the size limit, 400 for a torn request.
                string message = ex.StatusCode == StatusCodes.Status413PayloadTooLarge
                    ? $"the request body is larger than the limit of {options.MaxRequestBodyBytes} bytes."
                    : "the request could not be read (a malformed or interrupted body).";
                await Error(ctx, ex.StatusCode, message, "invalid_request_error", null, null);
                return;
            }
            catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
            {
                return; // the client went away: nobody to answer
            }
            catch (Exception ex) when (!ctx.Response.HasStarted)
            {
                await Error(ctx, 500, $"the server failed to generate a response: {Bounded(ex.Message)}", "server_error", null, null);
                return;
            }
            // Statuses the framework sets without a body (404 no route, 405 wrong method): give them the same shape.
            if (ctx.Response.StatusCode >= 400 && !ctx.Response.HasStarted && ctx.Response.ContentType is null)
            {
                var (status, path, method) = (ctx.Response.StatusCode, Bounded(ctx.Request.Path.ToString()), ctx.Request.Method);
                string message = status switch
                {
                    404 => $"no such endpoint: {method} {path} (this server has /v1/models, /v1/completions, /v1/chat/completions).",
                    405 => $"{method} is not allowed on {path}.",
                    _ => $"the request was refused ({status}).",
                };
                await Error(ctx, status, message, "invalid_request_error", null, null);
            }
        });
        app.MapGet("/v1/models", () => Results.Text(new JsonObject
        {
            ["object"] = "list",
            ["data"] = new JsonArray(new JsonObject { ["id"] = options.ModelName, ["object"] = "model", ["created"] = created, ["owned_by"] = "rlhfsharp" }),
        }.ToJsonString(Out), "application/json"));
        app.MapPost("/v1/completions", async ctx =>
        {
            var body = await ReadBody(ctx);
            string prompt = body["prompt"] switch
            {
                JsonValue v when v.TryGetValue(out string? s) => s,
                JsonArray { Count: 1 } a when a[0] is JsonValue v1 && v1.TryGetValue(out string? s1) => s1,
                null => throw new BadRequestException("\"prompt\" is required.", "prompt"),
                _ => throw new BadRequestException("\"prompt\" must be a string (or an array of one string).", "prompt"),
            };
            await Respond(ctx, engine, options, body, prompt, chat: false);
        });
        app.MapPost("/v1/chat/completions", async ctx =>
        {
            var body = await ReadBody(ctx);
            await Respond(ctx, engine, options, body, ChatPrompt(body, ChatTemplate.For(tokenizer)), chat: true);
        });
        return app;
    }

    /// <summary>
    /// The prompt a chat becomes: the messages rendered with the model's chat template (tokenizer_config.json, else the
    /// documented default SFT trains on) and its generation prompt, so a chat asks the model in the format it learned.
    /// </summary>
    internal static string ChatPrompt(JsonObject body, ChatTemplate template)
    {
        if (body["messages"] is not JsonArray { Count: > 0 } messages) throw new BadRequestException("\"messages\" must be a non-empty array.", "messages");
        var conversation = new List<ChatMessage>(messages.Count);
        for (int i = 0; i < messages.Count; i++)
        {
            if (messages[i] is not JsonObject m || m["content"] is not JsonNode content)
                throw new BadRequestException($"messages[{i}] must be an object with \"role\" and \"content\".", $"messages[{i}]");
            string text = content switch
            {
                JsonValue v when v.TryGetValue(out string? s) => s,
                // Content parts: [{ "type": "text", "text": "..." }, ...]; only text parts are understood.
                JsonArray parts => string.Concat(parts.Select((p, j) => p?["type"]?.GetValue<string>() == "text" && p["text"] is JsonValue t && t.TryGetValue(out string? s2)
                    ? s2 : throw new BadRequestException($"messages[{i}].content[{j}] is not a text part; only text is supported.", $"messages[{i}].content"))),
                _ => throw new BadRequestException($"messages[{i}].content must be a string or an array of text parts.", $"messages[{i}].content"),
            };
            string role = m["role"] is JsonValue r && r.TryGetValue(out string? rs) ? rs
                : throw new BadRequestException($"messages[{i}].role must be a string.", $"messages[{i}].role");
            conversation.Add(new ChatMessage(role == "developer" ? "system" : role, text));
        }
        try
        {
            return template.RenderPrompt(conversation);
        }
        catch (Text.Chat.ChatTemplateException ex)
        {
            throw new BadRequestException(ex.Message, "messages");
        }
    }

    private static async Task<JsonObject> ReadBody(HttpContext ctx)
    {
        if (!ctx.Request.HasJsonContentType()) throw new BadRequestException($"Content-Type must be application/json; got \"{ctx.Request.ContentType}\".");
        try
        {
            return await JsonNode.ParseAsync(ctx.Request.Body, cancellationToken: ctx.RequestAborted) as JsonObject
                ?? throw new BadRequestException("the request body must be a JSON object.");
        }
        catch (JsonException ex)
        {
            throw new BadRequestException($"the request body is not valid JSON (line {ex.LineNumber + 1}, byte {ex.BytePositionInLine + 1}).");
        }
    }

    private static async Task Respond(HttpContext ctx, Engine engine, ModelServerOptions options, JsonObject body, string prompt, bool chat)
    {
        var request = GenerationRequest.Parse(body, options, chat);
        // Every refusal of the request itself (an unknown character, a prompt or max_tokens that does not fit) comes
        // before the queue and before any byte of a stream is sent.
        var prepared = engine.Prepare(prompt, request, chat);
        using var place = engine.Enter();
        string id = (chat ? "chatcmpl-" : "cmpl-") + Guid.NewGuid().ToString("N")[..24];
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        string obj = chat ? "chat.completion" : "text_completion";
        JsonObject Usage(GenerationOutput o) => new()
        {
            ["prompt_tokens"] = o.PromptTokens, ["completion_tokens"] = o.CompletionTokens, ["total_tokens"] = o.PromptTokens + o.CompletionTokens,
        };
        if (!request.Stream)
        {
            var output = await engine.GenerateAsync(prepared, request, null, ctx.RequestAborted);
            var choice = new JsonObject { ["index"] = 0 };
            if (chat) choice["message"] = new JsonObject { ["role"] = "assistant", ["content"] = output.Text };
            else { choice["text"] = output.Text; choice["logprobs"] = null; }
            choice["finish_reason"] = output.FinishReason;
            var response = new JsonObject
            {
                ["id"] = id, ["object"] = obj, ["created"] = created, ["model"] = options.ModelName,
                ["choices"] = new JsonArray(choice),
                ["usage"] = Usage(output),
            };
            ctx.Response.ContentType = "application/json";
            await ctx.Response.WriteAsync(response.ToJsonString(Out), ctx.RequestAborted);
            return;
        }

        // Server-sent events, in real time: generation runs on its own thread and hands each piece of text (what a token
        // adds, held back while a UTF-8 character or a possible stop string is incomplete) to this request, which sends
        // it as one `data: {json}` chunk and flushes; then a last chunk with the finish reason, then `data: [DONE]`.
        string chunkObj = chat ? "chat.completion.chunk" : "text_completion";
        async Task Send(string? piece, string? finish, bool first)
        {
            var choice = new JsonObject { ["index"] = 0 };
            if (chat)
            {
                var delta = new JsonObject();
                if (first) delta["role"] = "assistant";
                if (piece is not null) delta["content"] = piece;
                choice["delta"] = delta;
            }
            else { choice["text"] = piece ?? ""; choice["logprobs"] = null; }
            choice["finish_reason"] = finish;
            var chunk = new JsonObject { ["id"] = id, ["object"] = chunkObj, ["created"] = created, ["model"] = options.ModelName, ["choices"] = new JsonArray(choice) };
            await ctx.Response.WriteAsync("data: " + chunk.ToJsonString(Out) + "\n\n", ctx.RequestAborted);
            await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
        }
        var pieces = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        // Generation is seconds of synchronous compute: on a thread of its own (LongRunning), not a thread-pool thread, so
        // the loop below that writes each piece is never starved of a pool thread on a busy 2-core machine (seen in CI: every
        // chunk of a 1.5 s generation arrived in the last 10 ms).
        var generation = Task.Factory.StartNew(() =>
        {
            try
            {
                return engine.GenerateAsync(prepared, request, piece => pieces.Writer.TryWrite(piece), ctx.RequestAborted).GetAwaiter().GetResult();
            }
            finally
            {
                pieces.Writer.TryComplete();
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        bool isFirst = true;
        await foreach (var piece in pieces.Reader.ReadAllAsync(ctx.RequestAborted))
        {
            if (isFirst)
            {
                ctx.Response.ContentType = "text/event-stream";
                ctx.Response.Headers.CacheControl = "no-cache";
            }
            await Send(piece, null, isFirst);
            isFirst = false;
        }
        // A failure before the first piece surfaces here, before anything was sent, and gets a JSON error reply.
        var done = await generation;
        if (isFirst)
        {
            ctx.Response.ContentType = "text/event-stream";
            ctx.Response.Headers.CacheControl = "no-cache";
        }
        await Send(null, done.FinishReason, isFirst);
        // As OpenAI's stream_options.include_usage: one more chunk with no choices and the usage.
        if (request.IncludeUsage)
        {
            var chunk = new JsonObject { ["id"] = id, ["object"] = chunkObj, ["created"] = created, ["model"] = options.ModelName, ["choices"] = new JsonArray(), ["usage"] = Usage(done) };
            await ctx.Response.WriteAsync("data: " + chunk.ToJsonString(Out) + "\n\n", ctx.RequestAborted);
        }
        await ctx.Response.WriteAsync("data: [DONE]\n\n", ctx.RequestAborted);
    }

    private static Task Error(HttpContext ctx, int status, string message, string type, string? param, string? code, int? retryAfterSeconds = null)
    {
        ctx.Response.Clear();
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        if (retryAfterSeconds is int seconds) ctx.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var error = new JsonObject { ["error"] = new JsonObject { ["message"] = message, ["type"] = type, ["param"] = param, ["code"] = code } };
        return ctx.Response.WriteAsync(error.ToJsonString(Out));
    }

    private static string Bounded(string s, int max = 300) => s.Length <= max ? s : s[..max] + "…";

    /// <summary>
    /// The sampling fields of a request, checked. <see cref="MaxTokens"/> is null when the request gave none (the server's
    /// default then applies, shortened to what fits); <see cref="MaxTokensField"/> is the field it came from.
    /// </summary>
    internal sealed record GenerationRequest(int? MaxTokens, string MaxTokensField, float Temperature, float TopP, ulong? Seed, IReadOnlyList<string> Stop, bool Stream,
        bool IncludeUsage)
    {
        public static GenerationRequest Parse(JsonObject body, ModelServerOptions options, bool chat)
        {
            string field = chat && body["max_completion_tokens"] is not null ? "max_completion_tokens" : "max_tokens";
            int? maxTokens = Int(body, field);
            if (maxTokens < 1) throw new BadRequestException($"{field} must be ≥ 1; got {maxTokens}.", field);
            float temperature = (float)(Num(body, "temperature") ?? 1.0);
            if (!(temperature >= 0) || temperature > 2) throw new BadRequestException($"temperature must lie in [0, 2]; got {temperature}.", "temperature");
            float topP = (float)(Num(body, "top_p") ?? 1.0);
            if (!(topP > 0 && topP <= 1)) throw new BadRequestException($"top_p must lie in (0, 1]; got {topP}.", "top_p");
            if (Int(body, "n") is int n && n != 1) throw new BadRequestException($"n = {n} is not supported; ask for one choice per request.", "n");
            var stop = body["stop"] switch
            {
                null => [],
                JsonValue v when v.TryGetValue(out string? s) => [s],
                JsonArray a => a.Select((x, i) => x is JsonValue xv && xv.TryGetValue(out string? s) ? s : throw new BadRequestException($"stop[{i}] must be a string.", "stop")).ToList(),
                _ => throw new BadRequestException("stop must be a string or an array of strings.", "stop"),
            };
            bool stream = body["stream"] is JsonValue sv && sv.TryGetValue(out bool b) && b;
            ulong? seed = body["seed"] is JsonValue seedValue && seedValue.TryGetValue(out long sd) ? unchecked((ulong)sd) : null;
            bool includeUsage = body["stream_options"] is JsonObject so && so["include_usage"] is JsonValue iu && iu.TryGetValue(out bool u) && u;
            return new GenerationRequest(maxTokens, field, temperature, topP, seed, stop.Where(s => s.Length > 0).ToList(), stream, includeUsage);
        }

        private static double? Num(JsonObject body, string name) => body[name] switch
        {
            null => null,
            JsonValue v when v.TryGetValue(out double d) => d,
            _ => throw new BadRequestException($"{name} must be a number.", name),
        };

        private static int? Int(JsonObject body, string name) => body[name] switch
        {
            null => null,
            JsonValue v when v.TryGetValue(out int i) => i,
            _ => throw new BadRequestException($"{name} must be an integer.", name),
        };
    }

    internal sealed record GenerationOutput(string Text, IReadOnlyList<string> Pieces, string FinishReason, int PromptTokens, int CompletionTokens);

    /// <summary>Thrown from the token callback to end generation once the text is complete.</summary>
    private sealed class TextComplete : Exception;

    /// <summary>A prompt that fits: its tokens and how many new tokens to make (prompt + new ≤ the block).</summary>
    internal sealed record PreparedPrompt(int[] Tokens, int MaxNew);

    /// <summary>The model, its tokenizer, a gate (one generation at a time) and the bounded queue in front of it.</summary>
    private sealed class Engine(Gpt model, ITokenizer tokenizer, ModelServerOptions options, Func<CancellationToken, Task>? beforeGenerate)
    {
        private readonly SemaphoreSlim _gate = new(1, 1);
        private readonly Rng _rng = new(options.Seed);
        private int _inFlight; // admitted requests: the one generating plus those waiting
        private long _meanMs = 1000; // running mean of one generation, for Retry-After (starts at a guess of 1 s)

        /// <summary>
        /// Encodes the prompt and checks it against the block: the prompt must leave room for one new token, and an
        /// explicit max_tokens must fit beside it (400 naming both numbers otherwise). Without max_tokens the server's
        /// default applies, shortened to what fits.
        /// </summary>
        public PreparedPrompt Prepare(string prompt, GenerationRequest request, bool chat)
        {
            int block = model.Config.BlockSize;
            int? eos = model.Config.EosTokenId ?? tokenizer.EosId;
            string promptField = chat ? "messages" : "prompt";
            int[] tokens;
            try
            {
                tokens = tokenizer.Encode(prompt, allowSpecial: chat); // chat prompts are rendered by the template: its special-token text is those tokens
            }
            catch (ArgumentException ex)
            {
                // A character-level model cannot take characters it never saw: the caller's input, so a 400.
                throw new BadRequestException($"the prompt cannot be encoded by this model's tokenizer: {Bounded(ex.Message)}", promptField);
            }
            if (tokens.Length == 0) tokens = eos is int e ? [e] : throw new BadRequestException("the prompt encodes to no tokens and the model has no end-of-text token to stand in.", promptField);
            if (tokens.Length >= block)
                throw new BadRequestException($"the prompt is {tokens.Length} tokens but the model's context is {block} tokens (at most {block - 1}, to leave room for one new token).",
                    promptField, "context_length_exceeded");
            int room = block - tokens.Length;
            if (request.MaxTokens is int asked && asked > room)
                throw new BadRequestException($"the prompt ({tokens.Length} tokens) plus {request.MaxTokensField} ({asked}) is {tokens.Length + (long)asked} tokens, more than the model's context of {block}; ask for at most {room}.",
                    request.MaxTokensField, "context_length_exceeded");
            return new PreparedPrompt(tokens, Math.Min(request.MaxTokens ?? options.DefaultMaxTokens, room));
        }

        /// <summary>A place in the queue, or 429 when <see cref="ModelServerOptions.MaxQueue"/> requests already wait. Dispose to leave.</summary>
        public IDisposable Enter()
        {
            int now = Interlocked.Increment(ref _inFlight);
            if (now > options.MaxQueue + 1)
            {
                Interlocked.Decrement(ref _inFlight);
                // Everyone ahead is served one after another: about (waiting + 1) mean generations until a place frees up.
                int seconds = (int)Math.Clamp(Math.Ceiling(Interlocked.Read(ref _meanMs) * (double)now / 1000), 1, 3600);
                throw new QueueFullException($"the server is busy: {now - 1} requests are generating or waiting (queue limit {options.MaxQueue}); retry after {seconds} s.", seconds);
            }
            return new Place(this);
        }

        private sealed class Place(Engine engine) : IDisposable
        {
            private int _left;

            public void Dispose()
            {
                if (Interlocked.Exchange(ref _left, 1) == 0) Interlocked.Decrement(ref engine._inFlight);
            }
        }

        /// <summary>Generates the response; <paramref name="onPiece"/> (on the generating thread) gets each piece of text as soon as it is whole.</summary>
        public async Task<GenerationOutput> GenerateAsync(PreparedPrompt prompt, GenerationRequest request, Action<string>? onPiece, CancellationToken ct)
        {
            int? eos = model.Config.EosTokenId ?? tokenizer.EosId;
            var generation = new GenerationOptions
            {
                MaxNewTokens = prompt.MaxNew,
                Temperature = request.Temperature == 0 ? 1f : request.Temperature,
                Greedy = request.Temperature == 0,
                TopP = request.TopP,
                EosTokenId = eos,
                PadTokenId = eos ?? 0,
            };
            var stream = new TextPieceStream(tokenizer, request.Stop, eos, onPiece);
            await _gate.WaitAsync(ct);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            try
            {
                if (beforeGenerate is not null) await beforeGenerate(ct);
                var rng = request.Seed is ulong s ? new Rng(s) : _rng.Fork();
                using (Autograd.NoGrad())
                    new GptGenerator(model).Generate([prompt.Tokens], generation, rng, null, (_, next) =>
                    {
                        ct.ThrowIfCancellationRequested(); // the client went away: stop spending compute on it
                        if (!stream.Add(next[0])) throw new TextComplete();
                    });
            }
            catch (TextComplete)
            {
                // A stop string ended the text before the token budget did.
            }
            finally
            {
                long ms = clock.ElapsedMilliseconds;
                Interlocked.Exchange(ref _meanMs, (Interlocked.Read(ref _meanMs) * 7 + ms) / 8);
                _gate.Release();
            }
            stream.Finish();
            return new GenerationOutput(stream.Text, stream.Pieces, stream.FinishReason, prompt.Tokens.Length, stream.Tokens);
        }
    }
}
