// The OpenAI API as clients use it, against a tiny GPT behind `rlhf serve`: /v1/models/{id}; logprobs and top_logprobs
// (chat) and the legacy completions logprobs, checked against log softmax of one full forward pass computed here;
// echo with max_tokens 0 scoring the prompt (how lm-evaluation-harness reads log-likelihoods); n choices with derived
// seeds; 400s naming the field for features the server does not have.
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using RlhfSharp.Models;
using RlhfSharp.Tensors;
using RlhfSharp.Text;
using RlhfSharp.Web.Serving;

namespace RlhfSharp.Web.Tests;

public sealed class ModelServerApiTests : IAsyncLifetime
{
    private static readonly CharTokenizer Chars = CharTokenizer.FromCorpus(string.Concat(Enumerable.Range(32, 95).Select(c => (char)c)) + "\n");
    private readonly Gpt _model = Gpt.Create(new GptConfig { VocabSize = Chars.VocabSize, BlockSize = 64, NEmbd = 16, NLayer = 2, NHead = 2, EosTokenId = Chars.EosId }, new Rng(7));
    private WebApplication _app = null!;
    private HttpClient _http = null!;

    public async Task InitializeAsync()
    {
        _app = ModelServer.Build(_model, Chars, new ModelServerOptions(Port: 0, ModelName: "tiny"));
        await _app.StartAsync();
        _http = new HttpClient { BaseAddress = LabelingApp.BoundAddress(_app) };
    }

    public async Task DisposeAsync()
    {
        _http.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    /// <summary>log softmax of the logits at every position of one forward pass over <paramref name="tokens"/>, in float64: row t scores token t + 1.</summary>
    private double[][] LogSoftmaxRows(int[] tokens)
    {
        var cache = new GptKvCache(_model.Config, 1, tokens.Length);
        var logits = GptInference.Step(_model, cache, tokens, null, tokens.Length, allPositions: true);
        int V = _model.Config.VocabSize;
        return Enumerable.Range(0, tokens.Length).Select(t =>
        {
            var row = logits.AsSpan(t * V, V).ToArray().Select(x => (double)x).ToArray();
            double max = row.Max(), lse = max + Math.Log(row.Sum(x => Math.Exp(x - max)));
            return row.Select(x => x - lse).ToArray();
        }).ToArray();
    }

    private async Task<(HttpStatusCode Status, JsonNode Body)> Post(string path, JsonObject body)
    {
        var res = await _http.PostAsync(path, new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"));
        return (res.StatusCode, JsonNode.Parse(await res.Content.ReadAsStringAsync())!);
    }

    [Fact]
    public async Task Given_a_model_id_When_retrieved_Then_ours_is_described_and_an_unknown_one_is_a_404_in_OpenAI_shape()
    {
        var model = JsonNode.Parse(await _http.GetStringAsync("/v1/models/tiny"))!;
        Assert.Equal("tiny", (string?)model["id"]);
        Assert.Equal("model", (string?)model["object"]);
        var missing = await _http.GetAsync("/v1/models/gpt-4o");
        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        var error = JsonNode.Parse(await missing.Content.ReadAsStringAsync())!["error"]!;
        Assert.Equal("model", (string?)error["param"]);
        Assert.Equal("model_not_found", (string?)error["code"]);
        Assert.Contains("gpt-4o", (string)error["message"]!);
    }

    [Theory]
    [InlineData("tools", """[{"type":"function","function":{"name":"f","parameters":{}}}]""")]
    [InlineData("tool_choice", "\"auto\"")]
    [InlineData("functions", """[{"name":"f"}]""")]
    [InlineData("response_format", """{"type":"json_object"}""")]
    [InlineData("response_format", """{"type":"json_schema","json_schema":{"name":"x","schema":{}}}""")]
    public async Task Given_a_feature_the_server_does_not_have_When_asked_Then_400_names_it_instead_of_ignoring_it(string field, string value)
    {
        var body = new JsonObject { ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hi" }), ["max_tokens"] = 2, [field] = JsonNode.Parse(value) };
        var (status, reply) = await Post("/v1/chat/completions", body);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal(field, (string?)reply["error"]!["param"]);
    }

    [Fact]
    public async Task Given_what_a_client_sends_by_default_When_asked_Then_it_is_served()
    {
        // response_format text, tool_choice none and an empty tools list ask for nothing we lack.
        var body = new JsonObject
        {
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hi" }), ["max_tokens"] = 2,
            ["response_format"] = new JsonObject { ["type"] = "text" }, ["tool_choice"] = "none", ["tools"] = new JsonArray(), ["logprobs"] = false,
        };
        Assert.Equal(HttpStatusCode.OK, (await Post("/v1/chat/completions", body)).Status);
    }

    [Fact]
    public async Task Given_completions_with_logprobs_When_greedy_Then_each_token_logprob_equals_log_softmax_of_a_full_forward_and_tops_agree()
    {
        var (status, reply) = await Post("/v1/completions", new JsonObject { ["prompt"] = "the cat", ["max_tokens"] = 12, ["temperature"] = 0, ["logprobs"] = 3 });
        Assert.Equal(HttpStatusCode.OK, status);
        var choice = reply["choices"]![0]!;
        string text = (string)choice["text"]!;
        var lp = choice["logprobs"]!;
        var tokens = lp["tokens"]!.AsArray().Select(t => (string)t!).ToList();
        // Every token made is listed, the end-of-text token too (its text is not in the reply).
        int[] prompt = Chars.Encode("the cat"), generated = [.. Chars.Encode(text), .. (string?)choice["finish_reason"] == "stop" ? [Chars.EosId!.Value] : Array.Empty<int>()];
        Assert.Equal(generated.Length, tokens.Count);
        Assert.Equal(generated.Length, (int)reply["usage"]!["completion_tokens"]!);
        Assert.Equal(text, string.Concat(tokens.Take(Chars.Encode(text).Length)));
        Assert.Equal(tokens.Count, lp["text_offset"]!.AsArray().Count);
        for (int i = 0; i < tokens.Count; i++) Assert.Equal(string.Concat(tokens.Take(i)).Length, (int)lp["text_offset"]![i]!);

        var rows = LogSoftmaxRows([.. prompt, .. generated]);
        for (int i = 0; i < generated.Length; i++)
        {
            var expected = rows[prompt.Length - 1 + i];
            double got = (double)lp["token_logprobs"]![i]!;
            Assert.Equal(expected[generated[i]], got, 1e-4);
            var top = lp["top_logprobs"]![i]!.AsObject();
            Assert.Equal(3, top.Count);
            var ranked = expected.Select((v, id) => (v, id)).OrderByDescending(p => p.v).ThenBy(p => p.id).Take(3).ToList();
            Assert.Equal(ranked.Select(p => Chars.Decode([p.id])), top.Select(kv => kv.Key));
            // Greedy: the chosen token is the most likely one, listed first with the same log-probability.
            Assert.Equal(tokens[i], top.First().Key);
            Assert.Equal(got, (double)top.First().Value!, 1e-6);
        }
    }

    [Fact]
    public async Task Given_echo_and_max_tokens_0_When_scoring_Then_the_prompt_comes_back_with_its_log_likelihood_first_token_null()
    {
        const string prompt = "hello world, said the cat";
        var body = new JsonObject { ["prompt"] = prompt, ["max_tokens"] = 0, ["echo"] = true, ["logprobs"] = 1, ["temperature"] = 0 };
        var (status, reply) = await Post("/v1/completions", body);
        Assert.Equal(HttpStatusCode.OK, status);
        var choice = reply["choices"]![0]!;
        Assert.Equal(prompt, (string)choice["text"]!);
        Assert.Equal("length", (string?)choice["finish_reason"]);
        Assert.Equal(0, (int)reply["usage"]!["completion_tokens"]!);
        var lp = choice["logprobs"]!;
        int[] ids = Chars.Encode(prompt);
        Assert.Equal(ids.Length, lp["tokens"]!.AsArray().Count);
        Assert.Null(lp["token_logprobs"]![0]);
        Assert.Null(lp["top_logprobs"]![0]);
        var rows = LogSoftmaxRows(ids);
        for (int t = 1; t < ids.Length; t++) Assert.Equal(rows[t - 1][ids[t]], (double)lp["token_logprobs"]![t]!, 1e-4);

        // The same prompt as token ids (lm-evaluation-harness sends ids) scores the same, and a batch of prompts
        // gets one choice each, in order.
        body["prompt"] = new JsonArray(new JsonArray(ids.Select(i => (JsonNode)i).ToArray()), "hello");
        var (status2, batch) = await Post("/v1/completions", body);
        Assert.Equal(HttpStatusCode.OK, status2);
        Assert.Equal(lp.ToJsonString(), batch["choices"]![0]!["logprobs"]!.ToJsonString());
        Assert.Equal("hello", (string)batch["choices"]![1]!["text"]!);
        Assert.Equal(1, (int)batch["choices"]![1]!["index"]!);

        // max_tokens 0 is only for scoring.
        var (refused, error) = await Post("/v1/completions", new JsonObject { ["prompt"] = "a", ["max_tokens"] = 0 });
        Assert.Equal(HttpStatusCode.BadRequest, refused);
        Assert.Equal("max_tokens", (string?)error["error"]!["param"]);
    }

    [Fact]
    public async Task Given_chat_with_top_logprobs_When_greedy_Then_content_lists_each_token_with_bytes_and_ranked_alternatives()
    {
        var body = new JsonObject
        {
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hi" }), ["max_tokens"] = 8, ["temperature"] = 0,
            ["logprobs"] = true, ["top_logprobs"] = 2,
        };
        var (status, reply) = await Post("/v1/chat/completions", body);
        Assert.Equal(HttpStatusCode.OK, status);
        var choice = reply["choices"]![0]!;
        var content = choice["logprobs"]!["content"]!.AsArray();
        string message = (string)choice["message"]!["content"]!;
        Assert.Equal(message, string.Concat(content.Take(Chars.Encode(message).Length).Select(c => (string)c!["token"]!)));
        Assert.Equal((int)reply["usage"]!["completion_tokens"]!, content.Count);
        Assert.NotEmpty(content);
        foreach (var entry in content)
        {
            string token = (string)entry!["token"]!;
            Assert.Equal(Encoding.UTF8.GetBytes(token).Select(b => (int)b), entry["bytes"]!.AsArray().Select(b => (int)b!));
            var top = entry["top_logprobs"]!.AsArray();
            Assert.Equal(2, top.Count);
            Assert.True((double)top[0]!["logprob"]! >= (double)top[1]!["logprob"]!);
            Assert.Equal(token, (string)top[0]!["token"]!);
            Assert.True((double)entry["logprob"]! <= 0);
        }
        var (refused, error) = await Post("/v1/chat/completions", new JsonObject
        {
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hi" }), ["top_logprobs"] = 2,
        });
        Assert.Equal(HttpStatusCode.BadRequest, refused);
        Assert.Equal("top_logprobs", (string?)error["error"]!["param"]);
    }

    [Fact]
    public async Task Given_n_3_and_a_seed_When_sampling_Then_choice_i_is_what_seed_plus_i_gives_alone_and_repeats_exactly()
    {
        JsonObject Body(int n, long seed) => new()
        {
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "once upon" }), ["max_tokens"] = 16, ["temperature"] = 1, ["n"] = n, ["seed"] = seed,
        };
        var (status, three) = await Post("/v1/chat/completions", Body(3, 42));
        Assert.Equal(HttpStatusCode.OK, status);
        var texts = three["choices"]!.AsArray().Select(c => (string)c!["message"]!["content"]!).ToList();
        Assert.Equal([0, 1, 2], three["choices"]!.AsArray().Select(c => (int)c!["index"]!));
        for (int i = 0; i < 3; i++)
            Assert.Equal(texts[i], (string)(await Post("/v1/chat/completions", Body(1, 42 + i))).Body["choices"]![0]!["message"]!["content"]!);
        Assert.Equal(texts, (await Post("/v1/chat/completions", Body(3, 42))).Body["choices"]!.AsArray().Select(c => (string)c!["message"]!["content"]!));
        Assert.True(texts.Distinct().Count() > 1, $"three samples at temperature 1 were identical: {texts[0]}");
        Assert.Equal(three["choices"]!.AsArray().Sum(c => Chars.Encode((string)c!["message"]!["content"]!).Length + ((string?)c["finish_reason"] == "stop" ? 1 : 0)),
            (int)three["usage"]!["completion_tokens"]!);
    }

    [Fact]
    public async Task Given_n_2_streaming_When_read_Then_each_choice_index_concatenates_to_the_plain_reply()
    {
        var body = new JsonObject { ["prompt"] = "abc", ["max_tokens"] = 10, ["temperature"] = 1, ["n"] = 2, ["seed"] = 9 };
        var plain = (await Post("/v1/completions", body)).Body["choices"]!.AsArray().Select(c => (string)c!["text"]!).ToList();
        body["stream"] = true;
        var res = await _http.PostAsync("/v1/completions", new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"));
        var lines = (await res.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("data: [DONE]", lines[^1]);
        var chunks = lines[..^1].Select(l => JsonNode.Parse(l["data: ".Length..])!["choices"]![0]!).ToList();
        for (int i = 0; i < 2; i++)
            Assert.Equal(plain[i], string.Concat(chunks.Where(c => (int)c["index"]! == i).Select(c => (string)c["text"]!)));
    }
    private async Task<List<JsonNode>> StreamChoices(string path, JsonObject body)
    {
        body["stream"] = true;
        var res = await _http.PostAsync(path, new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        var lines = (await res.Content.ReadAsStringAsync()).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("data: [DONE]", lines[^1]);
        return lines[..^1].Select(l => JsonNode.Parse(l["data: ".Length..])!["choices"]![0]!).ToList();
    }

    [Fact]
    public async Task Given_logprobs_When_streaming_Then_the_chunks_scores_concatenate_to_the_plain_replys()
    {
        var chat = new JsonObject
        {
            ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = "hi" }), ["max_tokens"] = 10, ["temperature"] = 0, ["logprobs"] = true, ["top_logprobs"] = 2,
        };
        var plain = (await Post("/v1/chat/completions", chat)).Body["choices"]![0]!["logprobs"]!["content"]!;
        var chunks = await StreamChoices("/v1/chat/completions", (JsonObject)chat.DeepClone());
        var streamed = new JsonArray(chunks.Where(c => c["logprobs"] is JsonObject).SelectMany(c => c["logprobs"]!["content"]!.AsArray().Select(e => e!.DeepClone())).ToArray());
        Assert.Equal(plain.ToJsonString(), streamed.ToJsonString());

        var completion = new JsonObject { ["prompt"] = "the cat", ["max_tokens"] = 10, ["temperature"] = 0, ["logprobs"] = 2 };
        var legacy = (await Post("/v1/completions", completion)).Body["choices"]![0]!["logprobs"]!;
        var pieces = (await StreamChoices("/v1/completions", (JsonObject)completion.DeepClone())).Where(c => c["logprobs"] is JsonObject).Select(c => c["logprobs"]!).ToList();
        foreach (var key in new[] { "tokens", "token_logprobs", "top_logprobs", "text_offset" })
            Assert.Equal(legacy[key]!.ToJsonString(), new JsonArray(pieces.SelectMany(p => p[key]!.AsArray().Select(e => e?.DeepClone())).ToArray()).ToJsonString());
    }
}
