// Dawid–Skene (1979): the true label of each item and a confusion matrix per labeller, estimated together by EM.
// It down-weights careless labellers and can even use consistently wrong ones, where majority vote cannot.
namespace RlhfSharp.Feedback.Quality;

/// <summary>What Dawid–Skene estimated.</summary>
/// <param name="Classes">The label values, in the order the arrays below use.</param>
/// <param name="Posteriors">Per item: P(true class = c | all labels).</param>
/// <param name="Priors">P(true class = c).</param>
/// <param name="Confusions">Per labeller: [true class, given label] → P(label | class).</param>
/// <param name="Iterations">EM iterations run.</param>
public sealed record DawidSkeneResult(
    IReadOnlyList<string> Classes,
    IReadOnlyDictionary<long, double[]> Posteriors,
    double[] Priors,
    IReadOnlyDictionary<long, double[,]> Confusions,
    int Iterations)
{
    /// <summary>The most probable class of an item.</summary>
    public string Label(long item)
    {
        var p = Posteriors[item];
        int best = 0;
        for (int c = 1; c < p.Length; c++) if (p[c] > p[best]) best = c;
        return Classes[best];
    }
}

public static class DawidSkene
{
    /// <summary>
    /// Runs EM on (item, labeller, label) triples. Start: each item's class distribution is its majority vote
    /// (split evenly on a tie). Each iteration is an M-step (priors; confusions with <paramref name="smoothing"/> added
    /// to every count, so an unseen label is unlikely rather than impossible) then an E-step
    /// (posterior ∝ prior · Π_labellers P(label | class)). Stops after <paramref name="maxIterations"/> or when no
    /// posterior moves by more than <paramref name="tolerance"/>.
    /// </summary>
    public static DawidSkeneResult Fit(IReadOnlyList<(long Item, long Labeler, string Label)> labels, int maxIterations = 100, double smoothing = 0.01, double tolerance = 1e-6)
    {
        if (labels.Count == 0) throw new ArgumentException("Dawid–Skene needs at least one label.");
        if (maxIterations < 1) throw new ArgumentException($"maxIterations must be ≥ 1; got {maxIterations}.");
        if (smoothing < 0) throw new ArgumentException($"smoothing must be ≥ 0; got {smoothing}.");
        var classes = labels.Select(l => l.Label).Distinct().Order(StringComparer.Ordinal).ToArray();
        var index = classes.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i);
        int K = classes.Length;
        var byItem = labels.GroupBy(l => l.Item).ToDictionary(g => g.Key, g => g.Select(l => (l.Labeler, Class: index[l.Label])).ToArray());
        var labellers = labels.Select(l => l.Labeler).Distinct().ToArray();

        var T = new Dictionary<long, double[]>();
        foreach (var (item, ls) in byItem)
        {
            var votes = new double[K];
            foreach (var (_, c) in ls) votes[c]++;
            double max = votes.Max();
            int winners = votes.Count(v => v == max);
            T[item] = [.. votes.Select(v => v == max ? 1.0 / winners : 0)];
        }

        double[] priors = new double[K];
        var confusions = labellers.ToDictionary(j => j, _ => new double[K, K]);
        int it = 0;
        while (it < maxIterations)
        {
            it++;
            // M-step.
            Array.Clear(priors);
            foreach (var t in T.Values) for (int c = 0; c < K; c++) priors[c] += t[c] / T.Count;
            foreach (var j in labellers)
            {
                var m = confusions[j];
                for (int c = 0; c < K; c++) for (int l = 0; l < K; l++) m[c, l] = smoothing;
            }
            foreach (var (item, ls) in byItem)
                foreach (var (j, l) in ls)
                    for (int c = 0; c < K; c++) confusions[j][c, l] += T[item][c];
            foreach (var m in confusions.Values)
                for (int c = 0; c < K; c++)
                {
                    double row = 0;
                    for (int l = 0; l < K; l++) row += m[c, l];
                    for (int l = 0; l < K; l++) m[c, l] = row > 0 ? m[c, l] / row : 1.0 / K;
                }
            // E-step, in log space so many labellers cannot underflow.
            double moved = 0;
            foreach (var (item, ls) in byItem)
            {
                var log = new double[K];
                for (int c = 0; c < K; c++)
                {
                    log[c] = Math.Log(priors[c]);
                    foreach (var (j, l) in ls) log[c] += Math.Log(confusions[j][c, l]);
                }
                double max = log.Max();
                var p = log.Select(x => double.IsNegativeInfinity(x) ? 0 : Math.Exp(x - max)).ToArray();
                double sum = p.Sum();
                for (int c = 0; c < K; c++)
                {
                    p[c] /= sum;
                    moved = Math.Max(moved, Math.Abs(p[c] - T[item][c]));
                }
                T[item] = p;
            }
            if (moved <= tolerance) break;
        }
        return new DawidSkeneResult(classes, T, priors, confusions.ToDictionary(kv => kv.Key, kv => kv.Value), it);
    }
}
