// Row kernels for layer norm over the last axis (C): forward keeps per-row mean and 1/std for backward.
// Formulas as in llm.c layernorm_forward/backward. Shapes: x, y, dy, dx (rows, C); weight, bias (C).
// SIMD path: Vector256 FMA loops with fixed accumulation order; rows spread over Parallelism.Threads in chunks
// whose size depends only on the shape (weight/bias gradients are summed per chunk, then chunk by chunk in order).
// Scalar references: LayerNormForwardReference, LayerNormBackwardReference.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace RlhfSharp.Tensors.Kernels;

public static unsafe class Norms
{
    private const int RowsPerChunk = 16;

    public static void LayerNormForward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias,
        Span<float> y, Span<float> mean, Span<float> rstd, int C, float eps)
    {
        if (KernelOptions.UseScalarReference)
        {
            LayerNormForwardReference(x, weight, bias, y, mean, rstd, C, eps);
            return;
        }
        int rows = mean.Length;
        fixed (float* px = x, pw = weight, pb = bias, py = y, pm = mean, pr = rstd)
        {
            float* cx = px, cw = pw, cb = pb, cy = py, cm = pm, cr = pr;
            ParallelChunks.For(rows, (start, end) =>
            {
                for (int r = start; r < end; r++)
                    LayerNormRow(cx + (long)r * C, cw, cb, cy + (long)r * C, C, eps, out cm[r], out cr[r]);
            }, minPerChunk: Math.Max(1, 32768 / Math.Max(1, C)));
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void LayerNormRow(float* x, float* w, float* b, float* y, int C, float eps, out float mean, out float rstd)
    {
        float m = Reduce.Sum(new ReadOnlySpan<float>(x, C)) / C;
        int i = 0;
        float v = 0f;
        if (Vector256.IsHardwareAccelerated && C >= 8)
        {
            var vm = Vector256.Create(m);
            var acc = Vector256<float>.Zero;
            for (; i <= C - 8; i += 8)
            {
                var d = Vector256.Load(x + i) - vm;
                acc = Vector256.FusedMultiplyAdd(d, d, acc);
            }
            v = Reduce.HorizontalSum(acc);
        }
        for (; i < C; i++)
        {
            float d = x[i] - m;
            v += d * d;
        }
        float s = 1f / MathF.Sqrt(v / C + eps);
        i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var vm = Vector256.Create(m);
            var vs = Vector256.Create(s);
            for (; i <= C - 8; i += 8)
                Vector256.Store(Vector256.FusedMultiplyAdd((Vector256.Load(x + i) - vm) * vs, Vector256.Load(w + i), Vector256.Load(b + i)), y + i);
        }
        for (; i < C; i++) y[i] = (x[i] - m) * s * w[i] + b[i];
        mean = m;
        rstd = s;
    }

    /// <summary>Adds into dx, dweight, dbias (any of them may be empty to skip it).</summary>
    public static void LayerNormBackward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> weight,
        ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd, Span<float> dx, Span<float> dweight, Span<float> dbias, int C)
    {
        if (KernelOptions.UseScalarReference)
        {
            LayerNormBackwardReference(dy, x, weight, mean, rstd, dx, dweight, dbias, C);
            return;
        }
        int rows = mean.Length;
        // Fixed chunks of rows that depend only on the shape, never on the thread count: per-chunk partial sums of
        // dweight and dbias are added in chunk order afterwards, so any number of threads gives the same bits.
        int rowsPerChunk = Math.Max(RowsPerChunk, 32768 / Math.Max(1, C));
        int chunks = Math.Max(1, (rows + rowsPerChunk - 1) / rowsPerChunk);
        var partial = new float[chunks * 2 * C];
        bool wantDx = !dx.IsEmpty, wantDw = !dweight.IsEmpty, wantDb = !dbias.IsEmpty;
        fixed (float* pdy = dy, px = x, pw = weight, pm = mean, pr = rstd, pdx = dx, ppart = partial)
        {
            float* cdy = pdy, cx = px, cw = pw, cm = pm, cr = pr, cdx = pdx, cpart = ppart;
            ParallelChunks.For(chunks, (first, last) =>
            {
                for (int c = first; c < last; c++)
                {
                    int start = c * rowsPerChunk, end = Math.Min(rows, start + rowsPerChunk);
                    float* dw = cpart + (long)c * 2 * C, db = dw + C;
                    for (int r = start; r < end; r++)
                        LayerNormBackwardRow(cdy + (long)r * C, cx + (long)r * C, cw, cm[r], cr[r], wantDx ? cdx + (long)r * C : null, dw, db, C);
                }
            });
        }
        for (int c = 0; c < chunks; c++)
        {
            var dwPart = partial.AsSpan(c * 2 * C, C);
            var dbPart = partial.AsSpan(c * 2 * C + C, C);
            if (wantDw) System.Numerics.Tensors.TensorPrimitives.Add(dweight, dwPart, dweight);
            if (wantDb) System.Numerics.Tensors.TensorPrimitives.Add(dbias, dbPart, dbias);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void LayerNormBackwardRow(float* dy, float* x, float* w, float m, float s, float* dx, float* dw, float* db, int C)
    {
        int i = 0;
        float a = 0f, bsum = 0f;
        var vm = Vector256.Create(m);
        var vs = Vector256.Create(s);
        if (Vector256.IsHardwareAccelerated && C >= 8)
        {
            Vector256<float> accA = Vector256<float>.Zero, accB = accA;
            for (; i <= C - 8; i += 8)
            {
                var dnorm = Vector256.Load(dy + i) * Vector256.Load(w + i);
                var norm = (Vector256.Load(x + i) - vm) * vs;
                accA += dnorm;
                accB = Vector256.FusedMultiplyAdd(dnorm, norm, accB);
            }
            a = Reduce.HorizontalSum(accA);
            bsum = Reduce.HorizontalSum(accB);
        }
        for (; i < C; i++)
        {
            float dnorm = dy[i] * w[i];
            a += dnorm;
            bsum += dnorm * (x[i] - m) * s;
        }
        float dnormMean = a / C, dnormNormMean = bsum / C;
        i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var va = Vector256.Create(dnormMean);
            var vb = Vector256.Create(dnormNormMean);
            for (; i <= C - 8; i += 8)
            {
                var g = Vector256.Load(dy + i);
                var norm = (Vector256.Load(x + i) - vm) * vs;
                Vector256.Store(Vector256.Load(db + i) + g, db + i);
                Vector256.Store(Vector256.FusedMultiplyAdd(norm, g, Vector256.Load(dw + i)), dw + i);
                if (dx != null)
                {
                    var t = (g * Vector256.Load(w + i) - va - norm * vb) * vs;
                    Vector256.Store(Vector256.Load(dx + i) + t, dx + i);
                }
            }
        }
        for (; i < C; i++)
        {
            float norm = (x[i] - m) * s;
            db[i] += dy[i];
            dw[i] += norm * dy[i];
            if (dx != null) dx[i] += (dy[i] * w[i] - dnormMean - norm * dnormNormMean) * s;
        }
    }

    public static void LayerNormForwardReference(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias,
        Span<float> y, Span<float> mean, Span<float> rstd, int C, float eps)
    {
        int rows = mean.Length;
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * C, C);
            var yr = y.Slice(r * C, C);
            float m = 0f;
            for (int i = 0; i < C; i++) m += xr[i];
            m /= C;
            float v = 0f;
            for (int i = 0; i < C; i++)
            {
                float d = xr[i] - m;
                v += d * d;
            }
            float s = 1f / MathF.Sqrt(v / C + eps);
            for (int i = 0; i < C; i++) yr[i] = (xr[i] - m) * s * weight[i] + bias[i];
            mean[r] = m;
            rstd[r] = s;
        }
    }

    public static void LayerNormBackwardReference(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> weight,
        ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd, Span<float> dx, Span<float> dweight, Span<float> dbias, int C)
    {
        int rows = mean.Length;
        for (int r = 0; r < rows; r++)
        {
            var dyr = dy.Slice(r * C, C);
            var xr = x.Slice(r * C, C);
            float m = mean[r], s = rstd[r];
            // dnorm = dy·w; dx = (dnorm − mean(dnorm) − norm·mean(dnorm·norm))·rstd
            float dnormMean = 0f, dnormNormMean = 0f;
            for (int i = 0; i < C; i++)
            {
                float norm = (xr[i] - m) * s;
                float dnorm = dyr[i] * weight[i];
                dnormMean += dnorm;
                dnormNormMean += dnorm * norm;
            }
            dnormMean /= C;
            dnormNormMean /= C;
            for (int i = 0; i < C; i++)
            {
                float norm = (xr[i] - m) * s;
                if (!dbias.IsEmpty) dbias[i] += dyr[i];
                if (!dweight.IsEmpty) dweight[i] += norm * dyr[i];
                if (!dx.IsEmpty) dx[r * C + i] += (dyr[i] * weight[i] - dnormMean - norm * dnormNormMean) * s;
            }
        }
    }
}
