// Group relative policy optimisation (Shao et al. 2024, DeepSeekMath §4.1) and the variants that followed it: Dr. GRPO
// (Liu et al. 2025, "Understanding R1-Zero-like training") and DAPO (Yu et al. 2025). The equations, once:
//   advantages  A_i = (r_i − mean(r_group)) / (std(r_group) + 1e-4)   (scale_rewards; Dr. GRPO drops the division)
//   ratio       ρ_t = exp(log π_θ(y_t) − log π_old(y_t))
//   per token   ℓ_t = −min(ρ_t·A, clip(ρ_t, 1 − ε_low, 1 + ε_high)·A) + β·k3_t,
//               k3_t = exp(log π_ref − log π_θ) − (log π_ref − log π_θ) − 1   (Schulman's k3, on the tape)
//   aggregation L = Σ_{b,t} w_{b,t}·ℓ_{b,t} with
//               grpo:    w = 1/(B·|y_b|)        (mean over each completion's tokens, then over completions)
//               bnpo:    w = 1/Σ|y|              (token-level mean over the minibatch)
//               dr_grpo: w = 1/(B·L_max)         (constant length normalisation: no length bias)
//               dapo:    w = 1/N_tokens          (token level with one normaliser for the whole rollout batch)
//   DAPO's overlong shaping (eq. 13): 0 up to L_max − L_cache tokens, then a linear ramp to −1 at L_max, −1 beyond.
// Constants and the loss forms follow TRL's GRPOTrainer (trl/trainer/grpo_trainer.py, `_compute_loss` and
// `_generate_and_score_completions`: std + 1e-4, the three normalisers) and trl/rewards (get_soft_overlong_punishment).
// Shapes: B completions (G per prompt, consecutive), T response tokens, [B, T] row-major; mask 1 on real tokens.
using RlhfSharp.Tensors;

namespace RlhfSharp.Objectives;

/// <summary>How per-token losses become one number (TRL's loss_type).</summary>
public enum GrpoLossType
{
    /// <summary>Mean over each completion's tokens, then over completions (DeepSeekMath; biased toward short correct answers).</summary>
    Grpo,
    /// <summary>Token-level mean over the minibatch's tokens.</summary>
    Bnpo,
    /// <summary>Σ over tokens / (B · max completion length) (Dr. GRPO).</summary>
    DrGrpo,
    /// <summary>Token-level sum over a normaliser shared by the whole rollout batch (DAPO eq. 8).</summary>
    Dapo,
}

/// <summary>Group-normalised advantages and what TRL logs about them.</summary>
/// <param name="Advantages">A per completion, [B].</param>
/// <param name="GroupStd">The reward standard deviation of each completion's group (Bessel-corrected, as torch.std), [B / G].</param>
/// <param name="ZeroStdGroups">Groups whose rewards were all equal (no learning signal; DAPO's dynamic sampling drops them).</param>
public sealed record GroupAdvantages(float[] Advantages, double[] GroupStd, bool[] ZeroStdGroups)
{
    /// <summary>TRL's frac_reward_zero_std.</summary>
    public double ZeroStdFraction => ZeroStdGroups.Length == 0 ? 0 : ZeroStdGroups.Count(z => z) / (double)ZeroStdGroups.Length;
}

/// <summary>The GRPO loss and its diagnostics.</summary>
/// <param name="Loss">Rank-0 loss to minimise.</param>
/// <param name="Kl">Mean k3 over real tokens (TRL's `kl`); 0 when β = 0 and no reference was given.</param>
/// <param name="LowClipFraction">Share of real tokens with ρ &lt; 1 − ε_low and A &lt; 0 (`clip_ratio/low_mean`).</param>
/// <param name="HighClipFraction">Share of real tokens with ρ &gt; 1 + ε_high and A &gt; 0 (`clip_ratio/high_mean`).</param>
public sealed record GrpoLossResult(Tensor Loss, double Kl, double LowClipFraction, double HighClipFraction)
{
    /// <summary>TRL's `clip_ratio/region_mean`.</summary>
    public double ClipFraction => LowClipFraction + HighClipFraction;
}

public static class GrpoLoss
{
    /// <summary>The floor added to the group's std before dividing (TRL: `std_grouped_rewards + 1e-4`).</summary>
    public const double StdEpsilon = 1e-4;

    /// <summary>DeepSeekMath's KL coefficient β (Shao et al. 2024, §4.2 training setup).</summary>
    public const double DeepSeekMathBeta = 0.04;

    /// <summary>DAPO's clip-higher ε_high (Yu et al. 2025, §3.1; ε_low stays 0.2).</summary>
    public const float DapoEpsilonHigh = 0.28f;

    /// <summary>
    /// A_i = r_i − mean of its group of G, divided by (std of the group + 1e-4) when <paramref name="scaleRewards"/>.
    /// Completions of one prompt are G consecutive entries.
    /// </summary>
    public static GroupAdvantages Advantages(ReadOnlySpan<float> rewards, int groupSize, bool scaleRewards = true)
    {
        if (groupSize < 2) throw new ArgumentException($"GRPO advantages: group size G = {groupSize}; a group needs at least 2 completions.");
        if (rewards.Length == 0 || rewards.Length % groupSize != 0)
            throw new ArgumentException($"GRPO advantages: {rewards.Length} rewards are not a whole, non-zero number of groups of G = {groupSize}.");
        int groups = rewards.Length / groupSize;
        var adv = new float[rewards.Length];
        var std = new double[groups];
        var zero = new bool[groups];
        for (int g = 0; g < groups; g++)
        {
            int first = g * groupSize;
            double sum = 0;
            for (int i = 0; i < groupSize; i++) sum += rewards[first + i];
            double mean = sum / groupSize, sq = 0;
            bool allEqual = true;
            for (int i = 0; i < groupSize; i++)
            {
                double d = rewards[first + i] - mean;
                sq += d * d;
                allEqual &= rewards[first + i] == rewards[first];
            }
            std[g] = Math.Sqrt(sq / (groupSize - 1)); // Bessel, as torch.std
            zero[g] = allEqual;
            for (int i = 0; i < groupSize; i++)
            {
                double a = rewards[first + i] - mean;
                adv[first + i] = (float)(scaleRewards ? a / (std[g] + StdEpsilon) : a);
            }
        }
        return new GroupAdvantages(adv, std, zero);
    }

    /// <summary>
    /// DAPO's soft overlong punishment (eq. 13) for a completion of <paramref name="length"/> tokens: 0 when
    /// length ≤ L_max − L_cache, (L_max − L_cache − length)/L_cache up to L_max, −1 beyond.
    /// </summary>
    public static double OverlongPenalty(int length, int maxLength, int cache)
    {
        if (maxLength < 1 || cache < 0 || cache > maxLength)
            throw new ArgumentException($"overlong penalty: need 0 ≤ cache ({cache}) ≤ max length ({maxLength}) and max length ≥ 1.");
        int free = maxLength - cache;
        if (length <= free) return 0;
        if (length <= maxLength) return (free - length) / (double)cache;
        return -1;
    }

    /// <summary>
    /// The per-token weights w of the file header's aggregation, [B, T]: Σ w·ℓ is the loss.
    /// </summary>
    /// <param name="mask">1 on real tokens, [B, T].</param>
    /// <param name="maxCompletionLength">L_max (dr_grpo).</param>
    /// <param name="dapoTokens">The dapo normaliser: real tokens per minibatch over the whole rollout batch (≥ 1).</param>
    public static float[] Weights(ReadOnlySpan<float> mask, int B, int T, GrpoLossType type, int maxCompletionLength, double dapoTokens = 0)
    {
        if (mask.Length != B * T) throw new ArgumentException($"GRPO weights: mask has {mask.Length} entries for B·T = {B}·{T}.");
        var w = new float[B * T];
        double total = 0;
        for (int i = 0; i < mask.Length; i++) total += mask[i];
        for (int b = 0; b < B; b++)
        {
            double len = 0;
            for (int t = 0; t < T; t++) len += mask[b * T + t];
            double scale = type switch
            {
                GrpoLossType.Grpo => 1.0 / (B * Math.Max(1, len)),
                GrpoLossType.Bnpo => 1.0 / Math.Max(1, total),
                GrpoLossType.DrGrpo => 1.0 / (B * (double)maxCompletionLength),
                GrpoLossType.Dapo => 1.0 / Math.Max(1, dapoTokens),
                _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
            };
            for (int t = 0; t < T; t++) w[b * T + t] = (float)(mask[b * T + t] * scale);
        }
        return w;
    }

    /// <summary>
    /// L = Σ_{b,t} w_{b,t}·[ −min(ρA, clip(ρ, 1 − ε_low, 1 + ε_high)·A) + β·k3 ] (file header).
    /// </summary>
    /// <param name="logProbs">log π_θ of each response token, [B, T], on the tape.</param>
    /// <param name="oldLogProbs">log π_old from the rollout, [B, T] (a constant).</param>
    /// <param name="referenceLogProbs">log π_ref, [B, T]; may be null when β = 0.</param>
    /// <param name="advantages">A per completion, [B].</param>
    /// <param name="mask">1 on real tokens, [B, T].</param>
    /// <param name="weights">Aggregation weights from <see cref="Weights"/>, [B, T].</param>
    /// <param name="epsilonLow">ε_low (0.2).</param>
    /// <param name="epsilonHigh">ε_high (0.2; DAPO 0.28).</param>
    /// <param name="beta">β of the k3 term.</param>
    public static GrpoLossResult Compute(Tensor logProbs, ReadOnlySpan<float> oldLogProbs, ReadOnlySpan<float> referenceLogProbs, ReadOnlySpan<float> advantages,
        ReadOnlySpan<float> mask, ReadOnlySpan<float> weights, float epsilonLow, float epsilonHigh, float beta)
    {
        if (logProbs.Rank != 2) throw new ArgumentException($"GRPO loss: log-probabilities must be [B, T]; got {logProbs.ShapeString}.");
        int B = logProbs.Shape[0], T = logProbs.Shape[1], n = B * T;
        if (oldLogProbs.Length != n || mask.Length != n || weights.Length != n || advantages.Length != B || (!referenceLogProbs.IsEmpty && referenceLogProbs.Length != n))
            throw new ArgumentException($"GRPO loss: expected [B, T] = [{B}, {T}] old log-probs, mask, weights (and reference) and {B} advantages; got " +
                $"{oldLogProbs.Length}, {mask.Length}, {weights.Length}, {referenceLogProbs.Length} and {advantages.Length}.");
        if (!(epsilonLow > 0 && epsilonLow < 1 && epsilonHigh > 0)) throw new ArgumentException($"GRPO loss: ε_low {epsilonLow} must lie in (0, 1) and ε_high {epsilonHigh} be positive.");
        if (!(beta >= 0)) throw new ArgumentException($"GRPO loss: β = {beta} must be ≥ 0.");
        if (beta > 0 && referenceLogProbs.IsEmpty) throw new ArgumentException("GRPO loss: β > 0 needs the reference log-probabilities.");

        var advTokens = new float[n];
        for (int b = 0; b < B; b++) advTokens.AsSpan(b * T, T).Fill(advantages[b]);
        var adv = Tensor.FromArray(advTokens, B, T);
        var ratio = Ops.Exp(Ops.Sub(logProbs, Tensor.FromArray(oldLogProbs.ToArray(), B, T)));
        var unclipped = Ops.Neg(Ops.Mul(ratio, adv));
        var clipped = Ops.Neg(Ops.Mul(Ops.Clamp(ratio, 1f - epsilonLow, 1f + epsilonHigh), adv));
        var perToken = Ops.Maximum(unclipped, clipped); // −min(ρA, clip(ρ)A)
        Tensor? k3 = null;
        if (beta > 0)
        {
            // k3 = e^{d} − d − 1 with d = log π_ref − log π_θ; its gradient in log π_θ is 1 − e^{d}.
            var d = Ops.Sub(Tensor.FromArray(referenceLogProbs.ToArray(), B, T), logProbs);
            k3 = Ops.AddScalar(Ops.Sub(Ops.Exp(d), d), -1f);
            perToken = Ops.Add(perToken, Ops.MulScalar(k3, beta));
        }
        var loss = Ops.Sum(Ops.Mul(perToken, Tensor.FromArray(weights.ToArray(), B, T)));

        double count = 0, low = 0, high = 0, kl = 0;
        var r = ratio.Span;
        for (int i = 0; i < n; i++)
        {
            if (mask[i] == 0) continue;
            count++;
            float a = advTokens[i];
            if (r[i] < 1f - epsilonLow && a < 0) low++;
            if (r[i] > 1f + epsilonHigh && a > 0) high++;
            if (k3 is not null) kl += k3.Span[i];
            else if (!referenceLogProbs.IsEmpty) kl += KlEstimators.K3(logProbs.Span[i], referenceLogProbs[i]);
        }
        return count > 0 ? new GrpoLossResult(loss, kl / count, low / count, high / count) : new GrpoLossResult(loss, 0, 0, 0);
    }
}
