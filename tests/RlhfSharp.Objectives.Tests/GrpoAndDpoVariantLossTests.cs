// GRPO (with its Dr. GRPO, BNPO and DAPO aggregations, k3 KL and clip-higher), DAPO's overlong shaping, and the DPO
// family (IPO, SimPO, ORPO, KTO) against values worked out by hand in the comments, and every loss's autograd gradient
// against float64 central differences of a float64 reference written from the equations.
using RlhfSharp.Tensors;

namespace RlhfSharp.Objectives.Tests;

public sealed class GrpoAndDpoVariantLossTests
{
    private static Tensor Leaf(float[] v, params int[] shape)
    {
        var t = Tensor.FromArray(v, shape.Length == 0 ? [v.Length] : shape);
        t.RequiresGrad = true;
        return t;
    }

    private static double LogSigmoid(double x) => x >= 0 ? -Math.Log(1 + Math.Exp(-x)) : x - Math.Log(1 + Math.Exp(x));
    private static double Sigmoid(double x) => 1 / (1 + Math.Exp(-x));

    // ---- GRPO ----

    [Fact]
    public void GroupAdvantages_AreGroupNormalised_AndDrGrpoDropsTheStd()
    {
        // Group [1, 0, 0, 1]: mean ½, Bessel std √((4·¼)/3) = 0.577350 ⇒ A = ±½/(0.577350 + 1e-4) = ±0.865875.
        // Group [2, 2, 2, 2]: all equal ⇒ A = 0 and the group is flagged (DAPO's dynamic sampling drops it).
        var a = GrpoLoss.Advantages([1f, 0f, 0f, 1f, 2f, 2f, 2f, 2f], groupSize: 4);
        float[] expected = [0.865875f, -0.865875f, -0.865875f, 0.865875f, 0, 0, 0, 0];
        for (int i = 0; i < 8; i++) Assert.Equal(expected[i], a.Advantages[i], 5);
        Assert.Equal(Math.Sqrt(1.0 / 3), a.GroupStd[0], 9);
        Assert.Equal([false, true], a.ZeroStdGroups);
        Assert.Equal(0.5, a.ZeroStdFraction);
        // Dr. GRPO: A = r − mean, so ±½.
        var dr = GrpoLoss.Advantages([1f, 0f, 0f, 1f], groupSize: 4, scaleRewards: false);
        Assert.Equal([0.5f, -0.5f, -0.5f, 0.5f], dr.Advantages);
        Assert.Throws<ArgumentException>(() => GrpoLoss.Advantages([1f, 2f, 3f], groupSize: 2));
        Assert.Throws<ArgumentException>(() => GrpoLoss.Advantages([1f, 2f], groupSize: 1));
    }

    [Fact]
    public void OverlongPenalty_FollowsDapoEquation13()
    {
        // L_max = 20, L_cache = 4: free up to 16 tokens, then (16 − |y|)/4, −1 beyond 20.
        Assert.Equal(0, GrpoLoss.OverlongPenalty(10, 20, 4));
        Assert.Equal(0, GrpoLoss.OverlongPenalty(16, 20, 4));
        Assert.Equal(-0.25, GrpoLoss.OverlongPenalty(17, 20, 4));
        Assert.Equal(-1, GrpoLoss.OverlongPenalty(20, 20, 4));
        Assert.Equal(-1, GrpoLoss.OverlongPenalty(25, 20, 4));
    }

    // B = 2 completions, T = 2 tokens; the second completion has one real token.
    // ρ = [1.5, 1 | 0.5, pad]; A = [1, −1]; ε_low = 0.2, ε_high = 0.28 (DAPO's clip-higher).
    //   token (0,0): min(1.5·1, 1.28·1) = 1.28 ⇒ ℓ = −1.28 (clipped high)
    //   token (0,1): ρ = 1 ⇒ ℓ = −1
    //   token (1,0): min(0.5·−1, 0.8·−1) = −0.8 ⇒ ℓ = 0.8 (clipped low)
    private static readonly float[] Mask = [1, 1, 1, 0];
    private static readonly float[] Old = [-1f, -1f, -2f, 0f];
    private static readonly float[] New = [-1f + (float)Math.Log(1.5), -1f, -2f + (float)Math.Log(0.5), 0f];
    private static readonly float[] A = [1f, -1f];

    [Theory]
    // grpo:    ¼·(−1.28 − 1) + ½·0.8                 = −0.17
    // bnpo:    (−1.28 − 1 + 0.8)/3                   = −0.493333
    // dr_grpo: (−1.28 − 1 + 0.8)/(B·L_max = 2·4)     = −0.185
    // dapo:    (−1.28 − 1 + 0.8)/N, N = 5 tokens      = −0.296
    [InlineData(GrpoLossType.Grpo, -0.17)]
    [InlineData(GrpoLossType.Bnpo, -0.4933333)]
    [InlineData(GrpoLossType.DrGrpo, -0.185)]
    [InlineData(GrpoLossType.Dapo, -0.296)]
    public void GrpoLoss_AggregationsEqualHandValues(GrpoLossType type, double expected)
    {
        var w = GrpoLoss.Weights(Mask, 2, 2, type, maxCompletionLength: 4, dapoTokens: 5);
        var r = GrpoLoss.Compute(Leaf(New, 2, 2), Old, default, A, Mask, w, 0.2f, 0.28f, beta: 0);
        Assert.Equal(expected, r.Loss.Item(), 5);
        Assert.Equal(1 / 3.0, r.HighClipFraction, 6);
        Assert.Equal(1 / 3.0, r.LowClipFraction, 6);
    }

    [Fact]
    public void GrpoLoss_AddsBetaTimesK3ToTheReference()
    {
        // Reference = old. k3 = e^d − d − 1 with d = log π_ref − log π_θ:
        //   (0,0): d = −ln 1.5 ⇒ 1/1.5 + ln 1.5 − 1 = 0.0721318;  (0,1): 0;  (1,0): d = ln 2 ⇒ 2 − ln 2 − 1 = 0.3068528.
        // grpo: −0.17 + 0.04·(¼·0.0721318 + ½·0.3068528) = −0.1631416; mean k3 over the 3 tokens = 0.1263282.
        var w = GrpoLoss.Weights(Mask, 2, 2, GrpoLossType.Grpo, 4);
        var r = GrpoLoss.Compute(Leaf(New, 2, 2), Old, Old, A, Mask, w, 0.2f, 0.28f, beta: (float)GrpoLoss.DeepSeekMathBeta);
        Assert.Equal(-0.1631416, r.Loss.Item(), 5);
        Assert.Equal(0.1263282, r.Kl, 5);
    }

    [Theory]
    [InlineData(GrpoLossType.Grpo)]
    [InlineData(GrpoLossType.Bnpo)]
    [InlineData(GrpoLossType.DrGrpo)]
    [InlineData(GrpoLossType.Dapo)]
    public void GrpoLoss_GradientMatchesFloat64CentralDifferences(GrpoLossType type)
    {
        const int B = 3, T = 4;
        const double beta = 0.3, epsLow = 0.2, epsHigh = 0.28;
        var rng = new Rng(5);
        float[] old = [.. Enumerable.Range(0, B * T).Select(_ => (float)rng.Normal(-1.5, 0.5))];
        float[] refLp = [.. old.Select(o => o + (float)rng.Normal(0, 0.3))];
        float[] logp = [.. old.Select(o => o + (float)rng.Normal(0, 0.15))];
        float[] adv = [0.7f, -1.1f, 0.4f];
        float[] mask = [1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0];
        var w = GrpoLoss.Weights(mask, B, T, type, maxCompletionLength: 6, dapoTokens: 7.5);
        double Reference(double[] x)
        {
            double sum = 0;
            for (int i = 0; i < B * T; i++)
            {
                double a = adv[i / T], rho = Math.Exp(x[i] - old[i]);
                double pg = -Math.Min(rho * a, Math.Clamp(rho, 1 - epsLow, 1 + epsHigh) * a);
                double d = refLp[i] - x[i];
                sum += w[i] * (pg + beta * (Math.Exp(d) - d - 1));
            }
            return sum;
        }
        CheckGradients(x => GrpoLoss.Compute(Ops.Reshape(x[0], B, T), old, refLp, adv, mask, w, (float)epsLow, (float)epsHigh, (float)beta).Loss,
            x => Reference(x[0]), [logp], [mask]);
    }

    // ---- the DPO family ----

    // Two pairs. Sums s and lengths: pair 0 s_w = −2 (|y_w| 2, s̄ −1), s_l = −6 (3, s̄ −2); pair 1 s_w = −4 (2, −2), s_l = −2 (1, −2).
    private static readonly float[] Sw = [-2f, -4f], Sl = [-6f, -2f];
    private static readonly int[] Nw = [2, 2], Nl = [3, 1];

    [Fact]
    public void Ipo_EqualsHandValueAndGradient()
    {
        // Reference sums: pair 0 −3/2 → −1.5, −4.5/3 → −1.5; pair 1 −2/2 → −1, −3/1 → −3. β = ½ ⇒ 1/(2β) = 1.
        // h0 = (−1 + 2) − (−1.5 + 1.5) = 1 ⇒ (1 − 1)² = 0;  h1 = (−2 + 2) − (−1 + 3) = −2 ⇒ (−3)² = 9;  mean = 4.5.
        // ∂L/∂s_w1 = (2/B)(h1 − 1)/|y_w| = (−3)/2 = −1.5; ∂L/∂s_l1 = −(2/B)(h1 − 1)/|y_l| = 3; pair 0's gradients are 0.
        var w = Leaf(Sw);
        var l = Leaf(Sl);
        var r = DpoVariantLosses.Ipo(w, l, [-3f, -2f], [-4.5f, -3f], Nw, Nl, beta: 0.5f);
        Assert.Equal(4.5, r.Loss.Item(), 5);
        r.Loss.Backward();
        Assert.Equal([0f, -1.5f], w.Grad!.ToArray());
        Assert.Equal([0f, 3f], l.Grad!.ToArray());
    }

    [Fact]
    public void SimPo_EqualsHandValue()
    {
        // β = 2, γ = ½. Pair 0: 2·(−1 + 2) − ½ = 1.5 ⇒ −log σ(1.5) = 0.2014133.
        // Pair 1: 2·(−2 + 2) − ½ = −0.5 ⇒ −log σ(−0.5) = 0.9740770.  Mean 0.5877451.
        var r = DpoVariantLosses.SimPo(Leaf(Sw), Leaf(Sl), Nw, Nl, beta: 2f, gamma: 0.5f);
        Assert.Equal(0.5877451, r.Loss.Item(), 5);
        Assert.Equal([-2f, -4f], r.ChosenRewards);
    }

    [Fact]
    public void Orpo_EqualsHandValue()
    {
        // log odds(s̄) = s̄ − log(1 − e^{s̄}): s̄ = −1 → −1 + 0.4586751 = −0.5413249; s̄ = −2 → −2 + 0.1454135 = −1.8545865.
        // Pair 0: log σ(−0.5413249 + 1.8545865 = 1.3132617) = −0.2381830. Pair 1: equal odds ⇒ log σ(0) = −0.6931472.
        // NLL = −(−2 − 4)/(2 + 2) = 1.5. L = 1.5 − 0.1·(−0.2381830 − 0.6931472)/2 = 1.5465665.
        var r = DpoVariantLosses.Orpo(Leaf(Sw), Leaf(Sl), Nw, Nl, lambda: 0.1f);
        Assert.Equal(1.5465665, r.Loss.Item(), 5);
    }

    [Fact]
    public void Kto_EqualsHandValue_AndItsReferencePointIsClampedAtZero()
    {
        // s = [−2, −3, −1], sʳᵉᶠ = [−2.5, −2, −1], labels [desirable, undesirable, desirable]; β = ½, λ_D = 1, λ_U = 1.5.
        // KL pairs: (−3 + 3.2, −4 + 4.4) ⇒ z = mean(0.2, 0.4) = 0.3.
        //   ex 0: 1 − σ(½·(0.5 − 0.3)) = 1 − σ(0.1);   ex 1: 1.5·(1 − σ(½·(0.3 + 1))) = 1.5·(1 − σ(0.65));
        //   ex 2: 1 − σ(½·(0 − 0.3)) = 1 − σ(−0.15).   Mean = (0.4750208 + 1.5·0.3429895 + 0.5374298)/3 = 0.5089783.
        var r = DpoVariantLosses.Kto(Leaf([-2f, -3f, -1f]), [-2.5f, -2f, -1f], [true, false, true], [-3f, -4f], [-3.2f, -4.4f], beta: 0.5f, 1f, 1.5f);
        Assert.Equal(0.5089783, r.Loss.Item(), 5);
        Assert.Equal(0.3, r.Kl, 6);
        // A negative KL estimate is clamped: z = 0, so ex 0 scores 1 − σ(½·0.5).
        var clamped = DpoVariantLosses.Kto(Leaf([-2f]), [-2.5f], [true], [-4f], [-3f], beta: 0.5f);
        Assert.Equal(0, clamped.Kl);
        Assert.Equal(1 - Sigmoid(0.25), clamped.Loss.Item(), 6);
    }

    [Fact]
    public void DpoVariants_GradientsMatchFloat64CentralDifferences()
    {
        const int B = 5;
        var rng = new Rng(9);
        int[] nw = [3, 1, 4, 2, 5], nl = [2, 2, 1, 6, 3];
        float[] sw = [.. nw.Select(n => (float)(n * rng.Normal(-1.2, 0.3)))];
        float[] sl = [.. nl.Select(n => (float)(n * rng.Normal(-1.4, 0.3)))];
        float[] rw = [.. sw.Select(s => s + (float)rng.Normal(0, 0.5))];
        float[] rl = [.. sl.Select(s => s + (float)rng.Normal(0, 0.5))];
        float[] ones = [1, 1, 1, 1, 1];
        const double beta = 0.7, gamma = 0.3, lambda = 0.2;

        CheckGradients(x => DpoVariantLosses.Ipo(x[0], x[1], rw, rl, nw, nl, (float)beta).Loss, x =>
        {
            double s = 0;
            for (int b = 0; b < B; b++)
            {
                double h = x[0][b] / nw[b] - x[1][b] / nl[b] - (rw[b] / (double)nw[b] - rl[b] / (double)nl[b]);
                s += Math.Pow(h - 1 / (2 * beta), 2);
            }
            return s / B;
        }, [sw, sl], [ones, ones]);

        CheckGradients(x => DpoVariantLosses.SimPo(x[0], x[1], nw, nl, (float)beta, (float)gamma).Loss, x =>
        {
            double s = 0;
            for (int b = 0; b < B; b++) s -= LogSigmoid(beta * (x[0][b] / nw[b] - x[1][b] / nl[b]) - gamma);
            return s / B;
        }, [sw, sl], [ones, ones]);

        CheckGradients(x => DpoVariantLosses.Orpo(x[0], x[1], nw, nl, (float)lambda).Loss, x =>
        {
            static double LogOdds(double a) => a - Math.Log(1 - Math.Exp(a));
            double ratio = 0, nll = 0;
            for (int b = 0; b < B; b++)
            {
                ratio += LogSigmoid(LogOdds(x[0][b] / nw[b]) - LogOdds(x[1][b] / nl[b]));
                nll -= x[0][b];
            }
            return nll / nw.Sum() - lambda * ratio / B;
        }, [sw, sl], [ones, ones]);

        bool[] desirable = [true, false, false, true, true];
        float[] klPolicy = [-3f, -2.5f, -4f], klRef = [-3.3f, -2.4f, -4.6f]; // z = (0.3 − 0.1 + 0.6)/3
        CheckGradients(x => DpoVariantLosses.Kto(x[0], rw, desirable, klPolicy, klRef, (float)beta, 1f, 1.33f).Loss, x =>
        {
            double z = Math.Max(0, (0.3 - 0.1 + 0.6) / 3), s = 0;
            for (int b = 0; b < B; b++)
            {
                double d = x[0][b] - rw[b];
                s += desirable[b] ? 1 - Sigmoid(beta * (d - z)) : 1.33 * (1 - Sigmoid(beta * (z - d)));
            }
            return s / B;
        }, [sw], [ones]);
    }

    /// <summary>
    /// The loss value against its float64 reference, and each input's autograd gradient against the float64 central
    /// difference of the reference, h = 1e-6 (masked entries must get exactly 0).
    /// </summary>
    private static void CheckGradients(Func<Tensor[], Tensor> loss, Func<double[][], double> reference, float[][] inputs, float[][] masks)
    {
        var leaves = inputs.Select(a => Leaf(a)).ToArray();
        var l = loss(leaves);
        double[][] x = [.. inputs.Select(a => a.Select(f => (double)f).ToArray())];
        Assert.Equal(reference(x), l.Item(), 5);
        l.Backward();
        const double h = 1e-6;
        for (int k = 0; k < inputs.Length; k++)
        {
            var g = leaves[k].Grad!.Span;
            for (int i = 0; i < inputs[k].Length; i++)
            {
                double keep = x[k][i];
                x[k][i] = keep + h; double up = reference(x);
                x[k][i] = keep - h; double down = reference(x);
                x[k][i] = keep;
                double numeric = (up - down) / (2 * h);
                if (masks[k][i] == 0) Assert.Equal(0f, g[i]);
                Assert.True(Math.Abs(numeric - g[i]) <= 2e-6 + 1e-4 * Math.Abs(numeric), $"input {k} entry {i}: autograd {g[i]}, float64 central difference {numeric}");
            }
        }
    }
}
