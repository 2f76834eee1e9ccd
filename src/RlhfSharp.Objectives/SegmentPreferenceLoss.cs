// Christiano et al. 2017 (§2.2.3): the preference predictor over two trajectory segments σ¹, σ² is Bradley–Terry on the
// sums of predicted rewards, P̂[σ¹ ≻ σ²] = σ(Σ r̂(σ¹) − Σ r̂(σ²)), blended with a chance ρ (10% in the paper) that the human
// answered uniformly at random: P = (1 − ρ)·P̂ + ρ/2. The loss is the cross-entropy with the label μ (1, 0, or ½ for a tie).
using RlhfSharp.Tensors;

namespace RlhfSharp.Objectives;

public static class SegmentPreferenceLoss
{
    /// <summary>The random-answer probability Christiano et al. assume (§2.2.3: "a 10% chance that the human responds uniformly at random").</summary>
    public const double PaperRandomRate = 0.1;

    /// <summary>
    /// loss = mean_b −[ μ_b·log P_b + (1 − μ_b)·log(1 − P_b) ] with P_b = (1 − ρ)·σ(S¹_b − S²_b) + ρ/2.
    /// </summary>
    /// <param name="firstSums">Σ r̂ over the first segment of each pair, [B].</param>
    /// <param name="secondSums">Σ r̂ over the second segment, [B].</param>
    /// <param name="preferFirst">μ per pair in [0, 1]: 1 first preferred, 0 second, ½ a tie.</param>
    /// <param name="randomRate">ρ in [0, 1): the assumed share of uniformly random answers.</param>
    public static Tensor Loss(Tensor firstSums, Tensor secondSums, ReadOnlySpan<float> preferFirst, double randomRate = PaperRandomRate)
    {
        if (firstSums.Rank != 1 || secondSums.Rank != 1 || firstSums.Length != secondSums.Length)
            throw new ArgumentException($"segment preference loss: sums must both be [B]; got {firstSums.ShapeString} and {secondSums.ShapeString}.");
        int B = firstSums.Length;
        if (preferFirst.Length != B) throw new ArgumentException($"segment preference loss: {preferFirst.Length} labels μ for {B} pairs.");
        if (!(randomRate >= 0 && randomRate < 1)) throw new ArgumentOutOfRangeException(nameof(randomRate), randomRate, "segment preference loss: randomRate must lie in [0, 1).");
        var mu = new float[B];
        var rest = new float[B];
        for (int b = 0; b < B; b++)
        {
            if (!(preferFirst[b] >= 0 && preferFirst[b] <= 1)) throw new ArgumentException($"segment preference loss: label μ[{b}] = {preferFirst[b]} is outside [0, 1].");
            mu[b] = preferFirst[b];
            rest[b] = 1f - preferFirst[b];
        }
        var d = Ops.Sub(firstSums, secondSums);
        float keep = (float)(1 - randomRate), floor = (float)(randomRate / 2);
        // P(first) and P(second) = (1 − ρ)·σ(±d) + ρ/2; using σ(−d) for the second keeps both accurate when |d| is large.
        var pFirst = Ops.AddScalar(Ops.MulScalar(Ops.Sigmoid(d), keep), floor);
        var pSecond = Ops.AddScalar(Ops.MulScalar(Ops.Sigmoid(Ops.Neg(d)), keep), floor);
        var loss = Ops.Neg(Ops.Add(Ops.Mul(Tensor.Wrap(mu, B), Ops.Log(pFirst)), Ops.Mul(Tensor.Wrap(rest, B), Ops.Log(pSecond))));
        return Ops.Mean(loss);
    }

    /// <summary>The same P(first preferred) as a number, for accuracy and disagreement without a graph.</summary>
    public static double ProbabilityFirst(double firstSum, double secondSum, double randomRate = PaperRandomRate) =>
        (1 - randomRate) / (1 + Math.Exp(-(firstSum - secondSum))) + randomRate / 2;
}
