// Gao et al.'s scaling forms: the fitter recovers known (α, β) from synthetic points and its bootstrap intervals cover them;
// KL_bon = log n − (n−1)/n against the exact KL of best-of-n over a large uniform base; the claims' verdicts on hand-made
// fits. The sweep itself (`rlhf overopt`, and its resume bit for bit) is tested in RlhfSharp.Cli.Tests/OverOptTests.
using RlhfSharp.Alignment.Evaluation;
using RlhfSharp.Tensors;
using Xunit.Abstractions;

namespace RlhfSharp.Alignment.Tests;

public sealed class OverOptimisationSweepTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(OverOptimisationForm.BestOfN, 0.8, 0.15)]
    [InlineData(OverOptimisationForm.Rl, 0.5, 0.2)]
    public void Given_noise_free_points_When_fitted_Then_alpha_and_beta_are_recovered_exactly(OverOptimisationForm form, double alpha, double beta)
    {
        // d = 0 (the initial policy) is included: it carries no information and must not disturb the fit.
        var points = new[] { 0.0, 0.4, 0.9, 1.5, 2.2, 3.0 }.Select(d => new GoldGainPoint(d, GaoScalingLaws.Predict(form, alpha, beta, d), 1)).ToList();
        var fit = GaoScalingLaws.Fit(form, points, resamples: 200, seed: 3);
        Assert.Equal(alpha, fit.Alpha, 1e-9);
        Assert.Equal(beta, fit.Beta, 1e-9);
        Assert.True(fit.Rmse < 1e-9, $"rmse {fit.Rmse}");
    }

    [Theory]
    [InlineData(OverOptimisationForm.BestOfN, 0.8, 0.15)]
    [InlineData(OverOptimisationForm.Rl, 0.5, 0.2)]
    public void Given_noisy_points_from_three_seeds_When_fitted_Then_the_95_percent_intervals_cover_the_truth_and_are_seeded(OverOptimisationForm form, double alpha, double beta)
    {
        var rng = new Rng(11);
        var points = new List<GoldGainPoint>();
        for (int seed = 1; seed <= 3; seed++)
            for (int i = 1; i <= 10; i++)
            {
                double d = 0.3 * i;
                points.Add(new GoldGainPoint(d, GaoScalingLaws.Predict(form, alpha, beta, d) + rng.Normal(0, 0.05), seed));
            }
        var fit = GaoScalingLaws.Fit(form, points, resamples: 500, seed: 7);
        output.WriteLine($"{fit}");
        Assert.InRange(alpha, fit.AlphaLow, fit.AlphaHigh);
        Assert.InRange(beta, fit.BetaLow, fit.BetaHigh);
        Assert.True(fit.AlphaLow < fit.Alpha && fit.Alpha < fit.AlphaHigh && fit.BetaLow < fit.Beta && fit.Beta < fit.BetaHigh, "the point fit lies inside its interval");
        Assert.True(fit.AlphaHigh - fit.AlphaLow < 0.5 * alpha, $"α interval [{fit.AlphaLow}, {fit.AlphaHigh}] is informative");
        Assert.Equal(fit, GaoScalingLaws.Fit(form, points, resamples: 500, seed: 7));
        Assert.NotEqual(fit.AlphaLow, GaoScalingLaws.Fit(form, points, resamples: 500, seed: 8).AlphaLow);
    }

    [Fact]
    public void Given_one_distinct_distance_When_fitted_Then_the_fit_is_refused_by_name()
    {
        var points = new[] { new GoldGainPoint(0, 0, 1), new GoldGainPoint(1.2, 0.3, 1), new GoldGainPoint(1.2, 0.4, 2) };
        Assert.Null(GaoScalingLaws.LeastSquares(OverOptimisationForm.Rl, points));
        var ex = Assert.Throws<ArgumentException>(() => GaoScalingLaws.Fit(OverOptimisationForm.Rl, points));
        Assert.Contains("1 distinct d > 0", ex.Message);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(16)]
    public void Given_a_large_uniform_base_When_best_of_n_KL_is_computed_exactly_Then_it_approaches_log_n_minus_n_minus_1_over_n(int n)
    {
        // Base: M equally likely outcomes with distinct scores. The best of n i.i.d. draws has rank i (0-based, ascending)
        // with probability ((i+1)^n − i^n)/M^n, so KL(π_bon‖π) = Σ_i p_i·log(p_i·M), which tends to log n − (n−1)/n as M grows.
        const int M = 200_000;
        double kl = 0;
        for (int i = 0; i < M; i++)
        {
            double p = Math.Pow((i + 1.0) / M, n) - Math.Pow((double)i / M, n);
            if (p > 0) kl += p * Math.Log(p * M);
        }
        double analytic = GaoScalingLaws.KlBestOfN(n);
        output.WriteLine($"n {n}: exact {kl:0.000000}, log n − (n−1)/n = {analytic:0.000000}");
        Assert.Equal(Math.Log(n) - (n - 1.0) / n, analytic, 1e-12);
        Assert.Equal(analytic, kl, 1e-3);
        Assert.Equal(0, GaoScalingLaws.KlBestOfN(1), 1e-15);
    }

    // Measured curves (d, gold gain): best-of-n peaks at 0.2, so the target is 0.1, reached at d = 0.5 by best-of-n; the slow
    // RL curve reaches it at d = 1.5 (more KL), the fast one at d = 0.25 (less).
    private static readonly GoldGainPoint[] BonCurve = [new(0, 0, 0), new(1, 0.2, 0), new(1.5, 0.1, 0)];
    private static readonly GoldGainPoint[] SlowRl = [new(0, 0, 0), new(1, 0.05, 0), new(2, 0.15, 0), new(3, -0.2, 0)];
    private static readonly GoldGainPoint[] FastRl = [new(0, 0, 0), new(0.5, 0.2, 0), new(3, -0.2, 0)];

    private static OverOptimisationFitRow Row(string size, int count, double betaBon, double betaRl, double alphaRl = 0.5, bool fastRl = false) =>
        new(size, count, 3, 0.7,
            new ScalingLawFit(OverOptimisationForm.BestOfN, 0.6, betaBon, 0.5, 0.7, betaBon * 0.8, betaBon * 1.2, 10, 0.01, 100),
            new ScalingLawFit(OverOptimisationForm.Rl, alphaRl, betaRl, alphaRl - 0.1, alphaRl + 0.1, betaRl * 0.8, betaRl * 1.2, 10, 0.01, 100),
            MaxBestOfND: 2, MaxRlD: 4, BonCurve, fastRl ? FastRl : SlowRl);

    [Fact]
    public void Given_measured_curves_When_the_KL_to_reach_a_gold_gain_is_read_Then_it_is_interpolated_at_the_first_crossing()
    {
        Assert.Equal(0.5, OverOptimisationClaims.FirstReach(BonCurve, 0.1)!.Value, 1e-12);
        Assert.Equal(1.5, OverOptimisationClaims.FirstReach(SlowRl, 0.1)!.Value, 1e-12);
        Assert.Null(OverOptimisationClaims.FirstReach(SlowRl, 0.3));
        var claim = OverOptimisationClaims.Check([Row("tiny", 500, 0.2, 0.1)], ["tiny"], [500])[^1];
        Assert.Equal(OverOptimisationClaims.Pass, claim.Verdict);
        Assert.Contains("gold +0.1 at KL 0.25 (best-of-n) vs KL 2.25 (RL)", claim.Evidence);
    }

    [Fact]
    public void Given_fits_where_beta_shrinks_with_size_but_grows_with_comparisons_When_checked_Then_the_verdicts_say_so()
    {
        // β_bon halves from tiny to mini at both counts, and doubles from 500 to 2000 comparisons at both sizes.
        var fits = new[] { Row("tiny", 500, 0.2, 0.1), Row("tiny", 2000, 0.4, 0.2), Row("mini", 500, 0.1, 0.05), Row("mini", 2000, 0.2, 0.1, alphaRl: 0.9, fastRl: true) };
        var claims = OverOptimisationClaims.Check(fits, ["mini", "tiny"], [2000, 500]).ToDictionary(c => c.Claim);
        foreach (var c in claims.Values) output.WriteLine($"{c.Claim}: {c.Verdict} — {c.Evidence}");
        Assert.Equal(OverOptimisationClaims.Pass, claims["β_bon shrinks as the reward model grows"].Verdict);
        Assert.Equal(OverOptimisationClaims.Pass, claims["β_RL shrinks as the reward model grows"].Verdict);
        Assert.Equal(OverOptimisationClaims.Fail, claims["β_bon shrinks as comparisons grow"].Verdict);
        Assert.Equal(OverOptimisationClaims.Fail, claims["β_RL shrinks as comparisons grow"].Verdict);
        // α_RL 0.5 ± 0.1 at tiny and mini at 500 comparisons overlap; at 2000, 0.5 ± 0.1 vs 0.9 ± 0.1 do not.
        Assert.Equal(OverOptimisationClaims.Fail, claims["α_RL roughly independent of reward-model size"].Verdict);
        Assert.Contains("intervals disjoint", claims["α_RL roughly independent of reward-model size"].Evidence);
        // mini/2000's RL curve reaches best-of-n's half-peak gain at d = 0.25 < 0.5: RL needs less KL there, so the claim fails (3 of 4).
        var rlNeedsMore = claims["RL needs more KL than best-of-n for the same gold"];
        Assert.Equal(OverOptimisationClaims.Fail, rlNeedsMore.Verdict);
        Assert.StartsWith("3 of 4 hold", rlNeedsMore.Evidence);
        Assert.Equal(OverOptimisationClaims.NotApplicable, OverOptimisationClaims.Check([fits[0]], ["tiny"], [500])[1].Verdict);
    }
}
