// The fast token sampler (heap top-k, thresholded top-p, vectorised softmax) against the plain reference: sort the whole
// vocabulary, zero the tail, draw with Rng.Categorical. Same kept set and same token for the same seed, on sizes 1..257.
using RlhfSharp.Tensors;

namespace RlhfSharp.Models.Tests;

public sealed class TokenSamplerTests
{
    /// <summary>The straightforward definition: indices sorted by descending weight (ties: lower index first), then cut.</summary>
    private static int[] ReferenceKept(float[] w, int topK, float topP)
    {
        int V = w.Length;
        var order = Enumerable.Range(0, V).OrderByDescending(v => w[v]).ThenBy(v => v).ToArray();
        int keep = topK > 0 ? Math.Min(topK, V) : V;
        if (topP < 1)
        {
            double total = 0;
            for (int v = 0; v < V; v++) total += w[v];
            double cumulative = 0;
            for (int i = 0; i < keep; i++)
            {
                cumulative += w[order[i]] / total;
                if (cumulative >= topP)
                {
                    keep = i + 1;
                    break;
                }
            }
        }
        return [.. order.Take(keep).Order()];
    }

    /// <summary>Weights as softmax produces them (largest 1), with runs of exact ties and a long light tail.</summary>
    private static float[] RandomWeights(Rng rng, int n)
    {
        var w = new float[n];
        for (int v = 0; v < n; v++)
        {
            double logit = rng.Normal() * (v % 3 == 0 ? 4 : 1);
            if (v % 5 == 0) logit = Math.Round(logit); // many exact ties
            w[v] = (float)Math.Exp(logit);
        }
        float max = w.Max();
        for (int v = 0; v < n; v++) w[v] /= max;
        return w;
    }

    [Fact]
    public void KeptTokens_EqualTheFullSortDefinition_OnEverySize()
    {
        var rng = new Rng(17);
        float[] topPs = [1e-6f, 0.1f, 0.5f, 0.9f, 0.999f, 1f];
        for (int n = 1; n <= 257; n++)
        {
            var w = RandomWeights(rng, n);
            var kept = new int[n];
            foreach (int topK in new[] { 0, 1, 2, 5, n / 2, n - 1, n, n + 3 }.Where(k => k >= 0).Distinct())
                foreach (float topP in topPs)
                {
                    if (topK == 0 && topP >= 1) continue; // no truncation asked: the sampler never calls Kept then
                    int count = TokenSampler.Kept(w, topK, topP, kept);
                    Assert.Equal(ReferenceKept(w, topK, topP), kept[..count]);
                }
        }
    }

    [Fact]
    public void Sample_DrawsTheSameTokenAsCategoricalOverTheTruncatedSoftmax()
    {
        var data = new Rng(5);
        for (int n = 1; n <= 257; n++)
        {
            var logits = Enumerable.Range(0, n).Select(_ => (float)(data.Normal() * 3)).ToArray();
            foreach (var o in new[]
            {
                new GenerationOptions { Temperature = 0.7f },
                new GenerationOptions { Temperature = 1.3f, TopK = 4 },
                new GenerationOptions { Temperature = 1f, TopP = 0.8f },
                new GenerationOptions { Temperature = 2f, TopK = 9, TopP = 0.6f },
            })
            {
                var sampler = new TokenSampler(n);
                ulong seed = (ulong)(n * 31 + o.TopK);
                (int token, float logProb) = sampler.Sample(logits, o, new Rng(seed), 0);

                // Reference weights as the sampler computes them (the kernel under test is the selection and the draw),
                // then the plain path: zero what is cut, Rng.Categorical over all n.
                var w = new float[n];
                TokenSampler.Weights(logits, 1f / o.Temperature, w, 0);
                bool truncated = (o.TopK > 0 && o.TopK < n) || o.TopP < 1;
                var keep = truncated ? ReferenceKept(w, o.TopK, o.TopP) : Enumerable.Range(0, n).ToArray();
                var zeroed = new float[n];
                foreach (int v in keep) zeroed[v] = w[v];
                Assert.Equal(new Rng(seed).Categorical(zeroed), token);

                var scaled = logits.Select(l => l / (double)o.Temperature).ToArray();
                Assert.Equal(ReferenceGpt.LogSoftmax(scaled)[token], logProb, 1e-5);
            }
        }
    }

    [Fact]
    public void Greedy_PicksTheFirstLargestLogit_WithItsLogProbability()
    {
        var rng = new Rng(9);
        for (int n = 1; n <= 257; n++)
        {
            var logits = Enumerable.Range(0, n).Select(_ => (float)Math.Round(rng.Normal() * 2, 1)).ToArray(); // ties likely
            (int token, float logProb) = new TokenSampler(n).Greedy(logits, 0);
            Assert.Equal(Array.IndexOf(logits, logits.Max()), token);
            Assert.Equal(ReferenceGpt.LogSoftmax([.. logits.Select(l => (double)l)])[token], logProb, 1e-5);
        }
    }

    [Fact]
    public void NonFiniteLogits_AreRefusedNamingTheRow()
    {
        var logits = new[] { 0.5f, float.NaN, 1f };
        var ex = Assert.Throws<ArgumentException>(() => new TokenSampler(3).Sample(logits, new GenerationOptions(), new Rng(1), 7));
        Assert.Contains("row 7", ex.Message);
    }
}
