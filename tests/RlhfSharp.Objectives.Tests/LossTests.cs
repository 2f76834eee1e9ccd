// Each loss of Objectives against a hand computation on a tiny batch, plus the gradient the trainers rely on.
using RlhfSharp.Tensors;

namespace RlhfSharp.Objectives.Tests;

public sealed class LossTests
{
    private static double LogSigmoid(double x) => -Math.Log(1 + Math.Exp(-x));

    private static Tensor Leaf(params float[] v)
    {
        var t = Tensor.FromArray(v, v.Length);
        t.RequiresGrad = true;
        return t;
    }

    [Fact]
    public void BradleyTerryEqualsHandValueAndItsGradient()
    {
        // Given r_w = [1, 0.5], r_l = [0, 1]: loss = (−log σ(1) − log σ(−0.5)) / 2 = (0.3132617 + 0.9740770) / 2.
        var w = Leaf(1f, 0.5f);
        var l = Leaf(0f, 1f);
        var loss = PreferenceLosses.Pairwise(w, l);
        Assert.Equal(0.6436693, loss.Item(), 5);
        loss.Backward();
        // d/dr_w of −log σ(d)/2 = −σ(−d)/2.
        Assert.Equal(-0.5 * (1 - 1 / (1 + Math.Exp(-1.0))), w.Grad!.Span[0], 5);
        Assert.Equal(0.5 * (1 - 1 / (1 + Math.Exp(0.5))), l.Grad!.Span[1], 5);
    }

    [Fact]
    public void MarginAndTiesFollowTheirFormulas()
    {
        // Pair 0 chosen with margin 0.5; pair 1 a tie (μ = ½); pair 2 second preferred (μ = 0) with margin 0.25.
        float[] a = [2f, 0.3f, -1f], b = [1f, 0.1f, 0.5f];
        float[] mu = [1f, 0.5f, 0f], m = [0.5f, 0f, 0.25f];
        var loss = PreferenceLosses.Pairwise(Leaf(a), Leaf(b), mu, m).Item();
        double p0 = -LogSigmoid(2 - 1 - 0.5);
        double p1 = -0.5 * LogSigmoid(0.2) - 0.5 * LogSigmoid(-0.2);
        double p2 = -LogSigmoid(-(-1 - 0.5) - 0.25);
        Assert.Equal((p0 + p1 + p2) / 3, loss, 5);
        // A tie is minimised by equal rewards: its loss is log 2 there and larger on either side.
        Assert.Equal(Math.Log(2), PreferenceLosses.Pairwise(Leaf(0.7f), Leaf(0.7f), [0.5f]).Item(), 5);
        Assert.True(PreferenceLosses.Pairwise(Leaf(1f), Leaf(0.7f), [0.5f]).Item() > Math.Log(2) + 1e-3);
    }

    [Fact]
    public void RankingLossAveragesAllPairsOfEachPrompt()
    {
        // K = 3, two prompts. Prompt 0 ranks [2, 0, 1]; prompt 1 ranks [0, 1, 2].
        float[] r = [0.5f, -0.2f, 1.0f, 0.3f, 0.9f, -0.4f];
        var rewards = Tensor.FromArray(r, 2, 3);
        rewards.RequiresGrad = true;
        var loss = PreferenceLosses.Ranking(rewards, [[2, 0, 1], [0, 1, 2]]);
        double e0 = -(LogSigmoid(1.0 - 0.5) + LogSigmoid(1.0 + 0.2) + LogSigmoid(0.5 + 0.2)) / 3;
        double e1 = -(LogSigmoid(0.3 - 0.9) + LogSigmoid(0.3 + 0.4) + LogSigmoid(0.9 + 0.4)) / 3;
        Assert.Equal((e0 + e1) / 2, loss.Item(), 5);
        loss.Backward();
        // The top candidate of prompt 0 (index 2) only wins: its gradient is −Σ σ(−d)/(3·2) over its two pairs.
        double g = -((1 - Sig(0.5)) + (1 - Sig(1.2))) / 6;
        Assert.Equal(g, rewards.Grad!.Span[2], 5);
        // Equal to the pairwise loss on the same six pairs (InstructGPT's loss is BT over pairs, grouped per prompt).
        var pw = PreferenceLosses.Pairwise(Leaf(1.0f, 1.0f, 0.5f, 0.3f, 0.3f, 0.9f), Leaf(0.5f, -0.2f, -0.2f, 0.9f, -0.4f, -0.4f)).Item();
        Assert.Equal(pw, loss.Item(), 5);
    }

    private static double Sig(double x) => 1 / (1 + Math.Exp(-x));

    [Fact]
    public void BestOfKIsSoftmaxCrossEntropyOverRewards()
    {
        float[] r = [0.1f, 0.7f, -0.3f, 0.0f];
        var loss = PreferenceLosses.BestOfK(Tensor.FromArray(r, 1, 4), [1]).Item();
        double lse = Math.Log(r.Sum(x => Math.Exp(x)));
        Assert.Equal(lse - 0.7, loss, 5);
    }

    [Fact]
    public void ClippedPolicyLossTakesThePessimisticTermPerToken()
    {
        // Three tokens and one pad; ε = 0.2. Ratios e^{0.5} (clipped for A>0), e^{−0.5} (clipped for A<0), e^{0.1} (inside).
        float[] logp = [0.5f, -0.5f, 0.1f, 3f];
        float[] adv = [1f, -2f, 0.5f, 100f];
        var lp = Tensor.FromArray(logp, 1, 4);
        lp.RequiresGrad = true;
        var res = PpoLosses.ClippedPolicy(lp, Tensor.Zeros(1, 4), Tensor.FromArray(adv, 1, 4), Tensor.FromArray([1f, 1f, 1f, 0f], 1, 4), 0.2f);
        // token 0: max(−e^{0.5}, −1.2) = −1.2 (clipped); token 1: max(2e^{−0.5} = 1.2131, 2·0.8 = 1.6) = 1.6 (clipped);
        // token 2: −0.5·e^{0.1} (inside the band).
        double t0 = Math.Max(-Math.Exp(0.5), -1.2), t1 = Math.Max(2 * Math.Exp(-0.5), 1.6), t2 = -0.5 * Math.Exp(0.1);
        Assert.Equal((t0 + t1 + t2) / 3, res.Loss.Item(), 5);
        Assert.Equal(2.0 / 3, res.ClipFraction, 6);
        Assert.Equal((0.125 + 0.125 + 0.005) / 3, res.ApproxKl, 6);
        res.Loss.Backward();
        // Clipped tokens pass no gradient; the unclipped one gets −A·ρ/3; the pad gets none.
        Assert.Equal(0f, lp.Grad!.Span[0]);
        Assert.Equal(0f, lp.Grad.Span[1]);
        Assert.Equal(-0.5 * Math.Exp(0.1) / 3, lp.Grad.Span[2], 5);
        Assert.Equal(0f, lp.Grad.Span[3]);
    }

    [Fact]
    public void ClippedValueLossUsesTheLargerError()
    {
        // V_old = 0, ε = 0.2, returns 1: V = 0.5 clips to 0.2 (errors 0.25 vs 0.64 → 0.64); V = 0.1 (inside: 0.81).
        float[] v = [0.5f, 0.1f];
        var vt = Tensor.FromArray(v, 1, 2);
        vt.RequiresGrad = true;
        var res = PpoLosses.ClippedValue(vt, Tensor.Zeros(1, 2), Tensor.Full(1f, 1, 2), Tensor.Ones(1, 2), 0.2f);
        Assert.Equal(0.5 * (0.64 + 0.81) / 2, res.Loss.Item(), 5);
        Assert.Equal(0.5, res.ClipFraction, 6);
        res.Loss.Backward();
        Assert.Equal(0f, vt.Grad!.Span[0]);                     // the clipped branch won: no gradient to V
        Assert.Equal(0.5 * 2 * (0.1 - 1) / 2, vt.Grad.Span[1], 5);
    }

    [Fact]
    public void GaeOverTokensEqualsHandRecursion()
    {
        // One row of 3 real tokens (T = 4), γ = 1, λ = 0.95: rewards [0, −0.1, 1], values [0.2, 0.4, 0.5].
        float[] r = [0f, -0.1f, 1f, 9f, 0.3f, 0f, 0f, 0f];
        float[] v = [0.2f, 0.4f, 0.5f, 9f, 0.1f, 0f, 0f, 0f];
        var (adv, ret) = Advantages.Gae(r, v, [3, 1], 4, 1.0, 0.95);
        double d2 = 1 - 0.5, d1 = -0.1 + 0.5 - 0.4, d0 = 0 + 0.4 - 0.2;
        double a2 = d2, a1 = d1 + 0.95 * a2, a0 = d0 + 0.95 * a1;
        Assert.Equal(a0, adv[0], 5);
        Assert.Equal(a1, adv[1], 5);
        Assert.Equal(a2, adv[2], 5);
        Assert.Equal(0f, adv[3]);                                 // past the row's length
        Assert.Equal(a0 + 0.2, ret[0], 5);
        Assert.Equal(0.3 - 0.1, adv[4], 5);                        // a one-token row: δ = r − V
        // With λ = 1 and γ = 1 the return is the sum of future rewards (Monte Carlo).
        var (_, mc) = Advantages.Gae(r, v, [3, 1], 4, 1.0, 1.0);
        Assert.Equal(0.9, mc[0], 5);
    }

    [Fact]
    public void LeaveOneOutSubtractsTheOthersMean()
    {
        var a = Advantages.LeaveOneOut([1f, 2f, 6f, 0f, 0f, 3f], 3);
        Assert.Equal(1 - 4.0, a[0], 5);
        Assert.Equal(6 - 1.5, a[2], 5);
        Assert.Equal(3 - 0.0, a[5], 5);
        Assert.Throws<ArgumentException>(() => Advantages.LeaveOneOut([1f, 2f, 3f], 2));
    }

    [Fact]
    public void DpoLossEqualsHandValue()
    {
        // β = 0.1; h = (−3 − (−4)) − (−5 − (−4.5)) = 1.5; loss = −log σ(0.15). Second pair h = −1 → −log σ(−0.1).
        var pc = Leaf(-3f, -2f);
        var pr = Leaf(-5f, -2f);
        var res = DpoLoss.Compute(pc, pr, [-4f, -2f], [-4.5f, -3f], 0.1f);
        Assert.Equal((-LogSigmoid(0.15) - LogSigmoid(-0.1)) / 2, res.Loss.Item(), 5);
        Assert.Equal(0.1, res.ChosenRewards[0], 5);
        Assert.Equal(-0.05, res.RejectedRewards[0], 5);
        Assert.Equal(0.5, res.Accuracy, 6);
        res.Loss.Backward();
        Assert.Equal(-0.1 * (1 - Sig(0.15)) / 2, pc.Grad!.Span[0], 5);
        // Label smoothing ε = 0.2 mixes in the flipped label.
        var smooth = DpoLoss.Compute(Leaf(-3f), Leaf(-5f), [-4f], [-4.5f], 0.1f, 0.2f).Loss.Item();
        Assert.Equal(-0.8 * LogSigmoid(0.15) - 0.2 * LogSigmoid(-0.15), smooth, 5);
    }
}
