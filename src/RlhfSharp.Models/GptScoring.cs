// Log-probabilities a GPT assigns to a token sequence: what `rlhf score` prints, so anyone can check our forward pass
// against another implementation, and what evaluation uses for perplexity.
using RlhfSharp.Tensors.Kernels;
using RlhfSharp.Text;

namespace RlhfSharp.Models;

/// <summary>A scored text: its tokens and logprobs[t] = log p(tokens[t+1] | tokens[0..t]) (one fewer than tokens).</summary>
public sealed record TokenScores(int[] Tokens, double[] LogProbs);

public static class GptScoring
{
    /// <summary>Scores <paramref name="tokens"/> in one forward pass (log-softmax in float64).</summary>
    public static TokenScores Score(Gpt gpt, int[] tokens)
    {
        if (tokens.Length == 0) throw new ArgumentException("score: the text encodes to no tokens.");
        if (tokens.Length > gpt.Config.BlockSize)
            throw new ArgumentException($"score: the text is {tokens.Length} tokens, longer than the model's block size {gpt.Config.BlockSize}.");
        int T = tokens.Length, V = gpt.Config.VocabSize;
        var logits = gpt.Forward(new GptInput(1, T, tokens)).Logits!;
        var logProbs = new double[T - 1];
        for (int t = 0; t + 1 < T; t++)
        {
            var row = logits.AsSpan(t * V, V);
            double max = double.NegativeInfinity;
            foreach (float l in row) max = Math.Max(max, l);
            double sum = 0;
            foreach (float l in row) sum += Math.Exp(l - max);
            logProbs[t] = row[tokens[t + 1]] - max - Math.Log(sum);
        }
        return new TokenScores(tokens, logProbs);
    }

    /// <summary>
    /// The tied LM head on <paramref name="rows"/> hidden states (after ln_f): logits (rows, V) = hidden · wteᵀ. The same
    /// GEMM the forward runs, whose element sums do not depend on how many rows it is given, so a chunk's logits have the
    /// bits the whole batch's would: callers go chunk by chunk and B×T×V logits are never held at once.
    /// </summary>
    public static void HeadLogits(Gpt gpt, ReadOnlySpan<float> hidden, int rows, Span<float> logits)
    {
        gpt.TiedHeadLogits(hidden, rows, logits);
    }

    /// <summary>
    /// The tied head's input gradient on <paramref name="rows"/> hidden states: dHidden (rows, C) += dLogits (rows, V) · wte.
    /// Each row's sum runs over the vocabulary alone, so rows taken out of a larger batch get the bits the whole batch's
    /// backward would give them. wte's own gradient is not computed: for a frozen base (LoRA) only.
    /// </summary>
    public static void HeadInputGrad(Gpt gpt, ReadOnlySpan<float> dLogits, int rows, Span<float> dHidden)
    {
        if (gpt.Adapter is null)
            throw new InvalidOperationException("HeadInputGrad: the model trains its base, whose wte gradient this does not compute; use Gpt.Backward with dLogits.");
        gpt.TiedHeadInputGrad(dLogits[..(rows * gpt.Config.VocabSize)], rows, dHidden[..(rows * gpt.Config.NEmbd)]);
    }

    /// <summary>
    /// Batched, no-grad log-probabilities (B, T−1): entry (b, t) = log p(tokens[b, t+1] | tokens[b, ..t]) for the
    /// fused forward, 0 where token t or t+1 is padding. The head runs one row of the batch at a time (HeadLogits).
    /// </summary>
    public static float[] TokenLogProbs(Gpt gpt, GptInput input)
    {
        int B = input.Batch, T = input.Length, V = gpt.Config.VocabSize, C = gpt.Config.NEmbd;
        var hidden = gpt.Forward(input, new GptForwardOptions { Logits = false, KeepActivations = false }).LnF;
        var logits = new float[T * V];   // one row's (T, V)
        var result = new float[B * (T - 1)];
        for (int b = 0; b < B; b++)
        {
            HeadLogits(gpt, hidden.AsSpan(b * T * C, T * C), T, logits);
            int rowB = b;
            ParallelChunks.For(T - 1, (start, end) =>
            {
                for (int t = start; t < end; t++)
                {
                    int i = rowB * (T - 1) + t;
                    if (!input.IsReal(rowB, t) || !input.IsReal(rowB, t + 1)) continue;
                    var row = logits.AsSpan(t * V, V);
                float max = System.Numerics.Tensors.TensorPrimitives.Max(row);
                double sum = 0;
                foreach (float l in row) sum += Math.Exp(l - max);
                    result[i] = (float)(row[input.Tokens[rowB * T + t + 1]] - max - Math.Log(sum));
                }
            }, minPerChunk: 16);
        }
        return result;
    }

    /// <summary>Encodes <paramref name="text"/> exactly as the tokenizer does (no BOS added) and scores it.</summary>
    public static TokenScores Score(Gpt gpt, ITokenizer tokenizer, string text) => Score(gpt, tokenizer.Encode(text));
}
