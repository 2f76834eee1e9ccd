// `rlhf serve` for real: a tiny GPT behind the OpenAI-compatible API, called by the OpenAI SDK (plain and streaming),
// by raw HTTP for /v1/completions' server-sent events and /v1/models, and by Feedback's AI judge; then its refusals:
// prompts and max_tokens that do not fit the context, every error status in OpenAI's shape, the bounded queue.
using System.ClientModel;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using OpenAI;
using OpenAI.Chat;
using RlhfSharp.Feedback;
using RlhfSharp.Feedback.Labelers;
using RlhfSharp.Models;
using RlhfSharp.Tensors;
using RlhfSharp.Text;
using RlhfSharp.Web.Serving;

namespace RlhfSharp.Web.Tests;

public sealed class ModelServerTests : IAsyncLifetime
{
    private static readonly CharTokenizer Chars = CharTokenizer.FromCorpus(string.Concat(Enumerable.Range(32, 95).Select(c => (char)c)) + "\n");
    // A 512-token context, like the GPT-2 shapes': the AI judge's instructions alone are 160 characters (one token each).
    private const int Block = 512;
    private readonly Gpt _model = Gpt.Create(new GptConfig { VocabSize = Chars.VocabSize, BlockSize = Block, NEmbd = 16, NLayer = 1, NHead = 2, EosTokenId = Chars.EosId }, new Rng(5));
    private WebApplication _app = null!;
    private Uri _address = null!;

    public async Task InitializeAsync()
    {
        _app = ModelServer.Build(_model, Chars, new ModelServerOptions(Port: 0, ModelName: "tiny"));
        await _app.StartAsync();
        _address = LabelingApp.BoundAddress(_app);
    }

    public async Task DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private ChatClient Client() => new("tiny", new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(_address, "/v1") });

    /// <summary>What the model says greedily to <paramref name="prompt"/>, computed without the server.</summary>
    private string Greedy(string prompt, int maxNew)
    {
        var r = new GptGenerator(_model).Generate([Chars.Encode(prompt)], new GenerationOptions { MaxNewTokens = maxNew, Greedy = true, EosTokenId = Chars.EosId }, new Rng(1));
        var ids = r.Response(0);
        return Chars.Decode(ids.Length > 0 && ids[^1] == Chars.EosId ? ids[..^1] : ids);
    }

    [Fact]
    public async Task Given_the_OpenAI_client_When_asking_greedily_Then_the_answer_equals_direct_generation_and_streaming_gives_the_same_text()
    {
        var client = Client();
        var messages = new OpenAI.Chat.ChatMessage[] { new SystemChatMessage("be brief"), new UserChatMessage("hello there") };
        // The chat goes through the model's chat template (here the default): the same text a plain completion of the templated prompt gives.
        const string templated = "System: be brief\nUser: hello there\nAssistant:";
        Assert.Equal(templated, ChatTemplate.For(Chars).Render([new("system", "be brief"), new("user", "hello there")], addGenerationPrompt: true));
        var options = new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 12 };
        ChatCompletion completion = await client.CompleteChatAsync(messages, options);
        string expected = Greedy(templated, 12);
        Assert.Equal(expected, completion.Content[0].Text);
        // One character per token: fewer than 12 characters means the model chose to stop (EOS).
        Assert.Equal(expected.Length < 12 ? ChatFinishReason.Stop : ChatFinishReason.Length, completion.FinishReason);
        Assert.Equal(Chars.Encode(templated).Length, completion.Usage.InputTokenCount);

        var streamed = new StringBuilder();
        ChatFinishReason? finish = null;
        int updates = 0;
        await foreach (var update in client.CompleteChatStreamingAsync(messages, options))
        {
            updates++;
            foreach (var part in update.ContentUpdate) streamed.Append(part.Text);
            finish ??= update.FinishReason;
        }
        Assert.Equal(expected, streamed.ToString());
        Assert.Equal(completion.FinishReason, finish);
        Assert.True(updates >= 2, $"expected several stream chunks, got {updates}");
    }

    [Fact]
    public async Task Given_raw_http_When_streaming_completions_Then_sse_data_lines_end_with_DONE_and_concatenate_to_the_plain_answer()
    {
        using var http = new HttpClient { BaseAddress = _address };
        var body = new JsonObject { ["model"] = "tiny", ["prompt"] = "abc", ["max_tokens"] = 10, ["temperature"] = 0 };
        var plain = JsonNode.Parse(await (await http.PostAsync("/v1/completions", Json(body))).Content.ReadAsStringAsync())!;
        Assert.Equal("text_completion", (string?)plain["object"]);
        string text = (string)plain["choices"]![0]!["text"]!;
        Assert.Equal(Greedy("abc", 10), text);

        body["stream"] = true;
        var response = await http.PostAsync("/v1/completions", Json(body));
        Assert.StartsWith("text/event-stream", response.Content.Headers.ContentType!.ToString());
        var lines = (await response.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.All(lines, l => Assert.StartsWith("data: ", l));
        Assert.Equal("data: [DONE]", lines[^1]);
        var chunks = lines[..^1].Select(l => JsonNode.Parse(l["data: ".Length..])!).ToList();
        Assert.Equal(text, string.Concat(chunks.Select(c => (string)c["choices"]![0]!["text"]!)));
        Assert.Equal((string?)plain["choices"]![0]!["finish_reason"], (string?)chunks[^1]["choices"]![0]!["finish_reason"]);
        Assert.All(chunks[..^1], c => Assert.Null(c["choices"]![0]!["finish_reason"]));
    }

    [Fact]
    public async Task Given_the_models_endpoint_and_bad_requests_When_called_Then_the_model_is_listed_and_errors_are_400_in_OpenAI_shape()
    {
        using var http = new HttpClient { BaseAddress = _address };
        var models = JsonNode.Parse(await http.GetStringAsync("/v1/models"))!;
        Assert.Equal("tiny", (string?)models["data"]![0]!["id"]);

        var bad = await http.PostAsync("/v1/chat/completions", Json(new JsonObject { ["model"] = "tiny", ["messages"] = new JsonArray(), }));
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        var error = JsonNode.Parse(await bad.Content.ReadAsStringAsync())!["error"]!;
        Assert.Equal("messages", (string?)error["param"]);
        var unknown = await http.PostAsync("/v1/completions", Json(new JsonObject { ["prompt"] = "é" }));
        Assert.Equal(HttpStatusCode.BadRequest, unknown.StatusCode);
        Assert.Contains("U+00E9", await unknown.Content.ReadAsStringAsync());
        var hot = await http.PostAsync("/v1/completions", Json(new JsonObject { ["prompt"] = "a", ["temperature"] = 7 }));
        Assert.Equal(HttpStatusCode.BadRequest, hot.StatusCode);
        Assert.Contains("temperature", await hot.Content.ReadAsStringAsync());
        var notJson = await http.PostAsync("/v1/completions", new StringContent("{oops", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, notJson.StatusCode);
    }

    [Fact]
    public async Task Given_the_AI_judge_pointed_at_our_server_When_it_judges_pairs_Then_each_answer_is_a_verdict_or_a_skip_with_the_model_text()
    {
        // A random tiny model rarely answers "1", "2" or "tie": the judge must turn its babble into skips that quote it.
        var judge = new AiJudge(new AiJudgeOptions(new Uri(_address, "/v1").ToString(), "tiny", ApiKeyVariable: null, Timeout: TimeSpan.FromSeconds(30), MaxRetries: 0));
        var answers = new List<Answer>();
        for (int i = 0; i < 4; i++)
        {
            var query = new Query(i, QueryKind.Text, $"say something {i}", [new Candidate("good"), new Candidate("bad")], "test", null, DateTimeOffset.UnixEpoch);
            answers.Add(await judge.AnswerAsync(query));
        }
        Assert.All(answers, a => Assert.True(a.Kind is AnswerKind.Preferred or AnswerKind.Tie
            || a.Kind == AnswerKind.Skip && a.SkipReason!.StartsWith("judge answer not understood", StringComparison.Ordinal), $"{a.Kind}: {a.SkipReason}"));
        Assert.Contains(answers, a => a.Kind == AnswerKind.Skip);
    }

    [Fact]
    public async Task Given_a_judge_whose_context_is_too_small_When_it_judges_Then_each_answer_is_a_skip_that_says_so()
    {
        // A 64-token model: the judge's instructions alone are 160 tokens. The server refuses (400,
        // context_length_exceeded) instead of cutting the prompt, and the judge turns that into a skip, not a crash.
        var small = Gpt.Create(new GptConfig { VocabSize = Chars.VocabSize, BlockSize = 64, NEmbd = 16, NLayer = 1, NHead = 2, EosTokenId = Chars.EosId }, new Rng(5));
        await using var app = ModelServer.Build(small, Chars, new ModelServerOptions(Port: 0, ModelName: "tiny"));
        await app.StartAsync();
        var judge = new AiJudge(new AiJudgeOptions(new Uri(LabelingApp.BoundAddress(app), "/v1").ToString(), "tiny", ApiKeyVariable: null, Timeout: TimeSpan.FromSeconds(30), MaxRetries: 0));
        var query = new Query(1, QueryKind.Text, "say something", [new Candidate("good"), new Candidate("bad")], "test", null, DateTimeOffset.UnixEpoch);
        var answer = await judge.AnswerAsync(query);
        Assert.Equal(AnswerKind.Skip, answer.Kind);
        Assert.StartsWith("the judge's context is too small for this query", answer.SkipReason);
        Assert.Contains("64", answer.SkipReason);
        await app.StopAsync();
    }

    private static async Task<JsonNode> ErrorOf(HttpResponseMessage res, HttpStatusCode status)
    {
        Assert.Equal(status, res.StatusCode);
        Assert.StartsWith("application/json", res.Content.Headers.ContentType?.ToString());
        var error = JsonNode.Parse(await res.Content.ReadAsStringAsync())!["error"]!.AsObject();
        // OpenAI's shape: all four keys present (param and code may be null).
        Assert.Equal(["message", "type", "param", "code"], error.Select(kv => kv.Key));
        Assert.False(string.IsNullOrWhiteSpace((string?)error["message"]));
        Assert.False(string.IsNullOrWhiteSpace((string?)error["type"]));
        return error;
    }

    [Fact]
    public async Task Given_max_tokens_that_do_not_fit_beside_the_prompt_When_asking_Then_400_names_both_numbers()
    {
        // Issue #17: max_tokens 100000 with a 22-token prompt kept 1 prompt token and reported usage 22+511.
        using var http = new HttpClient { BaseAddress = _address };
        string prompt = "tell me a story please"; // 22 characters, 22 tokens
        var res = await http.PostAsync("/v1/completions", Json(new JsonObject { ["prompt"] = prompt, ["max_tokens"] = 100_000 }));
        var error = await ErrorOf(res, HttpStatusCode.BadRequest);
        Assert.Equal("max_tokens", (string?)error["param"]);
        Assert.Equal("context_length_exceeded", (string?)error["code"]);
        foreach (var n in new[] { "22", "100000", $"{Block}", $"{Block - 22}" }) Assert.Contains(n, (string)error["message"]!);

        var chat = await http.PostAsync("/v1/chat/completions", Json(new JsonObject
        {
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = prompt }), ["max_completion_tokens"] = Block,
        }));
        Assert.Equal("max_completion_tokens", (string?)(await ErrorOf(chat, HttpStatusCode.BadRequest))["param"]);

        // Exactly what fits is served, and usage counts what the model saw and made: never more than the block.
        var fits = JsonNode.Parse(await (await http.PostAsync("/v1/completions", Json(new JsonObject { ["prompt"] = prompt, ["max_tokens"] = Block - 22, ["temperature"] = 0 }))).Content.ReadAsStringAsync())!;
        Assert.Equal(22, (int)fits["usage"]!["prompt_tokens"]!);
        Assert.InRange((int)fits["usage"]!["total_tokens"]!, 23, Block);
    }

    [Fact]
    public async Task Given_a_prompt_longer_than_the_context_When_asking_Then_400_names_its_length_and_the_context()
    {
        using var http = new HttpClient { BaseAddress = _address };
        var res = await http.PostAsync("/v1/completions", Json(new JsonObject { ["prompt"] = new string('a', Block + 88) }));
        var error = await ErrorOf(res, HttpStatusCode.BadRequest);
        Assert.Equal("prompt", (string?)error["param"]);
        Assert.Contains($"{Block + 88}", (string)error["message"]!);
        Assert.Contains($"{Block}", (string)error["message"]!);
        // Streaming is refused the same way, before any event is sent.
        var streamed = await http.PostAsync("/v1/completions", Json(new JsonObject { ["prompt"] = new string('a', Block), ["stream"] = true }));
        await ErrorOf(streamed, HttpStatusCode.BadRequest);

        // With no max_tokens, the default (64) shrinks to what fits: a prompt 4 short of the block gets at most 4 tokens.
        var near = JsonNode.Parse(await (await http.PostAsync("/v1/completions", Json(new JsonObject { ["prompt"] = new string('a', Block - 4) }))).Content.ReadAsStringAsync())!;
        Assert.Equal(Block - 4, (int)near["usage"]!["prompt_tokens"]!);
        Assert.InRange((int)near["usage"]!["completion_tokens"]!, 1, 4);
    }

    [Fact]
    public async Task Given_stream_options_include_usage_When_streaming_Then_a_last_chunk_carries_the_same_usage_as_the_plain_reply()
    {
        using var http = new HttpClient { BaseAddress = _address };
        var body = new JsonObject { ["prompt"] = "abc", ["max_tokens"] = 7, ["temperature"] = 0 };
        var plain = JsonNode.Parse(await (await http.PostAsync("/v1/completions", Json(body))).Content.ReadAsStringAsync())!;
        body["stream"] = true;
        body["stream_options"] = new JsonObject { ["include_usage"] = true };
        var lines = (await (await http.PostAsync("/v1/completions", Json(body))).Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("data: [DONE]", lines[^1]);
        var last = JsonNode.Parse(lines[^2]["data: ".Length..])!;
        Assert.Empty(last["choices"]!.AsArray());
        Assert.Equal(plain["usage"]!.ToJsonString(), last["usage"]!.ToJsonString());
    }

    [Fact]
    public async Task Given_each_kind_of_error_When_it_happens_Then_the_reply_has_an_OpenAI_style_JSON_body()
    {
        // Issue #17: 413, 404 and 405 replies had empty bodies; a failure inside generation was an empty 500.
        var fail = false;
        await using var app = ModelServer.Build(_model, Chars, new ModelServerOptions(Port: 0, ModelName: "tiny", MaxRequestBodyBytes: 4096), null,
            _ => fail ? throw new InvalidOperationException("weights are not finite") : Task.CompletedTask);
        await app.StartAsync();
        using var http = new HttpClient { BaseAddress = LabelingApp.BoundAddress(app) };

        Assert.Contains("/v1/nothing", (string)(await ErrorOf(await http.GetAsync("/v1/nothing"), HttpStatusCode.NotFound))["message"]!);
        Assert.Contains("GET", (string)(await ErrorOf(await http.GetAsync("/v1/completions"), HttpStatusCode.MethodNotAllowed))["message"]!);
        var big = await http.PostAsync("/v1/completions", Json(new JsonObject { ["prompt"] = new string('a', 10_000) }));
        Assert.Contains("4096", (string)(await ErrorOf(big, HttpStatusCode.RequestEntityTooLarge))["message"]!);
        await ErrorOf(await http.PostAsync("/v1/completions", new StringContent("{oops", Encoding.UTF8, "application/json")), HttpStatusCode.BadRequest);
        fail = true;
        var broken = await ErrorOf(await http.PostAsync("/v1/completions", Json(new JsonObject { ["prompt"] = "a" })), HttpStatusCode.InternalServerError);
        Assert.Equal("server_error", (string?)broken["type"]);
        Assert.Contains("weights are not finite", (string)broken["message"]!);
        await app.StopAsync();
    }

    [Fact]
    public async Task Given_a_full_queue_When_another_request_arrives_Then_429_with_Retry_After_and_the_queued_work_still_completes()
    {
        // MaxBatch 1, MaxQueue 0: one request generating, none waiting. The first request holds the model until the test lets go.
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var first = true;
        await using var app = ModelServer.Build(_model, Chars, new ModelServerOptions(Port: 0, ModelName: "tiny", MaxQueue: 0, MaxBatch: 1), null, async ct =>
        {
            if (!first) return;
            first = false;
            entered.SetResult();
            await release.Task.WaitAsync(ct);
        });
        await app.StartAsync();
        using var http = new HttpClient { BaseAddress = LabelingApp.BoundAddress(app) };
        var body = new JsonObject { ["prompt"] = "abc", ["max_tokens"] = 3, ["temperature"] = 0 };

        var held = http.PostAsync("/v1/completions", Json(body));
        await entered.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var refused = await http.PostAsync("/v1/completions", Json(body));
        var error = await ErrorOf(refused, (HttpStatusCode)429);
        Assert.Equal("rate_limit_error", (string?)error["type"]);
        Assert.True(refused.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1), $"Retry-After: {refused.Headers.RetryAfter}");

        release.SetResult();
        Assert.Equal(HttpStatusCode.OK, (await held).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.PostAsync("/v1/completions", Json(body))).StatusCode);
        await app.StopAsync();
    }

    private static StringContent Json(JsonNode body) => new(body.ToJsonString(), Encoding.UTF8, "application/json");
}
