// Causal scaled-dot-product attention for one (batch, head) pair at a time, with a key padding mask.
// Forward keeps only the per-row log-sum-exp; backward recomputes the probabilities, so one T×T scratch
// block per worker is the most that is ever alive. Query rows are processed in blocks of 64 against
// keys 0..end-of-block only, which skips the masked upper triangle. Row loops (masked softmax, probabilities
// from the log-sum-exp, softmax backward) use TensorPrimitives; their scalar references are the *RowReference
// methods, and the whole op's float64 reference is AttentionReference.
//
// Layout: element (b, h, t, d) of Q lives at q[b·BatchStride + h·HeadStride + t·RowStride + d]; the same
// strides serve [B,NH,T,HS] tensors (RowStride = HS) and fused [B,T,3C] qkv (RowStride = 3C, HeadStride = HS).
// Masking rule: query t attends key s iff s ≤ t and keyMask[b, s] ≠ 0. A query that may attend nothing
// (a left-padding position) outputs zeros and has log-sum-exp −∞.
using System.Numerics.Tensors;

namespace RlhfSharp.Tensors.Kernels;

/// <summary>Where one operand's rows sit in its buffer (in floats).</summary>
public readonly record struct AttentionLayout(int Offset, int BatchStride, int HeadStride, int RowStride)
{
    public int Base(int b, int h) => Offset + b * BatchStride + h * HeadStride;
}

public static unsafe class Attention
{
    private const int RowBlock = 64;

    /// <summary>Shapes and scale of one attention call.</summary>
    public readonly record struct Dims(int B, int NH, int T, int HS)
    {
        public float Scale => 1f / MathF.Sqrt(HS);
    }

    /// <summary>out = softmax(mask(Q·Kᵀ·scale))·V for every (b, h); lse[(b·NH + h)·T + t] receives each row's log-sum-exp.</summary>
    public static void Forward(Dims d, float* q, float* k, float* v, AttentionLayout qL, AttentionLayout kL, AttentionLayout vL,
        float* o, AttentionLayout oL, float* keyMask, float* lse)
    {
        int T = d.T;
        ParallelChunks.For(d.B * d.NH, (start, end) =>
        {
            var scratch = new float[Math.Min(T, RowBlock) * T];
            var kTransposed = new float[d.HS * T];
            fixed (float* s = scratch, kT = kTransposed)
            {
                for (int bh = start; bh < end; bh++)
                {
                    int b = bh / d.NH, h = bh % d.NH;
                    float* qb = q + qL.Base(b, h), kb = k + kL.Base(b, h), vb = v + vL.Base(b, h), ob = o + oL.Base(b, h);
                    float* mask = keyMask == null ? null : keyMask + b * T;
                    // Kᵀ [HS, T] once per head, so every score block is an NN product (much faster than NT on strided rows).
                    Transpose(kb, kL.RowStride, T, d.HS, kT);
                    for (int t0 = 0; t0 < T; t0 += RowBlock)
                    {
                        int rows = Math.Min(RowBlock, T - t0), keys = t0 + rows;
                        // S[rows, keys] = Q[t0..] · Kᵀ[:, 0..keys]
                        Gemm.Multiply(GemmForm.NN, rows, keys, d.HS, qb + (long)t0 * qL.RowStride, qL.RowStride, kT, T, s, keys, false, threads: 1);
                        for (int r = 0; r < rows; r++)
                            lse[(long)bh * T + t0 + r] = MaskedSoftmaxRow(s + (long)r * keys, t0 + r, keys, mask, d.Scale);
                        // O[t0..] = P · V[0..keys]
                        Gemm.Multiply(GemmForm.NN, rows, d.HS, keys, s, keys, vb, vL.RowStride, ob + (long)t0 * oL.RowStride, oL.RowStride, false, threads: 1);
                    }
                }
            }
        });
    }

    /// <summary>Adds the gradients of Forward's output into dq, dk, dv (any may be null to skip it).</summary>
    public static void Backward(Dims d, float* q, float* k, float* v, AttentionLayout qL, AttentionLayout kL, AttentionLayout vL,
        float* dout, AttentionLayout oL, float* keyMask, float* lse, float* dq, float* dk, float* dv)
    {
        int T = d.T;
        ParallelChunks.For(d.B * d.NH, (start, end) =>
        {
            int block = Math.Min(T, RowBlock) * T;
            var scratchP = new float[block];
            var scratchDp = new float[block];
            var kTransposed = new float[d.HS * T];
            var vTransposed = new float[d.HS * T];
            fixed (float* p = scratchP, dp = scratchDp, kT = kTransposed, vT = vTransposed)
            {
                for (int bh = start; bh < end; bh++)
                {
                    int b = bh / d.NH, h = bh % d.NH;
                    float* qb = q + qL.Base(b, h), kb = k + kL.Base(b, h), vb = v + vL.Base(b, h), gb = dout + oL.Base(b, h);
                    float* mask = keyMask == null ? null : keyMask + b * T;
                    Transpose(kb, kL.RowStride, T, d.HS, kT);
                    Transpose(vb, vL.RowStride, T, d.HS, vT);
                    for (int t0 = 0; t0 < T; t0 += RowBlock)
                    {
                        int rows = Math.Min(RowBlock, T - t0), keys = t0 + rows;
                        float* qRows = qb + (long)t0 * qL.RowStride, gRows = gb + (long)t0 * oL.RowStride;
                        // Recompute P from the saved log-sum-exp.
                        Gemm.Multiply(GemmForm.NN, rows, keys, d.HS, qRows, qL.RowStride, kT, T, p, keys, false, threads: 1);
                        for (int r = 0; r < rows; r++)
                            ProbabilitiesFromLse(p + (long)r * keys, t0 + r, keys, mask, d.Scale, lse[(long)bh * T + t0 + r]);
                        // dV[0..keys] += Pᵀ·dO ; dP = dO·Vᵀ[:, 0..keys]
                        if (dv != null)
                            Gemm.Multiply(GemmForm.TN, keys, d.HS, rows, p, keys, gRows, oL.RowStride, dv + vL.Base(b, h), vL.RowStride, true, threads: 1);
                        Gemm.Multiply(GemmForm.NN, rows, keys, d.HS, gRows, oL.RowStride, vT, T, dp, keys, false, threads: 1);
                        // dS = P ⊙ (dP − Σ_s P·dP) · scale (softmax backward, then the score scale)
                        for (int r = 0; r < rows; r++)
                            SoftmaxBackwardRow(p + (long)r * keys, dp + (long)r * keys, keys, d.Scale);
                        // dQ[t0..] += dS·K[0..keys] ; dK[0..keys] += dSᵀ·Q[t0..]
                        if (dq != null)
                            Gemm.Multiply(GemmForm.NN, rows, d.HS, keys, dp, keys, kb, kL.RowStride, dq + qL.Base(b, h) + (long)t0 * qL.RowStride, qL.RowStride, true, threads: 1);
                        if (dk != null)
                            Gemm.Multiply(GemmForm.TN, keys, d.HS, rows, dp, keys, qRows, qL.RowStride, dk + kL.Base(b, h), kL.RowStride, true, threads: 1);
                    }
                }
            }
        });
    }

    // dst [cols, rows] = srcᵀ for src [rows, cols] with row stride `stride`; eight source rows at a time so
    // each output run is contiguous and the source lines stay in L1.
    private static void Transpose(float* src, int stride, int rows, int cols, float* dst)
    {
        for (int r0 = 0; r0 < rows; r0 += 8)
        {
            int rb = Math.Min(8, rows - r0);
            for (int c = 0; c < cols; c++)
            {
                float* o = dst + (long)c * rows + r0;
                for (int r = 0; r < rb; r++) o[r] = src[(long)(r0 + r) * stride + c];
            }
        }
    }

    // Scores row (length keys) → probabilities in place; returns the log-sum-exp of the scaled, allowed scores.
    internal static float MaskedSoftmaxRow(float* row, int t, int keys, float* mask, float scale)
    {
        if (KernelOptions.UseScalarReference) return MaskedSoftmaxRowReference(row, t, keys, mask, scale);
        int n = t + 1; // keys after t are never allowed
        var z = new Span<float>(row, n);
        TensorPrimitives.Multiply(z, scale, z);
        if (mask != null)
            for (int s = 0; s < n; s++) if (mask[s] == 0f) z[s] = float.NegativeInfinity;
        new Span<float>(row + n, keys - n).Clear();
        float max = TensorPrimitives.Max(z);
        if (float.IsNegativeInfinity(max))
        {
            z.Clear(); // nothing to attend: zeros, not NaN
            return float.NegativeInfinity;
        }
        TensorPrimitives.Subtract(z, max, z);
        TensorPrimitives.Exp(z, z);
        if (mask != null)
            for (int s = 0; s < n; s++) if (mask[s] == 0f) z[s] = 0f;
        float sum = Reduce.Sum(z);
        TensorPrimitives.Multiply(z, 1f / sum, z);
        return max + MathF.Log(sum);
    }

    internal static void ProbabilitiesFromLse(float* row, int t, int keys, float* mask, float scale, float lse)
    {
        if (KernelOptions.UseScalarReference)
        {
            ProbabilitiesFromLseReference(row, t, keys, mask, scale, lse);
            return;
        }
        int n = t + 1;
        new Span<float>(row + n, keys - n).Clear();
        var z = new Span<float>(row, n);
        if (float.IsNegativeInfinity(lse))
        {
            z.Clear();
            return;
        }
        TensorPrimitives.Multiply(z, scale, z);
        TensorPrimitives.Subtract(z, lse, z);
        TensorPrimitives.Exp(z, z);
        if (mask != null)
            for (int s = 0; s < n; s++) if (mask[s] == 0f) z[s] = 0f;
    }

    // dS = P ⊙ (dP − ⟨P, dP⟩) · scale, in place over dP (softmax backward, then the score scale).
    internal static void SoftmaxBackwardRow(float* p, float* dp, int keys, float scale)
    {
        if (KernelOptions.UseScalarReference)
        {
            SoftmaxBackwardRowReference(p, dp, keys, scale);
            return;
        }
        var pr = new ReadOnlySpan<float>(p, keys);
        var dpr = new Span<float>(dp, keys);
        float dot = Reduce.Dot(pr, dpr);
        TensorPrimitives.Subtract(dpr, dot, dpr);
        TensorPrimitives.Multiply(dpr, pr, dpr);
        TensorPrimitives.Multiply(dpr, scale, dpr);
    }

    internal static void SoftmaxBackwardRowReference(float* p, float* dp, int keys, float scale)
    {
        float dot = 0f;
        for (int s = 0; s < keys; s++) dot += p[s] * dp[s];
        for (int s = 0; s < keys; s++) dp[s] = p[s] * (dp[s] - dot) * scale;
    }

    internal static float MaskedSoftmaxRowReference(float* row, int t, int keys, float* mask, float scale)
    {
        float max = float.NegativeInfinity;
        for (int s = 0; s < keys; s++)
        {
            bool allowed = s <= t && (mask == null || mask[s] != 0f);
            float z = allowed ? row[s] * scale : float.NegativeInfinity;
            row[s] = z;
            if (z > max) max = z;
        }
        if (float.IsNegativeInfinity(max))
        {
            new Span<float>(row, keys).Clear(); // nothing to attend: zeros, not NaN
            return float.NegativeInfinity;
        }
        float sum = 0f;
        for (int s = 0; s < keys; s++)
        {
            float e = MathF.Exp(row[s] - max); // exp(−∞) = 0 for masked keys
            row[s] = e;
            sum += e;
        }
        float inv = 1f / sum;
        for (int s = 0; s < keys; s++) row[s] *= inv;
        return max + MathF.Log(sum);
    }

    internal static void ProbabilitiesFromLseReference(float* row, int t, int keys, float* mask, float scale, float lse)
    {
        if (float.IsNegativeInfinity(lse))
        {
            new Span<float>(row, keys).Clear();
            return;
        }
        for (int s = 0; s < keys; s++)
        {
            bool allowed = s <= t && (mask == null || mask[s] != 0f);
            row[s] = allowed ? MathF.Exp(row[s] * scale - lse) : 0f;
        }
    }
}

/// <summary>Plain float64 causal attention on [B,NH,T,HS] arrays: the reference the fused kernel is tested against.</summary>
public static class AttentionReference
{
    public static float[] Forward(int B, int NH, int T, int HS, float[] q, float[] k, float[] v, float[]? keyMask)
    {
        var o = new float[B * NH * T * HS];
        double scale = 1.0 / Math.Sqrt(HS);
        var p = new double[T];
        for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
        {
            int bh = (b * NH + h) * T * HS;
            for (int t = 0; t < T; t++)
            {
                double max = double.NegativeInfinity;
                for (int s = 0; s < T; s++)
                {
                    bool allowed = s <= t && (keyMask is null || keyMask[b * T + s] != 0f);
                    double z = double.NegativeInfinity;
                    if (allowed)
                    {
                        z = 0;
                        for (int i = 0; i < HS; i++) z += (double)q[bh + t * HS + i] * k[bh + s * HS + i];
                        z *= scale;
                    }
                    p[s] = z;
                    max = Math.Max(max, z);
                }
                if (double.IsNegativeInfinity(max)) continue; // fully masked row: zeros
                double sum = 0;
                for (int s = 0; s < T; s++) sum += p[s] = Math.Exp(p[s] - max);
                for (int i = 0; i < HS; i++)
                {
                    double acc = 0;
                    for (int s = 0; s < T; s++) acc += p[s] / sum * v[bh + s * HS + i];
                    o[bh + t * HS + i] = (float)acc;
                }
            }
        }
        return o;
    }
}
