// Fused optimiser update loops over one contiguous slot of the flat parameter buffers.
// SIMD path: Vector256 FMA with a scalar tail (each element's arithmetic is independent of its position,
// so results do not depend on alignment). Scalar reference: AdamWReference.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace RlhfSharp.Tensors.Kernels;

public static unsafe class OptimizerKernels
{
    /// <summary>
    /// AdamW for one slot: p ← p·(1 − lr·wd); m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²;
    /// p ← p − lr·(m/bc1)/(√(v/bc2) + ε). bc1 = 1 − β₁ᵗ, bc2 = 1 − β₂ᵗ.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void AdamW(Span<float> p, ReadOnlySpan<float> g, Span<float> m, Span<float> v,
        float lr, float beta1, float beta2, float eps, float weightDecay, float bc1, float bc2)
    {
        if (KernelOptions.UseScalarReference)
        {
            AdamWReference(p, g, m, v, lr, beta1, beta2, eps, weightDecay, bc1, bc2);
            return;
        }
        if (g.Length != p.Length || m.Length != p.Length || v.Length != p.Length)
            throw new ArgumentException($"AdamW: slot lengths differ (p {p.Length}, g {g.Length}, m {m.Length}, v {v.Length}).");
        float decay = 1f - lr * weightDecay;
        float stepSize = lr / bc1;
        float invSqrtBc2 = 1f / MathF.Sqrt(bc2);
        int n = p.Length, i = 0;
        fixed (float* pp = p, pg = g, pm = m, pv = v)
        {
            if (Vector256.IsHardwareAccelerated)
            {
                var b1 = Vector256.Create(beta1);
                var b2 = Vector256.Create(beta2);
                var c1 = Vector256.Create(1f - beta1);
                var c2 = Vector256.Create(1f - beta2);
                var vd = Vector256.Create(decay);
                var vs = Vector256.Create(stepSize);
                var vinv = Vector256.Create(invSqrtBc2);
                var veps = Vector256.Create(eps);
                for (; i <= n - 8; i += 8)
                {
                    var gi = Vector256.Load(pg + i);
                    var mi = b1 * Vector256.Load(pm + i) + c1 * gi;
                    var vi = b2 * Vector256.Load(pv + i) + c2 * gi * gi;
                    Vector256.Store(mi, pm + i);
                    Vector256.Store(vi, pv + i);
                    var denom = Vector256.Sqrt(vi) * vinv + veps;
                    Vector256.Store(Vector256.Load(pp + i) * vd - vs * mi / denom, pp + i);
                }
            }
            for (; i < n; i++)
            {
                float gi = pg[i];
                float mi = beta1 * pm[i] + (1f - beta1) * gi;
                float vi = beta2 * pv[i] + (1f - beta2) * gi * gi;
                pm[i] = mi;
                pv[i] = vi;
                pp[i] = pp[i] * decay - stepSize * mi / (MathF.Sqrt(vi) * invSqrtBc2 + eps);
            }
        }
    }

    public static void AdamWReference(Span<float> p, ReadOnlySpan<float> g, Span<float> m, Span<float> v,
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
