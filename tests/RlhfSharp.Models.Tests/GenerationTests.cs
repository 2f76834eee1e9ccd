// KV-cached generation: logits equal a full recomputation, greedy is deterministic, sampling is seeded, EOS stops a row.
using RlhfSharp.Tensors;

namespace RlhfSharp.Models.Tests;

public sealed class GenerationTests
{
    private static readonly GptConfig Config = RandomWeights.TinyConfig(vocab: 17, block: 24, embd: 16, layers: 2, heads: 2);
    private static readonly int[][] Prompts = [[3], [1, 2, 3, 4, 5, 6], [9, 9, 1]];

    private static Gpt Model() => Gpt.FromTensors(Config, RandomWeights.For(Config, 31));

    [Fact]
    public void LogitsWhileGenerating_EqualAFullRecomputation()
    {
        var gpt = Model();
        var steps = new List<float[]>();

        var result = new GptGenerator(gpt).Generate(Prompts, new GenerationOptions { MaxNewTokens = 10 }, new Rng(1), (_, l) => steps.Add((float[])l.Clone()));

        var full = gpt.Forward(new GptInput(result.Batch, result.Length, result.Tokens, result.AttentionMask)).Logits!;
        int V = Config.VocabSize;
        double maxDiff = 0;
        for (int s = 0; s < steps.Count; s++)
            for (int b = 0; b < result.Batch; b++)
                for (int v = 0; v < V; v++)
                    maxDiff = Math.Max(maxDiff, Math.Abs(steps[s][b * V + v] - full[(b * result.Length + result.PromptLength - 1 + s) * V + v]));
        Assert.Equal(10, steps.Count);
        Assert.True(maxDiff < 1e-4, $"max |cached - recomputed| = {maxDiff}");
    }

    [Fact]
    public void LogProbs_AreThoseOfTheTemperatureScaledRecomputation()
    {
        var gpt = Model();
        var options = new GenerationOptions { MaxNewTokens = 6, Temperature = 0.7f };

        var r = new GptGenerator(gpt).Generate(Prompts, options, new Rng(2));

        var full = gpt.Forward(new GptInput(r.Batch, r.Length, r.Tokens, r.AttentionMask)).Logits!;
        int V = Config.VocabSize;
        for (int b = 0; b < r.Batch; b++)
            for (int s = 0; s < r.ResponseLengths[b]; s++)
            {
                var row = full.AsSpan((b * r.Length + r.PromptLength - 1 + s) * V, V).ToArray().Select(x => x / (double)options.Temperature).ToArray();
                int token = r.Tokens[b * r.Length + r.PromptLength + s];
                Assert.Equal(ReferenceGpt.LogSoftmax(row)[token], r.LogProbs[b * r.NewTokens + s], 1e-4);
            }
    }

    [Fact]
    public void Greedy_IsDeterministic_AndPicksTheArgmax()
    {
        var gpt = Model();
        var options = new GenerationOptions { MaxNewTokens = 8, Greedy = true };

        var a = new GptGenerator(gpt).Generate(Prompts, options, new Rng(1));
        var b = new GptGenerator(gpt).Generate(Prompts, options, new Rng(999));

        Assert.Equal(a.Tokens, b.Tokens);
        var full = gpt.Forward(new GptInput(a.Batch, a.Length, a.Tokens, a.AttentionMask)).Logits!;
        int V = Config.VocabSize;
        for (int row = 0; row < a.Batch; row++)
            for (int s = 0; s < a.NewTokens; s++)
            {
                var logits = full.AsSpan((row * a.Length + a.PromptLength - 1 + s) * V, V).ToArray();
                Assert.Equal(Array.IndexOf(logits, logits.Max()), a.Tokens[row * a.Length + a.PromptLength + s]);
            }
    }

    [Fact]
    public void Sampling_IsSeeded_AndTopKOneIsGreedy()
    {
        var gpt = Model();
        var options = new GenerationOptions { MaxNewTokens = 12, Temperature = 1.5f };
        var gen = new GptGenerator(gpt);

        var a = gen.Generate(Prompts, options, new Rng(5));
        var b = gen.Generate(Prompts, options, new Rng(5));
        var c = gen.Generate(Prompts, options, new Rng(6));
        var topK1 = gen.Generate(Prompts, options with { TopK = 1 }, new Rng(7));
        var tinyP = gen.Generate(Prompts, options with { TopP = 1e-6f }, new Rng(8));
        var greedy = gen.Generate(Prompts, options with { Greedy = true }, new Rng(9));

        Assert.Equal(a.Tokens, b.Tokens);
        Assert.Equal(a.LogProbs, b.LogProbs);
        Assert.NotEqual(a.Tokens, c.Tokens);
        Assert.Equal(greedy.Tokens, topK1.Tokens);
        Assert.Equal(greedy.Tokens, tinyP.Tokens);
    }

    [Fact]
    public void TopK_OnlyEverSamplesAmongTheKMostLikely()
    {
        var gpt = Model();
        var steps = new List<float[]>();
        var r = new GptGenerator(gpt).Generate(Prompts, new GenerationOptions { MaxNewTokens = 10, TopK = 3, Temperature = 3f }, new Rng(3), (_, l) => steps.Add((float[])l.Clone()));
        int V = Config.VocabSize;
        for (int s = 0; s < steps.Count; s++)
            for (int b = 0; b < r.Batch; b++)
            {
                var row = steps[s].AsSpan(b * V, V).ToArray();
                int token = r.Tokens[b * r.Length + r.PromptLength + s];
                Assert.True(row.Count(x => x > row[token]) < 3, $"step {s} row {b}: token {token} is not in the top 3");
            }
    }

    [Fact]
    public void Eos_StopsOnlyThatRow_AndPadsAfterIt()
    {
        var gpt = Model();
        var greedy = new GenerationOptions { MaxNewTokens = 8, Greedy = true };
        var free = new GptGenerator(gpt).Generate(Prompts, greedy, new Rng(1));
        int eos = free.Tokens[free.PromptLength + 2]; // row 0's third generated token
        int stopAt = Array.IndexOf(free.Response(0), eos);

        var r = new GptGenerator(gpt).Generate(Prompts, greedy with { EosTokenId = eos, PadTokenId = 0 }, new Rng(1));

        Assert.Equal(stopAt + 1, r.ResponseLengths[0]);
        Assert.Equal(free.Response(0)[..(stopAt + 1)], r.Response(0));
        for (int s = stopAt + 1; s < r.NewTokens; s++)
        {
            Assert.Equal(0, r.AttentionMask[r.PromptLength + s]);
            Assert.Equal(0f, r.LogProbs[s]);
        }
        for (int b = 1; b < r.Batch; b++)
        {
            var expected = free.Response(b);
            int cut = Array.IndexOf(expected, eos);
            Assert.Equal(cut >= 0 ? expected[..(cut + 1)] : expected, r.Response(b));
        }
        Assert.Equal(Prompts[1], r.Prompt(1));
    }

    [Fact]
    public void TooLongARequest_IsRefusedWithTheNumbers()
    {
        var ex = Assert.Throws<ArgumentException>(() => new GptGenerator(Model()).Generate(Prompts, new GenerationOptions { MaxNewTokens = 20 }, new Rng(1)));
        Assert.Contains("block size 24", ex.Message);
    }
}
