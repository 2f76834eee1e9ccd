// Attention.ForwardCached over a KV cache held as bfloat16 (`--kv-dtype bf16`): keys and values were rounded to nearest
// even when cached, and are widened exactly (bits << 16) as they are read, so every score, probability and output is
// computed in float32 with the FMA sequence of Attention.ForwardCached on the widened cache — the same bits (tests) —
// while the cache, which at batch 16 and context 480 is read at more bytes per step than the BF16 weights, costs half.
// Shapes: Tq queries, Tk keys, HS head size; kT (HS, Tk) row stride ldkT; v (Tk, HS) row stride ldv; probs (Tq, Tk).
// Scalar reference: ScoresTransposedReference on the widened keys (Attention.cs); AttentionReference for the whole.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace RlhfSharp.Tensors.Kernels;

public static unsafe class AttentionCachedBf16
{
    /// <summary>Attention.ForwardCached with kT and v as bfloat16 bits (same layouts, same masking rule, same bits on the widened cache).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Forward(Span<float> output, int ldo, Span<float> probs, ReadOnlySpan<float> q, int ldq, ReadOnlySpan<ushort> kT, int ldkT,
        ReadOnlySpan<ushort> v, int ldv, ReadOnlySpan<byte> keyMask, int Tq, int Tk, int queryOffset, int HS)
    {
        if (Tq <= 0 || HS <= 0 || queryOffset < 0 || queryOffset + Tq > Tk)
            throw new ArgumentException($"AttentionCachedBf16.Forward: {Tq} queries at offset {queryOffset} against {Tk} keys (head size {HS}).");
        if (probs.Length < Tq * Tk || (!keyMask.IsEmpty && keyMask.Length < Tk) || ldkT < Tk
            || kT.Length < (long)(HS - 1) * ldkT + Tk || v.Length < (long)(Tk - 1) * ldv + HS
            || q.Length < (long)(Tq - 1) * ldq + HS || output.Length < (long)(Tq - 1) * ldo + HS)
            throw new ArgumentException($"AttentionCachedBf16.Forward: a buffer is too short for {Tq} queries, {Tk} keys, head size {HS}.");
        float scale = 1f / MathF.Sqrt(HS);
        fixed (float* pp = probs)
        fixed (byte* pm = keyMask)
        {
            if (Tq > Attention.SmallQueryRows)
            {
                // A prefill: the two GEMMs of ForwardCached, B widened while packed (Gemm.MultiplyBf16, form NN).
                Gemm.MultiplyBf16(GemmForm.NN, Tq, Tk, HS, q, ldq, kT, ldkT, probs, Tk, accumulate: false, threads: 1);
                for (int i = 0; i < Tq; i++) Attention.MaskedSoftmaxRow(pp + (long)i * Tk, queryOffset + i, Tk, pm, scale);
                Gemm.MultiplyBf16(GemmForm.NN, Tq, HS, Tk, probs, Tk, v, ldv, output, ldo, accumulate: false, threads: 1);
                return;
            }
            for (int i = 0; i < Tq; i++)
            {
                var row = probs.Slice(i * Tk, Tk);
                int n = queryOffset + i + 1;
                ScoresTransposed(row, q.Slice(i * ldq, HS), kT, ldkT, n, HS);
                Attention.MaskedSoftmaxRow(pp + (long)i * Tk, n - 1, Tk, pm, scale);
                WeightedValues(output.Slice(i * ldo, HS), row, v, ldv, n, HS);
            }
        }
    }

    /// <summary>Attention.ScoresTransposed with bfloat16 keys: the same 128-, 64-, 32-, 8- and 1-key loops and FMA chains over d.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void ScoresTransposed(Span<float> scores, ReadOnlySpan<float> q, ReadOnlySpan<ushort> kT, int ldkT, int n, int HS)
    {
        ref ushort rk = ref MemoryMarshal.GetReference(kT);
        ref float rs = ref MemoryMarshal.GetReference(scores);
        int s = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; s + 128 <= n; s += 128)
            {
                Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
                for (int d = 0; d < HS; d++)
                {
                    var qd = Vector512.Create(q[d]);
                    nuint at = (nuint)((long)d * ldkT + s);
                    var (k0, k1) = Widen32(ref rk, at);
                    var (k2, k3) = Widen32(ref rk, at + 32);
                    var (k4, k5) = Widen32(ref rk, at + 64);
                    var (k6, k7) = Widen32(ref rk, at + 96);
                    a0 = Vector512.FusedMultiplyAdd(k0, qd, a0);
                    a1 = Vector512.FusedMultiplyAdd(k1, qd, a1);
                    a2 = Vector512.FusedMultiplyAdd(k2, qd, a2);
                    a3 = Vector512.FusedMultiplyAdd(k3, qd, a3);
                    a4 = Vector512.FusedMultiplyAdd(k4, qd, a4);
                    a5 = Vector512.FusedMultiplyAdd(k5, qd, a5);
                    a6 = Vector512.FusedMultiplyAdd(k6, qd, a6);
                    a7 = Vector512.FusedMultiplyAdd(k7, qd, a7);
                }
                a0.StoreUnsafe(ref rs, (nuint)s);
                a1.StoreUnsafe(ref rs, (nuint)s + 16);
                a2.StoreUnsafe(ref rs, (nuint)s + 32);
                a3.StoreUnsafe(ref rs, (nuint)s + 48);
                a4.StoreUnsafe(ref rs, (nuint)s + 64);
                a5.StoreUnsafe(ref rs, (nuint)s + 80);
                a6.StoreUnsafe(ref rs, (nuint)s + 96);
                a7.StoreUnsafe(ref rs, (nuint)s + 112);
            }
            for (; s + 64 <= n; s += 64)
            {
                Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
                for (int d = 0; d < HS; d++)
                {
                    var qd = Vector512.Create(q[d]);
                    nuint at = (nuint)((long)d * ldkT + s);
                    var (k0, k1) = Widen32(ref rk, at);
                    var (k2, k3) = Widen32(ref rk, at + 32);
                    a0 = Vector512.FusedMultiplyAdd(k0, qd, a0);
                    a1 = Vector512.FusedMultiplyAdd(k1, qd, a1);
                    a2 = Vector512.FusedMultiplyAdd(k2, qd, a2);
                    a3 = Vector512.FusedMultiplyAdd(k3, qd, a3);
                }
                a0.StoreUnsafe(ref rs, (nuint)s);
                a1.StoreUnsafe(ref rs, (nuint)s + 16);
                a2.StoreUnsafe(ref rs, (nuint)s + 32);
                a3.StoreUnsafe(ref rs, (nuint)s + 48);
            }
        }
        for (; s + 32 <= n; s += 32)
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (int d = 0; d < HS; d++)
            {
                var qd = Vector256.Create(q[d]);
                nuint at = (nuint)((long)d * ldkT + s);
                var (k0, k1) = Widen16(ref rk, at);
                var (k2, k3) = Widen16(ref rk, at + 16);
                a0 = Vector256.FusedMultiplyAdd(k0, qd, a0);
                a1 = Vector256.FusedMultiplyAdd(k1, qd, a1);
                a2 = Vector256.FusedMultiplyAdd(k2, qd, a2);
                a3 = Vector256.FusedMultiplyAdd(k3, qd, a3);
            }
            a0.StoreUnsafe(ref rs, (nuint)s);
            a1.StoreUnsafe(ref rs, (nuint)s + 8);
            a2.StoreUnsafe(ref rs, (nuint)s + 16);
            a3.StoreUnsafe(ref rs, (nuint)s + 24);
        }
        for (; s + 8 <= n; s += 8)
        {
            Vector256<float> a0 = default;
            for (int d = 0; d < HS; d++)
                a0 = Vector256.FusedMultiplyAdd(Widen8(ref rk, (nuint)((long)d * ldkT + s)), Vector256.Create(q[d]), a0);
            a0.StoreUnsafe(ref rs, (nuint)s);
        }
        for (; s < n; s++)
        {
            float sum = 0;
            for (int d = 0; d < HS; d++) sum = MathF.FusedMultiplyAdd(BFloat16.ToFloat(kT[d * ldkT + s]), q[d], sum);
            scores[s] = sum;
        }
    }

    /// <summary>Attention.WeightedValues with bfloat16 values, widened as they are loaded: the same chains, the same bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void WeightedValues(Span<float> o, ReadOnlySpan<float> p, ReadOnlySpan<ushort> v, int ldv, int n, int HS)
    {
        ref ushort rv = ref MemoryMarshal.GetReference(v);
        ref float rp = ref MemoryMarshal.GetReference(p);
        ref float ro = ref MemoryMarshal.GetReference(o);
        int d = 0;
        for (; d + 64 <= HS; d += 64)
        {
            if (Vector512.IsHardwareAccelerated)
            {
                Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default;
                for (int s = 0; s < n; s++)
                {
                    float ps = Unsafe.Add(ref rp, s);
                    if (ps == 0) continue;
                    var w = Vector512.Create(ps);
                    nuint at = (nuint)((long)s * ldv + d);
                    var (v0, v1) = Widen32(ref rv, at);
                    var (v2, v3) = Widen32(ref rv, at + 32);
                    a0 = Vector512.FusedMultiplyAdd(v0, w, a0);
                    a1 = Vector512.FusedMultiplyAdd(v1, w, a1);
                    a2 = Vector512.FusedMultiplyAdd(v2, w, a2);
                    a3 = Vector512.FusedMultiplyAdd(v3, w, a3);
                }
                a0.StoreUnsafe(ref ro, (nuint)d);
                a1.StoreUnsafe(ref ro, (nuint)d + 16);
                a2.StoreUnsafe(ref ro, (nuint)d + 32);
                a3.StoreUnsafe(ref ro, (nuint)d + 48);
            }
            else
            {
                Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
                for (int s = 0; s < n; s++)
                {
                    float ps = Unsafe.Add(ref rp, s);
                    if (ps == 0) continue;
                    var w = Vector256.Create(ps);
                    nuint at = (nuint)((long)s * ldv + d);
                    var (v0, v1) = Widen16(ref rv, at);
                    var (v2, v3) = Widen16(ref rv, at + 16);
                    var (v4, v5) = Widen16(ref rv, at + 32);
                    var (v6, v7) = Widen16(ref rv, at + 48);
                    a0 = Vector256.FusedMultiplyAdd(v0, w, a0);
                    a1 = Vector256.FusedMultiplyAdd(v1, w, a1);
                    a2 = Vector256.FusedMultiplyAdd(v2, w, a2);
                    a3 = Vector256.FusedMultiplyAdd(v3, w, a3);
                    a4 = Vector256.FusedMultiplyAdd(v4, w, a4);
                    a5 = Vector256.FusedMultiplyAdd(v5, w, a5);
                    a6 = Vector256.FusedMultiplyAdd(v6, w, a6);
                    a7 = Vector256.FusedMultiplyAdd(v7, w, a7);
                }
                a0.StoreUnsafe(ref ro, (nuint)d);
                a1.StoreUnsafe(ref ro, (nuint)d + 8);
                a2.StoreUnsafe(ref ro, (nuint)d + 16);
                a3.StoreUnsafe(ref ro, (nuint)d + 24);
                a4.StoreUnsafe(ref ro, (nuint)d + 32);
                a5.StoreUnsafe(ref ro, (nuint)d + 40);
                a6.StoreUnsafe(ref ro, (nuint)d + 48);
                a7.StoreUnsafe(ref ro, (nuint)d + 56);
            }
        }
        for (; d + 8 <= HS; d += 8)
        {
            Vector256<float> a0 = default;
            for (int s = 0; s < n; s++)
            {
                float ps = Unsafe.Add(ref rp, s);
                if (ps != 0) a0 = Vector256.FusedMultiplyAdd(Widen8(ref rv, (nuint)((long)s * ldv + d)), Vector256.Create(ps), a0);
            }
            a0.StoreUnsafe(ref ro, (nuint)d);
        }
        for (; d < HS; d++)
        {
            float sum = 0;
            for (int s = 0; s < n; s++)
                if (p[s] != 0) sum = MathF.FusedMultiplyAdd(BFloat16.ToFloat(v[s * ldv + d]), p[s], sum);
            o[d] = sum;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Widen8(ref ushort source, nuint at)
    {
        var (lo, hi) = Vector128.Widen(Vector128.LoadUnsafe(ref source, at));
        return (Vector256.Create(lo, hi) << 16).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<float>, Vector256<float>) Widen16(ref ushort source, nuint at)
    {
        var (lo, hi) = Vector256.Widen(Vector256.LoadUnsafe(ref source, at));
        return ((lo << 16).AsSingle(), (hi << 16).AsSingle());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector512<float>, Vector512<float>) Widen32(ref ushort source, nuint at)
    {
        var (lo, hi) = Vector512.Widen(Vector512.LoadUnsafe(ref source, at));
        return ((lo << 16).AsSingle(), (hi << 16).AsSingle());
    }
}
