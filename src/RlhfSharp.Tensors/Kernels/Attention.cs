// Causal scaled-dot-product attention with a key padding mask, for the engine op (Ops.CausalAttention), the fused GPT
// (Gpt.Forward/Backward) and KV-cached decoding (GptInference): one set of kernels, one masking rule, one softmax row.
//   forward:  S = Q·Kᵀ, P = softmax(mask(S·scale)) row by row, O = P·V                     scale = 1/√HS
//   backward: dV += Pᵀ·dO, dP = dO·Vᵀ, dS = P ⊙ (dP − ⟨P, dP⟩_row)·scale, dQ += dS·K, dK += dSᵀ·Q
// Forward keeps P ([B, NH, T, T], upper triangle 0) for backward, as llm.c does. Query rows run in blocks of 128 against
// keys 0..end-of-block only, skipping the masked upper triangle of longer sequences; every product is a Gemm.Multiply, whose sums run over
// the depth in one fixed order, so skipped zeros and the block split do not change a bit, and each (batch, head) is
// independent, so neither does the thread split. Row sums are Reduce.Sum/Dot.
//
// Layout: element (b, h, t, d) of Q lives at q[b·BatchStride + h·HeadStride + t·RowStride + d]; the same strides serve
// [B,NH,T,HS] tensors (RowStride = HS) and GPT-2's fused [B,T,3C] qkv (RowStride = 3C, HeadStride = HS).
// Masking rule: query t (at absolute position offset + t) attends key s iff s ≤ offset + t and keyMask[s] ≠ 0.
// A query that may attend nothing (a left-padding position) outputs zeros, never NaN.
// Scalar references: MaskedSoftmaxRowReference, SoftmaxBackwardRowReference (row kernels), ScoresTransposedReference,
// and AttentionReference (the whole forward in float64, for full sequences and for a KV cache).
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace RlhfSharp.Tensors.Kernels;

/// <summary>Where one operand's rows sit in its buffer (in floats).</summary>
public readonly record struct AttentionLayout(int Offset, int BatchStride, int HeadStride, int RowStride)
{
    public int Base(int b, int h) => Offset + b * BatchStride + h * HeadStride;

    // One past the last float a [B, NH, T, HS] operand in this layout reads.
    internal long Extent(Attention.Dims d) => d.B == 0 || d.NH == 0 || d.T == 0 ? 0
        : Offset + (long)(d.B - 1) * BatchStride + (long)(d.NH - 1) * HeadStride + (long)(d.T - 1) * RowStride + d.HS;
}

public static unsafe class Attention
{
    // Query rows per block. Up to 128 rows (the GPT's usual lengths) a head is one block, the products it always was.
    private const int RowBlock = 128;

    /// <summary>Shapes and scale of one attention call.</summary>
    public readonly record struct Dims(int B, int NH, int T, int HS)
    {
        public float Scale => 1f / MathF.Sqrt(HS);
    }

    /// <summary>
    /// out = softmax(mask(Q·Kᵀ·scale))·V for every (b, h); probs [B, NH, T, T] receives each head's P, kept for
    /// <see cref="Backward"/>. keyMask is [B, T] (1 = real token, 0 = padding) or empty for none.
    /// </summary>
    public static void Forward(Dims d, ReadOnlySpan<float> q, AttentionLayout qL, ReadOnlySpan<float> k, AttentionLayout kL,
        ReadOnlySpan<float> v, AttentionLayout vL, Span<float> output, AttentionLayout oL, ReadOnlySpan<byte> keyMask, Span<float> probs)
    {
        Check(d, "q", q.Length, qL);
        Check(d, "k", k.Length, kL);
        Check(d, "v", v.Length, vL);
        Check(d, "output", output.Length, oL);
        CheckProbsAndMask(d, probs.Length, keyMask.Length);
        fixed (float* pq = q, pk = k, pv = v, po = output, pp = probs)
        fixed (byte* pm = keyMask)
            Forward(d, pq, qL, pk, kL, pv, vL, po, oL, pm, pp);
    }

    /// <summary>The pointer form of <see cref="Forward(Dims, ReadOnlySpan{float}, AttentionLayout, ReadOnlySpan{float}, AttentionLayout, ReadOnlySpan{float}, AttentionLayout, Span{float}, AttentionLayout, ReadOnlySpan{byte}, Span{float})"/> (no bounds checks).</summary>
    public static void Forward(Dims d, float* q, AttentionLayout qL, float* k, AttentionLayout kL, float* v, AttentionLayout vL,
        float* o, AttentionLayout oL, byte* keyMask, float* probs)
    {
        int T = d.T, HS = d.HS;
        ParallelChunks.For(d.B * d.NH, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (start, end) =>
        {
            for (int bh = start; bh < end; bh++)
            {
                int b = bh / d.NH, h = bh % d.NH;
                float* qb = q + qL.Base(b, h), kb = k + kL.Base(b, h), vb = v + vL.Base(b, h), ob = o + oL.Base(b, h);
                float* p = probs + (long)bh * T * T;
                byte* mask = keyMask == null ? null : keyMask + (long)b * T;
                for (int t0 = 0; t0 < T; t0 += RowBlock)
                {
                    int rows = Math.Min(RowBlock, T - t0), keys = t0 + rows;
                    // S[rows, keys] = Q[t0..]·K[0..keys]ᵀ, into P's rows (row stride T)
                    Gemm.Multiply(GemmForm.NT, rows, keys, HS, qb + (long)t0 * qL.RowStride, qL.RowStride, kb, kL.RowStride, p + (long)t0 * T, T, false, threads: 1);
                    for (int r = 0; r < rows; r++)
                        MaskedSoftmaxRow(p + (long)(t0 + r) * T, t0 + r, T, mask, d.Scale);
                    // O[t0..] = P[rows, 0..keys]·V[0..keys]
                    Gemm.Multiply(GemmForm.NN, rows, HS, keys, p + (long)t0 * T, T, vb, vL.RowStride, ob + (long)t0 * oL.RowStride, oL.RowStride, false, threads: 1);
                }
            }
        });
    }

    /// <summary>
    /// Adds the gradients of <see cref="Forward(Dims, ReadOnlySpan{float}, AttentionLayout, ReadOnlySpan{float}, AttentionLayout, ReadOnlySpan{float}, AttentionLayout, Span{float}, AttentionLayout, ReadOnlySpan{byte}, Span{float})"/>'s
    /// output into dq, dk, dv (each in its operand's layout; any may be empty to skip it, and they may share one buffer
    /// as GPT-2's fused qkv gradient does). probs is what forward wrote.
    /// </summary>
    public static void Backward(Dims d, ReadOnlySpan<float> q, AttentionLayout qL, ReadOnlySpan<float> k, AttentionLayout kL,
        ReadOnlySpan<float> v, AttentionLayout vL, ReadOnlySpan<float> dout, AttentionLayout oL, ReadOnlySpan<float> probs,
        Span<float> dq, Span<float> dk, Span<float> dv)
    {
        Check(d, "q", q.Length, qL);
        Check(d, "k", k.Length, kL);
        Check(d, "v", v.Length, vL);
        Check(d, "dout", dout.Length, oL);
        CheckProbsAndMask(d, probs.Length, 0);
        if (!dq.IsEmpty) Check(d, "dq", dq.Length, qL);
        if (!dk.IsEmpty) Check(d, "dk", dk.Length, kL);
        if (!dv.IsEmpty) Check(d, "dv", dv.Length, vL);
        fixed (float* pq = q, pk = k, pv = v, pg = dout, pp = probs, pdq = dq, pdk = dk, pdv = dv)
            Backward(d, pq, qL, pk, kL, pv, vL, pg, oL, pp, pdq, pdk, pdv);
    }

    /// <summary>The pointer form of Backward (no bounds checks; a null gradient pointer skips that gradient).</summary>
    public static void Backward(Dims d, float* q, AttentionLayout qL, float* k, AttentionLayout kL, float* v, AttentionLayout vL,
        float* dout, AttentionLayout oL, float* probs, float* dq, float* dk, float* dv)
    {
        int T = d.T, HS = d.HS;
        ParallelChunks.For(d.B * d.NH, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (start, end) =>
        {
            var scratch = new float[T * T];
            fixed (float* ds = scratch)
            {
                for (int bh = start; bh < end; bh++)
                {
                    int b = bh / d.NH, h = bh % d.NH;
                    float* qb = q + qL.Base(b, h), kb = k + kL.Base(b, h), vb = v + vL.Base(b, h), gb = dout + oL.Base(b, h);
                    float* p = probs + (long)bh * T * T;
                    // dV (T,HS) += Pᵀ·dO: one product over all T query rows, so each sum runs over the rows in one order.
                    if (dv != null)
                        Gemm.Multiply(GemmForm.TN, T, HS, T, p, T, gb, oL.RowStride, dv + vL.Base(b, h), vL.RowStride, true, threads: 1);
                    // dP = dO·Vᵀ for keys ≤ each block's last row, then dS = P ⊙ (dP − ⟨P, dP⟩)·scale row by row.
                    for (int t0 = 0; t0 < T; t0 += RowBlock)
                    {
                        int rows = Math.Min(RowBlock, T - t0), keys = t0 + rows;
                        Gemm.Multiply(GemmForm.NT, rows, keys, HS, gb + (long)t0 * oL.RowStride, oL.RowStride, vb, vL.RowStride, ds + (long)t0 * T, T, false, threads: 1);
                    }
                    for (int t = 0; t < T; t++)
                    {
                        float* row = ds + (long)t * T;
                        SoftmaxBackwardRow(p + (long)t * T, row, t + 1, d.Scale);
                        new Span<float>(row + t + 1, T - t - 1).Clear(); // keys after t: no gradient
                    }
                    // dQ[t0..] (+)= dS[rows, 0..keys]·K[0..keys] ; dK (T,HS) += dSᵀ·Q over all T rows at once.
                    if (dq != null)
                        for (int t0 = 0; t0 < T; t0 += RowBlock)
                        {
                            int rows = Math.Min(RowBlock, T - t0), keys = t0 + rows;
                            Gemm.Multiply(GemmForm.NN, rows, HS, keys, ds + (long)t0 * T, T, kb, kL.RowStride, dq + qL.Base(b, h) + (long)t0 * qL.RowStride, qL.RowStride, true, threads: 1);
                        }
                    if (dk != null)
                        Gemm.Multiply(GemmForm.TN, T, HS, T, ds, T, qb, qL.RowStride, dk + kL.Base(b, h), kL.RowStride, true, threads: 1);
                }
            }
        });
    }

    /// <summary>
    /// One (batch row, head) against a KV cache laid out for decoding: Tq queries at absolute positions offset..offset+Tq−1,
    /// keys transposed, kT (HS, Tk) with row stride ldkT, so one query's scores are HS axpys over contiguous keys; values
    /// (Tk, HS) with row stride ldv; keyMask (Tk) or empty. q (Tq, HS) stride ldq; output (Tq, HS) stride ldo; probs
    /// (Tq, Tk) scratch. A few queries (decoding) take the fused loop, more (a prefill) two GEMMs.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ForwardCached(Span<float> output, int ldo, Span<float> probs, ReadOnlySpan<float> q, int ldq, ReadOnlySpan<float> kT, int ldkT,
        ReadOnlySpan<float> v, int ldv, ReadOnlySpan<byte> keyMask, int Tq, int Tk, int queryOffset, int HS)
    {
        if (Tq <= 0 || HS <= 0 || queryOffset < 0 || queryOffset + Tq > Tk)
            throw new ArgumentException($"Attention.ForwardCached: {Tq} queries at offset {queryOffset} against {Tk} keys (head size {HS}).");
        if (probs.Length < Tq * Tk || (!keyMask.IsEmpty && keyMask.Length < Tk) || ldkT < Tk
            || kT.Length < (long)(HS - 1) * ldkT + Tk || v.Length < (long)(Tk - 1) * ldv + HS
            || q.Length < (long)(Tq - 1) * ldq + HS || output.Length < (long)(Tq - 1) * ldo + HS)
            throw new ArgumentException($"Attention.ForwardCached: a buffer is too short for {Tq} queries, {Tk} keys, head size {HS}.");
        float scale = 1f / MathF.Sqrt(HS);
        fixed (float* pp = probs)
        fixed (byte* pm = keyMask)
        {
            if (Tq > SmallQueryRows)
            {
                Gemm.Multiply(GemmForm.NN, Tq, Tk, HS, q, ldq, kT, ldkT, probs, Tk, accumulate: false, threads: 1);
                for (int i = 0; i < Tq; i++) MaskedSoftmaxRow(pp + (long)i * Tk, queryOffset + i, Tk, pm, scale);
                Gemm.Multiply(GemmForm.NN, Tq, HS, Tk, probs, Tk, v, ldv, output, ldo, accumulate: false, threads: 1);
                return;
            }
            for (int i = 0; i < Tq; i++)
            {
                var row = probs.Slice(i * Tk, Tk);
                int n = queryOffset + i + 1;
                ScoresTransposed(row, q.Slice(i * ldq, HS), kT, ldkT, n, HS);
                MaskedSoftmaxRow(pp + (long)i * Tk, n - 1, Tk, pm, scale);
                WeightedValues(output.Slice(i * ldo, HS), row, v, ldv, n, HS);
            }
        }
    }

    /// <summary>
    /// o[d] = Σ_s p[s]·v[s·ldv + d] over the keys s &lt; n whose p is not 0: for each d one fused multiply-add chain from
    /// zero in key order — what a 64-wide axpy per key into o did, the same bits — but 64 outputs stay in registers
    /// (4 × Vector512, or 8 × Vector256 without AVX-512) across all keys, so o is not loaded and stored once per key.
    /// Head sizes past a multiple of 64 take 8-wide blocks, then single lanes, each with the same chain.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void WeightedValues(Span<float> o, ReadOnlySpan<float> p, ReadOnlySpan<float> v, int ldv, int n, int HS)
    {
        ref float rv = ref MemoryMarshal.GetReference(v);
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
                    if (ps == 0) continue; // a masked key: the axpy skipped it too
                    var w = Vector512.Create(ps);
                    nuint at = (nuint)((long)s * ldv + d);
                    a0 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref rv, at), w, a0);
                    a1 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref rv, at + 16), w, a1);
                    a2 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref rv, at + 32), w, a2);
                    a3 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref rv, at + 48), w, a3);
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
                    a0 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref rv, at), w, a0);
                    a1 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref rv, at + 8), w, a1);
                    a2 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref rv, at + 16), w, a2);
                    a3 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref rv, at + 24), w, a3);
                    a4 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref rv, at + 32), w, a4);
                    a5 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref rv, at + 40), w, a5);
                    a6 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref rv, at + 48), w, a6);
                    a7 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref rv, at + 56), w, a7);
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
                if (ps != 0) a0 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref rv, (nuint)((long)s * ldv + d)), Vector256.Create(ps), a0);
            }
            a0.StoreUnsafe(ref ro, (nuint)d);
        }
        for (; d < HS; d++)
        {
            float sum = 0;
            for (int s = 0; s < n; s++)
                if (p[s] != 0) sum = MathF.FusedMultiplyAdd(v[s * ldv + d], p[s], sum);
            o[d] = sum;
        }
    }

    /// <summary>WeightedValues' order written out: o cleared, then for each key not 0 an FMA into every o[d].</summary>
    public static void WeightedValuesReference(Span<float> o, ReadOnlySpan<float> p, ReadOnlySpan<float> v, int ldv, int n, int HS)
    {
        o[..HS].Clear();
        for (int s = 0; s < n; s++)
        {
            if (p[s] == 0) continue;
            for (int d = 0; d < HS; d++) o[d] = MathF.FusedMultiplyAdd(v[s * ldv + d], p[s], o[d]);
        }
    }

    // Decoding asks for one query row against a long cache: a GEMM call's packing costs more than the product then.
    internal const int SmallQueryRows = 4;

    /// <summary>scores[s] = Σ_d q[d]·kT[d·ldkT + s] for s &lt; n, each a fused multiply-add chain in d order (the same bits in
    /// the 128-, 64-, 32-, 8-wide and scalar paths); a block of keys stays in registers across the whole d loop.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void ScoresTransposed(Span<float> scores, ReadOnlySpan<float> q, ReadOnlySpan<float> kT, int ldkT, int n, int HS)
    {
        ref float rk = ref MemoryMarshal.GetReference(kT);
        ref float rs = ref MemoryMarshal.GetReference(scores);
        int s = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            // Eight chains in flight hide the FMA latency (four do not); each lane's chain is the one below.
            for (; s + 128 <= n; s += 128)
            {
                Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
                for (int d = 0; d < HS; d++)
                {
                    var qd = Vector512.Create(q[d]);
                    nuint at = (nuint)((long)d * ldkT + s);
                    a0 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref rk, at), qd, a0);
                    a1 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref rk, at + 16), qd, a1);
                    a2 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref rk, at + 32), qd, a2);
                    a3 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref rk, at + 48), qd, a3);
                    a4 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref rk, at + 64), qd, a4);
                    a5 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref rk, at + 80), qd, a5);
                    a6 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref rk, at + 96), qd, a6);
                    a7 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref rk, at + 112), qd, a7);
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
                    a0 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref rk, at), qd, a0);
                    a1 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref rk, at + 16), qd, a1);
                    a2 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref rk, at + 32), qd, a2);
                    a3 = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref rk, at + 48), qd, a3);
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
                a0 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref rk, at), qd, a0);
                a1 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref rk, at + 8), qd, a1);
                a2 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref rk, at + 16), qd, a2);
                a3 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref rk, at + 24), qd, a3);
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
                a0 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref rk, (nuint)((long)d * ldkT + s)), Vector256.Create(q[d]), a0);
            a0.StoreUnsafe(ref rs, (nuint)s);
        }
        for (; s < n; s++)
        {
            float sum = 0;
            for (int d = 0; d < HS; d++) sum = MathF.FusedMultiplyAdd(kT[d * ldkT + s], q[d], sum);
            scores[s] = sum;
        }
    }

    /// <summary>ScoresTransposed's order written out: for each key a fused multiply-add chain over d from zero.</summary>
    public static void ScoresTransposedReference(Span<float> scores, ReadOnlySpan<float> q, ReadOnlySpan<float> kT, int ldkT, int n, int HS)
    {
        for (int s = 0; s < n; s++)
        {
            float sum = 0;
            for (int d = 0; d < HS; d++) sum = MathF.FusedMultiplyAdd(kT[d * ldkT + s], q[d], sum);
            scores[s] = sum;
        }
    }

    /// <summary>
    /// Scores row (length keys) → probabilities in place: scale, mask (keys after t and keys whose mask is 0), softmax.
    /// A row with no key left is all zeros.
    /// </summary>
    internal static void MaskedSoftmaxRow(float* row, int t, int keys, byte* mask, float scale)
    {
        if (KernelOptions.UseScalarReference)
        {
            MaskedSoftmaxRowReference(row, t, keys, mask, scale);
            return;
        }
        int n = t + 1; // keys after t are never allowed
        var z = new Span<float>(row, n);
        new Span<float>(row + n, keys - n).Clear();
        TensorPrimitives.Multiply(z, scale, z);
        if (mask != null)
        {
            // Real keys are the rule (padding sits at a prompt's start): eight mask bytes with no 0 among them are passed
            // over with one test instead of eight. Only masked keys are written, so the row is the same either way.
            int s = 0;
            for (; s + 8 <= n; s += 8)
            {
                ulong m = Unsafe.ReadUnaligned<ulong>(mask + s);
                if (((m - 0x0101010101010101UL) & ~m & 0x8080808080808080UL) == 0) continue; // no zero byte
                for (int j = s; j < s + 8; j++) if (mask[j] == 0) z[j] = float.NegativeInfinity;
            }
            for (; s < n; s++) if (mask[s] == 0) z[s] = float.NegativeInfinity;
        }
        float max = TensorPrimitives.Max(z);
        if (float.IsNegativeInfinity(max))
        {
            z.Clear(); // nothing to attend: zeros, not NaN
            return;
        }
        TensorPrimitives.Subtract(z, max, z);
        TensorPrimitives.Exp(z, z);                      // masked keys: exp(−∞) = 0
        TensorPrimitives.Multiply(z, 1f / Reduce.Sum(z), z);
    }

    // dS = P ⊙ (dP − ⟨P, dP⟩) · scale over the first n keys, in place over dP (softmax backward, then the score scale).
    internal static void SoftmaxBackwardRow(float* p, float* dp, int n, float scale)
    {
        if (KernelOptions.UseScalarReference)
        {
            SoftmaxBackwardRowReference(p, dp, n, scale);
            return;
        }
        var pr = new ReadOnlySpan<float>(p, n);
        var dpr = new Span<float>(dp, n);
        float dot = Reduce.Dot(pr, dpr);
        TensorPrimitives.Subtract(dpr, dot, dpr);
        TensorPrimitives.Multiply(dpr, pr, dpr);
        TensorPrimitives.Multiply(dpr, scale, dpr);
    }

    /// <summary>SoftmaxBackwardRow's order written out (Reduce.DotInOrder for the row sum): the kernel's bits exactly.</summary>
    internal static void SoftmaxBackwardRowReference(float* p, float* dp, int n, float scale)
    {
        float dot = Reduce.DotInOrder(new ReadOnlySpan<float>(p, n), new ReadOnlySpan<float>(dp, n));
        for (int s = 0; s < n; s++) dp[s] = (dp[s] - dot) * p[s] * scale;
    }

    /// <summary>
    /// MaskedSoftmaxRow with plain loops: MathF.Exp where the kernel has TensorPrimitives.Exp (a few ulp apart) and the
    /// row sum in Reduce's order.
    /// </summary>
    internal static void MaskedSoftmaxRowReference(float* row, int t, int keys, byte* mask, float scale)
    {
        float max = float.NegativeInfinity;
        for (int s = 0; s < keys; s++)
        {
            bool allowed = s <= t && (mask == null || mask[s] != 0);
            float z = allowed ? row[s] * scale : float.NegativeInfinity;
            row[s] = z;
            if (z > max) max = z;
        }
        if (float.IsNegativeInfinity(max))
        {
            new Span<float>(row, keys).Clear(); // nothing to attend: zeros, not NaN
            return;
        }
        for (int s = 0; s < keys; s++) row[s] = MathF.Exp(row[s] - max); // exp(−∞) = 0 for masked keys
        float inv = 1f / Reduce.SumInOrder(new ReadOnlySpan<float>(row, t + 1));
        for (int s = 0; s < keys; s++) row[s] *= inv;
    }

    private static void Check(Dims d, string name, int length, AttentionLayout layout)
    {
        if (d.B < 0 || d.NH < 0 || d.T < 0 || d.HS <= 0)
            throw new ArgumentException($"attention: bad shape B={d.B}, NH={d.NH}, T={d.T}, HS={d.HS}.");
        if (layout.RowStride < d.HS || layout.Offset < 0)
            throw new ArgumentException($"attention: {name} rows of stride {layout.RowStride} at offset {layout.Offset} cannot hold head size {d.HS}.");
        long extent = layout.Extent(d);
        if (extent > length)
            throw new ArgumentException($"attention: {name} holds {length} floats but its layout reaches {extent} for B={d.B}, NH={d.NH}, T={d.T}, HS={d.HS}.");
    }

    private static void CheckProbsAndMask(Dims d, int probsLength, int maskLength)
    {
        long need = (long)d.B * d.NH * d.T * d.T;
        if (probsLength < need)
            throw new ArgumentException($"attention: probs holds {probsLength} floats, needs B·NH·T·T = {need}.");
        if (maskLength != 0 && maskLength != d.B * d.T)
            throw new ArgumentException($"attention: keyMask holds {maskLength} entries, needs B·T = {d.B * d.T}.");
    }
}

/// <summary>Plain float64 masked causal attention: the reference the kernels are tested against.</summary>
public static class AttentionReference
{
    /// <summary>Full sequences on [B,NH,T,HS] arrays; keyMask [B,T] (0 = padding) or null.</summary>
    public static float[] Forward(int B, int NH, int T, int HS, float[] q, float[] k, float[] v, byte[]? keyMask)
    {
        var o = new float[B * NH * T * HS];
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++)
            {
                int at = (b * NH + h) * T * HS;
                var mask = keyMask is null ? null : keyMask.AsSpan(b * T, T).ToArray();
                var head = Cached(q.AsSpan(at, T * HS), k.AsSpan(at, T * HS), v.AsSpan(at, T * HS), mask, T, T, 0, HS);
                for (int i = 0; i < T * HS; i++) o[at + i] = (float)head[i];
            }
        return o;
    }

    /// <summary>
    /// One head: Tq queries q (Tq,HS) at positions offset.., keys k and values v (Tk,HS), keyMask (Tk) or null.
    /// Query i attends keys s ≤ offset + i whose mask is not 0; with none, its output is zeros.
    /// </summary>
    public static double[] Cached(ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, byte[]? keyMask, int Tq, int Tk, int offset, int HS)
    {
        var output = new double[Tq * HS];
        var z = new double[Tk];
        double scale = 1.0 / Math.Sqrt(HS);
        for (int i = 0; i < Tq; i++)
        {
            double max = double.NegativeInfinity;
            for (int s = 0; s < Tk; s++)
            {
                z[s] = double.NegativeInfinity;
                if (s > offset + i || (keyMask is not null && keyMask[s] == 0)) continue;
                double dot = 0;
                for (int d = 0; d < HS; d++) dot += (double)q[i * HS + d] * k[s * HS + d];
                z[s] = dot * scale;
                max = Math.Max(max, z[s]);
            }
            if (double.IsNegativeInfinity(max)) continue; // nothing to attend: zeros
            double sum = 0;
            for (int s = 0; s < Tk; s++) sum += z[s] = Math.Exp(z[s] - max);
            for (int s = 0; s < Tk; s++)
                for (int d = 0; d < HS; d++) output[i * HS + d] += z[s] / sum * v[s * HS + d];
        }
        return output;
    }
}
