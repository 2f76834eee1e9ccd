// Whitening (standardising) advantages or rewards over a batch, for both wings with one convention, TRL's `masked_whiten`:
//   x ← (x − mean)/sqrt(var + 1e-8), var with Bessel's correction as torch.var, optionally adding the mean back (used for
//   rewards, whose level matters).
// CleanRL divides by (std + 1e-8) instead; the two differ only when the spread is near 1e-4, where TRL's form shrinks a
// batch of near-equal advantages instead of blowing it up to unit size. The language-model trainers keep their numbers;
// the control trainers (advantage normalisation per minibatch) moved to this form.
namespace RlhfSharp.Objectives;

public static class Whitening
{
    /// <summary>The variance floor inside the square root (TRL's masked_whiten).</summary>
    public const double Epsilon = 1e-8;

    /// <summary>Standardises the entries of <paramref name="values"/> whose mask is true, in place; others are left as they are.</summary>
    public static void Whiten(Span<float> values, ReadOnlySpan<bool> mask, bool shiftMean = true)
    {
        if (mask.Length != values.Length)
            throw new ArgumentException($"Whiten: values has {values.Length} entries but mask has {mask.Length}.");
        WhitenWhere(values, mask, shiftMean);
    }

    /// <summary>Standardises every entry of <paramref name="values"/> in place.</summary>
    public static void Whiten(Span<float> values, bool shiftMean = true) => WhitenWhere(values, mask: default, shiftMean);

    /// <summary>An empty mask selects every entry.</summary>
    private static void WhitenWhere(Span<float> values, ReadOnlySpan<bool> mask, bool shiftMean)
    {
        bool all = mask.IsEmpty;
        double sum = 0;
        int n = 0;
        for (int i = 0; i < values.Length; i++)
            if (all || mask[i]) { sum += values[i]; n++; }
        if (n < 2) return; // the variance of fewer than two entries is undefined: leave them untouched
        double mean = sum / n;
        double sq = 0;
        for (int i = 0; i < values.Length; i++)
            if (all || mask[i]) { double d = values[i] - mean; sq += d * d; }
        double variance = sq / (n - 1); // unbiased, as torch.var in TRL
        double inv = 1.0 / Math.Sqrt(variance + Epsilon);
        for (int i = 0; i < values.Length; i++)
        {
            if (!all && !mask[i]) continue;
            double w = (values[i] - mean) * inv;
            values[i] = (float)(shiftMean ? w : w + mean);
        }
    }
}
