// Deterministic reductions (sum, dot, max): fixed accumulation order from index 0, independent of the
// buffer's alignment and of the machine's vector width, so the same values always give the same bits.
// TensorPrimitives.Sum/Dot are not used: they align loads to the address (rounding can change between runs)
// and take Vector512 where the CPU has it, so AVX2 and AVX-512 machines add in different orders.
// Scalar references: SumReference/DotReference (float64, the value) and SumInOrder/DotInOrder (the same fixed order
// as a plain scalar program: the bits Sum and Dot must give on every machine, and what kernel references built on
// Sum and Dot call to reproduce a kernel's bits exactly).
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace RlhfSharp.Tensors.Kernels;

public static class Reduce
{
    /// <summary>Σ x[i], four Vector256 accumulators combined in a fixed order, then the tail.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Sum(ReadOnlySpan<float> x)
    {
        int n = x.Length, i = 0;
        ref float r = ref MemoryMarshal.GetReference(x);
        float s = 0f;
        if (Vector256.IsHardwareAccelerated && n >= 32)
        {
            Vector256<float> a0 = Vector256<float>.Zero, a1 = a0, a2 = a0, a3 = a0;
            for (; i <= n - 32; i += 32)
            {
                a0 += Vector256.LoadUnsafe(ref r, (nuint)i);
                a1 += Vector256.LoadUnsafe(ref r, (nuint)(i + 8));
                a2 += Vector256.LoadUnsafe(ref r, (nuint)(i + 16));
                a3 += Vector256.LoadUnsafe(ref r, (nuint)(i + 24));
            }
            s = HorizontalSum((a0 + a1) + (a2 + a3));
        }
        for (; i < n; i++) s += Unsafe.Add(ref r, i);
        return s;
    }

    /// <summary>Σ x[i]·y[i] in the same fixed order as <see cref="Sum"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float Dot(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        if (x.Length != y.Length) throw new ArgumentException($"Dot: lengths {x.Length} and {y.Length} differ.");
        int n = x.Length, i = 0;
        ref float rx = ref MemoryMarshal.GetReference(x);
        ref float ry = ref MemoryMarshal.GetReference(y);
        float s = 0f;
        if (Vector256.IsHardwareAccelerated && n >= 32)
        {
            Vector256<float> a0 = Vector256<float>.Zero, a1 = a0, a2 = a0, a3 = a0;
            for (; i <= n - 32; i += 32)
            {
                a0 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref rx, (nuint)i), Vector256.LoadUnsafe(ref ry, (nuint)i), a0);
                a1 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref rx, (nuint)(i + 8)), Vector256.LoadUnsafe(ref ry, (nuint)(i + 8)), a1);
                a2 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref rx, (nuint)(i + 16)), Vector256.LoadUnsafe(ref ry, (nuint)(i + 16)), a2);
                a3 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref rx, (nuint)(i + 24)), Vector256.LoadUnsafe(ref ry, (nuint)(i + 24)), a3);
            }
            s = HorizontalSum((a0 + a1) + (a2 + a3));
        }
        for (; i < n; i++) s = MathF.FusedMultiplyAdd(Unsafe.Add(ref rx, i), Unsafe.Add(ref ry, i), s);
        return s;
    }

    /// <summary>
    /// The eight lanes of <paramref name="v"/> added in one written-out order: ((v0+v4)+(v2+v6)) + ((v1+v5)+(v3+v7)).
    /// Vector256.Sum leaves its order to the JIT, which may lower it differently where AVX-512 is present.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float HorizontalSum(Vector256<float> v)
    {
        Vector128<float> h = v.GetLower() + v.GetUpper();          // lanes (0+4, 1+5, 2+6, 3+7)
        return (h.GetElement(0) + h.GetElement(2)) + (h.GetElement(1) + h.GetElement(3));
    }

    /// <summary>Largest element (exact; order does not matter). NaN if any element is NaN.</summary>
    public static float Max(ReadOnlySpan<float> x)
    {
        if (x.IsEmpty) throw new ArgumentException("Max: empty span.");
        return System.Numerics.Tensors.TensorPrimitives.Max(x);
    }

    /// <summary>
    /// <see cref="Sum"/>'s order as a scalar program: four accumulators of eight lanes over blocks of 32, lanes combined as
    /// ((0+4)+(2+6)) + ((1+5)+(3+7)), then the tail in index order.
    /// </summary>
    public static float SumInOrder(ReadOnlySpan<float> x) => InOrder(x, default, dot: false);

    /// <summary><see cref="Dot"/>'s order as a scalar program: as <see cref="SumInOrder"/>, a fused multiply-add at every step.</summary>
    public static float DotInOrder(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        if (x.Length != y.Length) throw new ArgumentException($"DotInOrder: lengths {x.Length} and {y.Length} differ.");
        return InOrder(x, y, dot: true);
    }

    private static float InOrder(ReadOnlySpan<float> x, ReadOnlySpan<float> y, bool dot)
    {
        int n = x.Length, i = 0;
        float s = 0f;
        if (n >= 32)
        {
            Span<float> acc = stackalloc float[32]; // acc[8·a + l]: accumulator a, lane l
            acc.Clear();
            for (; i <= n - 32; i += 32)
                for (int j = 0; j < 32; j++)
                    acc[j] = dot ? MathF.FusedMultiplyAdd(x[i + j], y[i + j], acc[j]) : acc[j] + x[i + j];
            Span<float> lane = stackalloc float[8];
            for (int l = 0; l < 8; l++) lane[l] = (acc[l] + acc[8 + l]) + (acc[16 + l] + acc[24 + l]);
            float h0 = lane[0] + lane[4], h1 = lane[1] + lane[5], h2 = lane[2] + lane[6], h3 = lane[3] + lane[7];
            s = (h0 + h2) + (h1 + h3);
        }
        for (; i < n; i++) s = dot ? MathF.FusedMultiplyAdd(x[i], y[i], s) : s + x[i];
        return s;
    }

    /// <summary>Plain float64 reference for <see cref="Sum"/>.</summary>
    public static double SumReference(ReadOnlySpan<float> x)
    {
        double s = 0;
        foreach (float v in x) s += v;
        return s;
    }

    /// <summary>Plain float64 reference for <see cref="Dot"/>.</summary>
    public static double DotReference(ReadOnlySpan<float> x, ReadOnlySpan<float> y)
    {
        double s = 0;
        for (int i = 0; i < x.Length; i++) s += (double)x[i] * y[i];
        return s;
    }
}
