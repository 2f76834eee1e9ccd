// Which pairs of segments to ask about: Christiano et al. §2.2.4 sample many candidate pairs and send those on which the
// ensemble's predictions P̂[σ¹ ≻ σ²] vary most; uniform random pairs are the ablation.
namespace RlhfSharp.Control.Preferences;

public enum SelectionRule
{
    /// <summary>Top pairs by variance of P̂ across ensemble members.</summary>
    Disagreement,
    /// <summary>Pairs drawn uniformly.</summary>
    Random,
}

public static class QuerySelection
{
    /// <summary>
    /// Picks <paramref name="count"/> pairs of distinct segments from the pool: Random draws them uniformly; Disagreement
    /// draws <paramref name="candidatesPerQuery"/>·count candidate pairs and keeps the count with the largest disagreement.
    /// </summary>
    public static List<(Trajectory First, Trajectory Second)> Select(
        IReadOnlyList<Trajectory> pool, int count, SelectionRule rule, RewardEnsemble ensemble, RlhfSharp.Tensors.Rng rng, int candidatesPerQuery = 10)
    {
        if (pool.Count < 2) throw new ArgumentException($"query selection: the segment pool holds {pool.Count} segments; need at least 2.", nameof(pool));
        if (count < 0) throw new ArgumentOutOfRangeException(nameof(count), count, "query selection: count must be ≥ 0.");
        (int, int) Draw()
        {
            int i = rng.NextInt(pool.Count), j = rng.NextInt(pool.Count - 1);
            return (i, j >= i ? j + 1 : j);
        }
        if (rule == SelectionRule.Random)
            return [.. Enumerable.Range(0, count).Select(_ => Draw()).Select(p => (pool[p.Item1], pool[p.Item2]))];
        var candidates = Enumerable.Range(0, count * Math.Max(1, candidatesPerQuery)).Select(_ => Draw()).ToList();
        // Every segment a candidate names, scored in one forward pass per member.
        var distinct = candidates.SelectMany(c => new[] { c.Item1, c.Item2 }).Distinct().ToList();
        var perMember = ensemble.SegmentSums([.. distinct.Select(k => pool[k])]);
        var sums = new Dictionary<int, double[]>();
        for (int i = 0; i < distinct.Count; i++) sums[distinct[i]] = [.. perMember.Select(p => p[i])];
        double[] SumsOf(int k) => sums[k];
        return [.. Rank(candidates.Select(c => (c, RewardEnsemble.Disagreement(SumsOf(c.Item1), SumsOf(c.Item2)).Variance)).ToList())
            .Take(count).Select(c => (pool[c.Item1], pool[c.Item2]))];
    }

    /// <summary>Orders scored items by descending disagreement (stable, so ties keep their draw order).</summary>
    public static IEnumerable<T> Rank<T>(IReadOnlyList<(T Item, double Score)> scored) =>
        scored.Select((s, i) => (s, i)).OrderByDescending(x => x.s.Score).ThenBy(x => x.i).Select(x => x.s.Item);
}
