// The policy-gradient terms every on-policy trainer shares, as autograd tensors: REINFORCE with a baseline (Williams 1992;
// the lecture's ∇J = E[R·∇log p_θ] with R replaced by R − b), the entropy bonus, and the squared-error value (baseline)
// loss. Every mean is over the entries whose mask is 1 (real tokens, or a mask of ones for control samples).
using RlhfSharp.Tensors;

namespace RlhfSharp.Objectives;

/// <summary>An entropy bonus as a loss term and the mean entropy it was made from.</summary>
/// <param name="Loss">−c_e·mean H, rank 0: adding it to a loss rewards spread-out policies.</param>
/// <param name="Entropy">mean H over real entries (`losses/entropy`, `policy/entropy`).</param>
public sealed record EntropyBonusResult(Tensor Loss, double Entropy);

public static class PolicyGradientLosses
{
    /// <summary>
    /// REINFORCE with a baseline: L = −mean(A·log π(a|s)) over real entries, A = G − b(s) held constant, so
    /// ∇L = −mean(A·∇log π).
    /// </summary>
    /// <param name="logProbs">log π(a|s), on the tape.</param>
    /// <param name="advantages">A = G − b (a constant).</param>
    /// <param name="mask">1 on real entries.</param>
    public static Tensor Reinforce(Tensor logProbs, Tensor advantages, Tensor mask)
    {
        PpoLosses.Same("REINFORCE loss", logProbs, advantages, mask);
        return Ops.Neg(Ops.MaskedMean(Ops.Mul(advantages.Detach(), logProbs), mask));
    }

    /// <summary>The entropy bonus c_e·H[π] of PPO's eq. 9 as a term to minimise: −c_e·mean H over real entries.</summary>
    /// <param name="entropy">H(π(·|s)) per entry, on the tape.</param>
    /// <param name="mask">1 on real entries.</param>
    /// <param name="coef">c_e (CleanRL: 0.01).</param>
    public static EntropyBonusResult EntropyBonus(Tensor entropy, Tensor mask, float coef)
    {
        PpoLosses.Same("entropy bonus", entropy, mask);
        var mean = Ops.MaskedMean(entropy, mask);
        return new EntropyBonusResult(Ops.MulScalar(mean, -coef), mean.Item());
    }

    /// <summary>The value (baseline) regression loss L = ½·mean (V − R)² over real entries.</summary>
    /// <param name="values">V, on the tape.</param>
    /// <param name="returns">Targets R (a constant).</param>
    /// <param name="mask">1 on real entries.</param>
    public static Tensor ValueLoss(Tensor values, Tensor returns, Tensor mask)
    {
        PpoLosses.Same("value loss", values, returns, mask);
        return Ops.MulScalar(Ops.MaskedMean(Ops.Square(Ops.Sub(values, returns.Detach())), mask), 0.5f);
    }
}
