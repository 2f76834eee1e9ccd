// `rlhf serve`: a checkpoint behind the OpenAI-compatible API (/v1/chat/completions, /v1/completions with SSE
// streaming, /v1/models and /v1/models/{id}), so the AI-judge labeller, the OpenAI SDKs, lm-evaluation-harness and
// tools like curl talk to our models as they would to vLLM or llama.cpp. Concurrent requests are decoded together
// (continuous batching, DecodeScheduler: up to MaxBatch sequences per step, each joining and leaving at step boundaries)
// behind a bounded queue: when MaxQueue more requests already wait, another gets 429 with Retry-After instead of
// waiting without end. OpenAI's request features are served (n choices, logprobs/top_logprobs, echo with max_tokens 0
// scoring the prompt) or refused with a 400 naming the field (tools, response_format other than text, functions):
// never silently ignored.
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
/// <param name="MaxQueue">Requests that may wait behind the MaxBatch being decoded; one more is refused with 429.</param>
/// <param name="MaxRequestBodyBytes">Largest request body; a larger one is refused with 413.</param>
/// <param name="MaxBatch">Sequences (choices) decoded together in one step; more wait for a place at a step boundary.</param>
/// <param name="MaxChoices">Most choices (prompts × n) in one request.</param>
public sealed record ModelServerOptions(string Host = "127.0.0.1", int Port = 8000, string ModelName = "rlhfsharp", int DefaultMaxTokens = 64, ulong Seed = 1,
    int MaxQueue = 16, long MaxRequestBodyBytes = 1 << 20, int MaxBatch = 8, int MaxChoices = 64)
{
    internal void Validate()
    {
        if (MaxQueue < 0) throw new ArgumentException($"model server: max queue must be ≥ 0; got {MaxQueue}.");
        if (MaxBatch < 1) throw new ArgumentException($"model server: max batch must be ≥ 1; got {MaxBatch}.");
        if (MaxChoices < 1) throw new ArgumentException($"model server: max choices must be ≥ 1; got {MaxChoices}.");
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

    /// <param name="beforeGenerate">Tests only: awaited on the decode thread as a request's sequence joins the batch, so a test can hold the model and fill the queue deterministically.</param>
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
        app.Lifetime.ApplicationStopped.Register(engine.Dispose);
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
        JsonObject Model() => new() { ["id"] = options.ModelName, ["object"] = "model", ["created"] = created, ["owned_by"] = "rlhfsharp" };
        app.MapGet("/v1/models", () => Results.Text(new JsonObject { ["object"] = "list", ["data"] = new JsonArray(Model()) }.ToJsonString(Out), "application/json"));
        app.MapGet("/v1/models/{**id}", async (HttpContext ctx, string id) =>
        {
            if (id == options.ModelName)
            {
                ctx.Response.ContentType = "application/json";
                await ctx.Response.WriteAsync(Model().ToJsonString(Out));
                return;
            }
            await Error(ctx, 404, $"the model \"{Bounded(id, 100)}\" does not exist; this server has \"{options.ModelName}\".", "invalid_request_error", "model", "model_not_found");
        });
        app.MapPost("/v1/completions", async ctx =>
        {
            var body = await ReadBody(ctx);
            await Respond(ctx, engine, options, body, CompletionPrompts(body), chat: false);
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

    /// <summary>A prompt as the request gave it: text, or token ids (lm-evaluation-harness sends ids).</summary>
    internal sealed record PromptInput(string? Text, int[]? Tokens);

    /// <summary>
    /// /v1/completions' prompt: a string, an array of strings, an array of token ids, or an array of such arrays; each
    /// prompt gets n choices (choice index = prompt index · n + j, as OpenAI numbers them).
    /// </summary>
    internal static IReadOnlyList<PromptInput> CompletionPrompts(JsonObject body)
    {
        static int[]? Ids(JsonArray a) =>
            a.Count > 0 && a.All(x => x is JsonValue v && v.GetValueKind() == JsonValueKind.Number) ? a.Select((x, i) => x!.GetValue<JsonElement>().TryGetInt32(out int id) ? id
                : throw new BadRequestException($"prompt[{i}] must be a token id (an integer).", "prompt")).ToArray() : null;
        return body["prompt"] switch
        {
            JsonValue v when v.TryGetValue(out string? s) => [new PromptInput(s, null)],
            JsonArray a when Ids(a) is int[] ids => [new PromptInput(null, ids)],
            JsonArray { Count: > 0 } a => a.Select((x, i) => x switch
            {
                JsonValue xv when xv.TryGetValue(out string? s) => new PromptInput(s, null),
                JsonArray xa when Ids(xa) is int[] ids => new PromptInput(null, ids),
                _ => throw new BadRequestException($"prompt[{i}] must be a string or an array of token ids.", "prompt"),
            }).ToList(),
            null => throw new BadRequestException("\"prompt\" is required.", "prompt"),
            _ => throw new BadRequestException("\"prompt\" must be a string, an array of strings, or token ids.", "prompt"),
        };
    }

    private static Task Respond(HttpContext ctx, Engine engine, ModelServerOptions options, JsonObject body, string prompt, bool chat) =>
        Respond(ctx, engine, options, body, [new PromptInput(prompt, null)], chat);

    /// <summary>One choice being generated: its place in the reply, its prompt, its text stream and its decode sequence.</summary>
    private sealed record Choice(int Index, PreparedPrompt Prompt, TextPieceStream Text, DecodeSequence Sequence);

    private static async Task Respond(HttpContext ctx, Engine engine, ModelServerOptions options, JsonObject body, IReadOnlyList<PromptInput> prompts, bool chat)
    {
        var request = GenerationRequest.Parse(body, options, chat);
        // Every refusal of the request itself (an unknown character, a prompt or max_tokens that does not fit) comes
        // before the queue and before any byte of a stream is sent.
        var prepared = prompts.Select(p => engine.Prepare(p, request, chat)).ToList();
        if ((long)prepared.Count * request.N > options.MaxChoices)
            throw new BadRequestException($"{prepared.Count} prompt(s) × n = {request.N} is {(long)prepared.Count * request.N} choices; this server makes at most {options.MaxChoices} per request.", "n");
        using var place = engine.Enter();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        string id = (chat ? "chatcmpl-" : "cmpl-") + Guid.NewGuid().ToString("N")[..24];
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        string obj = chat ? "chat.completion" : "text_completion";

        // Server-sent events go out in real time: the scheduler's thread hands each piece of text (what a token adds, held
        // back while a UTF-8 character or a possible stop string is incomplete) to this request, which sends it as one
        // `data: {json}` chunk and flushes; then one chunk per choice with its finish reason, then `data: [DONE]`. With
        // logprobs, a chunk carries the scores of the tokens made since the previous chunk of its choice (snapshotted on
        // the scheduler's thread as the piece is made); the finish chunk carries any left (the end-of-text token).
        var pieces = Channel.CreateUnbounded<(int Index, string Piece, TokenLogprob[]? Scores)>(new UnboundedChannelOptions { SingleReader = true });
        var choices = new List<Choice>();
        int total = prepared.Count * request.N;
        var sequences = new DecodeSequence[total];
        var scored = new int[total]; // per choice: Generated entries already sent with a chunk
        TokenLogprob[]? TakeScores(int index)
        {
            if (request.Logprobs < 0) return null;
            var made = sequences[index].Generated;
            var taken = made.GetRange(scored[index], made.Count - scored[index]).ToArray();
            scored[index] = made.Count;
            return taken;
        }
        for (int p = 0; p < prepared.Count; p++)
            for (int j = 0; j < request.N; j++)
            {
                int index = p * request.N + j;
                var text = new TextPieceStream(engine.Tokenizer, request.Stop, engine.Eos, request.Stream ? piece => pieces.Writer.TryWrite((index, piece, TakeScores(index))) : null);
                if (request.Stream && request.Echo) pieces.Writer.TryWrite((index, prepared[p].Text, null));
                sequences[index] = engine.Sequence(prepared[p], request, index, text, ctx.RequestAborted);
                choices.Add(new Choice(index, prepared[p], text, sequences[index]));
            }
        async Task Run(Choice c)
        {
            await engine.Scheduler.Submit(c.Sequence);
            c.Text.Finish();
        }
        var all = Task.WhenAll(choices.Select(Run));
        _ = all.ContinueWith(_ => pieces.Writer.TryComplete(), TaskScheduler.Default);
        JsonObject Usage() => new()
        {
            ["prompt_tokens"] = prepared.Sum(p => p.Tokens.Length), ["completion_tokens"] = choices.Sum(c => c.Text.Tokens),
            ["total_tokens"] = prepared.Sum(p => p.Tokens.Length) + choices.Sum(c => c.Text.Tokens),
        };
        try
        {
            if (!request.Stream)
            {
                await all;
                var array = new JsonArray();
                foreach (var c in choices)
                {
                    var choice = new JsonObject { ["index"] = c.Index };
                    if (chat)
                    {
                        choice["message"] = new JsonObject { ["role"] = "assistant", ["content"] = c.Text.Text };
                        choice["logprobs"] = request.Logprobs >= 0 ? ChatLogprobs(engine, c.Sequence) : null;
                    }
                    else
                    {
                        choice["text"] = request.Echo ? c.Prompt.Text + c.Text.Text : c.Text.Text;
                        choice["logprobs"] = request.Logprobs >= 0 ? CompletionLogprobs(engine, c, request.Echo) : null;
                    }
                    choice["finish_reason"] = c.Text.FinishReason;
                    array.Add(choice);
                }
                var response = new JsonObject
                {
                    ["id"] = id, ["object"] = obj, ["created"] = created, ["model"] = options.ModelName, ["choices"] = array, ["usage"] = Usage(),
                };
                ctx.Response.ContentType = "application/json";
                await ctx.Response.WriteAsync(response.ToJsonString(Out), ctx.RequestAborted);
                return;
            }

            string chunkObj = chat ? "chat.completion.chunk" : "text_completion";
            var roleSent = new bool[choices.Count];
            var streamedIds = choices.Select(_ => new List<int>()).ToArray(); // per choice: the tokens scored so far, for text_offset
            async Task Send(int index, string? piece, string? finish, TokenLogprob[]? scores)
            {
                var choice = new JsonObject { ["index"] = index };
                if (chat)
                {
                    var delta = new JsonObject();
                    if (!roleSent[index]) delta["role"] = "assistant";
                    if (piece is not null) delta["content"] = piece;
                    choice["delta"] = delta;
                    choice["logprobs"] = scores is null ? null : new JsonObject { ["content"] = ChatContent(engine, scores), ["refusal"] = null };
                }
                else
                {
                    choice["text"] = piece ?? "";
                    if (scores is null) choice["logprobs"] = null;
                    else
                    {
                        var offsets = new List<int>();
                        foreach (var g in scores)
                        {
                            offsets.Add(engine.Tokenizer.Decode(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(streamedIds[index])).Length);
                            streamedIds[index].Add(g.Token);
                        }
                        choice["logprobs"] = LegacyLogprobs(engine, scores.Select(g => (g.Token, (float?)g.LogProb, g.Top)).ToList(), offsets);
                    }
                }
                roleSent[index] = true;
                choice["finish_reason"] = finish;
                var chunk = new JsonObject { ["id"] = id, ["object"] = chunkObj, ["created"] = created, ["model"] = options.ModelName, ["choices"] = new JsonArray(choice) };
                await ctx.Response.WriteAsync("data: " + chunk.ToJsonString(Out) + "\n\n", ctx.RequestAborted);
                await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
            }
            void Start()
            {
                if (ctx.Response.HasStarted || ctx.Response.ContentType is not null) return;
                ctx.Response.ContentType = "text/event-stream";
                ctx.Response.Headers.CacheControl = "no-cache";
            }
            bool any = false;
            await foreach (var (index, piece, scores) in pieces.Reader.ReadAllAsync(ctx.RequestAborted))
            {
                // A failure before the first piece surfaces below, before anything was sent, and gets a JSON error reply.
                if (!any) Start();
                any = true;
                await Send(index, piece, null, scores);
            }
            await all;
            Start();
            foreach (var c in choices) await Send(c.Index, null, c.Text.FinishReason, TakeScores(c.Index));
            // As OpenAI's stream_options.include_usage: one more chunk with no choices and the usage.
            if (request.IncludeUsage)
            {
                var chunk = new JsonObject { ["id"] = id, ["object"] = chunkObj, ["created"] = created, ["model"] = options.ModelName, ["choices"] = new JsonArray(), ["usage"] = Usage() };
                await ctx.Response.WriteAsync("data: " + chunk.ToJsonString(Out) + "\n\n", ctx.RequestAborted);
            }
            await ctx.Response.WriteAsync("data: [DONE]\n\n", ctx.RequestAborted);
        }
        finally
        {
            engine.Record(clock.ElapsedMilliseconds);
        }
    }

    /// <summary>
    /// Chat's logprobs: {"content": [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}], "refusal": null},
    /// one entry per token made, the end-of-text token included (as vLLM lists it) though its text is not in the message.
    /// </summary>
    private static JsonObject ChatLogprobs(Engine engine, DecodeSequence sequence) =>
        new() { ["content"] = ChatContent(engine, sequence.Generated), ["refusal"] = null };

    private static JsonArray ChatContent(Engine engine, IEnumerable<TokenLogprob> scores)
    {
        JsonObject Entry(int token, float logProb) => new() { ["token"] = engine.TokenText(token), ["logprob"] = logProb, ["bytes"] = new JsonArray(engine.TokenBytes(token).Select(b => (JsonNode)(int)b).ToArray()) };
        var content = new JsonArray();
        foreach (var g in scores)
        {
            var entry = Entry(g.Token, g.LogProb);
            entry["top_logprobs"] = new JsonArray((g.Top ?? []).Select(t => (JsonNode)Entry(t.Token, t.LogProb)).ToArray());
            content.Add(entry);
        }
        return content;
    }

    /// <summary>
    /// The legacy completions logprobs: tokens, token_logprobs, top_logprobs (token → logprob, or null) and text_offset
    /// (where each token's text starts in the returned text). With echo the prompt's tokens come first, the first with
    /// null (nothing precedes it), which is how lm-evaluation-harness reads a continuation's log-likelihood. Every token
    /// made is listed, the end-of-text token included (lm-evaluation-harness drops the last entry of a max_tokens 1 reply).
    /// </summary>
    private static JsonObject CompletionLogprobs(Engine engine, Choice c, bool echo)
    {
        var entries = new List<(int Token, float? LogProb, (int Token, float LogProb)[]? Top)>();
        if (echo)
        {
            entries.Add((c.Prompt.Tokens[0], null, null));
            entries.AddRange(c.Sequence.PromptScores.Select(s => (s.Token, (float?)s.LogProb, s.Top)));
        }
        entries.AddRange(c.Sequence.Generated.Select(g => (g.Token, (float?)g.LogProb, g.Top)));
        var ids = entries.Select(e => e.Token).ToArray();
        var offsets = new List<int>();
        for (int i = 0; i < ids.Length; i++) offsets.Add(engine.Tokenizer.Decode(ids.AsSpan(0, i)).Length);
        return LegacyLogprobs(engine, entries, offsets);
    }

    private static JsonObject LegacyLogprobs(Engine engine, IReadOnlyList<(int Token, float? LogProb, (int Token, float LogProb)[]? Top)> entries, IReadOnlyList<int> offsets) => new()
    {
        ["tokens"] = new JsonArray(entries.Select(e => (JsonNode?)engine.TokenText(e.Token)).ToArray()),
        ["token_logprobs"] = new JsonArray(entries.Select(e => e.LogProb is float lp ? (JsonNode)lp : null).ToArray()),
        ["top_logprobs"] = new JsonArray(entries.Select(e => e.Top is null ? null : (JsonNode)TopDictionary(engine, e.Top)).ToArray()),
        ["text_offset"] = new JsonArray(offsets.Select(o => (JsonNode)o).ToArray()),
    };

    private static JsonObject TopDictionary(Engine engine, (int Token, float LogProb)[] top)
    {
        var dict = new JsonObject();
        foreach (var (token, logProb) in top)
        {
            string text = engine.TokenText(token);
            if (!dict.ContainsKey(text)) dict[text] = logProb; // two ids with the same text: the likelier (listed first) keeps it
        }
        return dict;
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
    /// <see cref="Logprobs"/> is −1 for none, else how many most likely tokens to list beside each chosen one.
    /// </summary>
    internal sealed record GenerationRequest(int? MaxTokens, string MaxTokensField, float Temperature, float TopP, ulong? Seed, IReadOnlyList<string> Stop, bool Stream,
        bool IncludeUsage, int N, int Logprobs, bool Echo)
    {
        /// <summary>Most top_logprobs per position (OpenAI's chat limit).</summary>
        public const int MaxTopLogprobs = 20;

        public static GenerationRequest Parse(JsonObject body, ModelServerOptions options, bool chat)
        {
            RefuseUnsupported(body, chat);
            string field = chat && body["max_completion_tokens"] is not null ? "max_completion_tokens" : "max_tokens";
            int? maxTokens = Int(body, field);
            bool echo = !chat && Bool(body, "echo");
            // max_tokens 0 with echo only scores the prompt (lm-evaluation-harness's log-likelihood requests).
            if (maxTokens < (echo ? 0 : 1)) throw new BadRequestException($"{field} must be ≥ {(echo ? 0 : 1)}; got {maxTokens}.", field);
            float temperature = (float)(Num(body, "temperature") ?? 1.0);
            if (!(temperature >= 0) || temperature > 2) throw new BadRequestException($"temperature must lie in [0, 2]; got {temperature}.", "temperature");
            float topP = (float)(Num(body, "top_p") ?? 1.0);
            if (!(topP > 0 && topP <= 1)) throw new BadRequestException($"top_p must lie in (0, 1]; got {topP}.", "top_p");
            int n = Int(body, "n") ?? 1;
            if (n < 1 || n > options.MaxChoices) throw new BadRequestException($"n must lie in 1..{options.MaxChoices}; got {n}.", "n");
            var stop = body["stop"] switch
            {
                null => [],
                JsonValue v when v.TryGetValue(out string? s) => [s],
                JsonArray a => a.Select((x, i) => x is JsonValue xv && xv.TryGetValue(out string? s) ? s : throw new BadRequestException($"stop[{i}] must be a string.", "stop")).ToList(),
                _ => throw new BadRequestException("stop must be a string or an array of strings.", "stop"),
            };
            bool stream = Bool(body, "stream");
            ulong? seed = body["seed"] is JsonValue seedValue && seedValue.TryGetValue(out long sd) ? unchecked((ulong)sd) : null;
            bool includeUsage = body["stream_options"] is JsonObject so && so["include_usage"] is JsonValue iu && iu.TryGetValue(out bool u) && u;
            int logprobs;
            string logprobsField;
            if (chat)
            {
                // Chat: logprobs true turns them on; top_logprobs (0..20) asks for the alternatives too.
                bool on = Bool(body, "logprobs");
                int? top = Int(body, "top_logprobs");
                if (top is not null && !on) throw new BadRequestException("top_logprobs needs \"logprobs\": true.", "top_logprobs");
                if (top is < 0 or > MaxTopLogprobs) throw new BadRequestException($"top_logprobs must lie in 0..{MaxTopLogprobs}; got {top}.", "top_logprobs");
                logprobs = on ? top ?? 0 : -1;
                logprobsField = "logprobs";
            }
            else
            {
                // Completions (legacy): logprobs k lists the k most likely tokens beside each chosen one.
                int? k = body["logprobs"] is JsonValue lv && lv.GetValueKind() is JsonValueKind.Null ? null : Int(body, "logprobs");
                if (k is < 0 or > MaxTopLogprobs) throw new BadRequestException($"logprobs must lie in 0..{MaxTopLogprobs}; got {k}.", "logprobs");
                logprobs = k ?? -1;
                logprobsField = "logprobs";
            }
            if (stream && echo && logprobs >= 0)
                throw new BadRequestException("echo with logprobs (prompt scoring) is not streamed by this server; ask without \"stream\".", logprobsField);
            return new GenerationRequest(maxTokens, field, temperature, topP, seed, stop.Where(s => s.Length > 0).ToList(), stream, includeUsage, n, logprobs, echo);
        }

        /// <summary>Features this server does not have: a 400 naming the field, rather than a reply that silently ignores it.</summary>
        private static void RefuseUnsupported(JsonObject body, bool chat)
        {
            static bool Absent(JsonNode? node) => node is null || node.GetValueKind() == JsonValueKind.Null;
            if (chat)
            {
                if (!Absent(body["tools"]) && body["tools"] is not JsonArray { Count: 0 })
                    throw new BadRequestException("tools (function calling) are not supported by this server.", "tools");
                if (!Absent(body["tool_choice"]) && !(body["tool_choice"] is JsonValue tc && tc.TryGetValue(out string? choice) && choice == "none"))
                    throw new BadRequestException("tool_choice is not supported by this server (only \"none\").", "tool_choice");
                if (!Absent(body["functions"])) throw new BadRequestException("functions (function calling) are not supported by this server.", "functions");
                if (!Absent(body["function_call"]) && !(body["function_call"] is JsonValue fc && fc.TryGetValue(out string? f) && f == "none"))
                    throw new BadRequestException("function_call is not supported by this server.", "function_call");
                if (!Absent(body["response_format"]) && !(body["response_format"] is JsonObject rf && rf["type"] is JsonValue t && t.TryGetValue(out string? type) && type == "text"))
                    throw new BadRequestException($"response_format {Bounded(body["response_format"]!.ToJsonString(), 80)} is not supported; this server only writes free text ({{\"type\": \"text\"}}).", "response_format");
            }
            else
            {
                if (body["suffix"] is JsonValue sv && sv.TryGetValue(out string? suffix) && suffix.Length > 0)
                    throw new BadRequestException("suffix (insertion) is not supported by this server.", "suffix");
                if (Int(body, "best_of") is int bestOf && bestOf != (Int(body, "n") ?? 1))
                    throw new BadRequestException("best_of is not supported by this server; ask for n choices instead.", "best_of");
            }
        }

        private static bool Bool(JsonObject body, string name) => body[name] switch
        {
            null => false,
            JsonValue v when v.GetValueKind() == JsonValueKind.Null => false,
            JsonValue v when v.TryGetValue(out bool b) => b,
            _ => throw new BadRequestException($"{name} must be true or false.", name),
        };

        private static double? Num(JsonObject body, string name) => body[name] switch
        {
            null => null,
            JsonValue v when v.TryGetValue(out double d) => d,
            _ => throw new BadRequestException($"{name} must be a number.", name),
        };

        private static int? Int(JsonObject body, string name) => body[name] switch
        {
            null => null,
            JsonValue v when v.GetValueKind() == JsonValueKind.Null => null,
            JsonValue v when v.TryGetValue(out int i) => i,
            _ => throw new BadRequestException($"{name} must be an integer.", name),
        };
    }

    /// <summary>A prompt that fits: its tokens, its text (for echo) and how many new tokens to make (prompt + new ≤ the block).</summary>
    internal sealed record PreparedPrompt(int[] Tokens, string Text, int MaxNew);

    /// <summary>The model, its tokenizer, the continuous-batching scheduler and the bounded queue in front of it.</summary>
    private sealed class Engine(Gpt model, ITokenizer tokenizer, ModelServerOptions options, Func<CancellationToken, Task>? beforeGenerate) : IDisposable
    {
        private readonly Rng _rng = new(options.Seed);
        private int _inFlight; // admitted requests: those decoding plus those waiting
        private long _meanMs = 1000; // running mean of one request's time, for Retry-After (starts at a guess of 1 s)

        public DecodeScheduler Scheduler { get; } = new(model, options.MaxBatch, beforeGenerate);
        public ITokenizer Tokenizer => tokenizer;
        public int? Eos { get; } = model.Config.EosTokenId ?? tokenizer.EosId;

        public void Dispose() => Scheduler.Dispose();

        /// <summary>
        /// Encodes the prompt and checks it against the block: the prompt must leave room for one new token, and an
        /// explicit max_tokens must fit beside it (400 naming both numbers otherwise). Without max_tokens the server's
        /// default applies, shortened to what fits. With max_tokens 0 (echo) the prompt may fill the block.
        /// </summary>
        public PreparedPrompt Prepare(PromptInput prompt, GenerationRequest request, bool chat)
        {
            int block = model.Config.BlockSize;
            string promptField = chat ? "messages" : "prompt";
            int[] tokens;
            if (prompt.Tokens is int[] ids)
            {
                int bad = Array.FindIndex(ids, t => (uint)t >= (uint)tokenizer.VocabSize);
                if (bad >= 0) throw new BadRequestException($"prompt token {bad} is id {ids[bad]}, outside this model's vocabulary [0, {tokenizer.VocabSize}).", promptField);
                tokens = ids;
            }
            else
            {
                try
                {
                    tokens = tokenizer.Encode(prompt.Text!, allowSpecial: chat); // chat prompts are rendered by the template: its special-token text is those tokens
                }
                catch (ArgumentException ex)
                {
                    // A character-level model cannot take characters it never saw: the caller's input, so a 400.
                    throw new BadRequestException($"the prompt cannot be encoded by this model's tokenizer: {Bounded(ex.Message)}", promptField);
                }
            }
            if (tokens.Length == 0) tokens = Eos is int e ? [e] : throw new BadRequestException("the prompt encodes to no tokens and the model has no end-of-text token to stand in.", promptField);
            string text = prompt.Text ?? tokenizer.Decode(tokens);
            if (request.MaxTokens == 0)
            {
                if (tokens.Length > block)
                    throw new BadRequestException($"the prompt is {tokens.Length} tokens but the model's context is {block} tokens.", promptField, "context_length_exceeded");
                return new PreparedPrompt(tokens, text, 0);
            }
            if (tokens.Length >= block)
                throw new BadRequestException($"the prompt is {tokens.Length} tokens but the model's context is {block} tokens (at most {block - 1}, to leave room for one new token).",
                    promptField, "context_length_exceeded");
            int room = block - tokens.Length;
            if (request.MaxTokens is int asked && asked > room)
                throw new BadRequestException($"the prompt ({tokens.Length} tokens) plus {request.MaxTokensField} ({asked}) is {tokens.Length + (long)asked} tokens, more than the model's context of {block}; ask for at most {room}.",
                    request.MaxTokensField, "context_length_exceeded");
            return new PreparedPrompt(tokens, text, Math.Min(request.MaxTokens ?? options.DefaultMaxTokens, room));
        }

        /// <summary>
        /// Choice <paramref name="index"/>'s decode sequence. Its random stream: with a seed s, Rng(s + index), so choice i
        /// of a request is exactly what the same request with seed s + i and n = 1 gives; without one, a fork of the
        /// server's stream.
        /// </summary>
        public DecodeSequence Sequence(PreparedPrompt prompt, GenerationRequest request, int index, TextPieceStream text, CancellationToken ct)
        {
            Rng rng;
            if (request.Seed is ulong s) rng = new Rng(unchecked(s + (ulong)index));
            else lock (_rng) rng = _rng.Fork();
            return new DecodeSequence
            {
                Prompt = prompt.Tokens,
                MaxNew = prompt.MaxNew,
                Sampling = new GenerationOptions
                {
                    MaxNewTokens = Math.Max(prompt.MaxNew, 1),
                    Temperature = request.Temperature == 0 ? 1f : request.Temperature,
                    Greedy = request.Temperature == 0,
                    TopP = request.TopP,
                    EosTokenId = Eos,
                    PadTokenId = Eos ?? 0,
                },
                Rng = rng,
                TopLogprobs = request.Logprobs,
                PromptLogprobs = request.Echo && request.Logprobs >= 0,
                OnToken = text.Add,
                Cancellation = ct,
            };
        }

        /// <summary>A token's text as the API lists it (a piece of a UTF-8 character shows as U+FFFD; its bytes are exact).</summary>
        public string TokenText(int token) => tokenizer.Decode([token]);

        public byte[] TokenBytes(int token) => tokenizer is Gpt2Tokenizer gpt2 ? gpt2.DecodeBytes([token]) : Encoding.UTF8.GetBytes(tokenizer.Decode([token]));

        /// <summary>A place in the queue, or 429 when MaxBatch requests decode and <see cref="ModelServerOptions.MaxQueue"/> more already wait. Dispose to leave.</summary>
        public IDisposable Enter()
        {
            int now = Interlocked.Increment(ref _inFlight);
            if (now > options.MaxQueue + options.MaxBatch)
            {
                Interlocked.Decrement(ref _inFlight);
                // Requests are served MaxBatch at a time: about ⌈in flight / MaxBatch⌉ mean request times until a place frees up.
                int seconds = (int)Math.Clamp(Math.Ceiling(Interlocked.Read(ref _meanMs) * Math.Ceiling((double)now / options.MaxBatch) / 1000), 1, 3600);
                throw new QueueFullException($"the server is busy: {now - 1} requests are generating or waiting (batch {options.MaxBatch}, queue limit {options.MaxQueue}); retry after {seconds} s.", seconds);
            }
            return new Place(this);
        }

        /// <summary>Folds one request's time into the running mean used for Retry-After.</summary>
        public void Record(long ms) => Interlocked.Exchange(ref _meanMs, (Interlocked.Read(ref _meanMs) * 7 + ms) / 8);

        private sealed class Place(Engine engine) : IDisposable
        {
            private int _left;

            public void Dispose()
            {
                if (Interlocked.Exchange(ref _left, 1) == 0) Interlocked.Decrement(ref engine._inFlight);
            }
        }
    }
}
