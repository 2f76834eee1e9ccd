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
    /// Batched, no-grad log-probabilities (B, T−1): entry (b, t) = log p(tokens[b, t+1] | tokens[b, ..t]) for the
    /// fused forward, 0 where token t or t+1 is padding. PPO's old and reference log-probs come from here.
    /// </summary>
    public static float[] TokenLogProbs(Gpt gpt, GptInput input)
    {
        int B = input.Batch, T = input.Length, V = gpt.Config.VocabSize;
        var logits = gpt.Forward(input).Logits!;
        var result = new float[B * (T - 1)];
        ParallelChunks.For(B * (T - 1), (start, end) =>
        {
            for (int i = start; i < end; i++)
            {
                int b = i / (T - 1), t = i % (T - 1);
                if (!input.IsReal(b, t) || !input.IsReal(b, t + 1)) continue;
                var row = logits.AsSpan((b * T + t) * V, V);
                float max = System.Numerics.Tensors.TensorPrimitives.Max(row);
                double sum = 0;
                foreach (float l in row) sum += Math.Exp(l - max);
                result[i] = (float)(row[input.Tokens[b * T + t + 1]] - max - Math.Log(sum));
            }
        }, minPerChunk: 16);
        return result;
    }

    /// <summary>Encodes <paramref name="text"/> exactly as the tokenizer does (no BOS added) and scores it.</summary>
    public static TokenScores Score(Gpt gpt, ITokenizer tokenizer, string text) => Score(gpt, tokenizer.Encode(text));
}
