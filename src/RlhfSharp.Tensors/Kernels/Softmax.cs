// Row kernels for softmax and log-sum-exp over the last axis, max-subtracted so large logits do not overflow.
namespace RlhfSharp.Tensors.Kernels;

public static class Softmax
{
    /// <summary>log Σ exp(x[i]), computed as max + log Σ exp(x[i] − max).</summary>
    public static float LogSumExp(ReadOnlySpan<float> x)
    {
        float max = Reduce.Max(x);
        if (float.IsNegativeInfinity(max)) return max;
        float s = 0f;
        for (int i = 0; i < x.Length; i++) s += MathF.Exp(x[i] - max);
        return max + MathF.Log(s);
    }

    /// <summary>y = softmax(x) for one row.</summary>
    public static void Forward(ReadOnlySpan<float> x, Span<float> y)
    {
        float max = Reduce.Max(x);
        float s = 0f;
        for (int i = 0; i < x.Length; i++)
        {
            float e = MathF.Exp(x[i] - max);
            y[i] = e;
            s += e;
        }
        float inv = 1f / s;
        for (int i = 0; i < y.Length; i++) y[i] *= inv;
    }
}
