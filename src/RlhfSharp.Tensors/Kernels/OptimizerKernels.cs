// Fused optimiser update loops over one contiguous slot of the flat parameter buffers.
namespace RlhfSharp.Tensors.Kernels;

public static class OptimizerKernels
{
    /// <summary>
    /// AdamW for one slot: p ← p·(1 − lr·wd); m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²;
    /// p ← p − lr·(m/bc1)/(√(v/bc2) + ε). bc1 = 1 − β₁ᵗ, bc2 = 1 − β₂ᵗ.
    /// </summary>
    public static void AdamW(Span<float> p, ReadOnlySpan<float> g, Span<float> m, Span<float> v,
        float lr, float beta1, float beta2, float eps, float weightDecay, float bc1, float bc2)
    {
        float decay = 1f - lr * weightDecay;
        float stepSize = lr / bc1;
        float invSqrtBc2 = 1f / MathF.Sqrt(bc2);
        for (int i = 0; i < p.Length; i++)
        {
            float gi = g[i];
            float mi = beta1 * m[i] + (1f - beta1) * gi;
            float vi = beta2 * v[i] + (1f - beta2) * gi * gi;
            m[i] = mi;
            v[i] = vi;
            p[i] = p[i] * decay - stepSize * mi / (MathF.Sqrt(vi) * invSqrtBc2 + eps);
        }
    }
}
