// GELU (tanh form, as GPT-2's "gelu_new"; Hendrycks & Gimpel 2016) forward and backward, and the ReLU backward mask.
//   y = ½x(1 + tanh(u)), u = √(2/π)(x + 0.044715x³)        (constants from llm.c's gelu_forward)
// evaluated as y = x·σ(2u) = x / (1 + e^(−2u)) — the same function, since ½(1 + tanh u) = σ(2u) — so one Vector256.Exp
// does the work in a single pass; the derivative is σ + x·σ(1 − σ)·2√(2/π)(1 + 3·0.044715x²) with σ = σ(2u).
// Every element, the tail's too, goes through the same Vector256 formula, so an element's value does not depend on its
// position or on the machine's widest vector. Blocks of 4096 elements spread over Parallelism.Threads.
// Scalar references: GeluForwardReference, GeluBackwardReference (the tanh form, MathF), ReluBackwardReference.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace RlhfSharp.Tensors.Kernels;

public static unsafe class Activations
{
    private const float Scale = 0.7978845608028654f; // √(2/π)
    private const float Cubic = 0.044715f;
    private const int Block = 4096; // elements per work item

    /// <summary>y = gelu(x), elementwise (y may be x).</summary>
    public static void GeluForward(ReadOnlySpan<float> x, Span<float> y)
    {
        if (x.Length != y.Length) throw new ArgumentException($"GeluForward: x has {x.Length} elements, y {y.Length}.");
        if (KernelOptions.UseScalarReference)
        {
            GeluForwardReference(x, y);
            return;
        }
        int n = x.Length;
        fixed (float* px = x, py = y)
        {
            float* cx = px, cy = py;
            ParallelChunks.For((n + Block - 1) / Block, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (start, end) =>
            {
                int i = start * Block, hi = Math.Min(n, end * Block);
                for (; i + 8 <= hi; i += 8) GeluVector(Vector256.Load(cx + i)).Store(cy + i);
                if (i < hi) StoreTail(GeluVector(LoadTail(cx + i, hi - i)), cy + i, hi - i);
            }, minPerChunk: 16);
        }
    }

    /// <summary>dx += g · gelu'(x), elementwise.</summary>
    public static void GeluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> g, Span<float> dx)
    {
        if (x.Length != g.Length || x.Length != dx.Length)
            throw new ArgumentException($"GeluBackward: x {x.Length}, g {g.Length} and dx {dx.Length} elements differ.");
        if (KernelOptions.UseScalarReference)
        {
            GeluBackwardReference(x, g, dx);
            return;
        }
        int n = x.Length;
        fixed (float* px = x, pg = g, pd = dx)
        {
            float* cx = px, cg = pg, cd = pd;
            ParallelChunks.For((n + Block - 1) / Block, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (start, end) =>
            {
                int i = start * Block, hi = Math.Min(n, end * Block);
                for (; i + 8 <= hi; i += 8)
                    (Vector256.Load(cd + i) + GeluGradVector(Vector256.Load(cx + i)) * Vector256.Load(cg + i)).Store(cd + i);
                if (i < hi)
                {
                    int len = hi - i;
                    StoreTail(LoadTail(cd + i, len) + GeluGradVector(LoadTail(cx + i, len)) * LoadTail(cg + i, len), cd + i, len);
                }
            }, minPerChunk: 16);
        }
    }

    // y = x / (1 + e^(−2u)) with −2u = x·(c0 + c1·x²).
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> GeluVector(Vector256<float> x)
    {
        var c0 = Vector256.Create(-2f * Scale);
        var c1 = Vector256.Create(-2f * Scale * Cubic);
        return x / (Vector256<float>.One + Vector256.Exp(x * (c0 + c1 * x * x)));
    }

    // gelu'(x) = σ + x·σ(1 − σ)·(d0 + d1·x²), σ = σ(2u), d0 = 2√(2/π), d1 = 2√(2/π)·3·0.044715.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> GeluGradVector(Vector256<float> x)
    {
        var c0 = Vector256.Create(-2f * Scale);
        var c1 = Vector256.Create(-2f * Scale * Cubic);
        var d0 = Vector256.Create(2f * Scale);
        var d1 = Vector256.Create(2f * Scale * 3f * Cubic);
        var one = Vector256<float>.One;
        var x2 = x * x;
        var sg = one / (one + Vector256.Exp(x * (c0 + c1 * x2)));
        return sg + x * sg * (one - sg) * (d0 + d1 * x2);
    }

    // The last len < 8 elements as one vector (zeros past them), so the tail runs the same formula as the body.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> LoadTail(float* p, int len)
    {
        var lanes = stackalloc float[8];
        for (int j = 0; j < 8; j++) lanes[j] = j < len ? p[j] : 0f;
        return Vector256.Load(lanes);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreTail(Vector256<float> v, float* p, int len)
    {
        for (int j = 0; j < len; j++) p[j] = v.GetElement(j);
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
