// Each kernel of Tensors/Kernels against its plain scalar reference on every size 1..257 (every vector tail), and on
// row counts that split unevenly over threads: bit for bit where the reference writes the kernel's order out (layer norm,
// the softmax-backward row, cached scores, reductions), within a stated tolerance where it cannot (Exp, Tanh, GEMM sums).
// Backward kernels against float64 central differences: KernelGradientTests. Attention as a whole: AttentionKernelTests.
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
    public void LayerNormForwardAndBackwardGiveTheBitsOfTheirReference()
    {
        // The references write the kernels' order out (Reduce.SumInOrder/DotInOrder for the row sums, MathF.FusedMultiplyAdd
        // where the kernels fuse), so the results must be identical, on every width C (every vector tail) and on row counts
        // that split over threads (rows) and columns (the parameter gradients).
        var rng = new Rng(2);
        var shapes = new[] { 1, 3, 37 }.SelectMany(rows => Enumerable.Range(1, 257).Select(C => (rows, C))).Append((600, 200)).Append((1000, 64));
        foreach (var (rows, C) in shapes)
        {
            var x = Randn(rng, rows * C, 2f);
            var w = Randn(rng, C);
            var b = Randn(rng, C);
            var dy = Randn(rng, rows * C);
            float[] y1 = new float[rows * C], y2 = new float[rows * C], m1 = new float[rows], m2 = new float[rows], r1 = new float[rows], r2 = new float[rows];
            Norms.LayerNormForwardReference(x, w, b, y1, m1, r1, C, 1e-5f);
            Norms.LayerNormForward(x, w, b, y2, m2, r2, C, 1e-5f);
            Assert.True(y1.AsSpan().SequenceEqual(y2), $"ln forward rows={rows} C={C}");
            Assert.True(m1.AsSpan().SequenceEqual(m2) && r1.AsSpan().SequenceEqual(r2), $"ln mean/rstd rows={rows} C={C}");
            var init = Randn(rng, rows * C + 2 * C);
            float[] dx1 = init[..(rows * C)], dx2 = (float[])dx1.Clone();
            float[] dw1 = init[(rows * C)..(rows * C + C)], dw2 = (float[])dw1.Clone();
            float[] db1 = init[(rows * C + C)..], db2 = (float[])db1.Clone();
            Norms.LayerNormBackwardReference(dy, x, w, m1, r1, dx1, dw1, db1, C);
            Norms.LayerNormBackward(dy, x, w, m1, r1, dx2, dw2, db2, C);
            Assert.True(dx1.AsSpan().SequenceEqual(dx2), $"ln dx rows={rows} C={C}");
            Assert.True(dw1.AsSpan().SequenceEqual(dw2), $"ln dweight rows={rows} C={C}");
            Assert.True(db1.AsSpan().SequenceEqual(db2), $"ln dbias rows={rows} C={C}");
        }
    }

    [Fact]
    public void LayerNormBackwardSkipsTheGradientsLeftEmpty()
    {
        var rng = new Rng(21);
        int rows = 5, C = 19;
        var x = Randn(rng, rows * C);
        var w = Randn(rng, C);
        var dy = Randn(rng, rows * C);
        float[] y = new float[rows * C], m = new float[rows], r = new float[rows];
        Norms.LayerNormForward(x, w, Randn(rng, C), y, m, r, C, 1e-5f);
        float[] dxAll = new float[rows * C], dwAll = new float[C], dbAll = new float[C];
        Norms.LayerNormBackward(dy, x, w, m, r, dxAll, dwAll, dbAll, C);
        var dxOnly = new float[rows * C];
        Norms.LayerNormBackward(dy, x, w, m, r, dxOnly, default, default, C);
        var dbOnly = new float[C];
        Norms.LayerNormBackward(dy, x, w, m, r, default, default, dbOnly, C);
        Assert.Equal(dxAll, dxOnly);
        Assert.Equal(dbAll, dbOnly);
        Assert.Contains(dwAll, v => v != 0f);
    }

    [Fact]
    public void GeluForwardAndBackwardMatchReference()
    {
        // The kernel evaluates x·σ(2u) with Vector256.Exp; the reference is the tanh form with MathF.Tanh, the same function
        // a few ulp apart, so the comparison allows 5e-6 relative (forward) and 1e-5 (backward).
        var rng = new Rng(3);
        foreach (int n in Enumerable.Range(0, 258).Append(4096 * 3 + 5))
        {
            var x = Enumerable.Range(0, n).Select(i => (float)(rng.Normal() * (i % 7 == 0 ? 12 : 3))).ToArray();
            var g = Randn(rng, n);
            float[] y1 = new float[n], y2 = new float[n];
            Activations.GeluForwardReference(x, y1);
            Activations.GeluForward(x, y2);
            Close(y1, y2, 5e-6f, $"gelu n={n}");
            var d1 = Randn(rng, n);
            var d2 = (float[])d1.Clone();
            Activations.GeluBackwardReference(x, g, d1);
            Activations.GeluBackward(x, g, d2);
            Close(d1, d2, 1e-5f, $"gelu backward n={n}");
        }
    }

    [Fact]
    public void GeluOfAValueDoesNotDependOnWhereItSits()
    {
        // The tail of a span runs the body's vector formula, so shifting the same values by 1..7 places (moving them in and
        // out of the tail) must give the same bits.
        var rng = new Rng(31);
        var x = Randn(rng, 23, 3f);
        var g = Randn(rng, 23);
        var y0 = new float[23];
        var d0 = new float[23];
        Activations.GeluForward(x, y0);
        Activations.GeluBackward(x, g, d0);
        for (int shift = 1; shift < 8; shift++)
        {
            var xs = new float[23 + shift];
            var gs = new float[23 + shift];
            x.CopyTo(xs, shift);
            g.CopyTo(gs, shift);
            var ys = new float[xs.Length];
            var ds = new float[xs.Length];
            Activations.GeluForward(xs, ys);
            Activations.GeluBackward(xs, gs, ds);
            Assert.Equal(y0, ys[shift..]);
            Assert.Equal(d0, ds[shift..]);
        }
    }

    [Fact]
    public void GeluSaturatesWithoutNaN()
    {
        float[] x = [-100f, -30f, 30f, 100f, 0f];
        var y = new float[5];
        var dx = new float[5];
        Activations.GeluForward(x, y);
        Activations.GeluBackward(x, [1, 1, 1, 1, 1], dx);
        Assert.Equal([0f, 0f, 30f, 100f, 0f], y.Select(v => v == 0 ? 0f : v));
        Assert.Equal([0f, 0f, 1f, 1f, 0.5f], dx.Select(v => MathF.Round(v, 5) == 0 ? 0f : MathF.Round(v, 5)));
    }

    [Theory]
    [InlineData(LinearWeightLayout.OutIn)]
    [InlineData(LinearWeightLayout.InOut)]
    public void LinearForwardAndBackwardMatchReference(LinearWeightLayout layout)
    {
        // The products go through Gemm (fused multiply-add chains over the depth); the reference sums them in float64,
        // so they agree to float32 rounding. The bias and its gradient are summed in the same order: identical bits.
        var rng = new Rng(7);
        foreach (int N in new[] { 1, 3, 7, 40 })
            foreach (int C in new[] { 1, 5, 17, 33 })
                foreach (int OC in new[] { 1, 9, 31 })
                {
                    var x = Randn(rng, N * C);
                    var w = Randn(rng, C * OC);
                    var b = Randn(rng, OC);
                    var dy = Randn(rng, N * OC);
                    float[] y1 = new float[N * OC], y2 = new float[N * OC];
                    LinearKernels.ForwardReference(x, w, b, y1, N, C, OC, layout);
                    LinearKernels.Forward(x, w, b, y2, N, C, OC, layout);
                    Close(y1, y2, 1e-5f, $"linear N={N} C={C} OC={OC}");
                    float[] dx1 = Randn(rng, N * C), dw1 = Randn(rng, C * OC), db1 = Randn(rng, OC);
                    float[] dx2 = (float[])dx1.Clone(), dw2 = (float[])dw1.Clone(), db2 = (float[])db1.Clone();
                    LinearKernels.BackwardReference(dy, x, w, dx1, dw1, db1, N, C, OC, layout);
                    LinearKernels.Backward(dy, x, w, dx2, dw2, db2, N, C, OC, layout);
                    Close(dx1, dx2, 1e-5f, $"linear dx N={N} C={C} OC={OC}");
                    Close(dw1, dw2, 1e-5f, $"linear dw N={N} C={C} OC={OC}");
                    Assert.Equal(db1, db2);
                }
    }

    [Fact]
    public void LinearLayoutsAreTransposesOfEachOther()
    {
        // The same map stored [out, in] and [in, out]: Gemm's sums do not depend on which operand is read transposed.
        var rng = new Rng(8);
        int N = 13, C = 21, OC = 11;
        var x = Randn(rng, N * C);
        var wOutIn = Randn(rng, OC * C);
        var wInOut = new float[C * OC];
        for (int o = 0; o < OC; o++)
            for (int c = 0; c < C; c++) wInOut[c * OC + o] = wOutIn[o * C + c];
        var b = Randn(rng, OC);
        float[] y1 = new float[N * OC], y2 = new float[N * OC];
        LinearKernels.Forward(x, wOutIn, b, y1, N, C, OC, LinearWeightLayout.OutIn);
        LinearKernels.Forward(x, wInOut, b, y2, N, C, OC, LinearWeightLayout.InOut);
        Assert.Equal(y1, y2);
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
            var mask = Enumerable.Range(0, keys).Select(_ => rng.NextDouble() < 0.2 ? (byte)0 : (byte)1).ToArray();
            // Left padding and a rare hole: most 8-key groups hold no masked key (the kernel passes those over whole).
            var padding = Enumerable.Range(0, keys).Select(s => s < keys / 5 || s % 37 == 11 ? (byte)0 : (byte)1).ToArray();
            var probe = Randn(rng, keys);
            fixed (byte* pm = mask, pd = padding)
            {
                foreach (int masked in new[] { 0, 1, 2 })
                {
                    byte* mk = masked == 0 ? null : masked == 1 ? pm : pd;
                    float[] a = (float[])scores.Clone(), b = (float[])scores.Clone();
                    fixed (float* pa = a, pb = b)
                    {
                        Attention.MaskedSoftmaxRowReference(pa, t, keys, mk, 0.35f);
                        Attention.MaskedSoftmaxRow(pb, t, keys, mk, 0.35f);
                    }
                    // TensorPrimitives.Exp and MathF.Exp differ by a few ulp; everything else is in the same order.
                    Close(a, b, 2e-6f, $"masked softmax keys={keys}");
                    Assert.All(b[(t + 1)..], p => Assert.Equal(0f, p));
                    float[] e = (float[])probe.Clone(), f = (float[])probe.Clone();
                    fixed (float* pa = a, pe = e, pf = f)
                    {
                        Attention.SoftmaxBackwardRowReference(pa, pe, t + 1, 0.35f);
                        Attention.SoftmaxBackwardRow(pa, pf, t + 1, 0.35f);
                    }
                    Assert.Equal(e, f); // the row sum in Reduce's order, then the same three roundings: identical bits
                }
            }
        }
    }

    [Theory]
    [InlineData(64)]
    [InlineData(12)]
    public void CachedScoresGiveTheBitsOfTheirReference(int HS)
    {
        // One fused multiply-add chain over d per key in the 128-, 64-, 32-, 8-wide and scalar paths alike (every tail up
        // to 100 keys, then the block edges of the 64- and 128-key loops and a long context).
        var rng = new Rng((ulong)HS);
        foreach (int n in Enumerable.Range(1, 100).Concat([127, 128, 129, 191, 192, 193, 255, 256, 257, 481]))
        {
            int ld = n + 3;
            var q = Randn(rng, HS);
            var kT = Randn(rng, HS * ld);
            float[] a = new float[n], b = new float[n];
            Attention.ScoresTransposedReference(a, q, kT, ld, n, HS);
            Attention.ScoresTransposed(b, q, kT, ld, n, HS);
            Assert.Equal(a, b);
        }
    }

    [Theory]
    [InlineData(64)]
    [InlineData(12)]
    [InlineData(72)]
    [InlineData(128)]
    public void CachedWeightedValuesGiveTheBitsOfTheirReference(int HS)
    {
        // The decode output Σ_s p[s]·v[s] kept in registers across keys must be the axpy-per-key chain bit for bit: every
        // key count's tail, zero probabilities (masked keys) skipped, values in a wider cache row (ldv > HS); float32 and
        // bfloat16 values (the latter against the reference on their exact widening).
        var rng = new Rng(4100 + (ulong)HS);
        foreach (int n in new[] { 1, 2, 7, 8, 9, 31, 64, 65, 130, 481 })
        {
            int ldv = HS + 3;
            var p = Randn(rng, n).Select((x, s) => s % 5 == 2 ? 0f : MathF.Abs(x)).ToArray();
            var v = Randn(rng, n * ldv);
            var expected = Enumerable.Repeat(float.NaN, HS).ToArray();
            var actual = Enumerable.Repeat(float.NaN, HS).ToArray();
            Attention.WeightedValuesReference(expected, p, v, ldv, n, HS);
            Attention.WeightedValues(actual, p, v, ldv, n, HS);
            Assert.True(expected.AsSpan().SequenceEqual(actual), $"HS {HS} n {n}: float32 values differ from the reference");

            var v16 = new ushort[v.Length];
            BFloat16.NarrowReference(v, v16);
            BFloat16.WidenReference(v16, v);
            Attention.WeightedValuesReference(expected, p, v, ldv, n, HS);
            AttentionCachedBf16.WeightedValues(actual, p, v16, ldv, n, HS);
            Assert.True(expected.AsSpan().SequenceEqual(actual), $"HS {HS} n {n}: bfloat16 values differ from the reference");
        }
    }
}
