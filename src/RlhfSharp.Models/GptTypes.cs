// Small data types around the GPT: which heads it carries, named parameter views, a batch of token rows.
namespace RlhfSharp.Models;

/// <summary>Heads on top of the shared trunk besides the tied LM head.</summary>
[Flags]
public enum GptHeads
{
    None = 0,
    /// <summary>A scalar per token (PPO's critic): TRL's `v_head.summary` weight [1, C] and bias [1].</summary>
    Value = 1,
    /// <summary>A scalar per sequence read at its last real token (the reward model): HF's `score.weight` [1, C].</summary>
    Reward = 2,
}

/// <summary>One named parameter: a view [Offset, Offset + Length) of the model's flat parameter and gradient buffers.</summary>
public sealed record GptParameter(string Name, int[] Shape, int Offset, int Length)
{
    /// <summary>Matrices and embeddings get weight decay; biases and LayerNorm gains (1-D) do not (nanoGPT's configure_optimizers).</summary>
    public bool Decay => Shape.Length >= 2;
}

/// <summary>
/// A batch of B token rows of equal length T. AttentionMask (B·T, 1 = real token, 0 = padding) may be null when every
/// token is real. Padding may sit on the left (prompts) or right (training rows); positions count real tokens only.
/// </summary>
public sealed record GptInput
{
    public GptInput(int batch, int length, int[] tokens, byte[]? attentionMask = null)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (batch <= 0 || length <= 0)
            throw new ArgumentException($"GptInput: batch {batch} and length {length} must both be positive.");
        if (tokens.Length != batch * length)
            throw new ArgumentException($"GptInput: {tokens.Length} tokens given for batch {batch} × length {length}.");
        if (attentionMask is not null && attentionMask.Length != tokens.Length)
            throw new ArgumentException($"GptInput: attention mask holds {attentionMask.Length} entries but there are {tokens.Length} tokens.");
        Batch = batch;
        Length = length;
        Tokens = tokens;
        AttentionMask = attentionMask;
    }

    public int Batch { get; }
    public int Length { get; }
    public int[] Tokens { get; }
    public byte[]? AttentionMask { get; }

    public bool IsReal(int b, int t) => AttentionMask is null || AttentionMask[b * Length + t] != 0;

    /// <summary>Left-pads rows of different lengths with <paramref name="padToken"/> and mask 0.</summary>
    public static GptInput LeftPadded(IReadOnlyList<int[]> rows, int padToken)
    {
        if (rows.Count == 0) throw new ArgumentException("GptInput.LeftPadded: no rows.");
        int T = rows.Max(r => r.Length);
        if (rows.Any(r => r.Length == 0)) throw new ArgumentException("GptInput.LeftPadded: a row is empty; every row needs at least one token.");
        var tokens = new int[rows.Count * T];
        var mask = new byte[rows.Count * T];
        for (int b = 0; b < rows.Count; b++)
        {
            int pad = T - rows[b].Length;
            for (int t = 0; t < pad; t++) tokens[b * T + t] = padToken;
            for (int t = 0; t < rows[b].Length; t++)
            {
                tokens[b * T + pad + t] = rows[b][t];
                mask[b * T + pad + t] = 1;
            }
        }
        return new GptInput(rows.Count, T, tokens, mask);
    }
}

/// <summary>What a forward pass should compute; the V-wide logits are the costliest and a reward model skips them.</summary>
public sealed record GptForwardOptions
{
    /// <summary>Compute LM logits [B, T, V].</summary>
    public bool Logits { get; init; } = true;

    /// <summary>Apply dropout (config.Dropout) with this generator; null means evaluation mode (no dropout).</summary>
    public Tensors.Rng? DropoutRng { get; init; }

    /// <summary>
    /// Keep every block's activations for Backward (true), or only the block inputs, as activation checkpointing does (false:
    /// for scoring passes; the outputs are the same bits and a Backward, should one come, recomputes the blocks).
    /// </summary>
    public bool KeepActivations { get; init; } = true;
}
