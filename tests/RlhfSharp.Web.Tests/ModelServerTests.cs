// `rlhf serve` for real: a tiny GPT behind the OpenAI-compatible API, called by the OpenAI SDK (plain and streaming),
// by raw HTTP for /v1/completions' server-sent events and /v1/models, and by Feedback's AI judge.
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
    private readonly Gpt _model = Gpt.Create(new GptConfig { VocabSize = Chars.VocabSize, BlockSize = 64, NEmbd = 16, NLayer = 1, NHead = 2, EosTokenId = Chars.EosId }, new Rng(5));
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

    private static StringContent Json(JsonNode body) => new(body.ToJsonString(), Encoding.UTF8, "application/json");
}
