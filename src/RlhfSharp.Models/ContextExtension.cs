// A GPT with a longer context than it was trained with: the learned position table wpe (block, C) gains rows, filled
// by copying the trained rows in order, as Longformer initialises its 4,096 positions from RoBERTa's 512 (Beltagy et
// al. 2020, §5): row t of the new table is row t mod T of the old one. The first T rows are unchanged, so the model
// computes exactly what it did on every input that fitted before; fine-tuning then teaches the new positions.
// Shapes: T = old block, T' = new block, C = n_embd; wpe (T, C) → (T', C); every other tensor is copied as it is.
using RlhfSharp.Models.Checkpoints;

namespace RlhfSharp.Models;

public static class ContextExtension
{
    /// <summary>
    /// <paramref name="model"/> with a context of <paramref name="blockSize"/> tokens (a new, independent model); the
    /// same model when its block is already that long. A shorter block or a model with a LoRA adapter is refused.
    /// </summary>
    public static Gpt Extend(Gpt model, int blockSize)
    {
        ArgumentNullException.ThrowIfNull(model);
        int T = model.Config.BlockSize, C = model.Config.NEmbd;
        if (blockSize == T) return model;
        if (blockSize < T) throw new ArgumentException($"context extension: the model's context is {T} tokens; it cannot shrink to {blockSize}.");
        if (model.Adapter is not null) throw new ArgumentException("context extension: the model carries a LoRA adapter; merge it first (rlhf lora merge).");
        var tensors = model.ToTensors();
        var wpe = tensors["wpe.weight"].Values; // (T, C)
        var longer = new float[blockSize * C]; // (T', C)
        for (int t = 0; t < blockSize; t++) wpe.AsSpan(t % T * C, C).CopyTo(longer.AsSpan(t * C, C));
        tensors["wpe.weight"] = new StoredTensor([blockSize, C], longer);
        return Gpt.FromTensors(model.Config with { BlockSize = blockSize }, tensors, "context extension");
    }
}
