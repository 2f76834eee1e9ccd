// bfloat16 storage for frozen weights: float32's top 16 bits. Narrowing rounds to nearest even (as PyTorch's
// `tensor.to(torch.bfloat16)` and the safetensors writers do; NaN → the quiet NaN 0x7FC0); widening is exact
// (bits << 16), so a BF16 weight computed in float32 gives exactly the float32 result on the widened weight.
// Scalar references: NarrowReference / WidenReference; Widen takes Vector512 or Vector256 where the CPU has them,
// and since widening is exact every path gives the same bits.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace RlhfSharp.Tensors.Kernels;

public static class BFloat16
{
    /// <summary>float32 → bfloat16 bits, round to nearest even; NaN → 0x7FC0 (±∞ stay ±∞; values past bf16's range round to ∞).</summary>
    public static ushort FromFloat(float value)
    {
        if (float.IsNaN(value)) return 0x7FC0;
        uint bits = BitConverter.SingleToUInt32Bits(value);
        uint rounding = 0x7FFFu + ((bits >> 16) & 1u);
        return (ushort)((bits + rounding) >> 16);
    }

    /// <summary>bfloat16 bits → float32 (exact).</summary>
    public static float ToFloat(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>dst[i] = FromFloat(src[i]).</summary>
    public static void Narrow(ReadOnlySpan<float> src, Span<ushort> dst)
    {
        if (dst.Length < src.Length) throw new ArgumentException($"bf16 narrow: destination holds {dst.Length} values, source has {src.Length}.");
        for (int i = 0; i < src.Length; i++) dst[i] = FromFloat(src[i]);
    }

    /// <summary>The scalar reference of <see cref="Narrow"/>.</summary>
    public static void NarrowReference(ReadOnlySpan<float> src, Span<ushort> dst)
    {
        for (int i = 0; i < src.Length; i++)
        {
            float v = src[i];
            // Round half to even in double arithmetic: the nearest bf16 value, ties to the even mantissa.
            dst[i] = float.IsNaN(v) ? (ushort)0x7FC0 : RoundHalfEven(v);
        }
    }

    private static ushort RoundHalfEven(float v)
    {
        uint bits = BitConverter.SingleToUInt32Bits(v);
        ushort down = (ushort)(bits >> 16);
        ushort up = (ushort)(down + 1);
        uint low = bits & 0xFFFFu;
        if (low < 0x8000u) return down;
        if (low > 0x8000u) return up;
        return (down & 1) == 0 ? down : up;
    }

    /// <summary>dst[i] = ToFloat(src[i]), 16 (AVX-512) or 8 (AVX2) at a time, then the tail.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Widen(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        if (dst.Length < src.Length) throw new ArgumentException($"bf16 widen: destination holds {dst.Length} values, source has {src.Length}.");
        int n = src.Length, i = 0;
        ref ushort s = ref MemoryMarshal.GetReference(src);
        ref uint d = ref Unsafe.As<float, uint>(ref MemoryMarshal.GetReference(dst));
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i <= n - 32; i += 32)
            {
                var v = Vector512.LoadUnsafe(ref s, (nuint)i);
                var (lo, hi) = Vector512.Widen(v);
                (lo << 16).StoreUnsafe(ref d, (nuint)i);
                (hi << 16).StoreUnsafe(ref d, (nuint)(i + 16));
            }
        }
        if (Vector256.IsHardwareAccelerated)
        {
            for (; i <= n - 16; i += 16)
            {
                var v = Vector256.LoadUnsafe(ref s, (nuint)i);
                var (lo, hi) = Vector256.Widen(v);
                (lo << 16).StoreUnsafe(ref d, (nuint)i);
                (hi << 16).StoreUnsafe(ref d, (nuint)(i + 8));
            }
        }
        for (; i < n; i++) Unsafe.Add(ref d, i) = (uint)Unsafe.Add(ref s, i) << 16;
    }

    /// <summary>The scalar reference of <see cref="Widen"/>.</summary>
    public static void WidenReference(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        for (int i = 0; i < src.Length; i++) dst[i] = BitConverter.UInt32BitsToSingle((uint)src[i] << 16);
    }
}
