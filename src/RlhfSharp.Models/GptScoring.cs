// Log-probabilities a GPT assigns to a token sequence: what `rlhf score` prints, so anyone can check our forward pass
// against another implementation, and what evaluation uses for perplexity.
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

    /// <summary>Encodes <paramref name="text"/> exactly as the tokenizer does (no BOS added) and scores it.</summary>
    public static TokenScores Score(Gpt gpt, ITokenizer tokenizer, string text) => Score(gpt, tokenizer.Encode(text));
}
