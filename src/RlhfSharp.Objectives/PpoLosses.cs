// PPO's two clipped losses over masked tokens (Schulman et al. 2017, eq. 7 and the value clipping of OpenAI's
// baselines), as TRL's PPO trainer computes them for language models. Shapes: B sequences, T response tokens; the
// mask is 1 on real response tokens and 0 on padding, so every mean below is over real tokens only.
using RlhfSharp.Tensors;

namespace RlhfSharp.Objectives;

/// <summary>The clipped policy loss and what PPO logs about it.</summary>
/// <param name="Loss">Rank-0 loss to minimise.</param>
/// <param name="ClipFraction">Share of real tokens where the clipped term was the one used (`policy/clipfrac`).</param>
/// <param name="ApproxKl">½·mean (log π − log π_old)² over real tokens (`policy/approx_kl`, TRL's estimator).</param>
public sealed record PolicyLossResult(Tensor Loss, double ClipFraction, double ApproxKl);

/// <summary>The clipped value loss and how often clipping bit.</summary>
/// <param name="Loss">Rank-0 loss to minimise.</param>
/// <param name="ClipFraction">Share of real tokens where the clipped value's error was the larger (`val/clipfrac`).</param>
public sealed record ValueLossResult(Tensor Loss, double ClipFraction);

public static class PpoLosses
{
    /// <summary>
    /// L = mean over real tokens of max(−A·ρ, −A·clip(ρ, 1 − ε, 1 + ε)), with ρ = exp(log π − log π_old): the negative of
    /// PPO's clipped surrogate min(ρA, clip(ρ)A).
    /// </summary>
    /// <param name="logProbs">log π(token) under the current policy, [B, T], on the tape.</param>
    /// <param name="oldLogProbs">log π_old(token) from the rollout, [B, T] (a constant).</param>
    /// <param name="advantages">A per token, [B, T] (a constant).</param>
    /// <param name="mask">1 on real response tokens, 0 on padding, [B, T].</param>
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

        double clippedCount = 0, kl = 0, count = 0;
        var u = unclipped.Span; var c = clipped.Span; var m = mask.Span; var lr = logRatio.Span;
        for (int i = 0; i < m.Length; i++)
        {
            if (m[i] == 0) continue;
            count += m[i];
            if (c[i] > u[i]) clippedCount += m[i];
            kl += m[i] * 0.5 * lr[i] * lr[i];
        }
        return new PolicyLossResult(loss, count > 0 ? clippedCount / count : 0, count > 0 ? kl / count : 0);
    }

    /// <summary>
    /// L = ½ · mean over real tokens of max((V − R)², (V_clip − R)²), V_clip = V_old + clip(V − V_old, −ε, ε): the value
    /// may not move more than ε from the rollout's estimate and be rewarded for it (baselines' PPO2, TRL's cliprange_value).
    /// </summary>
    /// <param name="values">V per token under the current value model, [B, T], on the tape.</param>
    /// <param name="oldValues">V_old from the rollout, [B, T].</param>
    /// <param name="returns">Targets R = A + V_old, [B, T].</param>
    /// <param name="mask">1 on real response tokens, [B, T].</param>
    /// <param name="clipRange">ε for the value (TRL: 0.2).</param>
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

    private static void Same(string op, params Tensor[] tensors)
    {
        foreach (var t in tensors)
            if (!t.Shape.SequenceEqual(tensors[0].Shape))
                throw new ArgumentException($"{op}: all inputs must share one shape; got {string.Join(", ", tensors.Select(x => x.ShapeString))}.");
    }
}
