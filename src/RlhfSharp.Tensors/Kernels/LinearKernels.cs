// Affine layer y = x·W + b, forward and backward, for the engine op (Ops.Linear, torch's [out, in] weights) and the
// fused GPT (GPT-2's Conv1D, [in, out] weights) alike: every product goes through Gemm.Multiply, whose element sums run
// over the depth in one fixed order (so the weight layout changes which operand is read transposed, never the bits).
// Shapes: x, dx (N, C); y, dy (N, OC); weight (OC, C) or (C, OC); bias, dbias (OC).
//   forward:  y = x·Wᵀ + b (OutIn) or x·W + b (InOut), the bias added row by row
//   backward: dx += dy·W (or dy·Wᵀ), dW += dyᵀ·x (or xᵀ·dy), dbias += Σ_rows dy (rows in order 0..N−1)
// Scalar references: ForwardReference, BackwardReference (plain loops, products summed in float64; the bias sums in
// the kernel's order).
using System.Numerics.Tensors;

namespace RlhfSharp.Tensors.Kernels;

/// <summary>How a linear layer stores its weight matrix.</summary>
public enum LinearWeightLayout
{
    /// <summary>[out, in], as torch.nn.Linear: y = x·Wᵀ + b.</summary>
    OutIn,
    /// <summary>[in, out], as GPT-2's Conv1D: y = x·W + b.</summary>
    InOut,
}

public static class LinearKernels
{
    /// <summary>y (N, OC) = x (N, C)·W + bias; bias may be empty (none).</summary>
    public static void Forward(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, Span<float> y,
        int N, int C, int OC, LinearWeightLayout layout)
    {
        Validate("LinearKernels.Forward", x.Length, weight.Length, bias.Length, y.Length, N, C, OC);
        if (layout == LinearWeightLayout.OutIn) Gemm.Multiply(GemmForm.NT, N, OC, C, x, C, weight, C, y, OC, accumulate: false);
        else Gemm.Multiply(GemmForm.NN, N, OC, C, x, C, weight, OC, y, OC, accumulate: false);
        if (bias.IsEmpty) return;
        for (int i = 0; i < N; i++)
            TensorPrimitives.Add(y.Slice(i * OC, OC), bias, y.Slice(i * OC, OC));
    }

    /// <summary>
    /// y (N, OC) = x (N, C)·W + bias with a Conv1D weight [C, OC] held as bfloat16 bits (Gemm.MultiplyBf16): the bits of
    /// <see cref="Forward"/> on the widened weight, reading half the weight bytes.
    /// </summary>
    public static void ForwardBf16(ReadOnlySpan<float> x, ReadOnlySpan<ushort> weight, ReadOnlySpan<float> bias, Span<float> y, int N, int C, int OC)
    {
        Validate("LinearKernels.ForwardBf16", x.Length, weight.Length, bias.Length, y.Length, N, C, OC);
        Gemm.MultiplyBf16(GemmForm.NN, N, OC, C, x, C, weight, OC, y, OC, accumulate: false);
        if (bias.IsEmpty) return;
        for (int i = 0; i < N; i++)
            TensorPrimitives.Add(y.Slice(i * OC, OC), bias, y.Slice(i * OC, OC));
    }

    /// <summary>Adds the gradients into dx, dweight and dbias; any may be empty to skip it.</summary>
    public static void Backward(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> weight,
        Span<float> dx, Span<float> dweight, Span<float> dbias, int N, int C, int OC, LinearWeightLayout layout)
    {
        Validate("LinearKernels.Backward", x.Length, weight.Length, dbias.Length, dy.Length, N, C, OC);
        if (!dx.IsEmpty && dx.Length != N * C) throw new ArgumentException($"LinearKernels.Backward: dx holds {dx.Length}, needs {N * C}.");
        if (!dweight.IsEmpty && dweight.Length != C * OC) throw new ArgumentException($"LinearKernels.Backward: dweight holds {dweight.Length}, needs {C * OC}.");
        bool outIn = layout == LinearWeightLayout.OutIn;
        if (!dx.IsEmpty)
        {
            if (outIn) Gemm.Multiply(GemmForm.NN, N, C, OC, dy, OC, weight, C, dx, C, accumulate: true);        // dx = dy·W
            else Gemm.Multiply(GemmForm.NT, N, C, OC, dy, OC, weight, OC, dx, C, accumulate: true);            // dx = dy·Wᵀ
        }
        if (!dweight.IsEmpty)
        {
            if (outIn) Gemm.Multiply(GemmForm.TN, OC, C, N, dy, OC, x, C, dweight, C, accumulate: true);       // dW = dyᵀ·x
            else Gemm.Multiply(GemmForm.TN, C, OC, N, x, C, dy, OC, dweight, OC, accumulate: true);            // dW = xᵀ·dy
        }
        if (dbias.IsEmpty) return;
        for (int i = 0; i < N; i++)
            TensorPrimitives.Add(dbias, dy.Slice(i * OC, OC), dbias);
    }

    private static void Validate(string name, int xLength, int wLength, int bLength, int yLength, int N, int C, int OC)
    {
        if (N < 0 || C < 0 || OC < 0) throw new ArgumentException($"{name}: negative size (N={N}, C={C}, OC={OC}).");
        if (xLength != N * C || wLength != C * OC || yLength != N * OC || (bLength != 0 && bLength != OC))
            throw new ArgumentException($"{name}: x {xLength}, weight {wLength}, bias {bLength}, y/dy {yLength} do not fit N={N}, C={C}, OC={OC}.");
    }

    /// <summary>Plain loops; each product summed in float64, the bias added in float32 as the kernel does.</summary>
    public static void ForwardReference(ReadOnlySpan<float> x, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias, Span<float> y,
        int N, int C, int OC, LinearWeightLayout layout)
    {
        for (int i = 0; i < N; i++)
            for (int o = 0; o < OC; o++)
            {
                double sum = 0;
                for (int c = 0; c < C; c++) sum += (double)x[i * C + c] * W(weight, c, o, C, OC, layout);
                y[i * OC + o] = bias.IsEmpty ? (float)sum : (float)sum + bias[o];
            }
    }

    /// <summary>Plain loops; the product terms summed in float64, dbias summed over rows in order as the kernel does.</summary>
    public static void BackwardReference(ReadOnlySpan<float> dy, ReadOnlySpan<float> x, ReadOnlySpan<float> weight,
        Span<float> dx, Span<float> dweight, Span<float> dbias, int N, int C, int OC, LinearWeightLayout layout)
    {
        if (!dx.IsEmpty)
            for (int i = 0; i < N; i++)
                for (int c = 0; c < C; c++)
                {
                    double sum = 0;
                    for (int o = 0; o < OC; o++) sum += (double)dy[i * OC + o] * W(weight, c, o, C, OC, layout);
                    dx[i * C + c] = (float)(dx[i * C + c] + sum);
                }
        if (!dweight.IsEmpty)
            for (int c = 0; c < C; c++)
                for (int o = 0; o < OC; o++)
                {
                    double sum = 0;
                    for (int i = 0; i < N; i++) sum += (double)x[i * C + c] * dy[i * OC + o];
                    int at = layout == LinearWeightLayout.OutIn ? o * C + c : c * OC + o;
                    dweight[at] = (float)(dweight[at] + sum);
                }
        if (!dbias.IsEmpty)
            for (int i = 0; i < N; i++)
                for (int o = 0; o < OC; o++) dbias[o] += dy[i * OC + o];
    }

    // W(c, o): the weight from input c to output o in either layout.
    private static float W(ReadOnlySpan<float> weight, int c, int o, int C, int OC, LinearWeightLayout layout) =>
        layout == LinearWeightLayout.OutIn ? weight[o * C + c] : weight[c * OC + o];
}
