// Reward-model losses on tensors of scalar rewards (B batch elements, K candidates per prompt, P = K·(K−1)/2 pairs):
// pairwise Bradley–Terry with a margin and ties (Christiano et al. 2017's cross-entropy with μ = ½), InstructGPT's
// K-wise ranking loss over all pairs of one prompt, and Ziegler et al. 2019's best-of-K softmax choice.
using RlhfSharp.Tensors;

namespace RlhfSharp.Objectives;

public static class PreferenceLosses
{
    /// <summary>
    /// Pairwise cross-entropy with soft labels: with d = r_first − r_second,
    ///   loss = mean_b −[ μ_b · log σ(d_b − m_b) + (1 − μ_b) · log σ(−d_b − m_b) ].
    /// μ = 1 (first preferred) is TRL's Bradley–Terry loss −log σ(r_w − r_l − m); μ = ½ is a tie (Christiano et al.).
    /// The margin m asks the preferred side to win by at least m (Llama 2's margin); leave it empty for 0.
    /// </summary>
    /// <param name="first">Rewards of the first candidates, [B].</param>
    /// <param name="second">Rewards of the second candidates, [B].</param>
    /// <param name="preferFirst">μ per pair in [0, 1]; empty means 1 for every pair (first is the chosen one).</param>
    /// <param name="margin">m per pair (≥ 0); empty means 0.</param>
    public static Tensor Pairwise(Tensor first, Tensor second, ReadOnlySpan<float> preferFirst = default, ReadOnlySpan<float> margin = default)
    {
        if (first.Rank != 1 || second.Rank != 1 || first.Length != second.Length)
            throw new ArgumentException($"pairwise loss: rewards must both be [B]; got {first.ShapeString} and {second.ShapeString}.");
        int B = first.Length;
        if (!preferFirst.IsEmpty && preferFirst.Length != B)
            throw new ArgumentException($"pairwise loss: {preferFirst.Length} labels μ for {B} pairs.");
        if (!margin.IsEmpty && margin.Length != B)
            throw new ArgumentException($"pairwise loss: {margin.Length} margins for {B} pairs.");
        var mu = new float[B];
        var m = new float[B];
        bool anySecond = false;
        for (int b = 0; b < B; b++)
        {
            mu[b] = preferFirst.IsEmpty ? 1f : preferFirst[b];
            if (!(mu[b] >= 0 && mu[b] <= 1)) throw new ArgumentException($"pairwise loss: label μ[{b}] = {mu[b]} is outside [0, 1].");
            anySecond |= mu[b] < 1;
            m[b] = margin.IsEmpty ? 0f : margin[b];
            if (!float.IsFinite(m[b])) throw new ArgumentException($"pairwise loss: margin[{b}] = {m[b]} is not finite.");
        }
        var d = Ops.Sub(first, second);
        var marginT = Tensor.Wrap(m, B);
        var muT = Tensor.Wrap(mu, B);
        // −μ·log σ(d − m), the Bradley–Terry term (TRL: -logsigmoid(r_chosen - r_rejected - margin)).
        var loss = Ops.Neg(Ops.Mul(muT, Ops.LogSigmoid(Ops.Sub(d, marginT))));
        if (anySecond)
        {
            var rest = new float[B];
            for (int b = 0; b < B; b++) rest[b] = 1f - mu[b];
            // −(1 − μ)·log σ(−d − m): the second candidate's share (the whole loss when μ = 0, half of it for a tie).
            var back = Ops.LogSigmoid(Ops.Sub(Ops.Neg(d), marginT));
            loss = Ops.Sub(loss, Ops.Mul(Tensor.Wrap(rest, B), back));
        }
        return Ops.Mean(loss);
    }

    /// <summary>
    /// InstructGPT's K-wise ranking loss (Ouyang et al. 2022, eq. 1): for each prompt, all K·(K−1)/2 pairs (y_w ranked
    /// above y_l) in the same batch element, loss = −1/C(K,2) · Σ_pairs log σ(r(y_w) − r(y_l)), averaged over prompts.
    /// Keeping a prompt's pairs together is the paper's point: shuffled apart, each completion is seen K−1 times per epoch
    /// and the model overfits.
    /// </summary>
    /// <param name="rewards">[B, K]: the reward of each candidate, in the candidates' own order.</param>
    /// <param name="rankings">One ranking per batch element: candidate indices, best first, each exactly once.</param>
    public static Tensor Ranking(Tensor rewards, IReadOnlyList<IReadOnlyList<int>> rankings)
    {
        if (rewards.Rank != 2) throw new ArgumentException($"ranking loss: rewards must be [B, K]; got {rewards.ShapeString}.");
        int B = rewards.Shape[0], K = rewards.Shape[1];
        if (K < 2) throw new ArgumentException($"ranking loss: K = {K}; a ranking needs at least 2 candidates.");
        if (rankings.Count != B) throw new ArgumentException($"ranking loss: {rankings.Count} rankings for {B} batch elements.");
        int P = K * (K - 1) / 2;
        // S [B, K, P]: column p of element b is e_w − e_l for its p-th pair, so rewards·S gives every r_w − r_l at once.
        var s = new float[B * K * P];
        for (int b = 0; b < B; b++)
        {
            var r = rankings[b];
            if (r.Count != K || r.Distinct().Count() != K || r.Any(i => i < 0 || i >= K))
                throw new ArgumentException($"ranking loss: ranking {b} [{string.Join(",", r)}] must list each of the {K} candidate indices once.");
            int p = 0;
            for (int i = 0; i < K; i++)
                for (int j = i + 1; j < K; j++, p++)
                {
                    s[(b * K + r[i]) * P + p] += 1f;
                    s[(b * K + r[j]) * P + p] -= 1f;
                }
        }
        var diffs = Ops.MatMul(Ops.Reshape(rewards, B, 1, K), Tensor.Wrap(s, B, K, P)); // (B,1,K)·(B,K,P) → (B,1,P)
        return Ops.Neg(Ops.Mean(Ops.LogSigmoid(diffs)));
    }

    /// <summary>
    /// Ziegler et al. 2019's best-of-K loss: the labeller picks the best of K samples, modelled as a softmax over the K
    /// rewards, loss = mean_b −log( exp r(y_best) / Σ_i exp r(y_i) ).
    /// </summary>
    /// <param name="rewards">[B, K].</param>
    /// <param name="best">Index of the chosen candidate per batch element.</param>
    public static Tensor BestOfK(Tensor rewards, ReadOnlySpan<int> best)
    {
        if (rewards.Rank != 2) throw new ArgumentException($"best-of-K loss: rewards must be [B, K]; got {rewards.ShapeString}.");
        if (best.Length != rewards.Shape[0]) throw new ArgumentException($"best-of-K loss: {best.Length} choices for {rewards.Shape[0]} batch elements.");
        return Ops.CrossEntropy(rewards, best);
    }
}
