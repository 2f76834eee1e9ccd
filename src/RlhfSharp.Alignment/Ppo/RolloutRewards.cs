// What scores a finished rollout: a reward model (ensemble mean) on the token rows, or any function of the text — a
// non-differentiable metric such as a BLEU-like overlap with a reference (the seed's machine-translation example).
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
public sealed class RewardModelReward(RewardEnsemble ensemble) : IRolloutReward
{
    public RewardEnsemble Ensemble { get; } = ensemble;

    public float[] Score(IReadOnlyList<string> prompts, IReadOnlyList<string> responses, IReadOnlyList<int[]> rows) => Ensemble.ScoreTokens(rows).Mean;
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
