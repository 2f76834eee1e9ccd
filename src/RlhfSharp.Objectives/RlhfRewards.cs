// The RLHF reward (Ziegler et al. 2019 §2.2; InstructGPT eq. 2): the reward model's score minus a KL penalty that keeps the
// policy near the reference, R(x, y) = r(x, y) − β·log(π(y|x)/π_ref(y|x)). PPO spreads it over the response tokens, the
// penalty at every token (the k1 estimator, KlEstimators) and the score at the last real token; RLOO takes it per sequence.
// Shapes: B responses, T response tokens, [B, T] row-major, lengths[b] real tokens.
namespace RlhfSharp.Objectives;

/// <summary>Per-token RLHF rewards and each response's summed KL estimates.</summary>
/// <param name="Rewards">r_t = −β·k1_t, plus the score at the last real token; 0 past a row's length. [B, T].</param>
/// <param name="Kl">Σ_t k1_t per response (the KL the β controller sees, `objective/kl`). [B].</param>
/// <param name="KlK3">Σ_t k3_t per response (logged beside it, never negative). [B].</param>
public sealed record TokenRewards(float[] Rewards, double[] Kl, double[] KlK3);

public static class RlhfRewards
{
    /// <summary>r_t = −β·(log π(y_t) − log π_ref(y_t)) at every real token, and the score added at the last one.</summary>
    /// <param name="scores">r(x, y) per response, [B].</param>
    /// <param name="logProbs">log π of each response token under the rollout policy, [B, T].</param>
    /// <param name="refLogProbs">log π_ref of the same tokens, [B, T].</param>
    /// <param name="lengths">Real response tokens per row (0..T).</param>
    /// <param name="T">Tokens per row.</param>
    /// <param name="beta">β.</param>
    public static TokenRewards PerToken(ReadOnlySpan<float> scores, ReadOnlySpan<float> logProbs, ReadOnlySpan<float> refLogProbs, ReadOnlySpan<int> lengths, int T, double beta)
    {
        int B = lengths.Length;
        if (T <= 0 || scores.Length != B || logProbs.Length != B * T || refLogProbs.Length != B * T)
            throw new ArgumentException($"RLHF reward: expected {B} scores and B·T = {B}·{T} log-probabilities of each policy; got {scores.Length}, {logProbs.Length} and {refLogProbs.Length}.");
        var rewards = new float[B * T];
        var kl = new double[B];
        var klK3 = new double[B];
        for (int b = 0; b < B; b++)
        {
            int L = lengths[b];
            if (L < 0 || L > T) throw new ArgumentException($"RLHF reward: length {L} of row {b} is outside [0, {T}].");
            for (int t = 0; t < L; t++)
            {
                int i = b * T + t;
                double k1 = KlEstimators.K1(logProbs[i], refLogProbs[i]);
                kl[b] += k1;
                klK3[b] += KlEstimators.K3(logProbs[i], refLogProbs[i]);
                rewards[i] = (float)(-beta * k1);
            }
            if (L > 0) rewards[b * T + L - 1] += scores[b];
        }
        return new TokenRewards(rewards, kl, klK3);
    }

    /// <summary>R = r(x, y) − β·Σ_t k1_t per response, [B] (RLOO's sequence reward).</summary>
    public static float[] PerSequence(ReadOnlySpan<float> scores, ReadOnlySpan<double> kl, double beta)
    {
        if (scores.Length != kl.Length) throw new ArgumentException($"RLHF reward: {scores.Length} scores for {kl.Length} KL sums.");
        var r = new float[scores.Length];
        for (int b = 0; b < r.Length; b++) r[b] = (float)(scores[b] - beta * kl[b]);
        return r;
    }
}
