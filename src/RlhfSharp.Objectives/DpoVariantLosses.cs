// The family that grew around DPO (DpoLoss holds DPO and cDPO), each as one equation over per-sequence log-probabilities.
// With s = Σ_t log π(y_t|x) summed over a response's tokens, |y| its token count and s̄ = s/|y| the average:
//   IPO   (Azar et al. 2023):  h = (s̄_w − s̄_l) − (s̄ʳᵉᶠ_w − s̄ʳᵉᶠ_l),  L = mean (h − 1/(2β))²
//   SimPO (Meng et al. 2024):  L = mean −log σ(β·(s̄_w − s̄_l) − γ)                    (no reference model)
//   ORPO  (Hong et al. 2024):  log odds(y) = s̄ − log(1 − e^{s̄}),
//                              L = NLL(y_w) − λ·mean log σ(log odds(y_w) − log odds(y_l)), NLL = −Σ s_w / Σ |y_w|
//   KTO   (Ethayarajh et al. 2024), unpaired: z = max(0, mean(s_KL − sʳᵉᶠ_KL)) over mismatched (x, y') pairs, held constant,
//                              desirable:   λ_D·(1 − σ(β·((s − sʳᵉᶠ) − z)))
//                              undesirable: λ_U·(1 − σ(β·(z − (s − sʳᵉᶠ))))      L = mean over all examples
// The forms, the averaging (IPO, SimPO and ORPO use per-token averages, KTO and DPO sums) and the defaults follow TRL:
// dpo_trainer.py (loss_type "ipo": `(logits - 1/(2*beta))**2` on averaged log-probs), cpo_trainer.py (loss_type "simpo":
// `logits - simpo_gamma/beta` inside `-logsigmoid(beta*…)`), orpo_trainer.py (`odds_ratio_loss`, log1p(−exp)),
// kto_trainer.py (`kto_loss`: KL clamped at 0, desirable/undesirable weights, mean over the concatenated losses).
// Shapes: [B] per pair (or per example for KTO).
using RlhfSharp.Tensors;

namespace RlhfSharp.Objectives;

/// <summary>The KTO loss and its implicit rewards.</summary>
/// <param name="Loss">Rank-0 loss to minimise.</param>
/// <param name="Rewards">β·(s − sʳᵉᶠ) per example.</param>
/// <param name="Kl">The reference point z (clamped at 0).</param>
public sealed record KtoLossResult(Tensor Loss, float[] Rewards, double Kl);

public static class DpoVariantLosses
{
    /// <summary>TRL CPOConfig's default SimPO margin γ (simpo_gamma = 0.5).</summary>
    public const float SimPoDefaultGamma = 0.5f;

    /// <summary>IPO: mean (h − 1/(2β))² with h on per-token averages (file header).</summary>
    /// <param name="policyChosen">Σ log π(y_w|x), [B], on the tape.</param>
    /// <param name="policyRejected">Σ log π(y_l|x), [B], on the tape.</param>
    /// <param name="referenceChosen">Σ log π_ref(y_w|x).</param>
    /// <param name="referenceRejected">Σ log π_ref(y_l|x).</param>
    /// <param name="chosenLengths">|y_w| per pair.</param>
    /// <param name="rejectedLengths">|y_l| per pair.</param>
    public static DpoLossResult Ipo(Tensor policyChosen, Tensor policyRejected, ReadOnlySpan<float> referenceChosen, ReadOnlySpan<float> referenceRejected,
        ReadOnlySpan<int> chosenLengths, ReadOnlySpan<int> rejectedLengths, float beta)
    {
        int B = Check("IPO", policyChosen, policyRejected, chosenLengths, rejectedLengths, beta);
        if (referenceChosen.Length != B || referenceRejected.Length != B) throw new ArgumentException($"IPO loss: {referenceChosen.Length}/{referenceRejected.Length} reference log-probs for {B} pairs.");
        var (invW, invL) = (Inverse(chosenLengths), Inverse(rejectedLengths));
        var refDiff = new float[B];
        for (int b = 0; b < B; b++) refDiff[b] = referenceChosen[b] * invW.Span[b] - referenceRejected[b] * invL.Span[b];
        var h = Ops.Sub(Ops.Sub(Ops.Mul(policyChosen, invW), Ops.Mul(policyRejected, invL)), Tensor.Wrap(refDiff, B));
        var loss = Ops.Mean(Ops.Square(Ops.AddScalar(h, -1f / (2f * beta))));
        return new DpoLossResult(loss, ImplicitRewards(policyChosen, referenceChosen, beta), ImplicitRewards(policyRejected, referenceRejected, beta));
    }

    /// <summary>SimPO: mean −log σ(β·(s̄_w − s̄_l) − γ); reference-free. Rewards are β·s̄ (the paper's implicit reward).</summary>
    public static DpoLossResult SimPo(Tensor policyChosen, Tensor policyRejected, ReadOnlySpan<int> chosenLengths, ReadOnlySpan<int> rejectedLengths, float beta, float gamma)
    {
        int B = Check("SimPO", policyChosen, policyRejected, chosenLengths, rejectedLengths, beta);
        if (!float.IsFinite(gamma)) throw new ArgumentException($"SimPO loss: γ = {gamma} is not finite.");
        var avgW = Ops.Mul(policyChosen, Inverse(chosenLengths));
        var avgL = Ops.Mul(policyRejected, Inverse(rejectedLengths));
        var loss = Ops.Neg(Ops.Mean(Ops.LogSigmoid(Ops.AddScalar(Ops.MulScalar(Ops.Sub(avgW, avgL), beta), -gamma))));
        return new DpoLossResult(loss, Scaled(avgW, beta), Scaled(avgL, beta));
    }

    /// <summary>
    /// ORPO: NLL(y_w) − λ·mean log σ(log odds_w − log odds_l) (file header). Rewards are λ·s̄ as TRL logs them.
    /// </summary>
    /// <param name="lambda">λ, the odds-ratio weight (TRL ORPOConfig beta: 0.1).</param>
    /// <param name="batch">
    /// For a slice of a larger batch (data parallelism): that batch's pair count and chosen-token count, which replace
    /// this slice's own as the divisors, so the slices' losses add up to the whole batch's.
    /// </param>
    public static DpoLossResult Orpo(Tensor policyChosen, Tensor policyRejected, ReadOnlySpan<int> chosenLengths, ReadOnlySpan<int> rejectedLengths, float lambda,
        (int Pairs, long ChosenTokens)? batch = null)
    {
        int B = Check("ORPO", policyChosen, policyRejected, chosenLengths, rejectedLengths, lambda);
        var avgW = Ops.Mul(policyChosen, Inverse(chosenLengths));
        var avgL = Ops.Mul(policyRejected, Inverse(rejectedLengths));
        // log odds = s̄ − log(1 − e^{s̄}); s̄ < 0 for any real response, so 1 − e^{s̄} > 0.
        Tensor LogOdds(Tensor avg) => Ops.Sub(avg, Ops.Log(Ops.AddScalar(Ops.Neg(Ops.Exp(avg)), 1f)));
        var ratio = Ops.LogSigmoid(Ops.Sub(LogOdds(avgW), LogOdds(avgL)));
        long tokens = 0;
        foreach (int n in chosenLengths) tokens += n;
        if (batch is { } whole) tokens = whole.ChosenTokens;
        var nll = Ops.MulScalar(Ops.Sum(policyChosen), -1f / tokens);
        var meanRatio = batch is { } b ? Ops.MulScalar(Ops.Sum(ratio), 1f / b.Pairs) : Ops.Mean(ratio);
        var loss = Ops.Sub(nll, Ops.MulScalar(meanRatio, lambda));
        return new DpoLossResult(loss, Scaled(avgW, lambda), Scaled(avgL, lambda));
    }

    /// <summary>
    /// KTO over unpaired examples (file header).
    /// </summary>
    /// <param name="policy">Σ log π(y|x) per example, [B], on the tape.</param>
    /// <param name="reference">Σ log π_ref(y|x).</param>
    /// <param name="desirable">The example's label: true desirable, false undesirable.</param>
    /// <param name="policyKl">Σ log π(y'|x) of mismatched pairs (constants: TRL computes them without gradient).</param>
    /// <param name="referenceKl">Σ log π_ref(y'|x) of the same pairs.</param>
    /// <param name="desirableWeight">λ_D (TRL: 1.0).</param>
    /// <param name="undesirableWeight">λ_U (TRL: 1.0).</param>
    public static KtoLossResult Kto(Tensor policy, ReadOnlySpan<float> reference, ReadOnlySpan<bool> desirable, ReadOnlySpan<float> policyKl, ReadOnlySpan<float> referenceKl,
        float beta, float desirableWeight = 1f, float undesirableWeight = 1f)
    {
        int B = policy.Length;
        if (policy.Rank != 1 || reference.Length != B || desirable.Length != B)
            throw new ArgumentException($"KTO loss: policy log-probs must be [B]; got {policy.ShapeString} with {reference.Length} reference values and {desirable.Length} labels.");
        if (policyKl.Length != referenceKl.Length || policyKl.Length == 0)
            throw new ArgumentException($"KTO loss: {policyKl.Length} policy and {referenceKl.Length} reference log-probs for the KL pairs; need the same non-zero count.");
        if (!(beta > 0)) throw new ArgumentException($"KTO loss: β = {beta} must be positive.");
        if (!(desirableWeight >= 0 && undesirableWeight >= 0)) throw new ArgumentException($"KTO loss: weights {desirableWeight}, {undesirableWeight} must be ≥ 0.");
        double z = 0;
        for (int i = 0; i < policyKl.Length; i++) z += policyKl[i] - referenceKl[i];
        z = Math.Max(0, z / policyKl.Length);
        // x_b = β·(s − sʳᵉᶠ − z) for desirable, β·(z − s + sʳᵉᶠ) for undesirable: sign·β·(s − sʳᵉᶠ) + offset.
        var sign = new float[B];
        var offset = new float[B];
        var weight = new float[B];
        for (int b = 0; b < B; b++)
        {
            float sg = desirable[b] ? 1f : -1f;
            sign[b] = sg * beta;
            offset[b] = (float)(-sg * beta * (reference[b] + z));
            weight[b] = desirable[b] ? desirableWeight : undesirableWeight;
        }
        var x = Ops.Add(Ops.Mul(policy, Tensor.Wrap(sign, B)), Tensor.Wrap(offset, B));
        var losses = Ops.Mul(Ops.AddScalar(Ops.Neg(Ops.Sigmoid(x)), 1f), Tensor.Wrap(weight, B));
        return new KtoLossResult(Ops.Mean(losses), ImplicitRewards(policy, reference, beta), z);
    }

    private static int Check(string op, Tensor chosen, Tensor rejected, ReadOnlySpan<int> chosenLengths, ReadOnlySpan<int> rejectedLengths, float beta)
    {
        int B = chosen.Length;
        if (chosen.Rank != 1 || rejected.Rank != 1 || rejected.Length != B || chosenLengths.Length != B || rejectedLengths.Length != B)
            throw new ArgumentException($"{op} loss: inputs must all be [B]; got policy {chosen.ShapeString}/{rejected.ShapeString}, lengths {chosenLengths.Length}/{rejectedLengths.Length}.");
        foreach (int n in chosenLengths) if (n < 1) throw new ArgumentException($"{op} loss: a chosen response has {n} tokens; each needs at least 1.");
        foreach (int n in rejectedLengths) if (n < 1) throw new ArgumentException($"{op} loss: a rejected response has {n} tokens; each needs at least 1.");
        if (!(beta > 0)) throw new ArgumentException($"{op} loss: β = {beta} must be positive.");
        return B;
    }

    private static Tensor Inverse(ReadOnlySpan<int> lengths)
    {
        var inv = new float[lengths.Length];
        for (int i = 0; i < inv.Length; i++) inv[i] = 1f / lengths[i];
        return Tensor.Wrap(inv, inv.Length);
    }

    private static float[] ImplicitRewards(Tensor policy, ReadOnlySpan<float> reference, float beta)
    {
        var r = new float[policy.Length];
        for (int b = 0; b < r.Length; b++) r[b] = beta * (policy.Span[b] - reference[b]);
        return r;
    }

    private static float[] Scaled(Tensor x, float s)
    {
        var r = new float[x.Length];
        for (int b = 0; b < r.Length; b++) r[b] = s * x.Span[b];
        return r;
    }
}
