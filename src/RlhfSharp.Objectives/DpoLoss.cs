// Direct preference optimisation (Rafailov et al. 2023, eq. 7): the Bradley–Terry loss on implicit rewards
// β·log(π/π_ref), so a policy is fitted to preferences without a reward model or sampling.
using RlhfSharp.Tensors;

namespace RlhfSharp.Objectives;

/// <summary>The DPO loss and its implicit rewards.</summary>
/// <param name="Loss">Rank-0 loss to minimise.</param>
/// <param name="ChosenRewards">β·(log π(y_w) − log π_ref(y_w)) per pair (`rewards/chosen`).</param>
/// <param name="RejectedRewards">β·(log π(y_l) − log π_ref(y_l)) per pair (`rewards/rejected`).</param>
public sealed record DpoLossResult(Tensor Loss, float[] ChosenRewards, float[] RejectedRewards)
{
    /// <summary>Share of pairs whose implicit reward ranks the chosen answer first (`rewards/accuracies`).</summary>
    public double Accuracy => ChosenRewards.Length == 0 ? 0 : ChosenRewards.Zip(RejectedRewards).Count(p => p.First > p.Second) / (double)ChosenRewards.Length;
}

public static class DpoLoss
{
    /// <summary>
    /// h = (log π(y_w) − log π_ref(y_w)) − (log π(y_l) − log π_ref(y_l)) per pair;
    /// loss = mean −[(1 − ε)·log σ(β·h) + ε·log σ(−β·h)], ε the label smoothing (cDPO; 0 is plain DPO).
    /// Log-probabilities are summed over each response's tokens.
    /// </summary>
    /// <param name="policyChosen">log π(y_w|x), [B], on the tape.</param>
    /// <param name="policyRejected">log π(y_l|x), [B], on the tape.</param>
    /// <param name="referenceChosen">log π_ref(y_w|x), computed once before training.</param>
    /// <param name="referenceRejected">log π_ref(y_l|x).</param>
    public static DpoLossResult Compute(Tensor policyChosen, Tensor policyRejected, ReadOnlySpan<float> referenceChosen, ReadOnlySpan<float> referenceRejected, float beta, float labelSmoothing = 0)
    {
        int B = policyChosen.Length;
        if (policyChosen.Rank != 1 || policyRejected.Rank != 1 || policyRejected.Length != B || referenceChosen.Length != B || referenceRejected.Length != B)
            throw new ArgumentException($"DPO loss: inputs must all be [B]; got policy {policyChosen.ShapeString}/{policyRejected.ShapeString}, reference {referenceChosen.Length}/{referenceRejected.Length}.");
        if (!(beta > 0)) throw new ArgumentException($"DPO loss: β = {beta} must be positive.");
        if (!(labelSmoothing >= 0 && labelSmoothing < 0.5)) throw new ArgumentException($"DPO loss: label smoothing {labelSmoothing} must lie in [0, 0.5).");
        var refDiff = new float[B];
        for (int b = 0; b < B; b++) refDiff[b] = referenceChosen[b] - referenceRejected[b];
        var h = Ops.Sub(Ops.Sub(policyChosen, policyRejected), Tensor.Wrap(refDiff, B));
        var scaled = Ops.MulScalar(h, beta);
        var loss = Ops.MulScalar(Ops.Mean(Ops.LogSigmoid(scaled)), -(1f - labelSmoothing));
        if (labelSmoothing > 0)
            loss = Ops.Sub(loss, Ops.MulScalar(Ops.Mean(Ops.LogSigmoid(Ops.Neg(scaled))), labelSmoothing));
        var chosen = new float[B];
        var rejected = new float[B];
        for (int b = 0; b < B; b++)
        {
            chosen[b] = beta * (policyChosen.Span[b] - referenceChosen[b]);
            rejected[b] = beta * (policyRejected.Span[b] - referenceRejected[b]);
        }
        return new DpoLossResult(loss, chosen, rejected);
    }
}
