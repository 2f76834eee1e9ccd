// Matrix products with their backward, all through Gemm.Multiply: matmul (2-D and batched, transpose flags)
// and linear (x·Wᵀ + b with W stored [out, in] like torch.nn.Linear; the kernel is LinearKernels, which the GPT shares).
// Backward of C = op(A)·op(B): dA = dC·op(B)ᵀ and dB = op(A)ᵀ·dC, each mapped onto an NN/NT/TN form.
using System.Numerics.Tensors;
using RlhfSharp.Tensors.Kernels;

namespace RlhfSharp.Tensors;

public static unsafe partial class Ops
{
    /// <summary>
    /// op(a)·op(b) on the last two axes. a: [..., M, K] (or [..., K, M] with transA), b: [..., K, N] (or
    /// [..., N, K] with transB). Leading (batch) axes must be equal, or one operand is 2-D and is shared by
    /// every batch. Both flags at once are not supported (transpose one operand first).
    /// </summary>
    public static Tensor MatMul(Tensor a, Tensor b, bool transA = false, bool transB = false)
    {
        if (a.Rank < 2 || b.Rank < 2)
            throw new ArgumentException($"matmul: operands need at least 2 axes, got {a.ShapeString} and {b.ShapeString}.");
        if (transA && transB)
            throw new ArgumentException($"matmul: transA and transB together are not supported ({a.ShapeString}, {b.ShapeString}); transpose one operand first.");
        int ar = a.Dim(-2), ac = a.Dim(-1), br = b.Dim(-2), bc = b.Dim(-1);
        int M = transA ? ac : ar, K = transA ? ar : ac;
        int Kb = transB ? bc : br, N = transB ? br : bc;
        if (K != Kb)
            throw new ArgumentException($"matmul: inner sizes differ: {a.ShapeString}{(transA ? "ᵀ" : "")} · {b.ShapeString}{(transB ? "ᵀ" : "")} ({K} vs {Kb}).");
        var aBatch = a.Shape[..^2];
        var bBatch = b.Shape[..^2];
        ReadOnlySpan<int> batchShape;
        if (aBatch.SequenceEqual(bBatch) || bBatch.Length == 0) batchShape = aBatch;
        else if (aBatch.Length == 0) batchShape = bBatch;
        else throw new ArgumentException($"matmul: batch axes of {a.ShapeString} and {b.ShapeString} differ.");
        int batches = (int)Tensor.ElementCount(batchShape, "matmul");
        int aStep = aBatch.Length == 0 ? 0 : M * K, bStep = bBatch.Length == 0 ? 0 : K * N;
        // A shared 2-D b with an untransposed a ([B,T,C]·[C,N]): fold the batch into the rows of one product of
        // B·T rows, which blocks and splits over threads far better than B small ones.
        int gemmBatches = batches, Mg = M;
        if (bBatch.Length == 0 && aBatch.Length > 0 && !transA)
        {
            Mg = M * batches;
            gemmBatches = 1;
        }
        var shape = new int[batchShape.Length + 2];
        batchShape.CopyTo(shape);
        shape[^2] = M;
        shape[^1] = N;
        var y = K == 0 ? Tensor.Zeros(shape) : Tensor.Uninitialized(shape); // the product overwrites every element
        var form = transA ? GemmForm.TN : transB ? GemmForm.NT : GemmForm.NN;
        int lda = ac, ldb = bc;
        fixed (float* pa = a.Span)
        fixed (float* pb = b.Span)
        fixed (float* pc = y.Span)
        {
            for (int i = 0; i < gemmBatches; i++)
                Gemm.Multiply(form, Mg, N, K, pa + (long)i * aStep, lda, pb + (long)i * bStep, ldb, pc + (long)i * M * N, N, accumulate: false);
        }
        return Autograd.Record("matmul", y, [a, b], o =>
        {
            fixed (float* pa = a.Span)
            fixed (float* pb = b.Span)
            fixed (float* pg = o.Grad!.Span)
            {
                if (a.RequiresGrad)
                {
                    fixed (float* pda = a.GradForAccumulate())
                    {
                        for (int i = 0; i < gemmBatches; i++)
                        {
                            float* g = pg + (long)i * M * N, bb = pb + (long)i * bStep, da = pda + (long)i * aStep;
                            switch (form)
                            {
                                case GemmForm.NN: Gemm.Multiply(GemmForm.NT, Mg, K, N, g, N, bb, N, da, K, true); break; // dA = dC·Bᵀ
                                case GemmForm.NT: Gemm.Multiply(GemmForm.NN, Mg, K, N, g, N, bb, K, da, K, true); break; // dA = dC·B
                                default: Gemm.Multiply(GemmForm.NT, K, Mg, N, bb, N, g, N, da, Mg, true); break;          // dA[K,M] = B·dCᵀ
                            }
                        }
                    }
                }
                if (b.RequiresGrad)
                {
                    fixed (float* pdb = b.GradForAccumulate())
                    {
                        for (int i = 0; i < gemmBatches; i++)
                        {
                            float* g = pg + (long)i * M * N, aa = pa + (long)i * aStep, db = pdb + (long)i * bStep;
                            switch (form)
                            {
                                case GemmForm.NN: Gemm.Multiply(GemmForm.TN, K, N, Mg, aa, K, g, N, db, N, true); break; // dB = Aᵀ·dC
                                case GemmForm.NT: Gemm.Multiply(GemmForm.TN, N, K, Mg, g, N, aa, K, db, K, true); break; // dB[N,K] = dCᵀ·A
                                default: Gemm.Multiply(GemmForm.NN, K, N, Mg, aa, Mg, g, N, db, N, true); break;          // dB[K,N] = A·dC
                            }
                        }
                    }
                }
            }
        });
    }

    /// <summary>
    /// Affine map y = x·Wᵀ + b. x: [..., in], weight: [out, in] (torch.nn.Linear layout; GPT-2's Conv1D
    /// stores [in, out] and is transposed at load), bias: [out] or null. Result: [..., out].
    /// </summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias = null)
    {
        if (weight.Rank != 2) throw new ArgumentException($"linear: weight must be [out, in], got {weight.ShapeString}.");
        int outF = weight.Shape[0], inF = weight.Shape[1];
        if (x.Rank == 0 || x.Dim(-1) != inF)
            throw new ArgumentException($"linear: input {x.ShapeString} does not end in {inF} (weight {weight.ShapeString}).");
        if (bias is not null && (bias.Rank != 1 || bias.Shape[0] != outF))
            throw new ArgumentException($"linear: bias {bias.ShapeString} should be [{outF}] for weight {weight.ShapeString}.");
        int R = (int)Tensor.ElementCount(x.Shape[..^1], "linear"); // rows: every leading axis flattened
        var shape = x.ShapeArray();
        shape[^1] = outF;
        var y = inF == 0 ? Tensor.Zeros(shape) : Tensor.Uninitialized(shape); // the product overwrites every element
        LinearKernels.Forward(x.Span, weight.Span, bias is null ? default : bias.Span, y.Span, R, inF, outF, LinearWeightLayout.OutIn);
        Tensor[] inputs = bias is null ? [x, weight] : [x, weight, bias];
        return Autograd.Record("linear", y, inputs, o =>
            LinearKernels.Backward(o.Grad!.Span, x.Span, weight.Span,
                x.RequiresGrad ? x.GradForAccumulate() : default,
                weight.RequiresGrad ? weight.GradForAccumulate() : default,
                bias is not null && bias.RequiresGrad ? bias.GradForAccumulate() : default,
                R, inF, outF, LinearWeightLayout.OutIn));
    }
}
