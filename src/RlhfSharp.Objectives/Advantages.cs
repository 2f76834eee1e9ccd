// Advantage estimators over response tokens: generalised advantage estimation (Schulman et al. 2016) as PPO for
// language models uses it (γ = 1, λ = 0.95 by default; the episode is the response, its tokens the steps), and the
// leave-one-out baseline of RLOO (Kool et al. 2019; Ahmadian et al. 2024). Shapes: B sequences, T response tokens.
namespace RlhfSharp.Objectives;

public static class Advantages
{
    /// <summary>
    /// GAE per row over its first <c>lengths[b]</c> tokens, backwards from the last:
    ///   δ_t = r_t + γ·V_{t+1} − V_t (V after the last real token is 0: the episode ends there),
    ///   A_t = δ_t + γλ·A_{t+1},  returns R_t = A_t + V_t.
    /// Entries past a row's length are 0 in both outputs.
    /// </summary>
    /// <param name="rewards">r per token, [B, T] row-major.</param>
    /// <param name="values">V per token, [B, T].</param>
    /// <param name="lengths">Real response tokens per row (0..T).</param>
    public static (float[] Advantages, float[] Returns) Gae(ReadOnlySpan<float> rewards, ReadOnlySpan<float> values, ReadOnlySpan<int> lengths, int T, double gamma = 1.0, double lambda = 0.95)
    {
        int B = lengths.Length;
        if (T <= 0 || rewards.Length != B * T || values.Length != B * T)
            throw new ArgumentException($"GAE: rewards ({rewards.Length}) and values ({values.Length}) must hold B·T = {B}·{T} entries.");
        if (!(gamma >= 0 && gamma <= 1)) throw new ArgumentException($"GAE: γ = {gamma} must lie in [0, 1].");
        if (!(lambda >= 0 && lambda <= 1)) throw new ArgumentException($"GAE: λ = {lambda} must lie in [0, 1].");
        var adv = new float[B * T];
        var ret = new float[B * T];
        for (int b = 0; b < B; b++)
        {
            int L = lengths[b];
            if (L < 0 || L > T) throw new ArgumentException($"GAE: length {L} of row {b} is outside [0, {T}].");
            double last = 0;
            for (int t = L - 1; t >= 0; t--)
            {
                int i = b * T + t;
                double next = t + 1 < L ? values[i + 1] : 0;
                double delta = rewards[i] + gamma * next - values[i];
                last = delta + gamma * lambda * last;
                adv[i] = (float)last;
                ret[i] = (float)(last + values[i]);
            }
        }
        return (adv, ret);
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
