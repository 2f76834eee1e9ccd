// Row kernels for softmax and log-sum-exp over the last axis, max-subtracted so large logits do not overflow.
// SIMD path: TensorPrimitives for subtract/exp/scale, Reduce.Sum (fixed order) for the sum.
// Scalar references: ForwardReference, LogSumExpReference.
using System.Numerics.Tensors;

namespace RlhfSharp.Tensors.Kernels;

public static class Softmax
{
    /// <summary>log Σ exp(x[i]), computed as max + log Σ exp(x[i] − max).</summary>
    public static float LogSumExp(ReadOnlySpan<float> x)
    {
        if (KernelOptions.UseScalarReference) return LogSumExpReference(x);
        float max = Reduce.Max(x);
        if (float.IsNegativeInfinity(max)) return max;
        var t = Scratch.A(x.Length);
        TensorPrimitives.Subtract(x, max, t);
        TensorPrimitives.Exp(t, t);
        return max + MathF.Log(Reduce.Sum(t));
    }

    /// <summary>y = softmax(x) for one row (y may be x).</summary>
    public static void Forward(ReadOnlySpan<float> x, Span<float> y)
    {
        if (KernelOptions.UseScalarReference)
        {
            ForwardReference(x, y);
            return;
        }
        float max = Reduce.Max(x);
        TensorPrimitives.Subtract(x, max, y);
        TensorPrimitives.Exp(y, y);
        TensorPrimitives.Multiply(y, 1f / Reduce.Sum(y), y);
    }

    /// <summary>dst += scale · exp(x − lse): the softmax-gradient term of cross-entropy and log-prob backward.</summary>
    public static void AddScaledProbabilities(ReadOnlySpan<float> x, float lse, float scale, Span<float> dst)
    {
        if (KernelOptions.UseScalarReference)
        {
            for (int i = 0; i < x.Length; i++) dst[i] += scale * MathF.Exp(x[i] - lse);
            return;
        }
        var t = Scratch.A(x.Length);
        TensorPrimitives.Subtract(x, lse, t);
        TensorPrimitives.Exp(t, t);
        TensorPrimitives.MultiplyAdd(t, scale, dst, dst);
    }

    public static float LogSumExpReference(ReadOnlySpan<float> x)
    {
        float max = Reduce.Max(x);
        if (float.IsNegativeInfinity(max)) return max;
        float s = 0f;
        for (int i = 0; i < x.Length; i++) s += MathF.Exp(x[i] - max);
        return max + MathF.Log(s);
    }

    public static void ForwardReference(ReadOnlySpan<float> x, Span<float> y)
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
