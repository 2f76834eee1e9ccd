// Held-out translation quality of a policy: greedy decoding (argmax at every step, so the figures are the model's, not a
// sample's) of each source prompt, scored against its reference with corpus BLEU and corpus chrF (sacreBLEU's corpus
// scores: counts summed over sentences), the mean sentence BLEU and chrF (what RL on the metric optimises), and the share
// of exact matches.
using RlhfSharp.Models;
using RlhfSharp.Tensors;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment.Evaluation;

/// <summary>Held-out scores (0–100 for the metrics, a fraction for exact matches) and the hypotheses behind them.</summary>
public sealed record TranslationScores(int Sentences, double CorpusBleu, double CorpusChrf, double SentenceBleu, double SentenceChrf, double ExactMatch,
    IReadOnlyList<string> Hypotheses);

public static class TranslationEvaluation
{
    /// <summary>Greedy translations of <paramref name="prompts"/> (EOS removed, trimmed), scored against <paramref name="references"/> (one per prompt).</summary>
    public static TranslationScores Evaluate(Gpt policy, ITokenizer tokenizer, IReadOnlyList<string> prompts, IReadOnlyList<string> references,
        int maxNewTokens, int batchSize = 32)
    {
        if (prompts.Count == 0) throw new ArgumentException("translation evaluation: no prompts.");
        if (prompts.Count != references.Count) throw new ArgumentException($"translation evaluation: {prompts.Count} prompts but {references.Count} references.");
        int eos = tokenizer.EosId ?? policy.Config.EosTokenId ?? throw new ArgumentException("translation evaluation: the tokenizer has no end-of-text token.");
        var generator = new GptGenerator(policy);
        var hypotheses = new List<string>(prompts.Count);
        for (int start = 0; start < prompts.Count; start += batchSize)
        {
            var batch = prompts.Skip(start).Take(batchSize).Select(p => tokenizer.Encode(p)).ToList();
            int room = policy.Config.BlockSize - batch.Max(q => q.Length);
            if (room < 1) throw new ArgumentException($"translation evaluation: a prompt of {batch.Max(q => q.Length)} tokens does not fit the model's context of {policy.Config.BlockSize}.");
            var options = new GenerationOptions { Greedy = true, MaxNewTokens = Math.Min(maxNewTokens, room), EosTokenId = eos };
            var result = generator.Generate(batch, options, new Rng(1));
            for (int b = 0; b < batch.Count; b++)
            {
                var reply = result.Response(b);
                if (reply.Length > 0 && reply[^1] == eos) reply = reply[..^1];
                hypotheses.Add(tokenizer.Decode(reply).Trim());
            }
        }
        var refs = references.Select(r => (IReadOnlyList<string>)[r]).ToList();
        return new TranslationScores(prompts.Count,
            TranslationMetrics.CorpusBleu(hypotheses, refs),
            TranslationMetrics.CorpusChrf(hypotheses, references),
            hypotheses.Select((h, i) => TranslationMetrics.SentenceBleu(h, references[i])).Average(),
            hypotheses.Select((h, i) => TranslationMetrics.SentenceChrf(h, references[i])).Average(),
            hypotheses.Where((h, i) => h == references[i].Trim()).Count() / (double)prompts.Count,
            hypotheses);
    }
}
