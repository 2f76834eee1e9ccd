// The PPO-clip, PPO-penalty and REINFORCE losses as the trainers assemble them (L_policy + c_v·L_value − c_e·H), against
// values worked out by hand in the comments, and every loss's autograd gradient against float64 central differences of a
// float64 reference written from the equations — over a mask of ones (control samples) and a mask with padding (tokens).
using RlhfSharp.Tensors;

namespace RlhfSharp.Objectives.Tests;

public sealed class PolicyLossTests
{
    private static readonly float[] LogRatio = [(float)Math.Log(1.5), (float)Math.Log(0.5), (float)Math.Log(1.1), (float)Math.Log(0.5)];
    private static readonly float[] OldLogp = [-1f, -0.5f, -2f, -0.3f];
    private static readonly float[] Adv = [2f, -1f, 1f, 1f];
    private static readonly float[] Entropy = [0.5f, 0.7f, 0.6f, 0.2f];
    private static readonly float[] NewV = [0.1f, 0.5f, -0.3f, 0f];
    private static readonly float[] OldV = [0f, 0f, 0f, 0f];
    private static readonly float[] Ret = [1f, 1f, 1f, 1f];

    private static float[] NewLogp => [.. OldLogp.Zip(LogRatio, (o, r) => o + r)];

    private static Tensor Leaf(float[] v)
    {
        var t = Tensor.FromArray(v, v.Length);
        t.RequiresGrad = true;
        return t;
    }

    private static Tensor Const(float[] v) => Tensor.FromArray(v, v.Length);

    private static void Near(float[] expected, ReadOnlySpan<float> actual, double tolerance = 1e-6)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance, $"entry {i}: expected {expected[i]}, actual {actual[i]}");
    }

    [Fact]
    public void PpoClip_WithValueClipAndEntropyBonus_MatchesHandComputation()
    {
        // ρ = 1.5, 0.5, 1.1, 0.5; ε = 0.2.
        // policy terms max(−Aρ, −A·clip ρ): (−3, −2.4) → −2.4; (.5, .8) → .8; (−1.1, −1.1) → −1.1; (−.5, −.8) → −.5 ⇒ mean −0.8.
        // The clipped term was taken (strictly) on samples 0 and 1 (TRL's clipfrac ½); |ρ − 1| > ε on 0, 1 and 3 (CleanRL's ¾).
        // value (ε = .2 around V_old = 0, R = 1): max(.81, .81), max(.25, .64), max(1.69, 1.44), max(1, 1) ⇒ ½·4.14/4 = .5175;
        // the clipped error was the larger only on sample 1.
        // total = −0.8 + 0.5·0.5175 − 0.01·mean(H = .5) = −0.54625;
        // approx KL k3 = mean(ρ − 1 − log ρ) = (.094535 + .193147 + .0046898 + .193147)/4 = .1213797.
        var lp = Leaf(NewLogp);
        var h = Leaf(Entropy);
        var v = Leaf(NewV);
        var mask = Tensor.Ones(4);
        var pg = PpoLosses.ClippedPolicy(lp, Const(OldLogp), Const(Adv), mask, 0.2f);
        var vf = PpoLosses.ClippedValue(v, Const(OldV), Const(Ret), mask, 0.2f);
        var bonus = PolicyGradientLosses.EntropyBonus(h, mask, 0.01f);
        var total = pg.Loss + vf.Loss * 0.5f + bonus.Loss;
        Assert.Equal(-0.8, pg.Loss.Item(), 5);
        Assert.Equal(0.5175, vf.Loss.Item(), 5);
        Assert.Equal(0.5, bonus.Entropy, 6);
        Assert.Equal(-0.54625, total.Item(), 5);
        Assert.Equal(0.5, pg.ClipFraction);
        Assert.Equal(0.75, pg.RatioClipFraction);
        Assert.Equal(0.25, vf.ClipFraction);
        Assert.Equal(0.1213797, pg.ApproxKlK3, 5);
        Assert.Equal(LogRatio.Average(x => 0.5 * x * x), pg.ApproxKl, 6);
        total.Backward();
        // Only the unclipped term carries gradient: samples 2 and 3 get −Aρ/4 = −1.1/4, −0.5/4.
        Near([0f, 0f, -1.1f / 4, -0.5f / 4], lp.Grad!.Span);
        // Value: c_v·(V − R)/4 where the unclipped error won, 0 where the clipped one won with the step outside ε.
        Near([0.5f * -0.9f / 4, 0f, 0.5f * -1.3f / 4, 0.5f * -1f / 4], v.Grad!.Span);
        Near([-0.01f / 4, -0.01f / 4, -0.01f / 4, -0.01f / 4], h.Grad!.Span);
    }

    [Fact]
    public void PpoPenalty_AndReinforce_MatchHandComputation()
    {
        // mean(ρA) = (3 − .5 + 1.1 + .5)/4 = 1.025; the exact KLs .1, .2, .05, .3 have mean .1625; β = .5 → L = −1.025 + .08125.
        var lp = Leaf(NewLogp);
        var kl = Leaf([0.1f, 0.2f, 0.05f, 0.3f]);
        var p = PpoLosses.KlPenalty(lp, Const(OldLogp), Const(Adv), kl, Tensor.Ones(4), beta: 0.5f);
        Assert.Equal(-1.025 + 0.5 * 0.1625, p.Loss.Item(), 5);
        Assert.Equal(0.1625, p.Kl, 6); // what the β controller sees
        p.Loss.Backward();
        // ∂/∂log π_i = −A_i·ρ_i/4; ∂/∂KL_i = β/4.
        Assert.Equal(-2 * 1.5 / 4, lp.Grad!.Span[0], 5);
        Near([0.125f, 0.125f, 0.125f, 0.125f], kl.Grad!.Span);

        // REINFORCE: log π = −.1, −2; A = 1, −.5 → mean(−A·log π) = (.1 − 1)/2 = −.45; ∂/∂log π = −A/2.
        var logp = Leaf([-0.1f, -2f]);
        var r = PolicyGradientLosses.Reinforce(logp, Const([1f, -0.5f]), Tensor.Ones(2));
        Assert.Equal(-0.45, r.Item(), 6);
        r.Backward();
        Near([-0.5f, 0.25f], logp.Grad!.Span);
        Assert.Equal(0.5, PolicyGradientLosses.ValueLoss(Const([0f, 0f]), Const([1f, 1f]), Tensor.Ones(2)).Item(), 6); // ½·mean((0 − 1)²)
    }

    [Fact]
    public void Losses_RefuseMismatchedShapes()
    {
        var ex = Assert.Throws<ArgumentException>(() => PolicyGradientLosses.Reinforce(Leaf([1f, 2f]), Const([1f]), Tensor.Ones(2)));
        Assert.Contains("one shape", ex.Message);
        Assert.Throws<ArgumentException>(() => PpoLosses.KlPenalty(Leaf([1f]), Const([1f]), Const([1f]), Const([1f, 2f]), Tensor.Ones(1), 1f));
        Assert.Throws<ArgumentException>(() => PpoLosses.KlPenalty(Leaf([1f]), Const([1f]), Const([1f]), Const([1f]), Tensor.Ones(1), -1f));
    }

    // ---- gradients against float64 central differences ----

    private const int B = 16;
    private const double Ce = 0.01, Cv = 0.5, Eps = 0.2, Beta = 0.7;

    /// <summary>Random batch away from the kinks, and a mask: all ones (control) or with three padding entries (tokens).</summary>
    private static (float[] OldLogp, float[] NewLogp, float[] Adv, float[] H, float[] OldV, float[] NewV, float[] Ret, float[] Kl, float[] Mask) Batch(bool padded)
    {
        var rng = new Rng(11);
        float[] R(double sd) => [.. Enumerable.Range(0, B).Select(_ => (float)rng.Normal(0, sd))];
        float[] oldLogp = R(1), logRatio = R(0.3), adv = R(1), h = R(1), oldV = R(1), ret = R(1), dv = R(0.4);
        float[] kl = [.. R(0.1).Select(Math.Abs)];
        float[] mask = [.. Enumerable.Range(0, B).Select(i => padded && i % 5 == 4 ? 0f : 1f)];
        return (oldLogp, [.. oldLogp.Zip(logRatio, (o, d) => o + d)], adv, h, oldV, [.. oldV.Zip(dv, (o, d) => o + d)], ret, kl, mask);
    }

    private static double MaskedMean(double[] x, float[] m)
    {
        double s = 0, n = 0;
        for (int i = 0; i < x.Length; i++) { s += m[i] * x[i]; n += m[i]; }
        return s / n;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void PpoClipTotal_GradientsMatchFloat64CentralDifferences(bool padded)
    {
        var d = Batch(padded);
        var mask = Tensor.FromArray(d.Mask, B);
        Tensor Loss(Tensor[] x) =>
            PpoLosses.ClippedPolicy(x[0], Const(d.OldLogp), Const(d.Adv), mask, (float)Eps).Loss
            + PpoLosses.ClippedValue(x[2], Const(d.OldV), Const(d.Ret), mask, (float)Eps).Loss * (float)Cv
            + PolicyGradientLosses.EntropyBonus(x[1], mask, (float)Ce).Loss;
        double Reference(double[][] x)
        {
            double[] pg = new double[B], vf = new double[B];
            for (int i = 0; i < B; i++)
            {
                double ratio = Math.Exp(x[0][i] - d.OldLogp[i]);
                pg[i] = Math.Max(-d.Adv[i] * ratio, -d.Adv[i] * Math.Clamp(ratio, 1 - Eps, 1 + Eps));
                double vc = d.OldV[i] + Math.Clamp(x[2][i] - d.OldV[i], -Eps, Eps);
                vf[i] = Math.Max(Math.Pow(x[2][i] - d.Ret[i], 2), Math.Pow(vc - d.Ret[i], 2));
            }
            return MaskedMean(pg, d.Mask) + Cv * 0.5 * MaskedMean(vf, d.Mask) - Ce * MaskedMean(x[1], d.Mask);
        }
        CheckGradients(Loss, Reference, [d.NewLogp, d.H, d.NewV], d.Mask);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void PpoPenaltyTotal_GradientsMatchFloat64CentralDifferences(bool padded)
    {
        var d = Batch(padded);
        var mask = Tensor.FromArray(d.Mask, B);
        Tensor Loss(Tensor[] x) =>
            PpoLosses.KlPenalty(x[0], Const(d.OldLogp), Const(d.Adv), x[3], mask, (float)Beta).Loss
            + PolicyGradientLosses.ValueLoss(x[2], Const(d.Ret), mask) * (float)Cv
            + PolicyGradientLosses.EntropyBonus(x[1], mask, (float)Ce).Loss;
        double Reference(double[][] x)
        {
            double[] surrogate = new double[B], sq = new double[B];
            for (int i = 0; i < B; i++)
            {
                surrogate[i] = Math.Exp(x[0][i] - d.OldLogp[i]) * d.Adv[i];
                sq[i] = Math.Pow(x[2][i] - d.Ret[i], 2);
            }
            return -MaskedMean(surrogate, d.Mask) + Beta * MaskedMean(x[3], d.Mask) + Cv * 0.5 * MaskedMean(sq, d.Mask) - Ce * MaskedMean(x[1], d.Mask);
        }
        CheckGradients(Loss, Reference, [d.NewLogp, d.H, d.NewV, d.Kl], d.Mask);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ReinforceTotal_GradientsMatchFloat64CentralDifferences(bool padded)
    {
        var d = Batch(padded);
        var mask = Tensor.FromArray(d.Mask, B);
        Tensor Loss(Tensor[] x) =>
            PolicyGradientLosses.Reinforce(x[0], Const(d.Adv), mask)
            + PolicyGradientLosses.ValueLoss(x[2], Const(d.Ret), mask) * (float)Cv
            + PolicyGradientLosses.EntropyBonus(x[1], mask, (float)Ce).Loss;
        double Reference(double[][] x)
        {
            double[] pg = new double[B], sq = new double[B];
            for (int i = 0; i < B; i++)
            {
                pg[i] = -d.Adv[i] * x[0][i];
                sq[i] = Math.Pow(x[2][i] - d.Ret[i], 2);
            }
            return MaskedMean(pg, d.Mask) + Cv * 0.5 * MaskedMean(sq, d.Mask) - Ce * MaskedMean(x[1], d.Mask);
        }
        CheckGradients(Loss, Reference, [d.NewLogp, d.H, d.NewV], d.Mask);
    }

    /// <summary>
    /// The loss value against its float64 reference, and each input's autograd gradient against the float64 central
    /// difference (L(x + h) − L(x − h))/2h of the reference, h = 1e-6; padded entries must get exactly 0.
    /// </summary>
    private static void CheckGradients(Func<Tensor[], Tensor> loss, Func<double[][], double> reference, float[][] inputs, float[] mask)
    {
        var leaves = inputs.Select(Leaf).ToArray();
        var l = loss(leaves);
        double[][] x = [.. inputs.Select(a => a.Select(f => (double)f).ToArray())];
        Assert.Equal(reference(x), l.Item(), 5);
        l.Backward();
        const double h = 1e-6;
        for (int k = 0; k < inputs.Length; k++)
        {
            var g = leaves[k].Grad!.Span;
            for (int i = 0; i < B; i++)
            {
                double keep = x[k][i];
                x[k][i] = keep + h; double up = reference(x);
                x[k][i] = keep - h; double down = reference(x);
                x[k][i] = keep;
                double numeric = (up - down) / (2 * h);
                if (mask[i] == 0) Assert.Equal(0f, g[i]);
                Assert.True(Math.Abs(numeric - g[i]) <= 2e-6 + 1e-4 * Math.Abs(numeric), $"input {k} entry {i}: autograd {g[i]}, float64 central difference {numeric}");
            }
        }
    }
}
