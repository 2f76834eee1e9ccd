// Dawid–Skene (1979): the true label of each item and a confusion matrix per labeller, estimated together by EM.
// It down-weights careless labellers and can even use consistently wrong ones, where majority vote cannot.
// Gold tasks anchor it: an item whose true label is known keeps that label as a fixed one-hot T in every E-step
// (it is observed, not estimated), so the confusion matrices are fitted against the truth wherever the truth is known,
// and a bloc of labellers who agree with each other cannot out-vote it. Without gold, the model is identified only by
// agreement; QualityControl.EstimateAccuracies says when that is not enough.
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
    /// (split evenly on a tie), or for a gold item (<paramref name="gold"/>: item → true label) the one-hot of its true
    /// label; with gold, a free item that a gold-answering labeller labelled starts instead from the posterior under
    /// confusions fitted on the gold items alone. Each iteration is an M-step (priors; confusions with <paramref name="smoothing"/> added to every count, so
    /// an unseen label is unlikely rather than impossible) then an E-step (posterior ∝ prior · Π_labellers P(label | class))
    /// that updates every item except the gold ones, whose T stays clamped. Stops after <paramref name="maxIterations"/>
    /// or when no posterior moves by more than <paramref name="tolerance"/>.
    /// </summary>
    public static DawidSkeneResult Fit(IReadOnlyList<(long Item, long Labeler, string Label)> labels, int maxIterations = 100, double smoothing = 0.01,
        double tolerance = 1e-6, IReadOnlyDictionary<long, string>? gold = null)
    {
        if (labels.Count == 0) throw new ArgumentException("Dawid–Skene needs at least one label.");
        if (maxIterations < 1) throw new ArgumentException($"maxIterations must be ≥ 1; got {maxIterations}.");
        if (smoothing < 0) throw new ArgumentException($"smoothing must be ≥ 0; got {smoothing}.");
        gold ??= new Dictionary<long, string>();
        // Only gold items someone labelled take part; their true labels are classes even if nobody gave them.
        var labelledItems = labels.Select(l => l.Item).ToHashSet();
        var anchors = gold.Where(g => labelledItems.Contains(g.Key)).ToDictionary(g => g.Key, g => g.Value);
        var classes = labels.Select(l => l.Label).Concat(anchors.Values).Distinct().Order(StringComparer.Ordinal).ToArray();
        var index = classes.Select((c, i) => (c, i)).ToDictionary(p => p.c, p => p.i);
        int K = classes.Length;
        var byItem = labels.GroupBy(l => l.Item).ToDictionary(g => g.Key, g => g.Select(l => (l.Labeler, Class: index[l.Label])).ToArray());
        var labellers = labels.Select(l => l.Labeler).Distinct().ToArray();

        var T = new Dictionary<long, double[]>();
        foreach (var (item, ls) in byItem)
        {
            if (anchors.TryGetValue(item, out var truth))
            {
                T[item] = [.. classes.Select(c => c == truth ? 1.0 : 0)];
                continue;
            }
            var votes = new double[K];
            foreach (var (_, c) in ls) votes[c]++;
            double max = votes.Max();
            int winners = votes.Count(v => v == max);
            T[item] = [.. votes.Select(v => v == max ? 1.0 / winners : 0)];
        }

        double[] priors = new double[K];
        var confusions = labellers.ToDictionary(j => j, _ => new double[K, K]);

        // M-step over the given items: priors from their T, confusions from their labels weighted by T.
        void MStep(IEnumerable<long> items)
        {
            var list = items.ToList();
            Array.Clear(priors);
            foreach (var item in list) for (int c = 0; c < K; c++) priors[c] += T[item][c] / list.Count;
            foreach (var m in confusions.Values)
                for (int c = 0; c < K; c++) for (int l = 0; l < K; l++) m[c, l] = smoothing;
            foreach (var item in list)
                foreach (var (j, l) in byItem[item])
                    for (int c = 0; c < K; c++) confusions[j][c, l] += T[item][c];
            foreach (var m in confusions.Values)
                for (int c = 0; c < K; c++)
                {
                    double row = 0;
                    for (int l = 0; l < K; l++) row += m[c, l];
                    for (int l = 0; l < K; l++) m[c, l] = row > 0 ? m[c, l] / row : 1.0 / K;
                }
        }

        // E-step, in log space so many labellers cannot underflow; gold items are observed, not estimated.
        // Returns the largest change of any posterior.
        double EStep(double[] prior, Func<long, bool> update)
        {
            double moved = 0;
            foreach (var (item, ls) in byItem)
            {
                if (anchors.ContainsKey(item) || !update(item)) continue;
                var log = new double[K];
                for (int c = 0; c < K; c++)
                {
                    log[c] = Math.Log(prior[c]);
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
            return moved;
        }

        // With gold, the start of a free item comes from confusions fitted on gold alone (uniform prior) rather than
        // from a vote: a bloc that agrees on a bias would otherwise start EM at its own answers and hold them there.
        // Items none of whose labellers answered gold keep the vote.
        if (anchors.Count > 0)
        {
            var goldAnswered = anchors.Keys.Where(byItem.ContainsKey).SelectMany(i => byItem[i].Select(l => l.Labeler)).ToHashSet();
            MStep(anchors.Keys.Where(byItem.ContainsKey));
            EStep([.. Enumerable.Repeat(1.0 / K, K)], item => byItem[item].Any(l => goldAnswered.Contains(l.Labeler)));
        }

        int it = 0;
        while (it < maxIterations)
        {
            it++;
            MStep(byItem.Keys);
            if (EStep(priors, _ => true) <= tolerance) break;
        }
        return new DawidSkeneResult(classes, T, priors, confusions.ToDictionary(kv => kv.Key, kv => kv.Value), it);
    }
}
