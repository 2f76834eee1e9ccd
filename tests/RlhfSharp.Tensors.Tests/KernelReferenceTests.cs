// Each SIMD kernel against its plain scalar reference on every size 1..257 (every vector tail), and on
// row counts that split unevenly over threads.
using RlhfSharp.Tensors.Kernels;

namespace RlhfSharp.Tensors.Tests;

public sealed unsafe class KernelReferenceTests
{
    private static float[] Randn(Rng rng, int n, float std = 1f) => Tensor.Randn(rng, std, n).ToArray();

    private static void Close(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, float tol, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol * (1 + Math.Abs(expected[i])), $"{what}: element {i}: {expected[i]} vs {actual[i]}");
    }

    [Fact]
    public void SoftmaxAndLogSumExpMatchReference()
    {
        var rng = new Rng(1);
        for (int n = 1; n <= 257; n++)
        {
            var x = Randn(rng, n, 4f);
            var yRef = new float[n];
            var y = new float[n];
            Softmax.ForwardReference(x, yRef);
            Softmax.Forward(x, y);
            Close(yRef, y, 2e-6f, $"softmax n={n}");
            Close([Softmax.LogSumExpReference(x)], [Softmax.LogSumExp(x)], 1e-6f, $"lse n={n}");
            var dRef = Randn(rng, n);
            var d = (float[])dRef.Clone();
            float lse = Softmax.LogSumExpReference(x);
            for (int i = 0; i < n; i++) dRef[i] += 0.7f * MathF.Exp(x[i] - lse);
            Softmax.AddScaledProbabilities(x, lse, 0.7f, d);
            Close(dRef, d, 2e-6f, $"scaled probabilities n={n}");
        }
    }

    [Fact]
    public void LayerNormForwardAndBackwardMatchReference()
    {
        var rng = new Rng(2);
        foreach (int rows in new[] { 1, 3, 37 })
        {
            for (int C = 1; C <= 257; C++)
            {
                var x = Randn(rng, rows * C, 2f);
                var w = Randn(rng, C);
                var b = Randn(rng, C);
                var dy = Randn(rng, rows * C);
                float[] y1 = new float[rows * C], y2 = new float[rows * C], m1 = new float[rows], m2 = new float[rows], r1 = new float[rows], r2 = new float[rows];
                Norms.LayerNormForwardReference(x, w, b, y1, m1, r1, C, 1e-5f);
                Norms.LayerNormForward(x, w, b, y2, m2, r2, C, 1e-5f);
                Close(y1, y2, 2e-5f, $"ln fwd rows={rows} C={C}");
                Close(r1, r2, 2e-5f, $"ln rstd rows={rows} C={C}");
                var init = Randn(rng, rows * C + 2 * C);
                float[] dx1 = init[..(rows * C)], dx2 = (float[])dx1.Clone();
                float[] dw1 = init[(rows * C)..(rows * C + C)], dw2 = (float[])dw1.Clone();
                float[] db1 = init[(rows * C + C)..], db2 = (float[])db1.Clone();
                Norms.LayerNormBackwardReference(dy, x, w, m1, r1, dx1, dw1, db1, C);
                Norms.LayerNormBackward(dy, x, w, m1, r1, dx2, dw2, db2, C);
                Close(dx1, dx2, 1e-4f, $"ln dx rows={rows} C={C}");
                Close(dw1, dw2, 1e-4f, $"ln dw rows={rows} C={C}");
                Close(db1, db2, 1e-5f, $"ln db rows={rows} C={C}");
            }
        }
    }

    [Fact]
    public void GeluForwardAndBackwardMatchReference()
    {
        var rng = new Rng(3);
        foreach (int n in Enumerable.Range(1, 257).Append(2048 * 3 + 5))
        {
            var x = Randn(rng, n, 3f);
            var g = Randn(rng, n);
            float[] y1 = new float[n], y2 = new float[n];
            Activations.GeluForwardReference(x, y1);
            Activations.GeluForward(x, y2);
            Close(y1, y2, 5e-6f, $"gelu n={n}"); // TensorPrimitives.Tanh and MathF.Tanh differ by a few ulp
            var d1 = Randn(rng, n);
            var d2 = (float[])d1.Clone();
            Activations.GeluBackwardReference(x, g, d1);
            Activations.GeluBackward(x, g, d2);
            Close(d1, d2, 1e-5f, $"gelu backward n={n}");
        }
    }

    [Fact]
    public void ReluBackwardMatchesReference()
    {
        var rng = new Rng(6);
        for (int n = 1; n <= 257; n++)
        {
            var x = Randn(rng, n);
            var g = Randn(rng, n);
            var d1 = Randn(rng, n);
            var d2 = (float[])d1.Clone();
            Activations.ReluBackwardReference(x, g, d1);
            Activations.ReluBackward(x, g, d2);
            Assert.Equal(d1, d2); // a masked add is exact
        }
    }

    [Fact]
    public void AdamWMatchesReference()
    {
        var rng = new Rng(4);
        for (int n = 1; n <= 257; n++)
        {
            var p1 = Randn(rng, n);
            var g = Randn(rng, n);
            var m1 = Randn(rng, n, 0.1f);
            var v1 = Randn(rng, n, 0.1f).Select(Math.Abs).ToArray();
            float[] p2 = (float[])p1.Clone(), m2 = (float[])m1.Clone(), v2 = (float[])v1.Clone();
            OptimizerKernels.AdamWReference(p1, g, m1, v1, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.3f, 0.2f);
            OptimizerKernels.AdamW(p2, g, m2, v2, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.3f, 0.2f);
            Close(p1, p2, 1e-6f, $"adamw p n={n}");
            Close(m1, m2, 1e-6f, $"adamw m n={n}");
            Close(v1, v2, 1e-6f, $"adamw v n={n}");
        }
    }

    [Fact]
    public void AttentionRowKernelsMatchReference()
    {
        var rng = new Rng(5);
        for (int keys = 1; keys <= 257; keys++)
        {
            int t = rng.NextInt(keys);
            var scores = Randn(rng, keys, 3f);
            var mask = Enumerable.Range(0, keys).Select(_ => rng.NextDouble() < 0.2 ? 0f : 1f).ToArray();
            var probe = Randn(rng, keys);
            fixed (float* pm = mask)
            {
                foreach (bool masked in new[] { false, true })
                {
                    float* mk = masked ? pm : null;
                    float[] a = (float[])scores.Clone(), b = (float[])scores.Clone();
                    float l1, l2;
                    fixed (float* pa = a, pb = b)
                    {
                        l1 = Attention.MaskedSoftmaxRowReference(pa, t, keys, mk, 0.35f);
                        l2 = Attention.MaskedSoftmaxRow(pb, t, keys, mk, 0.35f);
                    }
                    Close(a, b, 2e-6f, $"masked softmax keys={keys}");
                    Assert.True(l1 == l2 || Math.Abs(l1 - l2) < 1e-5f, $"lse keys={keys}: {l1} vs {l2}");
                    float[] c = (float[])scores.Clone(), d = (float[])scores.Clone();
                    fixed (float* pc = c, pd = d)
                    {
                        Attention.ProbabilitiesFromLseReference(pc, t, keys, mk, 0.35f, l1);
                        Attention.ProbabilitiesFromLse(pd, t, keys, mk, 0.35f, l1);
                    }
                    Close(c, d, 2e-6f, $"probabilities from lse keys={keys}");
                    Close(a, c, 2e-6f, $"recomputed probabilities keys={keys}");
                    float[] e = (float[])probe.Clone(), f = (float[])probe.Clone();
                    fixed (float* pa = a, pe = e, pf = f)
                    {
                        Attention.SoftmaxBackwardRowReference(pa, pe, keys, 0.35f);
                        Attention.SoftmaxBackwardRow(pa, pf, keys, 0.35f);
                    }
                    Close(e, f, 2e-6f, $"softmax backward row keys={keys}");
                }
            }
        }
    }
}
