// `rlhf serve` streams in real time: chunks leave while the model is still generating, and text is cut into pieces
// that never split a UTF-8 character or leak the start of a stop string.
using System.Diagnostics;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using RlhfSharp.Models;
using RlhfSharp.Tensors;
using RlhfSharp.Text;
using RlhfSharp.Web.Serving;
using Xunit.Abstractions;

namespace RlhfSharp.Web.Tests;

public sealed class StreamingTests(ITestOutputHelper output)
{
    private static readonly CharTokenizer Chars = CharTokenizer.FromCorpus(string.Concat(Enumerable.Range(32, 95).Select(c => (char)c)) + "\n");

    [Fact]
    public async Task Given_a_long_generation_When_streaming_Then_the_first_chunk_arrives_long_before_the_last()
    {
        // Big enough that 300 tokens take a visible time (about a second) on 2 cores; greedy and seeded, so the same text every run.
        var model = Gpt.Create(new GptConfig { VocabSize = Chars.VocabSize, BlockSize = 320, NEmbd = 256, NLayer = 6, NHead = 4, EosTokenId = Chars.EosId }, new Rng(11));
        var app = ModelServer.Build(model, Chars, new ModelServerOptions(Port: 0, ModelName: "slow"));
        await app.StartAsync();
        try
        {
            using var http = new HttpClient { BaseAddress = LabelingApp.BoundAddress(app), Timeout = TimeSpan.FromMinutes(2) };
            // Warm up the same streaming path (JIT, first allocations) so the timed request measures generation, not start-up.
            var warm = await http.PostAsync("/v1/completions", new StringContent(new JsonObject { ["prompt"] = "Once upon a time", ["max_tokens"] = 16, ["stream"] = true }.ToJsonString(), Encoding.UTF8, "application/json"));
            Assert.Contains("[DONE]", await warm.EnsureSuccessStatusCode().Content.ReadAsStringAsync());
            var body = new JsonObject { ["prompt"] = "Once upon a time", ["max_tokens"] = 300, ["temperature"] = 0, ["stream"] = true };
            var clock = Stopwatch.StartNew();
            using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/completions") { Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json") };
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            var arrivals = new List<double>();
            var text = new StringBuilder();
            while (await reader.ReadLineAsync() is { } line)
            {
                if (!line.StartsWith("data: ", StringComparison.Ordinal) || line == "data: [DONE]") continue;
                string piece = (string)JsonNode.Parse(line["data: ".Length..])!["choices"]![0]!["text"]!;
                if (piece.Length == 0) continue; // the closing chunk carries only the finish reason
                arrivals.Add(clock.Elapsed.TotalMilliseconds);
                text.Append(piece);
            }

            // The same text as without streaming, in many chunks...
            Assert.True(arrivals.Count >= 100, $"expected one chunk per character, got {arrivals.Count}");
            var plain = JsonNode.Parse(await (await http.PostAsync("/v1/completions", new StringContent(
                new JsonObject { ["prompt"] = "Once upon a time", ["max_tokens"] = 300, ["temperature"] = 0 }.ToJsonString(), Encoding.UTF8, "application/json"))).Content.ReadAsStringAsync())!;
            Assert.Equal((string)plain["choices"]![0]!["text"]!, text.ToString());
            // ...and spread over the generation: sent all at the end (the old behaviour), the first would arrive with the last.
            double first = arrivals[0], last = arrivals[^1];
            output.WriteLine($"{arrivals.Count} chunks; first at {first:F0} ms, last at {last:F0} ms");
            // The chunks must spread over at least a quarter of the request's time (the old server: 19 ms of 6,856). Not "first
            // before half of last": on a busy CI machine the first chunk can wait ~1 s for a thread while generation runs on.
            Assert.True(last - first > 0.25 * last, $"first chunk at {first:F0} ms, last at {last:F0} ms: not streamed while generating");
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    /// <summary>A byte-level BPE trained on ASCII only, so é is two tokens and 😀 four.</summary>
    private static Gpt2Tokenizer AsciiBpe() => BpeTrainer.Train("the cat sat on the mat and the dog ate the hat " + string.Concat(Enumerable.Repeat("a naive cafe ok ", 20)), new BpeTrainerOptions { VocabSize = 300 });

    private static (List<string> Pieces, TextPieceStream Stream, int Taken) Feed(ITokenizer tok, string text, params string[] stop)
    {
        var pieces = new List<string>();
        var stream = new TextPieceStream(tok, stop, tok.EosId, pieces.Add);
        int taken = 0;
        foreach (int id in tok.Encode(text))
        {
            taken++;
            if (!stream.Add(id)) break;
        }
        stream.Finish();
        return (pieces, stream, taken);
    }

    [Fact]
    public void Given_characters_split_across_byte_tokens_When_streamed_Then_no_piece_holds_half_a_character()
    {
        var tok = AsciiBpe();
        const string Text = "a naïve café 😀 ok";
        var ids = tok.Encode(Text);
        // The test is only meaningful if some token boundary falls inside a character.
        Assert.Contains(Enumerable.Range(1, ids.Length - 1), i => tok.Decode(ids.AsSpan(0, i)).EndsWith('\uFFFD'));

        var (pieces, stream, _) = Feed(tok, Text);
        Assert.All(pieces, p => Assert.DoesNotContain('\uFFFD', p));
        Assert.Equal(Text, string.Concat(pieces));
        Assert.Equal(Text, stream.Text);
        Assert.Single(pieces, p => p.Contains("😀", StringComparison.Ordinal));
        Assert.Equal("length", stream.FinishReason);
    }

    [Fact]
    public void Given_a_stop_string_spanning_tokens_When_streamed_Then_its_start_is_never_sent_and_generation_ends_there()
    {
        var tok = AsciiBpe();
        var (pieces, stream, taken) = Feed(tok, "the cat sat. END of story and more", " END");
        Assert.Equal("the cat sat.", string.Concat(pieces));
        Assert.Equal("the cat sat.", stream.Text);
        Assert.Equal("stop", stream.FinishReason);
        Assert.All(pieces, p => Assert.DoesNotContain(" E", p));
        // Generation ends at the token that completes the stop string, not at the end of the input.
        Assert.True(taken < tok.Encode("the cat sat. END of story and more").Length);
        Assert.Equal(taken, stream.Tokens);

        // A partial match that turns out not to be the stop string is sent once it is clear.
        var (pieces2, stream2, _) = Feed(tok, "the cat sat. ENDLESS", " END!");
        Assert.Equal("the cat sat. ENDLESS", string.Concat(pieces2));
        Assert.Equal("length", stream2.FinishReason);
    }
}
