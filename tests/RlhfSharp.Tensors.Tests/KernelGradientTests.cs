// Every backward kernel of Tensors/Kernels against float64 central differences of a float64 forward written out here:
// L = Σ g·f(inputs) for a fixed random g, differentiated with the fourth-order stencil
// (−L(x+2h) + 8L(x+h) − 8L(x−h) + L(x−2h)) / 12h in double precision, so the only noise left is the kernels' float32
// rounding. (GradCheck does the same through the autograd ops, from float32 forwards.)
using RlhfSharp.Tensors.Kernels;

namespace RlhfSharp.Tensors.Tests;

public sealed class KernelGradientTests
{
    private static float[] Randn(Rng rng, int n, float std = 1f) => Tensor.Randn(rng, std, n).ToArray();

    /// <summary>
    /// ∂L/∂x[i] by central differences of <paramref name="loss"/> in double precision, for every <paramref name="every"/>-th i
    /// (NaN elsewhere: not checked).
    /// </summary>
    private static double[] Numeric(Func<double[], double> loss, float[] x, double h = 1e-3, int every = 1)
    {
        var at = x.Select(v => (double)v).ToArray();
        var grad = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            if (i % every != 0)
            {
                grad[i] = double.NaN;
                continue;
            }
            double v = at[i];
            at[i] = v + 2 * h; double p2 = loss(at);
            at[i] = v + h; double p1 = loss(at);
            at[i] = v - h; double m1 = loss(at);
            at[i] = v - 2 * h; double m2 = loss(at);
            at[i] = v;
            grad[i] = (-p2 + 8 * p1 - 8 * m1 + m2) / (12 * h);
        }
        return grad;
    }

    private static void AssertClose(double[] expected, float[] actual, string what, double tolerance = 1e-5)
    {
        double diff = 0, norm = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            if (double.IsNaN(expected[i])) continue;
            diff += (actual[i] - expected[i]) * (actual[i] - expected[i]);
            norm += expected[i] * expected[i];
        }
        Assert.True(norm > 1e-6, $"{what}: the numeric gradient is ~0, so the check would prove nothing");
        Assert.True(Math.Sqrt(diff / norm) < tolerance, $"{what}: relative error {Math.Sqrt(diff / norm):G3}");
    }

    private static double Dot(float[] g, double[] y)
    {
        double s = 0;
        for (int i = 0; i < y.Length; i++) s += g[i] * y[i];
        return s;
    }

    [Theory]
    [InlineData(3, 7)]
    [InlineData(5, 40)]
    public void LayerNormBackwardMatchesCentralDifferences(int rows, int C)
    {
        var rng = new Rng((ulong)(rows * C));
        var x = Randn(rng, rows * C, 2f);
        var w = Randn(rng, C);
        var b = Randn(rng, C);
        var g = Randn(rng, rows * C);
        float[] y = new float[rows * C], mean = new float[rows], rstd = new float[rows];
        Norms.LayerNormForward(x, w, b, y, mean, rstd, C, 1e-5f);
        float[] dx = new float[rows * C], dw = new float[C], db = new float[C];
        Norms.LayerNormBackward(g, x, w, mean, rstd, dx, dw, db, C);

        double[] Forward(double[] xs, double[] ws, double[] bs)
        {
            var o = new double[rows * C];
            for (int r = 0; r < rows; r++)
            {
                double m = 0, v = 0;
                for (int i = 0; i < C; i++) m += xs[r * C + i];
                m /= C;
                for (int i = 0; i < C; i++) v += (xs[r * C + i] - m) * (xs[r * C + i] - m);
                double s = 1 / Math.Sqrt(v / C + 1e-5);
                for (int i = 0; i < C; i++) o[r * C + i] = (xs[r * C + i] - m) * s * ws[i] + bs[i];
            }
            return o;
        }
        double[] D(float[] a) => a.Select(v => (double)v).ToArray();
        AssertClose(Numeric(xs => Dot(g, Forward(xs, D(w), D(b))), x), dx, "dx", 1e-4);
        AssertClose(Numeric(ws => Dot(g, Forward(D(x), ws, D(b))), w), dw, "dweight");
        AssertClose(Numeric(bs => Dot(g, Forward(D(x), D(w), bs)), b), db, "dbias");
    }

    [Fact]
    public void GeluBackwardMatchesCentralDifferences()
    {
        var rng = new Rng(3);
        var x = Randn(rng, 37, 2.5f);
        var g = Randn(rng, 37);
        var dx = new float[37];
        Activations.GeluBackward(x, g, dx);
        double[] Forward(double[] xs) => xs.Select(v => 0.5 * v * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)))).ToArray();
        AssertClose(Numeric(xs => Dot(g, Forward(xs)), x), dx, "gelu dx");
    }

    [Theory]
    [InlineData(LinearWeightLayout.OutIn)]
    [InlineData(LinearWeightLayout.InOut)]
    public void LinearBackwardMatchesCentralDifferences(LinearWeightLayout layout)
    {
        var rng = new Rng(5);
        int N = 4, C = 7, OC = 5;
        var x = Randn(rng, N * C);
        var w = Randn(rng, C * OC);
        var b = Randn(rng, OC);
        var g = Randn(rng, N * OC);
        float[] dx = new float[N * C], dw = new float[C * OC], db = new float[OC];
        LinearKernels.Backward(g, x, w, dx, dw, db, N, C, OC, layout);

        double[] Forward(double[] xs, double[] ws, double[] bs)
        {
            var o = new double[N * OC];
            for (int i = 0; i < N; i++)
                for (int j = 0; j < OC; j++)
                {
                    double s = bs[j];
                    for (int c = 0; c < C; c++) s += xs[i * C + c] * (layout == LinearWeightLayout.OutIn ? ws[j * C + c] : ws[c * OC + j]);
                    o[i * OC + j] = s;
                }
            return o;
        }
        double[] D(float[] a) => a.Select(v => (double)v).ToArray();
        AssertClose(Numeric(xs => Dot(g, Forward(xs, D(w), D(b))), x), dx, "dx");
        AssertClose(Numeric(ws => Dot(g, Forward(D(x), ws, D(b))), w), dw, "dweight");
        AssertClose(Numeric(bs => Dot(g, Forward(D(x), D(w), bs)), b), db, "dbias");
    }

    [Fact]
    public void AttentionBackwardMatchesCentralDifferencesAcrossRowBlocksWithPadding()
    {
        // T = 131 crosses the 128-row block; row 0 is left-padded by two tokens (queries that attend nothing), row 1 has a hole.
        var rng = new Rng(7);
        int B = 2, NH = 1, T = 131, HS = 2, n = B * NH * T * HS;
        var mask = Enumerable.Range(0, B * T).Select(i => (byte)(i < 2 || i == T + 3 ? 0 : 1)).ToArray();
        var d = new Attention.Dims(B, NH, T, HS);
        var L = new AttentionLayout(0, NH * T * HS, T * HS, HS);
        var q = Randn(rng, n);
        var k = Randn(rng, n);
        var v = Randn(rng, n);
        var g = Randn(rng, n);
        var probs = new float[B * NH * T * T];
        Attention.Forward(d, q, L, k, L, v, L, new float[n], L, mask, probs);
        float[] dq = new float[n], dk = new float[n], dv = new float[n];
        Attention.Backward(d, q, L, k, L, v, L, g, L, probs, dq, dk, dv);

        double[] Forward(double[] qs, double[] ks, double[] vs)
        {
            var o = new double[n];
            var z = new double[T];
            double scale = 1 / Math.Sqrt(HS);
            for (int bh = 0; bh < B * NH; bh++)
            {
                int at = bh * T * HS, b = bh / NH;
                for (int t = 0; t < T; t++)
                {
                    double max = double.NegativeInfinity;
                    for (int s = 0; s < T; s++)
                    {
                        z[s] = double.NegativeInfinity;
                        if (s > t || mask[b * T + s] == 0) continue;
                        double dot = 0;
                        for (int e = 0; e < HS; e++) dot += qs[at + t * HS + e] * ks[at + s * HS + e];
                        max = Math.Max(max, z[s] = dot * scale);
                    }
                    if (double.IsNegativeInfinity(max)) continue;
                    double sum = 0;
                    for (int s = 0; s < T; s++) sum += z[s] = Math.Exp(z[s] - max);
                    for (int s = 0; s <= t; s++)
                        for (int e = 0; e < HS; e++) o[at + t * HS + e] += z[s] / sum * vs[at + s * HS + e];
                }
            }
            return o;
        }
        double[] D(float[] a) => a.Select(x => (double)x).ToArray();
        // Every third coordinate (each a full float64 forward four times) keeps the check to a few seconds; 3 and HS = 2
        // are coprime, so every query and key position is probed.
        AssertClose(Numeric(qs => Dot(g, Forward(qs, D(k), D(v))), q, every: 3), dq, "dq");
        AssertClose(Numeric(ks => Dot(g, Forward(D(q), ks, D(v))), k, every: 3), dk, "dk");
        AssertClose(Numeric(vs => Dot(g, Forward(D(q), D(k), vs)), v, every: 3), dv, "dv");
        for (int t = 0; t < 2; t++)
            for (int e = 0; e < HS; e++) Assert.Equal(0f, dq[t * HS + e]); // queries that attend nothing get no gradient
    }
}
