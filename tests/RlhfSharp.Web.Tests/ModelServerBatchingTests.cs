// Continuous batching: BatchDecoder's logits for a sequence are the same bits whether it steps alone or beside others;
// DecodeScheduler decodes each seeded request to the same tokens alone or in a batch (and as GptGenerator does alone);
// and the throughput of 8 concurrent clients against one at a time, over HTTP (Category=Bench prints the numbers).
using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using RlhfSharp.Models;
using RlhfSharp.Tensors;
using RlhfSharp.Text;
using RlhfSharp.Web.Serving;
using Xunit.Abstractions;

namespace RlhfSharp.Web.Tests;

public sealed class ModelServerBatchingTests(ITestOutputHelper output)
{
    private static readonly CharTokenizer Chars = CharTokenizer.FromCorpus(string.Concat(Enumerable.Range(32, 95).Select(c => (char)c)) + "\n");

    private static Gpt Model(int embd, int layers, int heads, int block, ulong seed) =>
        Gpt.Create(new GptConfig { VocabSize = Chars.VocabSize, BlockSize = block, NEmbd = embd, NLayer = layers, NHead = heads, EosTokenId = Chars.EosId }, new Rng(seed));

    [Fact]
    public void Given_three_sequences_When_stepped_together_or_alone_Then_each_ones_logits_are_the_same_bits()
    {
        var model = Model(32, 2, 4, 64, 3);
        int[][] prompts = [Chars.Encode("a short one"), Chars.Encode("x"), Chars.Encode("a somewhat longer prompt here")];
        var together = prompts.Select(p => new SequenceCache(model.Config, 40)).ToArray();
        var alone = prompts.Select(p => new SequenceCache(model.Config, 40)).ToArray();
        // Prefill together (one of them asking for every position) against prefill alone.
        var batched = BatchDecoder.Step(model, prompts.Select((p, i) => new DecodeItem(together[i], p, i == 2)).ToList());
        for (int i = 0; i < 3; i++) Assert.Equal(BatchDecoder.Step(model, [new DecodeItem(alone[i], prompts[i], i == 2)])[0], batched[i]);
        // Decode steps: sequences at different positions, one leaving after the second step.
        for (int step = 0; step < 4; step++)
        {
            int live = step < 2 ? 3 : 2;
            var items = Enumerable.Range(0, live).Select(i => new DecodeItem(together[i], [(step * 7 + i * 3) % Chars.VocabSize], false)).ToList();
            var logits = BatchDecoder.Step(model, items);
            for (int i = 0; i < live; i++)
                Assert.Equal(BatchDecoder.Step(model, [new DecodeItem(alone[i], items[i].Tokens, false)])[0], logits[i]);
        }
    }

    [Fact]
    public void Given_a_bf16_model_When_served_Then_its_logits_are_the_widened_float32_twins_bits()
    {
        // `rlhf serve --weights-dtype bf16`: BatchDecoder runs the GEMM that widens bf16 weights while packing, so a
        // prefill and a decode step give exactly the float32 logits of the same weights widened.
        var narrowed = Model(32, 2, 4, 64, 5);
        narrowed.NarrowFrozenWeightsToBf16();
        var twin = Gpt.FromTensors(narrowed.Config, narrowed.ToTensors());
        int[][] prompts = [Chars.Encode("bf16 weights"), Chars.Encode("y")];
        var caches = new[] { narrowed, twin }.Select(m => prompts.Select(_ => new SequenceCache(m.Config, 20)).ToArray()).ToArray();
        var mine = BatchDecoder.Step(narrowed, prompts.Select((p, i) => new DecodeItem(caches[0][i], p, i == 0)).ToList());
        var theirs = BatchDecoder.Step(twin, prompts.Select((p, i) => new DecodeItem(caches[1][i], p, i == 0)).ToList());
        for (int i = 0; i < 2; i++) Assert.Equal(theirs[i], mine[i]);
        mine = BatchDecoder.Step(narrowed, [new DecodeItem(caches[0][0], [7], false), new DecodeItem(caches[0][1], [9], false)]);
        theirs = BatchDecoder.Step(twin, [new DecodeItem(caches[1][0], [7], false), new DecodeItem(caches[1][1], [9], false)]);
        for (int i = 0; i < 2; i++) Assert.Equal(theirs[i], mine[i]);
    }

    private static DecodeSequence Sequence(int[] prompt, int maxNew, ulong seed, bool greedy, List<int> sink) => new()
    {
        Prompt = prompt,
        MaxNew = maxNew,
        Sampling = new GenerationOptions { MaxNewTokens = maxNew, Temperature = 0.9f, TopP = greedy ? 1f : 0.9f, Greedy = greedy, EosTokenId = Chars.EosId, PadTokenId = Chars.EosId!.Value },
        Rng = new Rng(seed),
        OnToken = t =>
        {
            sink.Add(t);
            return true;
        },
    };

    [Fact]
    public async Task Given_seeded_requests_When_decoded_in_one_batch_Then_each_gives_the_tokens_it_gives_alone_and_GptGenerator_gives()
    {
        var model = Model(32, 2, 4, 128, 11);
        string[] prompts = ["once upon a time", "the cat", "z", "a longer prompt for the batch", "hello"];
        int[] maxNew = [30, 5, 17, 24, 40];
        var release = new TaskCompletionSource();
        bool held = false;
        using var batched = new DecodeScheduler(model, maxBatch: 8, async ct =>
        {
            if (held) return;
            held = true;
            await release.Task; // hold the first admission until every request waits: they then join one batch
        });
        var sinks = prompts.Select(_ => new List<int>()).ToArray();
        var tasks = prompts.Select((p, i) => batched.Submit(Sequence(Chars.Encode(p), maxNew[i], (ulong)(100 + i), greedy: i % 2 == 1, sinks[i]))).ToArray();
        release.SetResult();
        await tasks[1]; // the shortest finishes first; a late request joins the running batch
        var late = new List<int>();
        var lateTask = batched.Submit(Sequence(Chars.Encode("late"), 20, 7, greedy: false, late));
        await Task.WhenAll(tasks);
        await lateTask;
        Assert.True(batched.PeakBatch >= 5, $"peak batch {batched.PeakBatch}");

        using var single = new DecodeScheduler(model, maxBatch: 1, null);
        for (int i = 0; i < prompts.Length; i++)
        {
            var alone = new List<int>();
            await single.Submit(Sequence(Chars.Encode(prompts[i]), maxNew[i], (ulong)(100 + i), greedy: i % 2 == 1, alone));
            Assert.Equal(alone, sinks[i]);
            var reference = new GptGenerator(model).Generate([Chars.Encode(prompts[i])],
                new GenerationOptions { MaxNewTokens = maxNew[i], Temperature = 0.9f, TopP = i % 2 == 1 ? 1f : 0.9f, Greedy = i % 2 == 1, EosTokenId = Chars.EosId, PadTokenId = Chars.EosId!.Value },
                new Rng((ulong)(100 + i)));
            Assert.Equal(reference.Response(0), sinks[i]);
        }
        var lateAlone = new List<int>();
        await single.Submit(Sequence(Chars.Encode("late"), 20, 7, greedy: false, lateAlone));
        Assert.Equal(lateAlone, late);
    }

    /// <summary>The tokenizer without an end-of-text token, so every bench request makes exactly max_tokens tokens.</summary>
    private sealed class NoEos(ITokenizer inner) : ITokenizer
    {
        public RlhfSharp.Text.ChatTemplate? ChatTemplate { get => inner.ChatTemplate; set => inner.ChatTemplate = value; }

        public int VocabSize => inner.VocabSize;
        public int? EosId => null;
        public IReadOnlyDictionary<string, int> SpecialTokens => inner.SpecialTokens;
        public int[] Encode(string text) => inner.Encode(text);
        public int[] Encode(string text, bool allowSpecial) => inner.Encode(text, allowSpecial);
        public string Decode(ReadOnlySpan<int> ids) => inner.Decode(ids);
        public void Save(string directory) => inner.Save(directory);
    }

    [Theory]
    [Trait("Category", "Bench")]
    [InlineData(128, 4)]
    [InlineData(256, 6)]
    public async Task Given_8_clients_When_served_concurrently_or_one_at_a_time_Then_texts_agree_and_throughput_is_reported(int embd, int layers)
    {
        var model = Gpt.Create(new GptConfig { VocabSize = Chars.VocabSize, BlockSize = 256, NEmbd = embd, NLayer = layers, NHead = 4 }, new Rng(17));
        await using var app = ModelServer.Build(model, new NoEos(Chars), new ModelServerOptions(Port: 0, ModelName: "bench", MaxBatch: 8));
        await app.StartAsync();
        using var http = new HttpClient { BaseAddress = LabelingApp.BoundAddress(app), Timeout = TimeSpan.FromMinutes(5) };
        const int maxTokens = 128;
        JsonObject Body(int i) => new() { ["prompt"] = $"client {i} says: ", ["max_tokens"] = maxTokens, ["temperature"] = 0.8, ["seed"] = 1000 + i };
        async Task<(string Text, int Tokens)> Ask(int i)
        {
            var res = await http.PostAsync("/v1/completions", new StringContent(Body(i).ToJsonString(), Encoding.UTF8, "application/json"));
            res.EnsureSuccessStatusCode();
            var reply = JsonNode.Parse(await res.Content.ReadAsStringAsync())!;
            return ((string)reply["choices"]![0]!["text"]!, (int)reply["usage"]!["completion_tokens"]!);
        }
        await Ask(99); // warm up (JIT)

        var clock = Stopwatch.StartNew();
        var sequential = new List<(string Text, int Tokens)>();
        for (int i = 0; i < 8; i++) sequential.Add(await Ask(i));
        double sequentialSeconds = clock.Elapsed.TotalSeconds;
        clock.Restart();
        var concurrent = await Task.WhenAll(Enumerable.Range(0, 8).Select(Ask));
        double concurrentSeconds = clock.Elapsed.TotalSeconds;

        // Same seeded text alone or batched; every request made its full budget.
        Assert.Equal(sequential.Select(s => s.Text), concurrent.Select(c => c.Text));
        Assert.All(concurrent, c => Assert.Equal(maxTokens, c.Tokens));
        int tokens = sequential.Sum(s => s.Tokens);
        string report = $"serve throughput (GPT {layers}×{embd}, vocab {Chars.VocabSize}, 8 requests × {maxTokens} tokens, {Environment.ProcessorCount} cores): " +
            $"one at a time {tokens / sequentialSeconds:F0} tokens/s ({sequentialSeconds:F2} s), 8 concurrent {tokens / concurrentSeconds:F0} tokens/s ({concurrentSeconds:F2} s), " +
            $"×{sequentialSeconds / concurrentSeconds:F2}";
        output.WriteLine(report);
        Console.WriteLine(report);
    }
}
