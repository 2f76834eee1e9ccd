// The GPT against the double-precision reference: logits, heads, padded batches, gradients, memorising a text, save/load.
using RlhfSharp.Models.Checkpoints;
using RlhfSharp.Tensors;
using RlhfSharp.Tensors.Optim;
using Xunit.Abstractions;

namespace RlhfSharp.Models.Tests;

public sealed class GptTests(ITestOutputHelper output)
{
    private static Gpt RandomGpt(GptConfig config, ulong seed, GptHeads heads = GptHeads.None)
    {
        var tensors = RandomWeights.For(config, seed, withHeads: true);
        if (!heads.HasFlag(GptHeads.Reward)) tensors.Remove(GptCheckpoint.RewardHeadWeight);
        if (!heads.HasFlag(GptHeads.Value))
        {
            tensors.Remove(GptCheckpoint.ValueHeadWeight);
            tensors.Remove(GptCheckpoint.ValueHeadBias);
        }
        return Gpt.FromTensors(config, tensors);
    }

    [Fact]
    public void Logits_MatchTheDoubleReference()
    {
        var config = RandomWeights.TinyConfig(vocab: 13, block: 12, embd: 12, layers: 2, heads: 3);
        var gpt = RandomGpt(config, 21);
        var reference = new ReferenceGpt(config, gpt.ToTensors());
        int[] tokens = [3, 1, 12, 0, 7, 7, 2, 9, 11, 4];

        var pass = gpt.Forward(new GptInput(1, tokens.Length, tokens));
        var expected = reference.Logits(tokens);

        double maxDiff = 0;
        for (int t = 0; t < tokens.Length; t++)
            for (int v = 0; v < config.VocabSize; v++)
                maxDiff = Math.Max(maxDiff, Math.Abs(expected[t][v] - pass.Logits![t * config.VocabSize + v]));
        Assert.True(maxDiff < 1e-4, $"max |logit - reference| = {maxDiff}");
        Assert.True(expected[0].Max() - expected[0].Min() > 0.1, "logits should not be flat, or the test proves nothing");
    }

    [Fact]
    public void ValueAndRewardHeads_MatchTheReference()
    {
        var config = RandomWeights.TinyConfig();
        var gpt = RandomGpt(config, 22, GptHeads.Value | GptHeads.Reward);
        var reference = new ReferenceGpt(config, gpt.ToTensors());
        int[] tokens = [5, 2, 8, 8, 1];

        var pass = gpt.Forward(new GptInput(1, tokens.Length, tokens), new GptForwardOptions { Logits = false });

        Assert.Null(pass.Logits);
        var values = reference.Values(tokens);
        for (int t = 0; t < tokens.Length; t++) Assert.Equal(values[t], pass.Values![t], 1e-4);
        Assert.Equal(reference.Reward(tokens), pass.Rewards![0], 1e-4);
    }

    [Fact]
    public void LeftPaddedBatch_GivesTheSameResultsAsEachPromptAlone()
    {
        var config = RandomWeights.TinyConfig(block: 10);
        var gpt = RandomGpt(config, 23, GptHeads.Value | GptHeads.Reward);
        int[][] prompts = [[4], [1, 2, 3, 4, 5, 6, 7, 8, 9], [10, 0, 3, 3]];
        var batch = GptInput.LeftPadded(prompts, padToken: 0);
        int T = batch.Length, V = config.VocabSize;

        var batched = gpt.Forward(batch);
        var logits = (float[])batched.Logits!.Clone();
        var values = (float[])batched.Values!.Clone();
        var rewards = (float[])batched.Rewards!.Clone();

        for (int b = 0; b < prompts.Length; b++)
        {
            var alone = gpt.Forward(new GptInput(1, prompts[b].Length, prompts[b]));
            int pad = T - prompts[b].Length;
            for (int t = 0; t < prompts[b].Length; t++)
            {
                for (int v = 0; v < V; v++)
                    Assert.Equal(alone.Logits![t * V + v], logits[(b * T + pad + t) * V + v], 1e-5);
                Assert.Equal(alone.Values![t], values[b * T + pad + t], 1e-5);
            }
            Assert.Equal(alone.Rewards![0], rewards[b], 1e-5);
        }
    }

    [Fact]
    public void RightPaddedRows_ReadTheRewardAtTheLastRealToken()
    {
        var config = RandomWeights.TinyConfig();
        var gpt = RandomGpt(config, 24, GptHeads.Reward);
        var input = new GptInput(1, 5, [3, 4, 5, 0, 0], [1, 1, 1, 0, 0]);

        float padded = gpt.Forward(input, new GptForwardOptions { Logits = false }).Rewards![0];
        float alone = gpt.Forward(new GptInput(1, 3, [3, 4, 5]), new GptForwardOptions { Logits = false }).Rewards![0];

        Assert.Equal(alone, padded, 1e-5);
    }

    [Fact]
    public void Gradients_MatchCentralDifferencesOfTheDoubleReference()
    {
        var config = RandomWeights.TinyConfig(vocab: 9, block: 6, embd: 8, layers: 2, heads: 2);
        var gpt = RandomGpt(config, 25);
        int[] tokens = [1, 5, 2, 5, 8, 0];
        int T = tokens.Length;
        var (targets, weights) = RandomWeights.NextTokenTargets(tokens);

        var pass = gpt.Forward(new GptInput(1, T, tokens));
        var dLogits = new float[T * config.VocabSize];
        float loss = Gpt.CrossEntropy(pass, targets, weights, dLogits);
        gpt.ZeroGrad();
        gpt.Backward(pass, dLogits);

        var tensors = gpt.ToTensors();
        var reference = new ReferenceGpt(config, tensors);
        Assert.Equal(reference.Loss(tokens), loss, 1e-4);
        var rng = new Rng(1);
        double diffSq = 0, refSq = 0;
        foreach (var p in gpt.ParameterList)
        {
            var values = tensors[p.Name].Values;
            for (int trial = 0; trial < 3; trial++)
            {
                int i = rng.NextInt(p.Length);
                // For wte pick a row that is used, so both the embedding and the tied head contribute.
                if (p.Name == "wte.weight") i = tokens[trial] * config.NEmbd + rng.NextInt(config.NEmbd);
                float original = values[i];
                values[i] = original + 1e-2f;
                double up = reference.Loss(tokens);
                float hi = values[i];
                values[i] = original - 1e-2f;
                double down = reference.Loss(tokens);
                float lo = values[i];
                values[i] = original;
                double numeric = (up - down) / ((double)hi - lo);
                double analytic = gpt.Gradients[p.Offset + i];
                Assert.True(Math.Abs(numeric - analytic) < 2e-3 + 2e-2 * Math.Abs(numeric), $"{p.Name}[{i}]: analytic {analytic}, numeric {numeric}");
                diffSq += (numeric - analytic) * (numeric - analytic);
                refSq += numeric * numeric;
            }
        }
        Assert.True(Math.Sqrt(diffSq / refSq) < 1e-3, $"relative gradient error {Math.Sqrt(diffSq / refSq)}");
    }

    [Fact]
    public void HeadGradients_MatchCentralDifferences()
    {
        var config = RandomWeights.TinyConfig(vocab: 7, block: 5, embd: 8, layers: 1, heads: 2);
        var gpt = RandomGpt(config, 26, GptHeads.Value | GptHeads.Reward);
        int[] tokens = [1, 2, 3, 4];
        // Loss = Σ_t c_t·value_t + k·reward: its gradient wrt the outputs is (c, k).
        double[] c = [0.3, -1.1, 0.7, 0.2];
        const double k = 1.7;

        var pass = gpt.Forward(new GptInput(1, 4, tokens), new GptForwardOptions { Logits = false });
        gpt.ZeroGrad();
        gpt.Backward(pass, dValues: c.Select(x => (float)x).ToArray(), dRewards: [(float)k]);

        var tensors = gpt.ToTensors();
        var reference = new ReferenceGpt(config, tensors);
        double Loss() => reference.Values(tokens).Select((v, t) => v * c[t]).Sum() + k * reference.Reward(tokens);
        foreach (var name in new[] { "v_head.summary.weight", "v_head.summary.bias", "score.weight", "h.0.mlp.c_fc.weight", "wpe.weight", "ln_f.bias" })
        {
            var p = gpt[name];
            var values = tensors[name].Values;
            int i = p.Length / 2;
            float original = values[i];
            values[i] = original + 1e-2f;
            double up = Loss();
            values[i] = original - 1e-2f;
            double down = Loss();
            values[i] = original;
            double numeric = (up - down) / 2e-2;
            Assert.True(Math.Abs(numeric - gpt.Gradients[p.Offset + i]) < 2e-3 + 1e-2 * Math.Abs(numeric), $"{name}: analytic {gpt.Gradients[p.Offset + i]}, numeric {numeric}");
        }
    }

    // Seeds 1, 2, 3: loss below 0.05 after 27 steps each (bar: within 300).
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void TinyGpt_MemorisesAShortText(int seed)
    {
        const string text = "the quick brown fox jumps over the lazy dog.";
        var alphabet = text.Distinct().Order().ToArray();
        var ids = text.Select(ch => Array.IndexOf(alphabet, ch)).ToArray();
        var config = new GptConfig { VocabSize = alphabet.Length, BlockSize = 64, NEmbd = 32, NLayer = 2, NHead = 2 };
        var gpt = Gpt.Create(config, new Rng((ulong)seed));
        var opt = new AdamW(gpt.ParameterSet, new AdamWConfig { LearningRate = 1e-2f, WeightDecay = 0 });
        int T = ids.Length - 1;
        var input = new GptInput(1, T, ids[..T]);
        var targets = ids[1..];
        var dLogits = new float[T * config.VocabSize];
        float loss = float.NaN;
        GptPass? pass = null;

        int steps = 0;
        for (; steps < 300; steps++)
        {
            pass = gpt.Forward(input, reuse: pass);
            loss = Gpt.CrossEntropy(pass, targets, null, dLogits);
            if (loss < 0.05f) break;
            gpt.ZeroGrad();
            gpt.Backward(pass, dLogits);
            gpt.ParameterSet.ClipGradNorm(1);
            opt.Step();
        }

        output.WriteLine($"seed {seed}: loss {loss:F4} after {steps} steps");
        Assert.True(loss < 0.05f, $"loss after training {loss} (seed {seed})");
    }

    [Fact]
    public void Create_UsesScaledInitOnResidualProjections()
    {
        var config = GptConfig.Named("small", 64);
        var gpt = Gpt.Create(config, new Rng(3), GptHeads.Value);

        static double Std(Span<float> x) { double m = 0; foreach (var v in x) m += v; m /= x.Length; double s = 0; foreach (var v in x) s += (v - m) * (v - m); return Math.Sqrt(s / x.Length); }
        Assert.Equal(0.02, Std(gpt.Param("h.0.attn.c_attn.weight")), 3);
        Assert.Equal(0.02 / Math.Sqrt(8), Std(gpt.Param("h.3.mlp.c_proj.weight")), 3);
        Assert.All(gpt.Param("h.1.ln_2.weight").ToArray(), v => Assert.Equal(1f, v));
        Assert.All(gpt.Param("h.1.mlp.c_fc.bias").ToArray(), v => Assert.Equal(0f, v));
    }

    [Fact]
    public void SaveLoad_RoundTripIsBitIdentical_AndGivesTheSameLogits()
    {
        using var dir = new TempDirectory();
        var config = RandomWeights.TinyConfig() with { EosTokenId = 10 };
        var gpt = Gpt.Create(config, new Rng(4), GptHeads.Value);

        gpt.Save(dir.Path);
        var back = Gpt.Load(dir.Path);

        Assert.Equal(GptHeads.Value, back.Heads);
        Assert.Equal(config, back.Config);
        Assert.Equal(gpt.Parameters.Select(BitConverter.SingleToInt32Bits), back.Parameters.Select(BitConverter.SingleToInt32Bits));
        var input = new GptInput(1, 3, [1, 2, 3]);
        Assert.Equal(gpt.Forward(input).Logits, back.Forward(input).Logits);
    }

    [Fact]
    public void Dropout_ChangesTrainingOutputsButNotEvaluation_AndIsSeeded()
    {
        var config = RandomWeights.TinyConfig() with { Dropout = 0.2f };
        var gpt = Gpt.Create(config, new Rng(5));
        var input = new GptInput(1, 4, [1, 2, 3, 4]);

        var eval1 = gpt.Forward(input).Logits!.ToArray();
        var eval2 = gpt.Forward(input).Logits!.ToArray();
        var trainA = gpt.Forward(input, new GptForwardOptions { DropoutRng = new Rng(9) }).Logits!.ToArray();
        var trainB = gpt.Forward(input, new GptForwardOptions { DropoutRng = new Rng(9) }).Logits!.ToArray();

        Assert.Equal(eval1, eval2);
        Assert.Equal(trainA, trainB);
        Assert.NotEqual(eval1, trainA);
    }

    [Fact]
    public void BadInput_IsNamed()
    {
        var gpt = Gpt.Create(RandomWeights.TinyConfig(), new Rng(1));
        Assert.Contains("token 99", Assert.Throws<ArgumentException>(() => gpt.Forward(new GptInput(1, 2, [1, 99]))).Message);
        Assert.Contains("block size", Assert.Throws<ArgumentException>(() => gpt.Forward(new GptInput(1, 9, new int[9]))).Message);
        Assert.Contains("no real token", Assert.Throws<ArgumentException>(() => gpt.Forward(new GptInput(1, 2, [1, 2], [0, 0]))).Message);
    }
}
