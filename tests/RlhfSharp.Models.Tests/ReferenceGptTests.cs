// Sanity of the yardstick itself: causality, and the no-block case worked out by hand.
using RlhfSharp.Models.Checkpoints;

namespace RlhfSharp.Models.Tests;

public sealed class ReferenceGptTests
{
    [Fact]
    public void LaterTokens_DoNotChangeEarlierLogits()
    {
        var config = RandomWeights.TinyConfig();
        var gpt = new ReferenceGpt(config, RandomWeights.For(config, 9));

        var a = gpt.Logits([1, 2, 3, 4, 5]);
        var b = gpt.Logits([1, 2, 3, 9, 0]);
        var c = gpt.Logits([1, 2, 4, 4, 5]);

        for (int t = 0; t < 3; t++) Assert.Equal(a[t], b[t]);
        Assert.NotEqual(a[2], c[2]);
        Assert.NotEqual(a[3], b[3]);
    }

    [Fact]
    public void WithSilentBlocks_LogitsAreFinalNormOfEmbeddingsTimesWte()
    {
        var config = RandomWeights.TinyConfig(layers: 1);
        var w = RandomWeights.For(config, 2);
        // Zero output projections: both residual branches add nothing, leaving ln_f(wte[tok] + wpe[t]) · wteᵀ.
        foreach (var name in new[] { "h.0.attn.c_proj.weight", "h.0.attn.c_proj.bias", "h.0.mlp.c_proj.weight", "h.0.mlp.c_proj.bias" })
            w[name] = new StoredTensor(w[name].Shape, new float[w[name].Values.Length]);
        var gpt = new ReferenceGpt(config, w);
        int[] tokens = [3, 7];

        var logits = gpt.Logits(tokens);

        int C = config.NEmbd;
        for (int t = 0; t < tokens.Length; t++)
        {
            var e = new double[C];
            for (int c = 0; c < C; c++) e[c] = w["wte.weight"].Values[tokens[t] * C + c] + (double)w["wpe.weight"].Values[t * C + c];
            double mean = e.Average(), sd = Math.Sqrt(e.Select(v => (v - mean) * (v - mean)).Average() + 1e-5);
            for (int v = 0; v < config.VocabSize; v++)
            {
                double expected = 0;
                for (int c = 0; c < C; c++)
                    expected += ((e[c] - mean) / sd * w["ln_f.weight"].Values[c] + w["ln_f.bias"].Values[c]) * w["wte.weight"].Values[v * C + c];
                Assert.Equal(expected, logits[t][v], 1e-9);
            }
        }
    }

    [Fact]
    public void Gelu_MatchesKnownValues()
    {
        // GELU(1) ≈ 0.841192 and GELU(-1) ≈ -0.158808 with the tanh approximation.
        Assert.Equal(0.841192, ReferenceGpt.Gelu(1), 5);
        Assert.Equal(-0.158808, ReferenceGpt.Gelu(-1), 5);
        Assert.Equal(0, ReferenceGpt.Gelu(0));
    }
}
