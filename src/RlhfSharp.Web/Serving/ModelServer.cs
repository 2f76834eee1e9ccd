// `rlhf serve`: a checkpoint behind the OpenAI-compatible API (/v1/chat/completions, /v1/completions with SSE
// streaming, /v1/models), so the AI-judge labeller, the OpenAI SDKs and tools like curl talk to our models as they
// would to vLLM or llama.cpp. Requests are served one at a time (the model is not shared across threads).
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
public sealed record ModelServerOptions(string Host = "127.0.0.1", int Port = 8000, string ModelName = "rlhfsharp", int DefaultMaxTokens = 64, ulong Seed = 1)
{
    internal void Validate()
    {
        if (Port is < 0 or > 65535) throw new ArgumentException($"model server: port must lie in 0..65535; got {Port}.");
        if (string.IsNullOrWhiteSpace(ModelName)) throw new ArgumentException("model server: the model name is empty.");
        if (DefaultMaxTokens < 1) throw new ArgumentException($"model server: default max tokens must be ≥ 1; got {DefaultMaxTokens}.");
        if (!IPAddress.TryParse(Host, out _)) throw new ArgumentException($"model server: host \"{Host}\" is not an IP address (use 127.0.0.1 or 0.0.0.0).");
    }
}

/// <summary>A request the API refuses with 400 and OpenAI's error shape.</summary>
internal sealed class BadRequestException(string message, string? param = null) : Exception(message)
{
    public string? Param { get; } = param;
}

public static class ModelServer
{
    // JSON, not HTML: non-ASCII text and '+' go out as they are rather than as \uXXXX escapes.
    private static readonly JsonSerializerOptions Out = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>A ready-to-start app serving <paramref name="model"/>; logging is off unless <paramref name="logging"/> adds providers.</summary>
    public static WebApplication Build(Gpt model, ITokenizer tokenizer, ModelServerOptions options, Action<ILoggingBuilder>? logging = null)
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
            k.Limits.MaxRequestBodySize = 1 << 20;
            k.AddServerHeader = false;
        });
        var app = builder.Build();
        var engine = new Engine(model, tokenizer, options);
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

        app.Use(async (ctx, next) =>
        {
            try
            {
                await next(ctx);
            }
            catch (BadRequestException ex) when (!ctx.Response.HasStarted)
            {
                await Error(ctx, 400, ex.Message, ex.Param);
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
        string id = (chat ? "chatcmpl-" : "cmpl-") + Guid.NewGuid().ToString("N")[..24];
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        string obj = chat ? "chat.completion" : "text_completion";
        if (!request.Stream)
        {
            var output = await engine.GenerateAsync(prompt, request, null, ctx.RequestAborted, special: chat);
            var choice = new JsonObject { ["index"] = 0 };
            if (chat) choice["message"] = new JsonObject { ["role"] = "assistant", ["content"] = output.Text };
            else { choice["text"] = output.Text; choice["logprobs"] = null; }
            choice["finish_reason"] = output.FinishReason;
            var response = new JsonObject
            {
                ["id"] = id, ["object"] = obj, ["created"] = created, ["model"] = options.ModelName,
                ["choices"] = new JsonArray(choice),
                ["usage"] = new JsonObject { ["prompt_tokens"] = output.PromptTokens, ["completion_tokens"] = output.CompletionTokens, ["total_tokens"] = output.PromptTokens + output.CompletionTokens },
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
                return engine.GenerateAsync(prompt, request, piece => pieces.Writer.TryWrite(piece), ctx.RequestAborted, special: chat).GetAwaiter().GetResult();
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
        // A refused prompt surfaces here, before anything was sent, and becomes a 400 like the plain request's.
        var done = await generation;
        if (isFirst)
        {
            ctx.Response.ContentType = "text/event-stream";
            ctx.Response.Headers.CacheControl = "no-cache";
        }
        await Send(null, done.FinishReason, isFirst);
        await ctx.Response.WriteAsync("data: [DONE]\n\n", ctx.RequestAborted);
    }

    private static Task Error(HttpContext ctx, int status, string message, string? param)
    {
        ctx.Response.Clear();
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        var error = new JsonObject { ["error"] = new JsonObject { ["message"] = message, ["type"] = "invalid_request_error", ["param"] = param, ["code"] = null } };
        return ctx.Response.WriteAsync(error.ToJsonString(Out));
    }

    /// <summary>The sampling fields of a request, checked.</summary>
    internal sealed record GenerationRequest(int MaxTokens, float Temperature, float TopP, ulong? Seed, IReadOnlyList<string> Stop, bool Stream)
    {
        public static GenerationRequest Parse(JsonObject body, ModelServerOptions options, bool chat)
        {
            int maxTokens = Int(body, chat && body["max_completion_tokens"] is not null ? "max_completion_tokens" : "max_tokens") ?? options.DefaultMaxTokens;
            if (maxTokens < 1) throw new BadRequestException($"max_tokens must be ≥ 1; got {maxTokens}.", "max_tokens");
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
            return new GenerationRequest(maxTokens, temperature, topP, seed, stop.Where(s => s.Length > 0).ToList(), stream);
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

    /// <summary>The model, its tokenizer and a gate: one generation at a time.</summary>
    private sealed class Engine(Gpt model, ITokenizer tokenizer, ModelServerOptions options)
    {
        private readonly SemaphoreSlim _gate = new(1, 1);
        private readonly Rng _rng = new(options.Seed);

        /// <summary>Generates the response; <paramref name="onPiece"/> (on the generating thread) gets each piece of text as soon as it is whole.</summary>
        /// <paramref name="special"/>: the prompt was rendered by the chat template, so its special-token text is those tokens.
        public async Task<GenerationOutput> GenerateAsync(string prompt, GenerationRequest request, Action<string>? onPiece, CancellationToken ct, bool special = false)
        {
            int block = model.Config.BlockSize;
            int maxNew = Math.Min(request.MaxTokens, block - 1);
            int? eos = model.Config.EosTokenId ?? tokenizer.EosId;
            int[] tokens;
            try
            {
                tokens = tokenizer.Encode(prompt, allowSpecial: special);
            }
            catch (ArgumentException ex)
            {
                // A character-level model cannot take characters it never saw: the caller's input, so a 400.
                throw new BadRequestException($"the prompt cannot be encoded by this model's tokenizer: {ex.Message}", "prompt");
            }
            if (tokens.Length == 0) tokens = eos is int e ? [e] : throw new BadRequestException("the prompt encodes to no tokens and the model has no end-of-text token to stand in.", "prompt");
            // Like the trainers: a prompt too long for the block loses its start.
            int promptTokens = tokens.Length;
            if (tokens.Length > block - maxNew) tokens = tokens[^(block - maxNew)..];
            var generation = new GenerationOptions
            {
                MaxNewTokens = maxNew,
                Temperature = request.Temperature == 0 ? 1f : request.Temperature,
                Greedy = request.Temperature == 0,
                TopP = request.TopP,
                EosTokenId = eos,
                PadTokenId = eos ?? 0,
            };
            var stream = new TextPieceStream(tokenizer, request.Stop, eos, onPiece);
            await _gate.WaitAsync(ct);
            try
            {
                var rng = request.Seed is ulong s ? new Rng(s) : _rng.Fork();
                using (Autograd.NoGrad())
                    new GptGenerator(model).Generate([tokens], generation, rng, null, (_, next) =>
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
                _gate.Release();
            }
            stream.Finish();
            return new GenerationOutput(stream.Text, stream.Pieces, stream.FinishReason, promptTokens, stream.Tokens);
        }
    }
}
