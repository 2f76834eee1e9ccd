// Normalisation ops over the last axis with their backward: layer norm (per-row mean and 1/std are kept
// for backward, never the normalised activations).
using RlhfSharp.Tensors.Kernels;

namespace RlhfSharp.Tensors;

public static partial class Ops
{
    /// <summary>Layer norm over the last axis: x [..., C], weight [C], bias [C] → [..., C].</summary>
    public static Tensor LayerNorm(Tensor x, Tensor weight, Tensor bias, float eps = 1e-5f)
    {
        int C = x.Rank == 0 ? 0 : x.Dim(-1);
        if (C == 0) throw new ArgumentException($"layer_norm: input {x.ShapeString} has no last axis to normalise.");
        if (weight.Rank != 1 || weight.Length != C || bias.Rank != 1 || bias.Length != C)
            throw new ArgumentException($"layer_norm: weight {weight.ShapeString} and bias {bias.ShapeString} must both be [{C}] for input {x.ShapeString}.");
        int rows = x.Length / C;
        var y = Tensor.Uninitialized(x.ShapeRef);
        var mean = new float[rows];
        var rstd = new float[rows];
        Norms.LayerNormForward(x.Span, weight.Span, bias.Span, y.Span, mean, rstd, C, eps);
        return Autograd.Record("layer_norm", y, [x, weight, bias], o => Norms.LayerNormBackward(o.Grad!.Span, x.Span, weight.Span, mean, rstd,
            x.RequiresGrad ? x.GradForAccumulate() : default,
            weight.RequiresGrad ? weight.GradForAccumulate() : default,
            bias.RequiresGrad ? bias.GradForAccumulate() : default, C));
    }
}
