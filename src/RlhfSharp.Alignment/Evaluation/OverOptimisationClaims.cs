// Gao, Schulman & Hilton (2022)'s qualitative claims checked one by one against a sweep's fits, each with a verdict
// (pass, fail, or n/a when the sweep lacks what the claim compares) and the numbers behind it:
//   1. α_RL is roughly independent of RM size (§3.2): the 95% intervals of α_RL over sizes share a point, at every count.
//   2–3. β_bon and β_RL shrink as the RM grows (§3.2, fig. 3): β at the largest size < β at the smallest, at every count.
//   4–5. β_bon and β_RL shrink as comparisons grow (§3.4): β at the most comparisons < β at the fewest, at every size.
//   6. RL needs more KL than best-of-n for the same gold (§3.5): on the measured curves (averaged over seeds, linearly
//      interpolated), the KL at which RL first reaches half of best-of-n's largest gain is larger than best-of-n's (or RL
//      never reaches it), in every cell where best-of-n gained gold. Measured, not fitted: the RL form rises like −d·log d
//      near d = 0, so a fitted curve reaches any small gain at almost no KL whatever the points say.
using System.Globalization;
using RlhfSharp.Models;

namespace RlhfSharp.Alignment.Evaluation;

/// <summary>One claim: what it says, pass / fail / n/a, and the numbers.</summary>
public sealed record ClaimCheck(string Claim, string Verdict, string Evidence);

public static class OverOptimisationClaims
{
    public const string Pass = "pass", Fail = "fail", NotApplicable = "n/a";

    public static IReadOnlyList<ClaimCheck> Check(IReadOnlyList<OverOptimisationFitRow> fits, IReadOnlyList<string> rmSizes, IReadOnlyList<int> comparisons)
    {
        ArgumentNullException.ThrowIfNull(fits);
        var sizes = rmSizes.OrderBy(s => IndexOfSize(s)).ToList();
        var counts = comparisons.Order().ToList();
        OverOptimisationFitRow? Row(string size, int count) => fits.FirstOrDefault(f => f.RmSize == size && f.Comparisons == count);
        return
        [
            AlphaIndependentOfSize(sizes, counts, Row),
            Shrinks("β_bon shrinks as the reward model grows", sizes, counts, Row, r => r.BestOfN, bySize: true),
            Shrinks("β_RL shrinks as the reward model grows", sizes, counts, Row, r => r.Rl, bySize: true),
            Shrinks("β_bon shrinks as comparisons grow", sizes, counts, Row, r => r.BestOfN, bySize: false),
            Shrinks("β_RL shrinks as comparisons grow", sizes, counts, Row, r => r.Rl, bySize: false),
            RlNeedsMoreKl(fits),
        ];
    }

    private static int IndexOfSize(string size) => GptConfig.Sizes.ToList().IndexOf(size) is var i && i >= 0 ? i : int.MaxValue;

    private static ClaimCheck AlphaIndependentOfSize(List<string> sizes, List<int> counts, Func<string, int, OverOptimisationFitRow?> row)
    {
        const string Claim = "α_RL roughly independent of reward-model size";
        if (sizes.Count < 2) return new ClaimCheck(Claim, NotApplicable, "needs at least two reward-model sizes");
        var parts = new List<string>();
        bool all = true, any = false;
        foreach (int c in counts)
        {
            var fits = sizes.Select(s => (Size: s, Fit: row(s, c)?.Rl)).Where(x => x.Fit is not null).ToList();
            if (fits.Count < 2) continue;
            any = true;
            bool overlap = fits.Max(x => x.Fit!.AlphaLow) <= fits.Min(x => x.Fit!.AlphaHigh);
            all &= overlap;
            parts.Add($"{c} comparisons: " + string.Join(", ", fits.Select(x => $"{x.Size} {Interval(x.Fit!.Alpha, x.Fit.AlphaLow, x.Fit.AlphaHigh)}")) + (overlap ? " (intervals overlap)" : " (intervals disjoint)"));
        }
        return any ? new ClaimCheck(Claim, all ? Pass : Fail, string.Join("; ", parts)) : new ClaimCheck(Claim, NotApplicable, "no comparison count has RL fits at two sizes");
    }

    private static ClaimCheck Shrinks(string claim, List<string> sizes, List<int> counts, Func<string, int, OverOptimisationFitRow?> row, Func<OverOptimisationFitRow, ScalingLawFit?> pick, bool bySize)
    {
        var outer = bySize ? counts.Select(c => (object)c).ToList() : sizes.Select(s => (object)s).ToList();
        int inner = bySize ? sizes.Count : counts.Count;
        if (inner < 2) return new ClaimCheck(claim, NotApplicable, bySize ? "needs at least two reward-model sizes" : "needs at least two comparison counts");
        var parts = new List<string>();
        int held = 0, checkedCount = 0;
        foreach (var o in outer)
        {
            OverOptimisationFitRow? At(int i) => bySize ? row(sizes[i], (int)o) : row((string)o, counts[i]);
            var first = At(0) is { } r0 ? pick(r0) : null;
            var last = At(inner - 1) is { } r1 ? pick(r1) : null;
            if (first is null || last is null) continue;
            checkedCount++;
            bool ok = last.Beta < first.Beta;
            if (ok) held++;
            bool separated = last.BetaHigh < first.BetaLow;
            string lo = bySize ? sizes[0] : $"{counts[0]}", hi = bySize ? sizes[^1] : $"{counts[^1]}";
            string at = bySize ? $"{o} comparisons" : $"{o}";
            parts.Add($"{at}: {lo} {Interval(first.Beta, first.BetaLow, first.BetaHigh)} → {hi} {Interval(last.Beta, last.BetaLow, last.BetaHigh)}{(ok ? separated ? " (smaller, intervals disjoint)" : " (smaller, intervals overlap)" : " (not smaller)")}");
        }
        if (checkedCount == 0) return new ClaimCheck(claim, NotApplicable, "no fits at both ends");
        return new ClaimCheck(claim, held == checkedCount ? Pass : Fail, $"{held} of {checkedCount} hold; " + string.Join("; ", parts));
    }

    private static ClaimCheck RlNeedsMoreKl(IReadOnlyList<OverOptimisationFitRow> fits)
    {
        const string Claim = "RL needs more KL than best-of-n for the same gold";
        var parts = new List<string>();
        int held = 0, decided = 0;
        foreach (var f in fits)
        {
            if (f.MeanBestOfN.Count == 0 || f.MeanRl.Count == 0) continue;
            double peak = f.MeanBestOfN.Max(p => p.GoldGain);
            if (!(peak > 0)) continue;
            double target = peak / 2;
            double? dBon = FirstReach(f.MeanBestOfN, target), dRl = FirstReach(f.MeanRl, target);
            if (dBon is null) continue;
            decided++;
            bool ok = dRl is null || dRl > dBon;
            if (ok) held++;
            double maxRl = f.MeanRl.Max(p => p.D);
            parts.Add($"{f.RmSize}/{f.Comparisons}: gold +{F(target)} at KL {F(dBon.Value * dBon.Value)} (best-of-n) vs {(dRl is double d ? $"KL {F(d * d)}" : $"not reached by KL {F(maxRl * maxRl)}")} (RL)");
        }
        if (decided == 0) return new ClaimCheck(Claim, NotApplicable, "no cell where best-of-n gained gold");
        return new ClaimCheck(Claim, held == decided ? Pass : Fail, $"{held} of {decided} hold; " + string.Join("; ", parts));
    }

    /// <summary>The d at which a curve (points in the order they were reached) first reaches <paramref name="gain"/>, interpolated linearly; null if never.</summary>
    public static double? FirstReach(IReadOnlyList<GoldGainPoint> curve, double gain)
    {
        ArgumentNullException.ThrowIfNull(curve);
        for (int i = 0; i < curve.Count; i++)
        {
            if (curve[i].GoldGain < gain) continue;
            if (i == 0) return curve[0].D;
            var (a, b) = (curve[i - 1], curve[i]);
            return a.D + (gain - a.GoldGain) / (b.GoldGain - a.GoldGain) * (b.D - a.D);
        }
        return null;
    }

    private static string Interval(double x, double lo, double hi) => $"{F(x)} [{F(lo)}, {F(hi)}]";

    private static string F(double x) => x.ToString("0.###", CultureInfo.InvariantCulture);
}
