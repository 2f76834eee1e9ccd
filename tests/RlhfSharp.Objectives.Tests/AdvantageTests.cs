// GAE in both layouts (control [T, N] with terminated and truncated episodes, language model [B, T] with lengths) against
// values worked out by hand in the comments, the two layouts against each other, returns-to-go, the whitening convention,
// explained variance and the RLHF reward r − β·k1.
namespace RlhfSharp.Objectives.Tests;

public sealed class AdvantageTests
{
    private static readonly bool[] None6 = new bool[6];

    [Fact]
    public void Gae_ControlLayout_MatchesHandComputation_WithEpisodeEndAndBootstrap()
    {
        // Two envs, three steps, γ = 0.9, λ = 0.8 (γλ = 0.72). Layout [t·N + i].
        // env 0: r = 1,1,1; V = .5,.4,.3; terminated only at t=2 → δ2 = .7, A2 = .7; δ1 = 1 + .9·.3 − .4 = .87, A1 = .87 + .72·.7 = 1.374;
        //        δ0 = 1 + .9·.4 − .5 = .86, A0 = .86 + .72·1.374 = 1.84928.
        // env 1: r = 0,2,0; V = 1,1,1; terminated at t=0; next value 2 → δ2 = .9·2 − 1 = .8, A2 = .8; δ1 = 2 + .9 − 1 = 1.9,
        //        A1 = 1.9 + .72·.8 = 2.476; t=0 is terminal: A0 = δ0 = 0 − 1 = −1.
        float[] rewards = [1, 0, 1, 2, 1, 0];
        float[] values = [0.5f, 1, 0.4f, 1, 0.3f, 1];
        bool[] terminated = [false, true, false, false, true, false];
        var (adv, ret) = Advantages.Gae(rewards, values, terminated, None6, new float[6], [9f, 2f], steps: 3, envs: 2, gamma: 0.9, lambda: 0.8);
        double[] expected = [1.84928, -1, 1.374, 2.476, 0.7, 0.8];
        for (int k = 0; k < 6; k++)
        {
            Assert.Equal(expected[k], adv[k], 5);
            Assert.Equal(expected[k] + values[k], ret[k], 5);
        }
    }

    [Fact]
    public void Gae_Truncation_BootstrapsFromTheFinalObservation_AndTerminationWins()
    {
        // One env, r = 1,1,1; V = .5,.4,.3; V after the last step .6; γ = .9, λ = .8.
        // Truncated at t=1 with V(final obs) = 2: δ2 = 1 + .9·.6 − .3 = 1.24; δ1 = 1 + .9·2 − .4 = 2.4, A1 = 2.4 (no carry);
        //   δ0 = 1 + .9·.4 − .5 = .86, A0 = .86 + .72·2.4 = 2.588.
        float[] r = [1, 1, 1], v = [0.5f, 0.4f, 0.3f], fin = [0, 2, 0];
        var (adv, _) = Advantages.Gae(r, v, [false, false, false], [false, true, false], fin, [0.6f], 3, 1, 0.9, 0.8);
        Assert.Equal(2.588, adv[0], 5);
        Assert.Equal(2.4, adv[1], 5);
        Assert.Equal(1.24, adv[2], 5);
        // Terminated and truncated at once (the last step of a time limit was also terminal): no bootstrap, δ1 = 1 − .4 = .6,
        // A0 = .86 + .72·.6 = 1.292.
        var (both, _) = Advantages.Gae(r, v, [false, true, false], [false, true, false], fin, [0.6f], 3, 1, 0.9, 0.8);
        Assert.Equal(0.6, both[1], 5);
        Assert.Equal(1.292, both[0], 5);
    }

    [Fact]
    public void Gae_LanguageModelLayout_IsTheControlLoopWithTheEpisodeTerminatedAtTheLastToken()
    {
        // Given rows of different lengths in [B, T], When each row is run through the control layout as one env whose episode
        // terminates at its last real token, Then the advantages and returns are the same bits.
        var rng = new RlhfSharp.Tensors.Rng(3);
        int B = 4, T = 7;
        int[] lengths = [7, 3, 0, 1];
        float[] r = [.. Enumerable.Range(0, B * T).Select(_ => (float)rng.Normal())];
        float[] v = [.. Enumerable.Range(0, B * T).Select(_ => (float)rng.Normal())];
        var (adv, ret) = Advantages.Gae(r, v, lengths, T, gamma: 0.97, lambda: 0.9);
        for (int b = 0; b < B; b++)
        {
            int L = lengths[b];
            for (int t = L; t < T; t++) Assert.Equal((0f, 0f), (adv[b * T + t], ret[b * T + t]));
            if (L == 0) continue;
            var terminated = new bool[L];
            terminated[L - 1] = true;
            var (a1, r1) = Advantages.Gae(r.AsSpan(b * T, L), v.AsSpan(b * T, L), terminated, new bool[L], new float[L], [123f], L, 1, 0.97, 0.9);
            Assert.Equal(a1, adv.AsSpan(b * T, L).ToArray());
            Assert.Equal(r1, ret.AsSpan(b * T, L).ToArray());
        }
    }

    [Fact]
    public void ReturnsToGo_AreDiscountedSumsThatRestartAtEpisodeEnds()
    {
        // γ = 0.5: episode [1, 2] terminates at t=1 → G = 1 + .5·2 = 2, 2; then [4] with bootstrap 8 → G = 4 + .5·8 = 8.
        float[] g = Advantages.ReturnsToGo([1, 2, 4], [false, true, false], [false, false, false], [0, 0, 0], [8f], steps: 3, envs: 1, gamma: 0.5);
        Assert.Equal([2f, 2f, 8f], g);
        // [1, 2] truncated at t=1 with V(final obs) = 6: G1 = 2 + .5·6 = 5, G0 = 1 + .5·5 = 3.5.
        float[] cut = Advantages.ReturnsToGo([1, 2], [false, false], [false, true], [0, 6], [0f], steps: 2, envs: 1, gamma: 0.5);
        Assert.Equal([3.5f, 5f], cut);
    }

    [Fact]
    public void Gae_RefusesMismatchedLengthsAndRates()
    {
        var ex = Assert.Throws<ArgumentException>(() => Advantages.Gae([1f], [1f], [false], [false], [0f], [0f, 0f], 1, 1, 0.9, 0.9));
        Assert.Contains("next values", ex.Message);
        Assert.Throws<ArgumentException>(() => Advantages.Gae([1f], [1f], [false], [false], [0f], [0f], 1, 1, 1.5, 0.9));
        Assert.Throws<ArgumentException>(() => Advantages.Gae([1f, 2f], [1f, 2f], [3], 2, 1, 0.9));
    }

    [Fact]
    public void Whitening_UsesTrlsEpsilonInsideTheRoot_ForEveryEntry()
    {
        // mean 2.5, unbiased variance 5/3: (x − 2.5)/sqrt(5/3 + 1e-8) (CleanRL's (x − 2.5)/(sqrt(5/3) + 1e-8) differs below 1e-8).
        float[] z = [1, 2, 3, 4];
        Whitening.Whiten(z);
        double s = Math.Sqrt(5.0 / 3 + Whitening.Epsilon);
        Assert.Equal((1 - 2.5) / s, z[0], 6);
        Assert.Equal((4 - 2.5) / s, z[3], 6);
        // Near-equal entries (spread 1e-5) shrink instead of being blown up to unit size: the epsilon dominates the root.
        float[] flat = [1f, 1.00001f];
        Whitening.Whiten(flat);
        Assert.InRange(Math.Abs(flat[0]), 0.045, 0.055); // CleanRL's form gives 0.71
        // The unmasked form is the masked one with every entry selected, bit for bit.
        float[] a = [0.3f, -1.2f, 5f, 2.2f, 0.01f];
        float[] b = (float[])a.Clone();
        Whitening.Whiten(a);
        Whitening.Whiten(b, [true, true, true, true, true]);
        Assert.Equal(a, b);
    }

    [Fact]
    public void ExplainedVariance_MatchesItsDefinition_MaskedAndNot()
    {
        // returns 1,2,3,4; values 1,2,3,5: residuals 0,0,0,−1 → Var = 0.1875; Var[returns] = 1.25 → 1 − 0.15 = 0.85.
        Assert.Equal(0.85, ValueDiagnostics.ExplainedVariance([1, 2, 3, 5], [1, 2, 3, 4]), 9);
        Assert.True(double.IsNaN(ValueDiagnostics.ExplainedVariance([1, 2], [3, 3])));
        // A masked-out entry (a padding token) does not count.
        Assert.Equal(0.85, ValueDiagnostics.ExplainedVariance([1, 2, 3, 5, -40], [1, 2, 3, 4, 90], [true, true, true, true, false]), 9);
        Assert.Equal(1.0, ValueDiagnostics.ExplainedVariance([1, 2, 3], [1, 2, 3]), 12);
    }

    [Fact]
    public void RlhfReward_IsMinusBetaK1PerToken_WithTheScoreAtTheLastRealToken()
    {
        // Two rows, T = 3, β = 0.5. Row 0 has 2 tokens: log π − log π_ref = 0.2 and −0.1; score 3 →
        //   r = [−0.1, 0.05 + 3, 0]; Σk1 = 0.1. Row 1 has no tokens: all 0.
        float[] logp = [-1.0f, -2.1f, -9f, -1f, -1f, -1f];
        float[] refLogp = [-1.2f, -2.0f, 0f, 0f, 0f, 0f];
        var tr = RlhfRewards.PerToken([3f, 7f], logp, refLogp, [2, 0], T: 3, beta: 0.5);
        Assert.Equal(-0.1, tr.Rewards[0], 5);
        Assert.Equal(3.05, tr.Rewards[1], 5);
        Assert.Equal(0f, tr.Rewards[2]);
        Assert.All(tr.Rewards[3..], r => Assert.Equal(0f, r));
        Assert.Equal(0.1, tr.Kl[0], 5);
        Assert.Equal(0.0, tr.Kl[1]);
        // k3 = e^{log r} − 1 − log r with log r = log π_ref − log π: e^{−0.2} − 0.8 and e^{0.1} − 1.1.
        Assert.Equal(Math.Exp(-0.2) - 0.8 + Math.Exp(0.1) - 1.1, tr.KlK3[0], 5);
        // RLOO's sequence reward: R = score − β·Σk1.
        Assert.Equal([3f - 0.05f, 7f], RlhfRewards.PerSequence([3f, 7f], tr.Kl, 0.5), (x, y) => Math.Abs(x - y) < 1e-6);
    }
}
