// Dropout and RMS norm with their backward.
using System.Numerics.Tensors;

namespace RlhfSharp.Tensors;

public static partial class Ops
{
    /// <summary>
    /// Inverted dropout: each element is zeroed with probability p and the rest scaled by 1/(1−p), with the
    /// keep mask drawn from <paramref name="rng"/> (same seed, same mask). With training false or p = 0, x itself.
    /// </summary>
    public static Tensor Dropout(Tensor x, float p, Rng rng, bool training = true)
    {
        if (!(p >= 0f && p < 1f)) throw new ArgumentOutOfRangeException(nameof(p), p, "dropout: probability must be in [0, 1).");
        if (!training || p == 0f) return x;
        float keepScale = 1f / (1f - p);
        var scale = new float[x.Length];
        for (int i = 0; i < scale.Length; i++) scale[i] = rng.NextFloat() >= p ? keepScale : 0f;
        var y = Tensor.Uninitialized(x.ShapeRef);
        TensorPrimitives.Multiply(x.Span, scale, y.Span);
        return Autograd.Record("dropout", y, [x], o =>
        {
            var dx = x.GradForAccumulate();
            TensorPrimitives.MultiplyAdd(o.Grad!.Span, scale, dx, dx);
        });
    }

    /// <summary>RMS norm over the last axis (Zhang &amp; Sennrich 2019): y = x / √(mean(x²) + eps) · weight. x [..., C], weight [C].</summary>
    public static Tensor RmsNorm(Tensor x, Tensor weight, float eps = 1e-6f)
    {
        int C = x.Rank == 0 ? 0 : x.Dim(-1);
        if (C == 0 || weight.Rank != 1 || weight.Length != C)
            throw new ArgumentException($"rms_norm: weight {weight.ShapeString} must be [C] for input {x.ShapeString}.");
        int rows = x.Length / C;
        var rstd = new float[rows];
        var y = Tensor.Uninitialized(x.ShapeRef);
        var xs = x.Span;
        var ys = y.Span;
        var w = weight.Span;
        for (int r = 0; r < rows; r++)
        {
            var xr = xs.Slice(r * C, C);
            rstd[r] = 1f / MathF.Sqrt(Kernels.Reduce.Dot(xr, xr) / C + eps);
            var yr = ys.Slice(r * C, C);
            TensorPrimitives.Multiply(xr, rstd[r], yr);
            TensorPrimitives.Multiply(yr, w, yr);
        }
        return Autograd.Record("rms_norm", y, [x, weight], o =>
        {
            var g = o.Grad!.Span;
            var xv = x.Span;
            var wv = weight.Span;
            var dx = x.RequiresGrad ? x.GradForAccumulate() : default;
            var dw = weight.RequiresGrad ? weight.GradForAccumulate() : default;
            for (int r = 0; r < rows; r++)
            {
                float s = rstd[r];
                // n = x·s; dn = g·w; dx = s·(dn − n·mean(dn·n))
                float dnn = 0f;
                for (int i = 0; i < C; i++) dnn += g[r * C + i] * wv[i] * xv[r * C + i] * s;
                dnn /= C;
                for (int i = 0; i < C; i++)
                {
                    float n = xv[r * C + i] * s;
                    if (!dx.IsEmpty) dx[r * C + i] += s * (g[r * C + i] * wv[i] - n * dnn);
                    if (!dw.IsEmpty) dw[i] += g[r * C + i] * n;
                }
            }
        });
    }
}
