// GAE, returns and the PPO-clip, PPO-penalty and REINFORCE losses against values worked out by hand (in the comments),
// and each loss's returned gradients against float64 central differences of its own value.
using RlhfSharp.Control.Rl;

namespace RlhfSharp.Control.Tests;

public sealed class ObjectivesTests
{
    [Fact]
    public void Gae_MatchesHandComputation_WithEpisodeEndAndBootstrap()
    {
        // Two envs, three steps, γ = 0.9, λ = 0.8 (γλ = 0.72). Layout [t·N + i].
        // env 0: r = 1,1,1; V = .5,.4,.3; done only at t=2 → δ2 = .7, A2 = .7; δ1 = 1 + .9·.3 − .4 = .87, A1 = .87 + .72·.7 = 1.374;
        //        δ0 = 1 + .9·.4 − .5 = .86, A0 = .86 + .72·1.374 = 1.84928.
        // env 1: r = 0,2,0; V = 1,1,1; done at t=0; next value 2 → δ2 = .9·2 − 1 = .8, A2 = .8; δ1 = 2 + .9 − 1 = 1.9,
        //        A1 = 1.9 + .72·.8 = 2.476; t=0 is terminal: A0 = δ0 = 0 − 1 = −1.
        float[] rewards = [1, 0, 1, 2, 1, 0];
        float[] values = [0.5f, 1, 0.4f, 1, 0.3f, 1];
        bool[] dones = [false, true, false, false, true, false];
        var (adv, ret) = ControlObjectives.Gae(rewards, values, dones, [9f, 2f], steps: 3, envs: 2, gamma: 0.9, lambda: 0.8);
        double[] expected = [1.84928, -1, 1.374, 2.476, 0.7, 0.8];
        for (int k = 0; k < 6; k++)
        {
            Assert.Equal(expected[k], adv[k], 5);
            Assert.Equal(expected[k] + values[k], ret[k], 5);
        }
    }

    [Fact]
    public void ReturnsToGo_AreDiscountedSumsThatRestartAtEpisodeEnds()
    {
        // γ = 0.5: episode [1, 2] ends at t=1 → G = 1 + .5·2 = 2, 2; then [4] with bootstrap 8 → G = 4 + .5·8 = 8.
        float[] g = ControlObjectives.ReturnsToGo([1, 2, 4], [false, true, false], [8f], steps: 3, envs: 1, gamma: 0.5);
        Assert.Equal([2f, 2f, 8f], g);
    }

    [Fact]
    public void NormalizeAdvantages_AndExplainedVariance_MatchDefinitions()
    {
        float[] z = ControlObjectives.NormalizeAdvantages([1, 2, 3, 4]);
        double sd = Math.Sqrt(5.0 / 3); // Bessel: Σ(x − 2.5)² = 5 over n − 1 = 3
        Assert.Equal((1 - 2.5) / sd, z[0], 5);
        Assert.Equal((4 - 2.5) / sd, z[3], 5);
        // returns 1,2,3,4; values 1,2,3,5: residuals 0,0,0,−1 → Var = 0.1875; Var[returns] = 1.25 → 1 − 0.15 = 0.85.
        Assert.Equal(0.85, ControlObjectives.ExplainedVariance([1, 2, 3, 5], [1, 2, 3, 4]), 6);
        Assert.True(double.IsNaN(ControlObjectives.ExplainedVariance([1, 2], [3, 3])));
    }

    private static readonly float[] LogRatio = [(float)Math.Log(1.5), (float)Math.Log(0.5), (float)Math.Log(1.1), (float)Math.Log(0.5)];
    private static readonly float[] OldLogp = [-1f, -0.5f, -2f, -0.3f];
    private static float[] NewLogp => [.. OldLogp.Zip(LogRatio, (o, r) => o + r)];
    private static readonly float[] Adv = [2f, -1f, 1f, 1f];
    private static readonly float[] Entropy = [0.5f, 0.7f, 0.6f, 0.2f];
    private static readonly float[] NewV = [0.1f, 0.5f, -0.3f, 0f];
    private static readonly float[] OldV = [0f, 0f, 0f, 0f];
    private static readonly float[] Ret = [1f, 1f, 1f, 1f];

    [Fact]
    public void PpoClip_MatchesHandComputation()
    {
        // ρ = 1.5, 0.5, 1.1, 0.5; ε = 0.2.
        // policy terms max(−Aρ, −A·clip ρ): (−3, −2.4) → −2.4; (.5, .8) → .8; (−1.1, −1.1) → −1.1; (−.5, −.8) → −.5 ⇒ mean −0.8.
        // gradient flows only where −Aρ is the max: samples 2 and 3 → −Aρ/4 = −1.1/4, −0.5/4.
        // value (ε = .2 around V_old = 0, R = 1): max(.81, .81), max(.25, .64), max(1.69, 1.44), max(1, 1) ⇒ ½·4.14/4 = .5175.
        // total = −0.8 + 0.5·0.5175 − 0.01·mean(H = .5) = −0.54625; clipfrac = 3/4;
        // approx KL = mean(ρ − 1 − log ρ) = (.094535 + .193147 + .0046898 + .193147)/4 = .1213797.
        var r = ControlObjectives.PpoClip(NewLogp, OldLogp, Adv, Entropy, NewV, OldV, Ret, 0.2, 0.5, 0.01, clipValue: true);
        Assert.Equal(-0.8, r.Policy, 5);
        Assert.Equal(0.5175, r.ValueLoss, 5);
        Assert.Equal(0.5, r.Entropy, 6);
        Assert.Equal(-0.54625, r.Total, 5);
        Assert.Equal(0.75, r.ClipFraction);
        Assert.Equal(0.1213797, r.ApproxKl, 5);
        Assert.Equal([0f, 0f, -1.1f / 4, -0.5f / 4], r.Gradients.LogProb.Select(v => MathF.Round(v, 5)).ToArray(), (a, b) => Math.Abs(a - b) < 1e-5);
        // value gradients: c_v·(V − R)/4 on unclipped winners, 0 where the clipped branch won with the step outside ε.
        Assert.Equal([0.5f * -0.9f / 4, 0f, 0.5f * -1.3f / 4, 0.5f * -1f / 4], r.Gradients.Value, (a, b) => Math.Abs(a - b) < 1e-6);
    }

    [Fact]
    public void PpoPenalty_AndReinforce_MatchHandComputation()
    {
        // mean(ρA) = (3 − .5 + 1.1 + .5)/4 = 1.025; the exact KLs .1, .2, .05, .3 have mean .1625; β = .5 → policy = −1.025 + .08125.
        var p = ControlObjectives.PpoPenalty(NewLogp, OldLogp, [0.1f, 0.2f, 0.05f, 0.3f], Adv, Entropy, NewV, Ret, beta: 0.5, valueCoef: 0.5, entropyCoef: 0);
        Assert.Equal(-1.025 + 0.5 * 0.1625, p.Policy, 5);
        Assert.Equal(0.1625, p.ApproxKl, 6); // what the β controller sees
        // ∂/∂log π_i = −A_i·ρ_i/4; ∂/∂KL_i = β/4.
        Assert.Equal(-2 * 1.5 / 4, p.Gradients.LogProb[0], 5);
        Assert.Equal([0.125f, 0.125f, 0.125f, 0.125f], p.Gradients.Kl!);

        // REINFORCE: log π = −.1, −2; A = 1, −.5 → mean(−A·log π) = (.1 − 1)/2 = −.45; ∂/∂log π = −A/2.
        var r = ControlObjectives.Reinforce([-0.1f, -2f], [1f, -0.5f], [0f, 0f], [0f, 0f], [1f, 1f], 0.5, 0);
        Assert.Equal(-0.45, r.Policy, 6);
        Assert.Equal([-0.5f, 0.25f], r.Gradients.LogProb);
        Assert.Equal(0.5 * 0.5 * 1.0, r.ValueLoss * 0.5, 6); // ½·mean((0 − 1)²) = .5
    }

    [Fact]
    public void LossGradients_MatchCentralDifferences()
    {
        // Away from the kinks (no |ρ − 1| = ε, no tie between value branches), the returned gradients are exact.
        var rng = new RlhfSharp.Tensors.Rng(11);
        int b = 16;
        float[] R(double sd) => [.. Enumerable.Range(0, b).Select(_ => (float)rng.Normal(0, sd))];
        float[] oldLogp = R(1), logRatio = R(0.3), adv = R(1), ent = R(1), oldV = R(1), ret = R(1), dv = R(0.4);
        float[] kl = [.. R(0.1).Select(Math.Abs)];
        float[] newLogp = [.. oldLogp.Zip(logRatio, (o, d) => o + d)];
        float[] newV = [.. oldV.Zip(dv, (o, d) => o + d)];
        Func<float[], float[], float[], double> clip = (lp, h, v) => ControlObjectives.PpoClip(lp, oldLogp, adv, h, v, oldV, ret, 0.2, 0.5, 0.01, true).Total;
        Func<float[], float[], float[], double> pen = (lp, h, v) => ControlObjectives.PpoPenalty(lp, oldLogp, kl, adv, h, v, ret, 0.7, 0.5, 0.01).Total;
        Func<float[], float[], float[], double> rf = (lp, h, v) => ControlObjectives.Reinforce(lp, adv, h, v, ret, 0.5, 0.01).Total;
        foreach (var (f, grads) in new[]
        {
            (clip, ControlObjectives.PpoClip(newLogp, oldLogp, adv, ent, newV, oldV, ret, 0.2, 0.5, 0.01, true).Gradients),
            (pen, ControlObjectives.PpoPenalty(newLogp, oldLogp, kl, adv, ent, newV, ret, 0.7, 0.5, 0.01).Gradients),
            (rf, ControlObjectives.Reinforce(newLogp, adv, ent, newV, ret, 0.5, 0.01).Gradients),
        })
        {
            for (int i = 0; i < b; i++)
            {
                const float h = 1e-3f;
                double Diff(float[] x, Func<float[], double> g)
                {
                    float keep = x[i];
                    x[i] = keep + h; double up = g(x);
                    x[i] = keep - h; double down = g(x);
                    x[i] = keep;
                    return (up - down) / (2 * h);
                }
                Assert.Equal(Diff(newLogp, x => f(x, ent, newV)), grads.LogProb[i], 3);
                Assert.Equal(Diff(ent, x => f(newLogp, x, newV)), grads.Entropy[i], 4);
                Assert.Equal(Diff(newV, x => f(newLogp, ent, x)), grads.Value[i], 3);
                if (grads.Kl is { } gKl)
                    Assert.Equal(Diff(kl, x => ControlObjectives.PpoPenalty(newLogp, oldLogp, x, adv, ent, newV, ret, 0.7, 0.5, 0.01).Total), gKl[i], 3);
            }
        }
    }

    [Fact]
    public void Losses_RefuseMismatchedLengths()
    {
        var ex = Assert.Throws<ArgumentException>(() => ControlObjectives.Reinforce([1f, 2f], [1f], [0f, 0f], [0f, 0f], [0f, 0f], 0.5, 0));
        Assert.Contains("disagree", ex.Message);
        Assert.Throws<ArgumentException>(() => ControlObjectives.Gae([1f], [1f], [false], [0f, 0f], 1, 1, 0.9, 0.9));
    }
}
