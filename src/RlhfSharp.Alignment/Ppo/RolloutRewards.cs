// What scores a finished rollout: a reward model (ensemble mean) on the token rows, or any function of the text — a
// non-differentiable metric such as a BLEU-like overlap with a reference (the seed's machine-translation example).
using RlhfSharp.Alignment.Evaluation;
using RlhfSharp.Alignment.RewardModeling;

namespace RlhfSharp.Alignment.Ppo;

/// <summary>Scores B responses; the trainer adds it at each response's last token.</summary>
public interface IRolloutReward
{
    /// <param name="prompts">Prompt texts.</param>
    /// <param name="responses">Response texts (EOS removed).</param>
    /// <param name="rows">Prompt tokens ++ response tokens (EOS kept when emitted), one row per response.</param>
    float[] Score(IReadOnlyList<string> prompts, IReadOnlyList<string> responses, IReadOnlyList<int[]> rows);
}

/// <summary>The normalised mean of a reward-model ensemble, read at the last real token of each row.</summary>
/// <param name="ensemble">The reward models.</param>
/// <param name="endCutResponses">
/// Append EOS to rows that lack one (responses cut at the length limit) before scoring. The reward trainer appends EOS to
/// every row it learns from, so its head has only ever been read at an EOS; read at wherever a cut fell, its score is
/// untrained, and PPO learns to chase it (on the mock-sentiment task the proxy rose while gold fell).
/// </param>
public sealed class RewardModelReward(RewardEnsemble ensemble, bool endCutResponses = false) : IRolloutReward
{
    public RewardEnsemble Ensemble { get; } = ensemble;

    public float[] Score(IReadOnlyList<string> prompts, IReadOnlyList<string> responses, IReadOnlyList<int[]> rows)
    {
        if (endCutResponses && Ensemble.First.Tokenizer.EosId is int eos)
            rows = rows.Select(r => r.Length > 0 && r[^1] == eos ? r : [.. r, eos]).ToList();
        return Ensemble.ScoreTokens(rows).Mean;
    }
}

/// <summary>Any (prompt, response) → score function.</summary>
public sealed class FunctionReward(Func<string, string, double> score) : IRolloutReward
{
    public float[] Score(IReadOnlyList<string> prompts, IReadOnlyList<string> responses, IReadOnlyList<int[]> rows)
    {
        var result = new float[responses.Count];
        for (int i = 0; i < result.Length; i++)
        {
            double s = score(prompts[i], responses[i]);
            if (!double.IsFinite(s)) throw new InvalidOperationException($"reward function returned {s} for response {i} (\"{responses[i]}\").");
            result[i] = (float)s;
        }
        return result;
    }
}

/// <summary>A sentence-level translation metric (TranslationMetrics).</summary>
public enum TranslationMetric
{
    /// <summary>sacreBLEU's sentence_bleu: "exp" smoothing, effective order.</summary>
    Bleu,

    /// <summary>chrF, β = 2, character 6-grams.</summary>
    Chrf,
}

/// <summary>
/// RL on a metric: the reward of a response is its sentence BLEU or chrF against the references of its prompt, divided by
/// 100 so that it lies in [0, 1] beside the KL penalty. A prompt without references is an error naming it.
/// </summary>
public sealed class ReferenceMetricReward(TranslationMetric metric, IReadOnlyDictionary<string, IReadOnlyList<string>> references) : IRolloutReward
{
    public TranslationMetric Metric { get; } = metric;

    /// <summary>The metric's name as logged: "bleu" or "chrf".</summary>
    public string Name => Metric.ToString().ToLowerInvariant();

    /// <summary>The metric (0–100) of <paramref name="response"/> (trimmed) against the references of <paramref name="prompt"/>; chrF takes the best reference.</summary>
    public double Sentence(string prompt, string response) => Sentence(Metric, response, References(prompt));

    /// <summary>The metric (0–100) of one hypothesis against its references.</summary>
    public static double Sentence(TranslationMetric metric, string response, IReadOnlyList<string> references) => metric switch
    {
        TranslationMetric.Bleu => TranslationMetrics.SentenceBleu(response.Trim(), references),
        _ => references.Max(r => TranslationMetrics.SentenceChrf(response.Trim(), r)),
    };

    public IReadOnlyList<string> References(string prompt) =>
        references.TryGetValue(prompt, out var list) && list.Count > 0 ? list
            : throw new KeyNotFoundException($"{Name} reward: the prompt \"{prompt.ReplaceLineEndings(" ").Trim()}\" has no reference.");

    public float[] Score(IReadOnlyList<string> prompts, IReadOnlyList<string> responses, IReadOnlyList<int[]> rows)
    {
        var result = new float[responses.Count];
        for (int i = 0; i < result.Length; i++) result[i] = (float)(Sentence(prompts[i], responses[i]) / 100);
        return result;
    }
}
