// The functional forms of Gao, Schulman & Hilton (2022), "Scaling Laws for Reward Model Overoptimization", fitted by least
// squares with bootstrap intervals. With d = √KL(π‖π_init) and R the gold reward gained over the initial policy:
//   best-of-n:  R_bon(d) = d·(α_bon − β_bon·d),        KL_bon(n) = log n − (n − 1)/n   (§2.2, eq. 1)
//   RL:         R_RL(d)  = d·(α_RL − β_RL·log d)                                    (§2.2, eq. 2)
// Both are linear in (α, β): R = α·x₁ − β·x₂ with x₁ = d and x₂ = d·g(d), g(d) = d (best-of-n) or log d (RL). We solve the
// 2×2 normal equations on R itself, not on R/d: dividing by d would multiply the noise of the points near d = 0 by 1/d.
// A point at d = 0 carries no information (both regressors vanish) and leaves the fit unchanged.
// Intervals: the bootstrap resamples groups (seeds) with replacement, then points within each drawn group with replacement,
// refits, and reports the 2.5th and 97.5th percentiles (seeded, so the same points give the same interval).
using RlhfSharp.Alignment.Sampling;
using RlhfSharp.Tensors;

namespace RlhfSharp.Alignment.Evaluation;

/// <summary>Which of Gao et al.'s two forms: best-of-n (g(d) = d) or RL (g(d) = log d).</summary>
public enum OverOptimisationForm
{
    BestOfN,
    Rl,
}

/// <summary>One measured point: distance d = √KL from the initial policy, gold gained over it, and the group (seed) it came from.</summary>
public readonly record struct GoldGainPoint(double D, double GoldGain, int Group);

/// <summary>A fitted (α, β) with 95% bootstrap intervals.</summary>
/// <param name="Points">Points fitted (d &gt; 0 ones inform the fit).</param>
/// <param name="Rmse">Root mean squared residual of the point fit, in gold units.</param>
/// <param name="Resamples">Bootstrap resamples whose fit was defined (a resample whose points all share one d is not).</param>
public sealed record ScalingLawFit(OverOptimisationForm Form, double Alpha, double Beta, double AlphaLow, double AlphaHigh, double BetaLow, double BetaHigh,
    int Points, double Rmse, int Resamples)
{
    /// <summary>The fitted curve's gold gain at <paramref name="d"/>.</summary>
    public double Predict(double d) => GaoScalingLaws.Predict(Form, Alpha, Beta, d);
}

public static class GaoScalingLaws
{
    /// <summary>KL(π_bon ‖ π_init) of best-of-n, in nats (Stiennon et al. 2020, appendix; Gao et al. eq. 1's x axis).</summary>
    public static double KlBestOfN(int n) => BestOfNSample.AnalyticKl(n);

    /// <summary>g(d): d for best-of-n, log d for RL.</summary>
    public static double Shape(OverOptimisationForm form, double d) => form == OverOptimisationForm.BestOfN ? d : Math.Log(d);

    /// <summary>R(d) = d·(α − β·g(d)); 0 at d = 0 for both forms (d·log d → 0).</summary>
    public static double Predict(OverOptimisationForm form, double alpha, double beta, double d) => d <= 0 ? 0 : d * (alpha - beta * Shape(form, d));

    /// <summary>
    /// Least squares for (α, β) in R = α·d − β·d·g(d), or null when the points do not determine them (fewer than two
    /// distinct d &gt; 0, so the normal equations are singular).
    /// </summary>
    public static (double Alpha, double Beta)? LeastSquares(OverOptimisationForm form, IReadOnlyList<GoldGainPoint> points)
    {
        ArgumentNullException.ThrowIfNull(points);
        // Normal equations of R ≈ α·x1 + b·x2 with x1 = d, x2 = −d·g(d) (so b = β); sums in point order (a fixed order).
        double s11 = 0, s12 = 0, s22 = 0, s1r = 0, s2r = 0;
        foreach (var p in points)
        {
            if (!double.IsFinite(p.D) || !double.IsFinite(p.GoldGain)) throw new ArgumentException($"over-optimisation fit: point (d {p.D}, gold gain {p.GoldGain}) is not finite.");
            if (p.D <= 0) continue;
            double x1 = p.D, x2 = -p.D * Shape(form, p.D);
            s11 += x1 * x1; s12 += x1 * x2; s22 += x2 * x2; s1r += x1 * p.GoldGain; s2r += x2 * p.GoldGain;
        }
        double det = s11 * s22 - s12 * s12;
        // Relative test: collinear regressors (one distinct d) give det ≈ 0 up to rounding of s11·s22.
        if (!(s11 > 0) || !(Math.Abs(det) > 1e-12 * s11 * s22)) return null;
        return ((s22 * s1r - s12 * s2r) / det, (s11 * s2r - s12 * s1r) / det);
    }

    /// <summary>The point fit and 95% bootstrap intervals over groups, then points within groups.</summary>
    public static ScalingLawFit Fit(OverOptimisationForm form, IReadOnlyList<GoldGainPoint> points, int resamples = 1000, ulong seed = 1)
    {
        ArgumentNullException.ThrowIfNull(points);
        if (resamples < 1) throw new ArgumentException($"over-optimisation fit: {resamples} bootstrap resamples; need at least 1.");
        var (alpha, beta) = LeastSquares(form, points)
            ?? throw new ArgumentException($"over-optimisation fit ({form}): {points.Count} points with {points.Where(p => p.D > 0).Select(p => p.D).Distinct().Count()} distinct d > 0; need at least 2.");
        double sq = 0;
        foreach (var p in points) { double r = p.GoldGain - Predict(form, alpha, beta, p.D); sq += r * r; }
        var groups = points.GroupBy(p => p.Group).OrderBy(g => g.Key).Select(g => g.ToArray()).ToArray();
        var rng = new Rng(seed);
        var alphas = new List<double>(resamples);
        var betas = new List<double>(resamples);
        var sample = new List<GoldGainPoint>(points.Count);
        for (int b = 0; b < resamples; b++)
        {
            sample.Clear();
            for (int g = 0; g < groups.Length; g++)
            {
                var group = groups[rng.NextInt(groups.Length)];
                for (int i = 0; i < group.Length; i++) sample.Add(group[rng.NextInt(group.Length)]);
            }
            if (LeastSquares(form, sample) is not { } fit) continue;
            alphas.Add(fit.Alpha);
            betas.Add(fit.Beta);
        }
        if (alphas.Count == 0) throw new ArgumentException($"over-optimisation fit ({form}): no bootstrap resample of {points.Count} points could be fitted.");
        alphas.Sort();
        betas.Sort();
        return new ScalingLawFit(form, alpha, beta, Percentile(alphas, 0.025), Percentile(alphas, 0.975), Percentile(betas, 0.025), Percentile(betas, 0.975),
            points.Count, Math.Sqrt(sq / points.Count), alphas.Count);
    }

    /// <summary>
    /// The smallest d at which the curve first reaches <paramref name="gain"/> (searched on a grid up to <paramref name="maxD"/>),
    /// or null when it never does there.
    /// </summary>
    public static double? DistanceToReach(ScalingLawFit fit, double gain, double maxD)
    {
        ArgumentNullException.ThrowIfNull(fit);
        const int Steps = 4000;
        for (int i = 1; i <= Steps; i++)
        {
            double d = maxD * i / Steps;
            if (fit.Predict(d) >= gain) return d;
        }
        return null;
    }

    /// <summary>Linear interpolation between order statistics of a sorted list (the "type 7" percentile).</summary>
    public static double Percentile(IReadOnlyList<double> sorted, double q)
    {
        ArgumentNullException.ThrowIfNull(sorted);
        if (sorted.Count == 0) throw new ArgumentException("percentile of no values.");
        double h = (sorted.Count - 1) * q;
        int lo = (int)Math.Floor(h), hi = Math.Min(lo + 1, sorted.Count - 1);
        return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
    }
}
