// The KV-cache attention kernel (keys transposed per head, fused decode loop for a few queries, GEMMs for a prefill)
// against a plain double-precision masked causal attention, on every key count 1..257.
using RlhfSharp.Tensors;

namespace RlhfSharp.Models.Tests;

public sealed class CachedAttentionTests
{
    /// <summary>Query i sits at position offset+i and attends keys s ≤ that position whose mask is 1 (none → zeros).</summary>
    private static double[] Reference(float[] q, float[] k, float[] v, byte[] mask, int Tq, int Tk, int offset, int HS)
    {
        var output = new double[Tq * HS];
        for (int i = 0; i < Tq; i++)
        {
            var scores = new List<(int S, double Score)>();
            for (int s = 0; s <= offset + i; s++)
            {
                if (mask[s] == 0) continue;
                double dot = 0;
                for (int d = 0; d < HS; d++) dot += (double)q[i * HS + d] * k[s * HS + d];
                scores.Add((s, dot / Math.Sqrt(HS)));
            }
            if (scores.Count == 0) continue;
            double max = scores.Max(x => x.Score), sum = scores.Sum(x => Math.Exp(x.Score - max));
            foreach (var (s, score) in scores)
                for (int d = 0; d < HS; d++) output[i * HS + d] += Math.Exp(score - max) / sum * v[s * HS + d];
        }
        return output;
    }

    [Theory]
    [InlineData(64)]
    [InlineData(12)]
    public void CachedAttention_MatchesThePlainDefinition_ForEveryKeyCount(int HS)
    {
        var rng = new Rng((ulong)HS);
        for (int Tk = 1; Tk <= 257; Tk++)
        {
            foreach (int Tq in new[] { 1, 3, 6 }.Where(t => t <= Tk))
            {
                int offset = Tk - Tq, cap = Tk + 5; // the cache holds more positions than are filled
                var q = Enumerable.Range(0, Tq * HS).Select(_ => (float)rng.Normal()).ToArray();
                var k = Enumerable.Range(0, Tk * HS).Select(_ => (float)rng.Normal()).ToArray();
                var v = Enumerable.Range(0, Tk * HS).Select(_ => (float)rng.Normal()).ToArray();
                // Left padding masks the first keys (so a first query may see none), plus scattered holes.
                var mask = Enumerable.Range(0, Tk).Select(s => (byte)(s < Tk / 4 || s % 7 == 3 ? 0 : 1)).ToArray();
                var kT = new float[HS * cap];
                var vCache = new float[cap * HS];
                for (int s = 0; s < Tk; s++)
                    for (int d = 0; d < HS; d++)
                    {
                        kT[d * cap + s] = k[s * HS + d];
                        vCache[s * HS + d] = v[s * HS + d];
                    }
                var output = Enumerable.Repeat(float.NaN, Tq * HS).ToArray(); // every entry must be written
                var probs = new float[Tq * Tk];

                GptKernels.AttentionForwardCached(output, HS, probs, q, HS, kT, cap, vCache, HS, mask, Tq, Tk, offset, HS);

                var expected = Reference(q, k, v, mask, Tq, Tk, offset, HS);
                for (int i = 0; i < output.Length; i++)
                    Assert.True(Math.Abs(output[i] - expected[i]) < 1e-5, $"HS {HS} Tk {Tk} Tq {Tq} [{i}]: {output[i]} vs {expected[i]}");
            }
        }
    }
}
