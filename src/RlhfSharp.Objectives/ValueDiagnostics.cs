// How well a value function predicts its targets, for both wings: explained variance, 1 − Var[R − V]/Var[R] (CleanRL's
// losses/explained_variance, TRL-style val/explained_variance): 1 is a perfect critic, 0 one no better than the mean
// return, below 0 worse than that.
namespace RlhfSharp.Objectives;

public static class ValueDiagnostics
{
    /// <summary>
    /// 1 − Var[R − V]/Var[R] over the entries whose mask is true (all when the mask is empty); NaN when the returns do not
    /// vary (as CleanRL). Both variances in one pass over float64 sums, with Bessel's correction (it cancels in the ratio).
    /// </summary>
    /// <param name="values">V per entry.</param>
    /// <param name="returns">The value targets R per entry.</param>
    /// <param name="mask">Which entries count (real tokens); empty for all.</param>
    public static double ExplainedVariance(ReadOnlySpan<float> values, ReadOnlySpan<float> returns, ReadOnlySpan<bool> mask = default)
    {
        if (values.Length != returns.Length || (!mask.IsEmpty && mask.Length != returns.Length))
            throw new ArgumentException($"explained variance: {values.Length} values, {returns.Length} returns and {mask.Length} mask entries.");
        double sum = 0, sq = 0, resSum = 0, resSq = 0;
        int n = 0;
        for (int i = 0; i < returns.Length; i++)
        {
            if (!mask.IsEmpty && !mask[i]) continue;
            n++;
            sum += returns[i];
            sq += returns[i] * (double)returns[i];
            double res = returns[i] - values[i];
            resSum += res;
            resSq += res * res;
        }
        double varReturns = n > 1 ? (sq - sum * sum / n) / (n - 1) : 0;
        double varResidual = n > 1 ? (resSq - resSum * resSum / n) / (n - 1) : 0;
        return varReturns > 0 ? 1 - varResidual / varReturns : double.NaN;
    }
}
