// The GPT's fused layer kernels, forward and backward side by side (llm.c's train_gpt2.c layout): LayerNorm,
// Conv1D matmul, tanh-GELU and masked causal attention. Every matrix product goes through Gemm.Multiply.
// Shape letters: B batch, T sequence, C channels, OC output channels, NH heads, HS = C/NH head size.
// Row-parallel loops split rows into fixed chunks; reductions over rows run sequentially, so results never
// depend on thread timing. The scalar yardstick for all of this is the test project's ReferenceGpt.
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using RlhfSharp.Tensors;
using RlhfSharp.Tensors.Kernels;

namespace RlhfSharp.Models;

internal static class GptKernels
{
    /// <summary>Runs body(row) for rows [0, n) in fixed contiguous chunks over Parallelism.Threads.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void ForRows(int n, Action<int, int> body)
    {
        int threads = Math.Min(Parallelism.Threads, Math.Max(1, n / 16));
        if (threads <= 1)
        {
            body(0, n);
            return;
        }
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, chunk =>
        {
            int start = (int)((long)n * chunk / threads), end = (int)((long)n * (chunk + 1) / threads);
            body(start, end);
        });
    }

    // ---- LayerNorm: out = (x - mean)·rstd·w + b, rstd = 1/sqrt(var + eps). inp/out (N,C), mean/rstd (N).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void LayerNormForward(float[] output, float[] mean, float[] rstd, float[] input, ReadOnlySpan<float> weightSpan, ReadOnlySpan<float> biasSpan, int N, int C, float eps)
    {
        var weight = weightSpan.ToArray();
        var bias = biasSpan.ToArray();
        ForRows(N, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (start, end) =>
        {
            for (int i = start; i < end; i++)
            {
                var x = input.AsSpan(i * C, C);
                var o = output.AsSpan(i * C, C);
                float m = Reduce.Sum(x) / C;
                TensorPrimitives.Subtract(x, m, o);
                float s = 1f / MathF.Sqrt(Reduce.Dot(o, o) / C + eps);
                TensorPrimitives.Multiply(o, s, o);
                TensorPrimitives.FusedMultiplyAdd(o, weight, bias, o);
                mean[i] = m;
                rstd[i] = s;
            }
        });
    }

    // dinp += rstd·(dnorm − mean(dnorm) − norm·mean(dnorm·norm)), dnorm = dout·w; dw += Σ norm·dout, db += Σ dout.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void LayerNormBackward(float[] dinput, Span<float> dweight, Span<float> dbias, float[] doutput, float[] input, ReadOnlySpan<float> weightSpan, float[] mean, float[] rstd, int N, int C)
    {
        var weight = weightSpan.ToArray();
        ForRows(N, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (start, end) =>
        {
            var norm = new float[C];
            var dnorm = new float[C];
            for (int i = start; i < end; i++)
            {
                var x = input.AsSpan(i * C, C);
                var dy = doutput.AsSpan(i * C, C);
                TensorPrimitives.Subtract(x, mean[i], norm);
                TensorPrimitives.Multiply(norm, rstd[i], norm);
                TensorPrimitives.Multiply(dy, weight, dnorm);
                float meanDnorm = Reduce.Sum(dnorm) / C;
                float meanDnormNorm = Reduce.Dot(dnorm, norm) / C;
                // t = dnorm − norm·meanDnormNorm − meanDnorm; dx += rstd·t
                TensorPrimitives.FusedMultiplyAdd(norm, -meanDnormNorm, dnorm, dnorm);
                TensorPrimitives.Subtract(dnorm, meanDnorm, dnorm);
                var dx = dinput.AsSpan(i * C, C);
                TensorPrimitives.FusedMultiplyAdd(dnorm, rstd[i], dx, dx);
            }
        });
        // Parameter gradients sum over rows: one sequential pass, so the result does not depend on the thread split.
        var normRow = new float[C];
        for (int i = 0; i < N; i++)
        {
            var dy = doutput.AsSpan(i * C, C);
            TensorPrimitives.Subtract(input.AsSpan(i * C, C), mean[i], normRow);
            TensorPrimitives.Multiply(normRow, rstd[i], normRow);
            TensorPrimitives.FusedMultiplyAdd(normRow, dy, dweight, dweight);
            TensorPrimitives.Add(dbias, dy, dbias);
        }
    }

    // ---- Conv1D (GPT-2's linear layer, weight stored [in, out]): out (N,OC) = inp (N,C) · weight (C,OC) + bias (OC).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MatmulForward(Span<float> output, ReadOnlySpan<float> input, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, int N, int C, int OC)
    {
        Gemm.Multiply(GemmForm.NN, N, OC, C, input, C, weight, OC, output, OC, accumulate: false);
        if (bias.IsEmpty) return;
        for (int i = 0; i < N; i++)
            TensorPrimitives.Add(output.Slice(i * OC, OC), bias, output.Slice(i * OC, OC));
    }

    // dinp += dout · weightᵀ; dweight += inpᵀ · dout; dbias += Σ_rows dout.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void MatmulBackward(Span<float> dinput, Span<float> dweight, Span<float> dbias, ReadOnlySpan<float> doutput, ReadOnlySpan<float> input, ReadOnlySpan<float> weight, int N, int C, int OC)
    {
        if (!dinput.IsEmpty)
            Gemm.Multiply(GemmForm.NT, N, C, OC, doutput, OC, weight, OC, dinput, C, accumulate: true);
        Gemm.Multiply(GemmForm.TN, C, OC, N, input, C, doutput, OC, dweight, OC, accumulate: true);
        if (dbias.IsEmpty) return;
        for (int i = 0; i < N; i++)
            TensorPrimitives.Add(dbias, doutput.Slice(i * OC, OC), dbias);
    }

    // ---- GELU, tanh form (Hendrycks & Gimpel 2016; GPT-2's "gelu_new"): 0.5·x·(1 + tanh(u)), u = √(2/π)·(x + 0.044715·x³).
    // Evaluated as x·σ(2u) (the same function, since 0.5·(1 + tanh u) = σ(2u)) so one vectorised Exp does the work;
    // the derivative is σ(2u) + x·2σ(2u)(1 − σ(2u))·√(2/π)(1 + 3·0.044715·x²). Scalar form: GeluScalar.
    private const float GeluScale = 0.7978845608028654f; // √(2/π)
    private const float GeluCubic = 0.044715f;
    private const int GeluChunk = 4096; // elements per work item

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static float GeluScalar(float x) => 0.5f * x * (1f + MathF.Tanh(GeluScale * (x + GeluCubic * x * x * x)));

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void GeluForward(float[] output, float[] input, int n)
    {
        ForRows((n + GeluChunk - 1) / GeluChunk, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (start, end) =>
        {
            int lo = start * GeluChunk, hi = Math.Min(n, end * GeluChunk), i = lo;
            // One fused pass: out = x / (1 + e^(−2u)), e^(−2u) = exp(x·(c0 + c1·x²)).
            var c0 = Vector256.Create(-2f * GeluScale);
            var c1 = Vector256.Create(-2f * GeluScale * GeluCubic);
            for (; i + Vector256<float>.Count <= hi; i += Vector256<float>.Count)
            {
                var x = Vector256.LoadUnsafe(ref input[i]);
                var e = Vector256.Exp(x * (c0 + c1 * x * x));
                (x / (Vector256<float>.One + e)).StoreUnsafe(ref output[i]);
            }
            for (; i < hi; i++)
            {
                float x = input[i];
                output[i] = x / (1f + MathF.Exp(x * (-2f * GeluScale - 2f * GeluScale * GeluCubic * x * x)));
            }
        });
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void GeluBackward(float[] dinput, float[] input, float[] doutput, int n)
    {
        ForRows((n + GeluChunk - 1) / GeluChunk, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (start, end) =>
        {
            int lo = start * GeluChunk, hi = Math.Min(n, end * GeluChunk), i = lo;
            // dx += dout · (σ + x·σ(1 − σ)·2√(2/π)(1 + 3·0.044715·x²)), σ = σ(2u).
            var c0 = Vector256.Create(-2f * GeluScale);
            var c1 = Vector256.Create(-2f * GeluScale * GeluCubic);
            var d0 = Vector256.Create(2f * GeluScale);
            var d1 = Vector256.Create(2f * GeluScale * 3f * GeluCubic);
            var one = Vector256<float>.One;
            for (; i + Vector256<float>.Count <= hi; i += Vector256<float>.Count)
            {
                var x = Vector256.LoadUnsafe(ref input[i]);
                var x2 = x * x;
                var sg = one / (one + Vector256.Exp(x * (c0 + c1 * x2)));
                var local = sg + x * sg * (one - sg) * (d0 + d1 * x2);
                (Vector256.LoadUnsafe(ref dinput[i]) + local * Vector256.LoadUnsafe(ref doutput[i])).StoreUnsafe(ref dinput[i]);
            }
            for (; i < hi; i++)
            {
                float x = input[i], x2 = x * x;
                float sg = 1f / (1f + MathF.Exp(x * (-2f * GeluScale - 2f * GeluScale * GeluCubic * x2)));
                dinput[i] += doutput[i] * (sg + x * sg * (1f - sg) * (2f * GeluScale + 2f * GeluScale * 3f * GeluCubic * x2));
            }
        });
    }

    /// <summary>
    /// Masked causal attention for one (batch row, head): query i sits at absolute position <paramref name="queryOffset"/>+i
    /// and attends keys s ≤ that position whose mask is 1; a query with no such key (a left pad) outputs zeros.
    /// q (Tq,HS) stride ldq; k, v (Tk,HS) strides ldk, ldv; probs (Tq,Tk) written (kept for backward); out (Tq,HS) stride ldo.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void AttentionForward(Span<float> output, int ldo, Span<float> probs, ReadOnlySpan<float> q, int ldq, ReadOnlySpan<float> k, int ldk, ReadOnlySpan<float> v, int ldv, ReadOnlySpan<byte> keyMask, int Tq, int Tk, int queryOffset, int HS)
    {
        float scale = 1f / MathF.Sqrt(HS);
        if (Tq <= SmallQueryRows)
        {
            AttentionForwardFewQueries(output, ldo, probs, q, ldq, k, ldk, v, ldv, keyMask, Tq, Tk, queryOffset, HS, scale);
            return;
        }
        Gemm.Multiply(GemmForm.NT, Tq, Tk, HS, q, ldq, k, ldk, probs, Tk, accumulate: false, threads: 1);
        MaskedCausalSoftmax(probs, keyMask, Tq, Tk, queryOffset, scale);
        Gemm.Multiply(GemmForm.NN, Tq, HS, Tk, probs, Tk, v, ldv, output, ldo, accumulate: false, threads: 1);
    }

    /// <summary>Rows of raw scores q·k (Tq, Tk) → causal, key-masked softmax of scale·scores; a row with no key left is all zeros.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MaskedCausalSoftmax(Span<float> probs, ReadOnlySpan<byte> keyMask, int Tq, int Tk, int queryOffset, float scale)
    {
        for (int i = 0; i < Tq; i++)
        {
            var row = probs.Slice(i * Tk, Tk);
            int last = queryOffset + i;
            var seg = row[..(last + 1)];
            row[(last + 1)..].Clear();
            TensorPrimitives.Multiply(seg, scale, seg);
            if (!keyMask.IsEmpty)
                for (int s = 0; s <= last; s++)
                    if (keyMask[s] == 0) seg[s] = float.NegativeInfinity;
            float max = TensorPrimitives.Max(seg);
            if (float.IsNegativeInfinity(max))
            {
                seg.Clear();
                continue;
            }
            TensorPrimitives.Subtract(seg, max, seg);
            TensorPrimitives.Exp(seg, seg);                  // masked keys: exp(−∞) = 0
            TensorPrimitives.Multiply(seg, 1f / Reduce.Sum(seg), seg);
        }
    }

    /// <summary>
    /// <see cref="AttentionForward"/> against a KV cache laid out for decoding: keys transposed per head, kT (HS, Tk) with row
    /// stride ldkT, so one query's scores are HS axpys over contiguous keys (no horizontal sums, no strided rows); values
    /// (Tk, HS) with stride ldv. A few queries (decoding) take the fused loop, more (prefill) two GEMMs.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void AttentionForwardCached(Span<float> output, int ldo, Span<float> probs, ReadOnlySpan<float> q, int ldq, ReadOnlySpan<float> kT, int ldkT, ReadOnlySpan<float> v, int ldv, ReadOnlySpan<byte> keyMask, int Tq, int Tk, int queryOffset, int HS)
    {
        float scale = 1f / MathF.Sqrt(HS);
        if (Tq > SmallQueryRows)
        {
            Gemm.Multiply(GemmForm.NN, Tq, Tk, HS, q, ldq, kT, ldkT, probs, Tk, accumulate: false, threads: 1);
            MaskedCausalSoftmax(probs, keyMask, Tq, Tk, queryOffset, scale);
            Gemm.Multiply(GemmForm.NN, Tq, HS, Tk, probs, Tk, v, ldv, output, ldo, accumulate: false, threads: 1);
            return;
        }
        for (int i = 0; i < Tq; i++)
        {
            var row = probs.Slice(i * Tk, Tk);
            int n = queryOffset + i + 1;
            ScoresTransposed(row, q.Slice(i * ldq, HS), kT, ldkT, n, HS);
            MaskedCausalSoftmax(row, keyMask, 1, Tk, n - 1, scale);
            var o = output.Slice(i * ldo, HS);
            o.Clear();
            for (int s = 0; s < n; s++)
                if (row[s] != 0) AxpyShort(row[s], v.Slice(s * ldv, HS), o);
        }
    }

    /// <summary>scores[s] = Σ_d q[d]·kT[d·ldkT + s] for s &lt; n, each a fused multiply-add chain in d order (the same bits in
    /// the 32-wide, 8-wide and scalar paths); 32 keys at a time stay in four registers across the whole d loop.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ScoresTransposed(Span<float> scores, ReadOnlySpan<float> q, ReadOnlySpan<float> kT, int ldkT, int n, int HS)
    {
        ref float rk = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(kT);
        ref float rs = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(scores);
        int s = 0;
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

    // Decoding asks for one query row against a long cache: a GEMM call's packing costs more than the product then,
    // so dot products and axpys over the cached rows do it directly (same maths, same masking rule).
    private const int SmallQueryRows = 4;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AttentionForwardFewQueries(Span<float> output, int ldo, Span<float> probs, ReadOnlySpan<float> q, int ldq, ReadOnlySpan<float> k, int ldk, ReadOnlySpan<float> v, int ldv, ReadOnlySpan<byte> keyMask, int Tq, int Tk, int queryOffset, int HS, float scale)
    {
        for (int i = 0; i < Tq; i++)
        {
            var row = probs.Slice(i * Tk, Tk);
            int last = queryOffset + i;
            var qi = q.Slice(i * ldq, HS);
            float max = float.NegativeInfinity;
            for (int s = 0; s <= last; s++)
            {
                if (!keyMask.IsEmpty && keyMask[s] == 0)
                {
                    row[s] = float.NegativeInfinity;
                    continue;
                }
                row[s] = DotShort(qi, k.Slice(s * ldk, HS)) * scale;
                max = MathF.Max(max, row[s]);
            }
            row[(last + 1)..].Clear();
            var o = output.Slice(i * ldo, HS);
            o.Clear();
            if (float.IsNegativeInfinity(max))
            {
                row[..(last + 1)].Clear();
                continue;
            }
            var seg = row[..(last + 1)];
            TensorPrimitives.Subtract(seg, max, seg);
            TensorPrimitives.Exp(seg, seg);
            TensorPrimitives.Multiply(seg, 1f / Reduce.Sum(seg), seg);
            for (int s = 0; s <= last; s++)
                if (seg[s] != 0) AxpyShort(seg[s], v.Slice(s * ldv, HS), o);
        }
    }

    // Head-sized (HS = 64 in GPT-2) dot and axpy, inlined: a library call per cached key would cost more than its work.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float DotShort(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        int i = 0;
        var acc = Vector256<float>.Zero;
        ref float ra = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(a);
        ref float rb = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(b);
        for (; i + 8 <= a.Length; i += 8)
            acc = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref ra, (nuint)i), Vector256.LoadUnsafe(ref rb, (nuint)i), acc);
        float sum = Reduce.HorizontalSum(acc);
        for (; i < a.Length; i++) sum += a[i] * b[i];
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void AxpyShort(float alpha, ReadOnlySpan<float> x, Span<float> y)
    {
        int i = 0;
        var va = Vector256.Create(alpha);
        ref float rx = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(x);
        ref float ry = ref System.Runtime.InteropServices.MemoryMarshal.GetReference(y);
        for (; i + 8 <= x.Length; i += 8)
            Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref rx, (nuint)i), va, Vector256.LoadUnsafe(ref ry, (nuint)i)).StoreUnsafe(ref ry, (nuint)i);
        for (; i < x.Length; i++) y[i] += alpha * x[i];
    }

    /// <summary>
    /// Backward of <see cref="AttentionForward"/> for training (Tq = Tk = T, offset 0), accumulating into dq, dk, dv.
    /// dscores = P ⊙ (dP − rowsum(dP ⊙ P))·scale with dP = dout·vᵀ. scratch holds T·T floats.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void AttentionBackward(Span<float> dq, Span<float> dk, Span<float> dv, int ldd, ReadOnlySpan<float> dout, int lddo, ReadOnlySpan<float> probs, ReadOnlySpan<float> q, ReadOnlySpan<float> k, ReadOnlySpan<float> v, int ld, Span<float> scratch, int T, int HS)
    {
        float scale = 1f / MathF.Sqrt(HS);
        var dp = scratch[..(T * T)];
        // dP (T,T) = dout (T,HS) · vᵀ
        Gemm.Multiply(GemmForm.NT, T, T, HS, dout, lddo, v, ld, dp, T, accumulate: false, threads: 1);
        // dv (T,HS) += Pᵀ · dout
        Gemm.Multiply(GemmForm.TN, T, HS, T, probs, T, dout, lddo, dv, ldd, accumulate: true, threads: 1);
        for (int i = 0; i < T; i++)
        {
            var p = probs.Slice(i * T, T);
            var d = dp.Slice(i * T, T);
            var ds = d[..(i + 1)];
            float dot = Reduce.Dot(p[..(i + 1)], ds);
            TensorPrimitives.Subtract(ds, dot, ds);
            TensorPrimitives.Multiply(ds, p[..(i + 1)], ds);
            TensorPrimitives.Multiply(ds, scale, ds);
            d[(i + 1)..].Clear();
        }
        // dq (T,HS) += dS · k ; dk (T,HS) += dSᵀ · q
        Gemm.Multiply(GemmForm.NN, T, HS, T, dp, T, k, ld, dq, ldd, accumulate: true, threads: 1);
        Gemm.Multiply(GemmForm.TN, T, HS, T, dp, T, q, ld, dk, ldd, accumulate: true, threads: 1);
    }
}
