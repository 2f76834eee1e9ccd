// GELU (tanh form, as GPT-2) forward and backward kernels, and the ReLU backward mask. Constants from llm.c's gelu_forward:
// y = ½x(1 + tanh(√(2/π)(x + 0.044715x³))).
// SIMD path: Vector256 polynomial and TensorPrimitives.Tanh over blocks of a per-thread scratch buffer,
// blocks spread over Parallelism.Threads in fixed chunks. Scalar references: GeluForwardReference, GeluBackwardReference, ReluBackwardReference.
using System.Numerics.Tensors;
using System.Runtime.Intrinsics;

namespace RlhfSharp.Tensors.Kernels;

public static unsafe class Activations
{
    private const float Scale = 0.7978845608028654f; // √(2/π)
    private const float Cubic = 0.044715f;
    private const int Block = 2048;

    public static void GeluForward(ReadOnlySpan<float> x, Span<float> y)
    {
        if (KernelOptions.UseScalarReference)
        {
            GeluForwardReference(x, y);
            return;
        }
        int n = x.Length;
        fixed (float* px = x, py = y)
        {
            float* cx = px, cy = py;
            ParallelChunks.For((n + Block - 1) / Block, (start, end) =>
            {
                for (int blk = start; blk < end; blk++)
                {
                    int o = blk * Block, len = Math.Min(Block, n - o);
                    var t = Scratch.A(len);
                    TanhArgument(cx + o, t, len);
                    TensorPrimitives.Tanh(t, t);
                    fixed (float* pt = t)
                    {
                        float* xs = cx + o, ys = cy + o;
                        int i = 0;
                        var half = Vector256.Create(0.5f);
                        for (; i <= len - 8; i += 8)
                        {
                            var xv = Vector256.Load(xs + i);
                            Vector256.Store(half * xv * (Vector256<float>.One + Vector256.Load(pt + i)), ys + i);
                        }
                        for (; i < len; i++) ys[i] = 0.5f * xs[i] * (1f + pt[i]);
                    }
                }
            }, minPerChunk: 16);
        }
    }

    /// <summary>dx += g · gelu'(x).</summary>
    public static void GeluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> g, Span<float> dx)
    {
        if (KernelOptions.UseScalarReference)
        {
            GeluBackwardReference(x, g, dx);
            return;
        }
        int n = x.Length;
        fixed (float* px = x, pg = g, pdx = dx)
        {
            float* cx = px, cg = pg, cdx = pdx;
            ParallelChunks.For((n + Block - 1) / Block, (start, end) =>
            {
                for (int blk = start; blk < end; blk++)
                {
                    int o = blk * Block, len = Math.Min(Block, n - o);
                    var t = Scratch.A(len);
                    TanhArgument(cx + o, t, len);
                    TensorPrimitives.Tanh(t, t);
                    fixed (float* pt = t)
                    {
                        float* xs = cx + o, gs = cg + o, ds = cdx + o;
                        int i = 0;
                        var half = Vector256.Create(0.5f);
                        var halfScale = Vector256.Create(0.5f * Scale);
                        var cubic3 = Vector256.Create(3f * Cubic);
                        var one = Vector256<float>.One;
                        for (; i <= len - 8; i += 8)
                        {
                            var xv = Vector256.Load(xs + i);
                            var tv = Vector256.Load(pt + i);
                            var sech2 = one - tv * tv;
                            // ½(1 + t) + ½x·sech²·√(2/π)·(1 + 3·0.044715·x²)
                            var local = half * (one + tv) + halfScale * xv * sech2 * Vector256.FusedMultiplyAdd(cubic3 * xv, xv, one);
                            Vector256.Store(Vector256.FusedMultiplyAdd(Vector256.Load(gs + i), local, Vector256.Load(ds + i)), ds + i);
                        }
                        for (; i < len; i++)
                        {
                            float v = xs[i], tv = pt[i];
                            float local = 0.5f * (1f + tv) + 0.5f * v * (1f - tv * tv) * Scale * (1f + 3f * Cubic * v * v);
                            ds[i] += gs[i] * local;
                        }
                    }
                }
            }, minPerChunk: 16);
        }
    }

    /// <summary>dx += x &gt; 0 ? g : 0 (ReLU backward), Vector256 with a scalar tail.</summary>
    public static void ReluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> g, Span<float> dx)
    {
        if (KernelOptions.UseScalarReference)
        {
            ReluBackwardReference(x, g, dx);
            return;
        }
        int n = x.Length, i = 0;
        fixed (float* px = x, pg = g, pd = dx)
        {
            if (Vector256.IsHardwareAccelerated)
            {
                var zero = Vector256<float>.Zero;
                for (; i <= n - 8; i += 8)
                {
                    var keep = Vector256.GreaterThan(Vector256.Load(px + i), zero);
                    Vector256.Store(Vector256.Load(pd + i) + Vector256.ConditionalSelect(keep, Vector256.Load(pg + i), zero), pd + i);
                }
            }
            for (; i < n; i++) if (px[i] > 0f) pd[i] += pg[i];
        }
    }

    public static void ReluBackwardReference(ReadOnlySpan<float> x, ReadOnlySpan<float> g, Span<float> dx)
    {
        for (int i = 0; i < x.Length; i++) if (x[i] > 0f) dx[i] += g[i];
    }

    // t = √(2/π)·(x + 0.044715·x³)
    private static void TanhArgument(float* x, Span<float> t, int len)
    {
        fixed (float* pt = t)
        {
            int i = 0;
            var s = Vector256.Create(Scale);
            var c = Vector256.Create(Cubic);
            for (; i <= len - 8; i += 8)
            {
                var xv = Vector256.Load(x + i);
                Vector256.Store(s * (xv + c * xv * xv * xv), pt + i);
            }
            for (; i < len; i++)
            {
                float v = x[i];
                pt[i] = Scale * (v + Cubic * v * v * v);
            }
        }
    }

    public static void GeluForwardReference(ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++)
        {
            float v = x[i];
            y[i] = 0.5f * v * (1f + MathF.Tanh(Scale * (v + Cubic * v * v * v)));
        }
    }

    public static void GeluBackwardReference(ReadOnlySpan<float> x, ReadOnlySpan<float> g, Span<float> dx)
    {
        for (int i = 0; i < x.Length; i++)
        {
            float v = x[i];
            float t = MathF.Tanh(Scale * (v + Cubic * v * v * v));
            float sech2 = 1f - t * t;
            float local = 0.5f * (1f + t) + 0.5f * v * sech2 * Scale * (1f + 3f * Cubic * v * v);
            dx[i] += g[i] * local;
        }
    }
}
