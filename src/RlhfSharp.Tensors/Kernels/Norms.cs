// Row kernels for layer norm over the last axis (C): forward keeps per-row mean and 1/std for backward.
// Formulas as in llm.c layernorm_forward/backward. Shapes: x, y, dy, dx (rows, C); weight, bias (C).
namespace RlhfSharp.Tensors.Kernels;

public static class Norms
{
    public static void LayerNormForward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias,
        Span<float> y, Span<float> mean, Span<float> rstd, int C, float eps)
    {
        int rows = mean.Length;
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * C, C);
            var yr = y.Slice(r * C, C);
            float m = Reduce.Sum(xr) / C;
            float v = 0f;
            for (int i = 0; i < C; i++)
            {
                float d = xr[i] - m;
                v += d * d;
            }
            float s = 1f / MathF.Sqrt(v / C + eps);
            for (int i = 0; i < C; i++) yr[i] = (xr[i] - m) * s * weight[i] + bias[i];
            mean[r] = m;
            rstd[r] = s;
        }
    }

    /// <summary>Adds into dx, dweight, dbias (any of them may be empty to skip it).</summary>
    public static void LayerNormBackward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> weight,
        ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd, Span<float> dx, Span<float> dweight, Span<float> dbias, int C)
    {
        int rows = mean.Length;
        for (int r = 0; r < rows; r++)
        {
            var dyr = dy.Slice(r * C, C);
            var xr = x.Slice(r * C, C);
            float m = mean[r], s = rstd[r];
            // dnorm = dy·w; dx = (dnorm − mean(dnorm) − norm·mean(dnorm·norm))·rstd
            float dnormMean = 0f, dnormNormMean = 0f;
            for (int i = 0; i < C; i++)
            {
                float norm = (xr[i] - m) * s;
                float dnorm = dyr[i] * weight[i];
                dnormMean += dnorm;
                dnormNormMean += dnorm * norm;
            }
            dnormMean /= C;
            dnormNormMean /= C;
            for (int i = 0; i < C; i++)
            {
                float norm = (xr[i] - m) * s;
                if (!dbias.IsEmpty) dbias[i] += dyr[i];
                if (!dweight.IsEmpty) dweight[i] += norm * dyr[i];
                if (!dx.IsEmpty) dx[r * C + i] += (dyr[i] * weight[i] - dnormMean - norm * dnormNormMean) * s;
            }
        }
    }
}
