// Central-difference gradient checker: compares an op's analytic backward with numerical derivatives of
// L(x) = Σ wᵢ·f(x)ᵢ for a fixed random projection w. L is evaluated in float64 from the float32 outputs,
// and the derivative uses the fourth-order stencil (−L(x+2h) + 8L(x+h) − 8L(x−h) + L(x−2h)) / 12h, so the
// truncation error is O(h⁴) and float32 rounding of f is the only noise.
namespace RlhfSharp.Tensors.Tests;

internal static class GradCheck
{
    /// <summary>Asserts ‖g − g_ref‖/‖g_ref‖ &lt; tolerance for every input (each must have RequiresGrad).</summary>
    public static void Check(Func<Tensor[], Tensor> f, Tensor[] inputs, double tolerance = 1e-3, float h = 1e-2f, ulong seed = 12345)
    {
        foreach (var x in inputs)
        {
            x.RequiresGrad = true;
            x.Grad = null;
        }
        var y = f(inputs);
        var rng = new Rng(seed);
        var w = new double[y.Length];
        for (int i = 0; i < w.Length; i++) w[i] = rng.Normal();

        // Analytic: backward with seed w (the gradient of Σ wᵢ yᵢ with respect to y).
        var seedT = Tensor.FromArray(w.Select(v => (float)v).ToArray(), y.ShapeArray());
        y.Backward(seedT);
        var analytic = inputs.Select(x => x.Grad?.ToArray() ?? new float[x.Length]).ToArray();

        double Loss()
        {
            using var _ = Autograd.NoGrad();
            var o = f(inputs).Span;
            double s = 0;
            for (int i = 0; i < o.Length; i++) s += w[i] * o[i];
            return s;
        }

        for (int k = 0; k < inputs.Length; k++)
        {
            var xs = inputs[k].Data;
            int off = inputs[k].Offset;
            var numeric = new double[inputs[k].Length];
            for (int i = 0; i < numeric.Length; i++)
            {
                float v = xs[off + i];
                xs[off + i] = v + 2 * h; double p2 = Loss();
                xs[off + i] = v + h; double p1 = Loss();
                xs[off + i] = v - h; double m1 = Loss();
                xs[off + i] = v - 2 * h; double m2 = Loss();
                xs[off + i] = v;
                numeric[i] = (-p2 + 8 * p1 - 8 * m1 + m2) / (12.0 * h);
            }
            double diff = 0, refNorm = 0;
            for (int i = 0; i < numeric.Length; i++)
            {
                diff += (analytic[k][i] - numeric[i]) * (analytic[k][i] - numeric[i]);
                refNorm += numeric[i] * numeric[i];
            }
            diff = Math.Sqrt(diff);
            refNorm = Math.Sqrt(refNorm);
            if (refNorm < 1e-6)
                Assert.True(diff < 1e-4, $"input {k}: numeric gradient is ~0 but analytic has norm {diff:G4}");
            else
                Assert.True(diff / refNorm < tolerance,
                    $"input {k} {inputs[k].ShapeString}: relative error {diff / refNorm:G4} (‖g_ref‖ = {refNorm:G4}); analytic [{string.Join(", ", analytic[k].Take(6))}], numeric [{string.Join(", ", numeric.Take(6).Select(d => d.ToString("G5")))}]");
        }
    }

    /// <summary>A fresh random tensor with entries N(0, std²) + shift.</summary>
    public static Tensor Rand(Rng rng, float std, params int[] shape) => Tensor.Randn(rng, std, shape);

    /// <summary>Random values bounded away from zero (|x| in [margin, margin + spread]) with random sign, for ops with a kink at 0.</summary>
    public static Tensor AwayFromZero(Rng rng, float margin, float spread, params int[] shape)
    {
        var t = Tensor.Zeros(shape);
        var s = t.Span;
        for (int i = 0; i < s.Length; i++) s[i] = (float)((margin + spread * rng.NextDouble()) * (rng.NextDouble() < 0.5 ? -1 : 1));
        return t;
    }
}
