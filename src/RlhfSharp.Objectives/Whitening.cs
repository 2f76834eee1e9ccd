// Whitening (standardising) advantages or rewards over a batch, as TRL's `masked_whiten`:
// (x − mean)/sqrt(var + 1e-8), optionally adding the mean back (used for rewards, whose level matters).
namespace RlhfSharp.Objectives;

public static class Whitening
{
    /// <summary>Standardises the entries of <paramref name="values"/> whose mask is true, in place; others are left as they are.</summary>
    public static void Whiten(Span<float> values, ReadOnlySpan<bool> mask, bool shiftMean = true)
    {
        if (mask.Length != values.Length)
            throw new ArgumentException($"Whiten: values has {values.Length} entries but mask has {mask.Length}.");
        double sum = 0;
        int n = 0;
        for (int i = 0; i < values.Length; i++)
            if (mask[i]) { sum += values[i]; n++; }
        if (n < 2) return; // the variance of fewer than two entries is undefined: leave them untouched
        double mean = sum / n;
        double sq = 0;
        for (int i = 0; i < values.Length; i++)
            if (mask[i]) { double d = values[i] - mean; sq += d * d; }
        double variance = sq / (n - 1); // unbiased, as torch.var in TRL
        double inv = 1.0 / Math.Sqrt(variance + 1e-8);
        for (int i = 0; i < values.Length; i++)
        {
            if (!mask[i]) continue;
            double w = (values[i] - mean) * inv;
            values[i] = (float)(shiftMean ? w : w + mean);
        }
    }

    public static void Whiten(Span<float> values, bool shiftMean = true)
    {
        Span<bool> all = values.Length <= 4096 ? stackalloc bool[values.Length] : new bool[values.Length];
        all.Fill(true);
        Whiten(values, all, shiftMean);
    }
}
