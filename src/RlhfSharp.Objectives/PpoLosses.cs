// PPO's losses as autograd tensors, for both wings (Schulman et al. 2017): the clipped surrogate (eq. 7), the KL-penalty
// surrogate (eq. 8) and the clipped value loss of OpenAI's baselines. Every mean is over the entries whose mask is 1: real
// response tokens for a language model (TRL's PPO trainer), all samples of a minibatch for a control task (a mask of
// ones, CleanRL's ppo.py). Shapes: any one shape shared by all inputs, [B, T] tokens or [B] samples.
// The entropy bonus and the plain value loss are in PolicyGradientLosses; a trainer adds the terms as eq. 9 does:
//   L = L_policy + c_v·L_value − c_e·H.
using RlhfSharp.Tensors;

namespace RlhfSharp.Objectives;

/// <summary>The clipped policy loss and what TRL and CleanRL log about it (each wing logs its own pair).</summary>
/// <param name="Loss">Rank-0 loss to minimise.</param>
/// <param name="ClipFraction">Share of real entries where the clipped term was the one used (TRL's `policy/clipfrac`).</param>
/// <param name="ApproxKl">Mean k2 = ½·(log π − log π_old)² over real entries (TRL's `policy/approxkl`).</param>
/// <param name="RatioClipFraction">Share of real entries with |ρ − 1| &gt; ε (CleanRL's `losses/clipfrac`).</param>
/// <param name="ApproxKlK3">Mean k3 = (ρ − 1) − log ρ over real entries (CleanRL's `losses/approx_kl`).</param>
public sealed record PolicyLossResult(Tensor Loss, double ClipFraction, double ApproxKl, double RatioClipFraction, double ApproxKlK3);

/// <summary>The KL-penalty policy loss and the mean exact KL the β controller sees.</summary>
/// <param name="Loss">Rank-0 loss to minimise.</param>
/// <param name="Kl">Mean KL[π_old(·|s), π(·|s)] over real entries.</param>
public sealed record KlPenaltyLossResult(Tensor Loss, double Kl);

/// <summary>The clipped value loss and how often clipping bit.</summary>
/// <param name="Loss">Rank-0 loss to minimise.</param>
/// <param name="ClipFraction">Share of real entries where the clipped value's error was the larger (`val/clipfrac`).</param>
public sealed record ValueLossResult(Tensor Loss, double ClipFraction);

public static class PpoLosses
{
    /// <summary>
    /// L = mean over real entries of max(−A·ρ, −A·clip(ρ, 1 − ε, 1 + ε)), with ρ = exp(log π − log π_old): the negative of
    /// PPO's clipped surrogate min(ρA, clip(ρ)A).
    /// </summary>
    /// <param name="logProbs">log π(a|s) under the current policy, on the tape.</param>
    /// <param name="oldLogProbs">log π_old(a|s) from the rollout (a constant).</param>
    /// <param name="advantages">A (a constant).</param>
    /// <param name="mask">1 on real entries, 0 on padding.</param>
    /// <param name="clipRange">ε (PPO: 0.2).</param>
    public static PolicyLossResult ClippedPolicy(Tensor logProbs, Tensor oldLogProbs, Tensor advantages, Tensor mask, float clipRange)
    {
        Same("PPO policy loss", logProbs, oldLogProbs, advantages, mask);
        if (!(clipRange > 0)) throw new ArgumentException($"PPO policy loss: clip range {clipRange} must be positive.");
        var logRatio = Ops.Sub(logProbs, oldLogProbs.Detach());
        var ratio = Ops.Exp(logRatio);
        var adv = advantages.Detach();
        var unclipped = Ops.Neg(Ops.Mul(adv, ratio));
        var clipped = Ops.Neg(Ops.Mul(adv, Ops.Clamp(ratio, 1f - clipRange, 1f + clipRange)));
        var loss = Ops.MaskedMean(Ops.Maximum(unclipped, clipped), mask);

        double clippedCount = 0, outside = 0, k2 = 0, k3 = 0, count = 0;
        var u = unclipped.Span; var c = clipped.Span; var m = mask.Span; var lr = logRatio.Span; var r = ratio.Span;
        for (int i = 0; i < m.Length; i++)
        {
            if (m[i] == 0) continue;
            count += m[i];
            if (c[i] > u[i]) clippedCount += m[i];
            if (Math.Abs(r[i] - 1f) > clipRange) outside += m[i];
            k2 += m[i] * KlEstimators.K2(lr[i]);
            k3 += m[i] * KlEstimators.K3(lr[i]);
        }
        return count > 0
            ? new PolicyLossResult(loss, clippedCount / count, k2 / count, outside / count, k3 / count)
            : new PolicyLossResult(loss, 0, 0, 0, 0);
    }

    /// <summary>
    /// PPO's KL-penalty surrogate (eq. 8), L = −mean(ρ·A) + β·mean(KL[π_old(·|s), π(·|s)]) over real entries, with the KL
    /// taken exactly per state (over all actions) and passed in on the tape. Not the sampled mean(log π_old(a) − log π(a)):
    /// on a fixed batch that estimate is smallest where π imitates the batch's own actions, not at π_old, so a large β
    /// pushes the policy away and a halving/doubling β controller runs away (control CartPole, d_targ = 0.003: β → 1e16).
    /// </summary>
    /// <param name="logProbs">log π(a|s), on the tape.</param>
    /// <param name="oldLogProbs">log π_old(a|s) (a constant).</param>
    /// <param name="advantages">A (a constant).</param>
    /// <param name="kl">KL[π_old(·|s), π(·|s)] per entry, on the tape.</param>
    /// <param name="mask">1 on real entries.</param>
    /// <param name="beta">β.</param>
    public static KlPenaltyLossResult KlPenalty(Tensor logProbs, Tensor oldLogProbs, Tensor advantages, Tensor kl, Tensor mask, float beta)
    {
        Same("PPO KL-penalty loss", logProbs, oldLogProbs, advantages, kl, mask);
        if (!(beta >= 0)) throw new ArgumentException($"PPO KL-penalty loss: β = {beta} must be ≥ 0.");
        var ratio = Ops.Exp(Ops.Sub(logProbs, oldLogProbs.Detach()));
        var surrogate = Ops.MaskedMean(Ops.Mul(ratio, advantages.Detach()), mask);
        var meanKl = Ops.MaskedMean(kl, mask);
        return new KlPenaltyLossResult(Ops.Sub(Ops.MulScalar(meanKl, beta), surrogate), meanKl.Item());
    }

    /// <summary>
    /// L = ½ · mean over real entries of max((V − R)², (V_clip − R)²), V_clip = V_old + clip(V − V_old, −ε, ε): the value
    /// may not move more than ε from the rollout's estimate and be rewarded for it (baselines' PPO2, TRL's cliprange_value,
    /// CleanRL's clip_vloss). PolicyGradientLosses.ValueLoss is the unclipped ½·mean (V − R)².
    /// </summary>
    /// <param name="values">V under the current value model, on the tape.</param>
    /// <param name="oldValues">V_old from the rollout.</param>
    /// <param name="returns">Targets R = A + V_old.</param>
    /// <param name="mask">1 on real entries.</param>
    /// <param name="clipRange">ε for the value (TRL and CleanRL: 0.2).</param>
    public static ValueLossResult ClippedValue(Tensor values, Tensor oldValues, Tensor returns, Tensor mask, float clipRange)
    {
        Same("PPO value loss", values, oldValues, returns, mask);
        if (!(clipRange > 0)) throw new ArgumentException($"PPO value loss: clip range {clipRange} must be positive.");
        var old = oldValues.Detach();
        var ret = returns.Detach();
        var clippedValues = Ops.Add(old, Ops.Clamp(Ops.Sub(values, old), -clipRange, clipRange));
        var a = Ops.Square(Ops.Sub(values, ret));
        var b = Ops.Square(Ops.Sub(clippedValues, ret));
        var loss = Ops.MulScalar(Ops.MaskedMean(Ops.Maximum(a, b), mask), 0.5f);
        double clippedCount = 0, count = 0;
        var av = a.Span; var bv = b.Span; var m = mask.Span;
        for (int i = 0; i < m.Length; i++)
        {
            if (m[i] == 0) continue;
            count += m[i];
            if (bv[i] > av[i]) clippedCount += m[i];
        }
        return new ValueLossResult(loss, count > 0 ? clippedCount / count : 0);
    }

    internal static void Same(string op, params Tensor[] tensors)
    {
        foreach (var t in tensors)
            if (!t.Shape.SequenceEqual(tensors[0].Shape))
                throw new ArgumentException($"{op}: all inputs must share one shape; got {string.Join(", ", tensors.Select(x => x.ShapeString))}.");
    }
}
