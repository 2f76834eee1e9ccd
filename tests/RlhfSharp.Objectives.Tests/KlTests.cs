namespace RlhfSharp.Objectives.Tests;

public sealed class KlTests
{
    [Fact]
    public void AdaptiveControllerFollowsZieglersFormula()
    {
        // Given target 6, horizon 10000, batches of 512 episodes and a KL sequence above, at and below target,
        var c = new AdaptiveKlController(0.2, 6, 10_000);
        double[] kls = [12, 7.2, 6, 3, 0.5];
        double beta = 0.2;
        foreach (double kl in kls)
        {
            c.Update(kl, 512);
            // the error is clipped to ±0.2 before it moves β proportionally to n/horizon.
            double e = Math.Clamp((kl - 6) / 6, -0.2, 0.2);
            beta *= 1 + e * 512 / 10_000;
            Assert.Equal(beta, c.Beta, 12);
        }
        // 12 → +0.2 (clipped), 7.2 → +0.2, 6 → 0, 3 → −0.2 (clipped from −0.5), 0.5 → −0.2
        Assert.Equal(0.2 * 1.01024 * 1.01024 * 0.98976 * 0.98976, c.Beta, 12);
    }

    [Fact]
    public void HalvingDoublingControllerUsesTheBandOfOnePointFive()
    {
        var c = new HalvingDoublingKlController(1.0, 0.01);
        c.Update(0.02, 1);   // > 0.015: doubles
        Assert.Equal(2.0, c.Beta);
        c.Update(0.012, 1);  // inside [0.00667, 0.015]: unchanged
        Assert.Equal(2.0, c.Beta);
        c.Update(0.005, 1);  // < 0.00667: halves
        Assert.Equal(1.0, c.Beta);
    }

    [Fact]
    public void KlEstimatorsAgreeInExpectationAndK3IsNeverNegative()
    {
        // π = Bernoulli(0.3) and π_ref = Bernoulli(0.6): the exact KL(π‖π_ref), and the estimators' expectations under π.
        double p = 0.3, q = 0.6;
        double exact = p * Math.Log(p / q) + (1 - p) * Math.Log((1 - p) / (1 - q));
        double e1 = p * KlEstimators.K1(Math.Log(p), Math.Log(q)) + (1 - p) * KlEstimators.K1(Math.Log(1 - p), Math.Log(1 - q));
        double e3 = p * KlEstimators.K3(Math.Log(p), Math.Log(q)) + (1 - p) * KlEstimators.K3(Math.Log(1 - p), Math.Log(1 - q));
        Assert.Equal(exact, e1, 12);
        Assert.Equal(exact, e3, 12);
        Assert.True(KlEstimators.K1(Math.Log(p), Math.Log(q)) < 0); // a single k1 sample can be negative
        Assert.True(KlEstimators.K3(Math.Log(p), Math.Log(q)) > 0);
        Assert.Equal(0.5 * Math.Pow(Math.Log(q / p), 2), KlEstimators.K2(Math.Log(p), Math.Log(q)), 12);
    }

    [Fact]
    public void WhiteningStandardisesMaskedEntriesOnly()
    {
        float[] x = [1, 2, 3, 4, 100];
        bool[] mask = [true, true, true, true, false];
        Whitening.Whiten(x, mask);
        // mean 2.5, unbiased variance 5/3
        double s = Math.Sqrt(5.0 / 3 + 1e-8);
        Assert.Equal((1 - 2.5) / s, x[0], 5);
        Assert.Equal((4 - 2.5) / s, x[3], 5);
        Assert.Equal(100f, x[4]);
        float[] y = [1, 2, 3, 4];
        Whitening.Whiten(y, shiftMean: false);
        Assert.Equal((1 - 2.5) / s + 2.5, y[0], 5);
    }
}
