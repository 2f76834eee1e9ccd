// Layer norm over the last axis (C), forward and backward, for the engine op (Ops.LayerNorm) and the fused GPT alike.
// Formulas as in llm.c layernorm_forward/backward. Shapes: x, y, dy, dx (N, C); weight, bias (C); mean, rstd (N).
//   forward:  mean = Σx/C, d = x − mean, rstd = 1/√(Σd²/C + eps), y = (d·rstd)·w + b        (the last step one FMA)
//   backward: norm = (x − mean)·rstd, dnorm = dy·w,
//             dx += (dnorm − norm·mean(dnorm·norm) − mean(dnorm))·rstd                     (two FMAs, as written)
//             dweight += Σ_rows norm·dy, dbias += Σ_rows dy                               (rows in order 0..N−1)
// Every sum over C is Reduce.Sum/Dot (one fixed order whatever the vector width); rows are independent, so the split
// over threads cannot change a bit; the parameter gradients are one pass over the rows in order 0..N−1.
// Scalar references (the same order written out, so the kernels must match them bit for bit):
// LayerNormForwardReference, LayerNormBackwardReference.
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace RlhfSharp.Tensors.Kernels;

public static unsafe class Norms
{
    /// <summary>y = layer_norm(x)·weight + bias per row of C; mean and rstd (one per row) are kept for backward.</summary>
    public static void LayerNormForward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias,
        Span<float> y, Span<float> mean, Span<float> rstd, int C, float eps)
    {
        int rows = Validate("LayerNormForward", x.Length, y.Length, mean.Length, rstd.Length, weight.Length, bias.Length, C);
        if (KernelOptions.UseScalarReference)
        {
            LayerNormForwardReference(x, weight, bias, y, mean, rstd, C, eps);
            return;
        }
        fixed (float* px = x, pw = weight, pb = bias, py = y, pm = mean, pr = rstd)
        {
            float* cx = px, cw = pw, cb = pb, cy = py, cm = pm, cr = pr;
            ParallelChunks.For(rows, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (start, end) =>
            {
                var w = new ReadOnlySpan<float>(cw, C);
                var b = new ReadOnlySpan<float>(cb, C);
                for (int r = start; r < end; r++)
                {
                    var xr = new ReadOnlySpan<float>(cx + (long)r * C, C);
                    var yr = new Span<float>(cy + (long)r * C, C);
                    float m = Reduce.Sum(xr) / C;
                    TensorPrimitives.Subtract(xr, m, yr);                        // d = x − mean
                    float s = 1f / MathF.Sqrt(Reduce.Dot(yr, yr) / C + eps);
                    TensorPrimitives.Multiply(yr, s, yr);                        // norm = d·rstd
                    TensorPrimitives.FusedMultiplyAdd(yr, w, b, yr);             // y = norm·w + b
                    cm[r] = m;
                    cr[r] = s;
                }
            }, minPerChunk: RowsPerChunk(C));
        }
    }

    /// <summary>Adds into dx, dweight, dbias (any of them may be empty to skip it).</summary>
    public static void LayerNormBackward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> weight,
        ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd, Span<float> dx, Span<float> dweight, Span<float> dbias, int C)
    {
        int rows = Validate("LayerNormBackward", x.Length, dy.Length, mean.Length, rstd.Length, weight.Length, weight.Length, C);
        if ((!dx.IsEmpty && dx.Length != x.Length) || (!dweight.IsEmpty && dweight.Length != C) || (!dbias.IsEmpty && dbias.Length != C))
            throw new ArgumentException($"LayerNormBackward: dx {dx.Length}, dweight {dweight.Length}, dbias {dbias.Length} should be {x.Length}, {C}, {C} (or empty).");
        if (KernelOptions.UseScalarReference)
        {
            LayerNormBackwardReference(dy, x, weight, mean, rstd, dx, dweight, dbias, C);
            return;
        }
        bool wantDw = !dweight.IsEmpty, wantDb = !dbias.IsEmpty;
        fixed (float* pdy = dy, px = x, pw = weight, pm = mean, pr = rstd, pdx = dx, pdw = dweight, pdb = dbias)
        {
            float* cdy = pdy, cx = px, cw = pw, cm = pm, cr = pr, cdx = pdx, cdw = pdw, cdb = pdb;
            if (cdx != null)
            {
                ParallelChunks.For(rows, [MethodImpl(MethodImplOptions.AggressiveOptimization)] (start, end) =>
                {
                    var w = new ReadOnlySpan<float>(cw, C);
                    var norm = Scratch.A(C);
                    var dnorm = Scratch.B(C);
                    for (int r = start; r < end; r++)
                    {
                        var dyr = new ReadOnlySpan<float>(cdy + (long)r * C, C);
                        TensorPrimitives.Subtract(new ReadOnlySpan<float>(cx + (long)r * C, C), cm[r], norm);
                        TensorPrimitives.Multiply(norm, cr[r], norm);
                        TensorPrimitives.Multiply(dyr, w, dnorm);
                        float meanDnorm = Reduce.Sum(dnorm) / C;
                        float meanDnormNorm = Reduce.Dot(dnorm, norm) / C;
                        TensorPrimitives.FusedMultiplyAdd(norm, -meanDnormNorm, dnorm, dnorm); // dnorm − norm·mean(dnorm·norm)
                        TensorPrimitives.Subtract(dnorm, meanDnorm, dnorm);                    //   − mean(dnorm)
                        var dxr = new Span<float>(cdx + (long)r * C, C);
                        TensorPrimitives.FusedMultiplyAdd(dnorm, cr[r], dxr, dxr);             // dx += that·rstd
                    }
                }, minPerChunk: RowsPerChunk(C));
            }
            if (!wantDw && !wantDb) return;
            // Parameter gradients sum over rows: one pass in row order (measured faster than splitting the columns over
            // threads, as the pass is bound by reading dy and x), so the bits depend on nothing but the inputs.
            for (int r = 0; r < rows; r++)
                ParameterGradientRow(cx + (long)r * C, cdy + (long)r * C, cm[r], cr[r], wantDw ? cdw : null, wantDb ? cdb : null, C);
        }
    }

    /// <summary>
    /// One row's share of the parameter gradients in a single pass over x and dy: dw += ((x − mean)·rstd)·dy (a subtract,
    /// a multiply, one FMA) and db += dy, element by element, so the bits are those of the scalar reference, without the
    /// four TensorPrimitives calls and the scratch row it took before.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ParameterGradientRow(float* x, float* dy, float mean, float rstd, float* dw, float* db, int C)
    {
        int i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var m = Vector256.Create(mean);
            var s = Vector256.Create(rstd);
            for (; i <= C - 8; i += 8)
            {
                var g = Vector256.Load(dy + i);
                if (dw != null) Vector256.FusedMultiplyAdd((Vector256.Load(x + i) - m) * s, g, Vector256.Load(dw + i)).Store(dw + i);
                if (db != null) (Vector256.Load(db + i) + g).Store(db + i);
            }
        }
        for (; i < C; i++)
        {
            if (dw != null) dw[i] = MathF.FusedMultiplyAdd((x[i] - mean) * rstd, dy[i], dw[i]);
            if (db != null) db[i] += dy[i];
        }
    }

    // Rows per thread at least: about 32k floats of work each, so small inputs stay on one thread.
    private static int RowsPerChunk(int C) => Math.Max(1, 32768 / Math.Max(1, C));

    private static int Validate(string name, int xLength, int yLength, int meanLength, int rstdLength, int wLength, int bLength, int C)
    {
        if (C <= 0) throw new ArgumentException($"{name}: C must be positive (got {C}).");
        int rows = meanLength;
        if (xLength != rows * C || yLength != rows * C || rstdLength != rows || wLength != C || bLength != C)
            throw new ArgumentException($"{name}: x {xLength}, y/dy {yLength}, mean {meanLength}, rstd {rstdLength}, weight {wLength}, bias {bLength} do not fit rows × C = {rows} × {C}.");
        return rows;
    }

    /// <summary>The forward kernel's order as plain loops (Reduce.SumInOrder/DotInOrder for the two row sums).</summary>
    public static void LayerNormForwardReference(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias,
        Span<float> y, Span<float> mean, Span<float> rstd, int C, float eps)
    {
        int rows = mean.Length;
        var d = new float[C];
        for (int r = 0; r < rows; r++)
        {
            var xr = x.Slice(r * C, C);
            float m = Reduce.SumInOrder(xr) / C;
            for (int i = 0; i < C; i++) d[i] = xr[i] - m;
            float s = 1f / MathF.Sqrt(Reduce.DotInOrder(d, d) / C + eps);
            for (int i = 0; i < C; i++) y[r * C + i] = MathF.FusedMultiplyAdd(d[i] * s, weight[i], bias[i]);
            mean[r] = m;
            rstd[r] = s;
        }
    }

    /// <summary>The backward kernel's order as plain loops: per row dx, then dweight and dbias over rows 0..N−1.</summary>
    public static void LayerNormBackwardReference(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> weight,
        ReadOnlySpan<float> mean, ReadOnlySpan<float> rstd, Span<float> dx, Span<float> dweight, Span<float> dbias, int C)
    {
        int rows = mean.Length;
        var norm = new float[C];
        var dnorm = new float[C];
        for (int r = 0; r < rows; r++)
        {
            float m = mean[r], s = rstd[r];
            for (int i = 0; i < C; i++)
            {
                norm[i] = (x[r * C + i] - m) * s;
                dnorm[i] = dy[r * C + i] * weight[i];
            }
            float meanDnorm = Reduce.SumInOrder(dnorm) / C;
            float meanDnormNorm = Reduce.DotInOrder(dnorm, norm) / C;
            for (int i = 0; i < C; i++)
            {
                if (!dx.IsEmpty)
                {
                    float t = MathF.FusedMultiplyAdd(norm[i], -meanDnormNorm, dnorm[i]) - meanDnorm;
                    dx[r * C + i] = MathF.FusedMultiplyAdd(t, s, dx[r * C + i]);
                }
                if (!dweight.IsEmpty) dweight[i] = MathF.FusedMultiplyAdd(norm[i], dy[r * C + i], dweight[i]);
                if (!dbias.IsEmpty) dbias[i] += dy[r * C + i];
            }
        }
    }
}
