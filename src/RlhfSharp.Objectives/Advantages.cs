// Advantage estimators for both wings: generalised advantage estimation (Schulman et al. 2016) in one backward loop that
// serves the control layout (T steps × N envs, episodes ending anywhere, truncated ones bootstrapped from V) and the
// language-model layout (B responses × T tokens, the episode is the response and ends at its last real token, γ = 1 and
// λ = 0.95 by default), returns-to-go (REINFORCE's Monte Carlo return: GAE with λ = 1 and V ≡ 0), and the leave-one-out
// baseline of RLOO (Kool et al. 2019; Ahmadian et al. 2024).
// Shapes: control [T, N] time-major, entry t·N + i; language model [B, T] row-major, entry b·T + t, lengths[b] real tokens.
namespace RlhfSharp.Objectives;

public static class Advantages
{
    /// <summary>
    /// GAE over control rollouts, CleanRL's backward loop with Gymnasium's two kinds of episode end:
    ///   δ_t = r_t + γ·V_next − V(s_t),  A_t = δ_t + γλ·A_{t+1}·(1 − end_t),  returns R_t = A_t + V(s_t), where
    ///   V_next = 0 when the episode terminated at step t (a terminal state is worth nothing);
    ///          = V(final observation) when it was truncated at step t (a time limit is not an outcome: bootstrap);
    ///          = V(s_{t+1}) otherwise, and <paramref name="nextValues"/> after the last step.
    /// </summary>
    /// <param name="rewards">r per step, [T, N].</param>
    /// <param name="values">V(s_t) from the rollout, [T, N].</param>
    /// <param name="terminated">The episode ended in a terminal state at step t, [T, N].</param>
    /// <param name="truncated">The episode was cut by a time limit at step t, [T, N] (terminated wins where both are set).</param>
    /// <param name="truncatedValues">V of the final observation, read only where truncated, [T, N].</param>
    /// <param name="nextValues">V of the observation after the last step, [N].</param>
    public static (float[] Advantages, float[] Returns) Gae(
        ReadOnlySpan<float> rewards, ReadOnlySpan<float> values, ReadOnlySpan<bool> terminated, ReadOnlySpan<bool> truncated,
        ReadOnlySpan<float> truncatedValues, ReadOnlySpan<float> nextValues, int steps, int envs, double gamma, double lambda)
    {
        int n = steps * envs;
        if (steps < 1 || envs < 1 || rewards.Length != n || values.Length != n || terminated.Length != n || truncated.Length != n
            || truncatedValues.Length != n || nextValues.Length != envs)
            throw new ArgumentException(
                $"GAE: expected {steps}×{envs} rewards, values, terminated, truncated and truncated values and {envs} next values; got " +
                $"{rewards.Length}, {values.Length}, {terminated.Length}, {truncated.Length}, {truncatedValues.Length} and {nextValues.Length}.");
        CheckRates(gamma, lambda);
        var adv = new float[n];
        var ret = new float[n];
        var ends = new EpisodeEnds(terminated, truncated, truncatedValues);
        for (int i = 0; i < envs; i++)
            Backward(rewards, values, ends, first: i, stride: envs, count: steps, nextValues[i], gamma, lambda, adv, ret);
        return (adv, ret);
    }

    /// <summary>
    /// GAE per response over its first <c>lengths[b]</c> tokens: the same loop as the control layout with the episode
    /// terminated at the last real token (V after it is 0):
    ///   δ_t = r_t + γ·V_{t+1} − V_t,  A_t = δ_t + γλ·A_{t+1},  returns R_t = A_t + V_t.
    /// Entries past a row's length are 0 in both outputs.
    /// </summary>
    /// <param name="rewards">r per token, [B, T].</param>
    /// <param name="values">V per token, [B, T].</param>
    /// <param name="lengths">Real response tokens per row (0..T).</param>
    public static (float[] Advantages, float[] Returns) Gae(ReadOnlySpan<float> rewards, ReadOnlySpan<float> values, ReadOnlySpan<int> lengths, int T, double gamma = 1.0, double lambda = 0.95)
    {
        int B = lengths.Length;
        if (T <= 0 || rewards.Length != B * T || values.Length != B * T)
            throw new ArgumentException($"GAE: rewards ({rewards.Length}) and values ({values.Length}) must hold B·T = {B}·{T} entries.");
        CheckRates(gamma, lambda);
        var adv = new float[B * T];
        var ret = new float[B * T];
        for (int b = 0; b < B; b++)
        {
            int L = lengths[b];
            if (L < 0 || L > T) throw new ArgumentException($"GAE: length {L} of row {b} is outside [0, {T}].");
            // Terminated after the last token: V_next = 0 there, which is what nextValue = 0 after the last step gives.
            Backward(rewards, values, ends: default, first: b * T, stride: 1, count: L, nextValue: 0, gamma, lambda, adv, ret);
        }
        return (adv, ret);
    }

    /// <summary>
    /// Discounted returns-to-go G_t = r_t + γ·G_{t+1}, restarting at episode ends (G after a terminal step is 0, after a
    /// truncated one V(final observation)) and bootstrapped from nextValues after the last step: GAE's return with λ = 1
    /// and V ≡ 0. Layout and flags as <see cref="Gae(ReadOnlySpan{float}, ReadOnlySpan{float}, ReadOnlySpan{bool}, ReadOnlySpan{bool}, ReadOnlySpan{float}, ReadOnlySpan{float}, int, int, double, double)"/>.
    /// </summary>
    public static float[] ReturnsToGo(
        ReadOnlySpan<float> rewards, ReadOnlySpan<bool> terminated, ReadOnlySpan<bool> truncated, ReadOnlySpan<float> truncatedValues,
        ReadOnlySpan<float> nextValues, int steps, int envs, double gamma) =>
        Gae(rewards, new float[rewards.Length], terminated, truncated, truncatedValues, nextValues, steps, envs, gamma, lambda: 1.0).Returns;

    /// <summary>How episodes end inside a sequence; default (empty spans): only after its last step.</summary>
    private readonly ref struct EpisodeEnds(ReadOnlySpan<bool> terminated, ReadOnlySpan<bool> truncated, ReadOnlySpan<float> truncatedValues)
    {
        public readonly ReadOnlySpan<bool> Terminated = terminated;
        public readonly ReadOnlySpan<bool> Truncated = truncated;
        public readonly ReadOnlySpan<float> TruncatedValues = truncatedValues;
    }

    /// <summary>
    /// The one GAE loop: the <paramref name="count"/> steps at first, first + stride, ..., backwards from the last, whose
    /// successor is worth <paramref name="nextValue"/>.
    /// </summary>
    private static void Backward(ReadOnlySpan<float> rewards, ReadOnlySpan<float> values, EpisodeEnds ends, int first, int stride, int count,
        double nextValue, double gamma, double lambda, Span<float> adv, Span<float> ret)
    {
        double last = 0; // A_{t+1}
        for (int t = count - 1; t >= 0; t--)
        {
            int k = first + t * stride;
            double next = t == count - 1 ? nextValue : values[k + stride];
            double carry = 1; // 1 − end_t: whether A_{t+1} belongs to the same episode
            if (!ends.Terminated.IsEmpty && ends.Terminated[k]) (next, carry) = (0, 0);
            else if (!ends.Truncated.IsEmpty && ends.Truncated[k]) (next, carry) = (ends.TruncatedValues[k], 0);
            double delta = rewards[k] + gamma * next - values[k];
            last = delta + gamma * lambda * carry * last;
            adv[k] = (float)last;
            ret[k] = (float)(last + values[k]);
        }
    }

    private static void CheckRates(double gamma, double lambda)
    {
        if (!(gamma >= 0 && gamma <= 1)) throw new ArgumentException($"GAE: γ = {gamma} must lie in [0, 1].");
        if (!(lambda >= 0 && lambda <= 1)) throw new ArgumentException($"GAE: λ = {lambda} must lie in [0, 1].");
    }

    /// <summary>
    /// RLOO's advantage: each of the K samples of a prompt is compared with the mean of the other K − 1,
    /// A_i = R_i − (Σ_{j≠i} R_j)/(K − 1). Samples are grouped as K consecutive entries per prompt.
    /// </summary>
    public static float[] LeaveOneOut(ReadOnlySpan<float> rewards, int k)
    {
        if (k < 2) throw new ArgumentException($"RLOO: K = {k}; the leave-one-out baseline needs at least 2 samples per prompt.");
        if (rewards.Length % k != 0) throw new ArgumentException($"RLOO: {rewards.Length} rewards are not a whole number of groups of K = {k}.");
        var adv = new float[rewards.Length];
        for (int g = 0; g < rewards.Length; g += k)
        {
            double sum = 0;
            for (int i = 0; i < k; i++) sum += rewards[g + i];
            for (int i = 0; i < k; i++) adv[g + i] = (float)(rewards[g + i] - (sum - rewards[g + i]) / (k - 1));
        }
        return adv;
    }
}
