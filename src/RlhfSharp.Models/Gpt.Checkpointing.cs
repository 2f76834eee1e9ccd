// Activation checkpointing (Chen et al. 2016, "Training Deep Nets with Sublinear Memory Cost"; torch.utils.checkpoint,
// Hugging Face's gradient_checkpointing_enable): in a training forward each transformer block keeps only its input
// x_l (B,T,C) and the dropout generator's state; Backward reruns block l's forward from x_l into one shared activation
// set, then backpropagates through it. Memory for block activations falls from L·(17·N·C + B·NH·T²) floats to
// 1·(17·N·C + B·NH·T²) plus the L+1 residuals (N·C each); the price is one more block forward per block (~⅓ more
// training FLOPs). Replaying the saved generator state draws the same dropout (and LoRA dropout) masks, and every
// kernel is deterministic, so the gradients are bit for bit those of the plain pass (GptCheckpointingTests).
// Shapes: B batch, T time, C channels, NH heads, L layers, N = B·T rows.
using RlhfSharp.Tensors;

namespace RlhfSharp.Models;

public sealed partial class Gpt
{
    /// <summary>
    /// Recompute each block's activations in Backward instead of keeping them from Forward (HF: gradient_checkpointing).
    /// Off by default; a property of this handle (a LoRA handle or clone does not inherit it from the model it came from).
    /// </summary>
    public bool ActivationCheckpointing { get; set; }

    // A generator positioned where the forward's was before a block.
    private static Rng RngAt(ulong[] state)
    {
        var rng = new Rng(0);
        rng.SetState(state);
        return rng;
    }
}
