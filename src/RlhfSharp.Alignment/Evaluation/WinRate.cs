// Win rate of a policy over a baseline with a 95% Wilson score interval (Wilson 1927; Newcombe 1998 recommends it
// over the Wald interval, which collapses to zero width at 0 or n wins and undercovers for small n).
namespace RlhfSharp.Alignment.Evaluation;

/// <summary>
/// Head-to-head outcome counts and the win rate with its interval. Ties count ½ a win: rate = (wins + ½·ties) / n
/// with n = wins + losses + ties (skips, e.g. an AI judge's unparseable answer, are left out of n). The interval is
/// Wilson's with that rate as p̂ and n trials; a tie's ½ outcome varies less than a coin flip, so the interval is a
/// little wider than it needs to be (conservative), never narrower.
/// </summary>
public sealed record WinRateResult(int Wins, int Losses, int Ties, int Skipped, double Rate, double Low, double High)
{
    /// <summary>Comparisons that count: wins + losses + ties.</summary>
    public int Decided => Wins + Losses + Ties;

    /// <summary>Why <see cref="Rate"/> has no value (no decided comparison; JSON writes it as null beside this), or null.</summary>
    public string? RateReason => Decided == 0 ? $"no decided comparison ({Skipped} skipped)" : null;

    /// <summary>True when the whole interval lies above ½: the policy beats the baseline at this confidence.</summary>
    public bool SignificantlyAboveHalf => Low > 0.5;
}

public static class WinRate
{
    /// <summary>The standard normal quantile for a two-sided 95% interval, Φ⁻¹(0.975).</summary>
    public const double Z95 = 1.959963984540054;

    /// <summary>Win rate and 95% Wilson interval from outcome counts (ties count ½).</summary>
    public static WinRateResult FromCounts(int wins, int losses, int ties, int skipped = 0)
    {
        if (wins < 0 || losses < 0 || ties < 0 || skipped < 0)
            throw new ArgumentException($"win rate: counts must be non-negative; got wins {wins}, losses {losses}, ties {ties}, skipped {skipped}.");
        int n = wins + losses + ties;
        if (n == 0) return new WinRateResult(wins, losses, ties, skipped, double.NaN, 0, 1);
        double score = wins + 0.5 * ties;
        var (low, high) = Wilson(score, n);
        return new WinRateResult(wins, losses, ties, skipped, score / n, low, high);
    }

    /// <summary>
    /// Wilson's score interval for <paramref name="successes"/> out of <paramref name="n"/>:
    /// (p̂ + z²/2n ± z·√(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n).
    /// </summary>
    public static (double Low, double High) Wilson(double successes, int n, double z = Z95)
    {
        if (n <= 0) throw new ArgumentException($"Wilson interval: n must be positive; got {n}.");
        if (!(successes >= 0 && successes <= n)) throw new ArgumentException($"Wilson interval: successes must lie in [0, {n}]; got {successes}.");
        if (!(z > 0)) throw new ArgumentException($"Wilson interval: z must be positive; got {z}.");
        double p = successes / n, z2 = z * z, denom = 1 + z2 / n;
        double center = (p + z2 / (2 * n)) / denom;
        double half = z / denom * Math.Sqrt(p * (1 - p) / n + z2 / (4.0 * n * n));
        return (Math.Max(0, center - half), Math.Min(1, center + half));
    }
}
