// Labellers: anything that answers a query. The oracle is Christiano et al.'s synthetic labeller: a gold
// scorer, a Bradley–Terry (softmax) choice at a temperature, and a probability ε of answering at random.
namespace RlhfSharp.Feedback.Labelers;

/// <summary>Something that answers queries: a person at a terminal or in the web app, the oracle, an AI judge.</summary>
public interface ILabeler
{
    /// <summary>The name a labeller is registered under in the store.</summary>
    string Name { get; }

    Task<Answer> AnswerAsync(Query query, CancellationToken ct = default);
}

/// <summary>How the oracle answers.</summary>
/// <param name="Temperature">Softmax temperature on gold scores: P(i) ∝ exp(score_i / T). Small T is a near-deterministic labeller.</param>
/// <param name="Epsilon">Probability of a uniformly random answer instead (Christiano et al. assume 10% of human labels are random).</param>
/// <param name="TieThreshold">Two candidates whose scores differ by less than this are a tie; 0 never ties. Pairs only.</param>
/// <param name="Rank">Answer with a full ranking (Plackett–Luce sampling, best first) instead of one preferred index.</param>
/// <param name="Seed">Seeds the oracle's own random stream, so a labelling run is reproducible.</param>
public sealed record OracleOptions(double Temperature = 1, double Epsilon = 0, double TieThreshold = 0, bool Rank = false, int Seed = 0);

public sealed class OracleLabeler : ILabeler
{
    private readonly Func<string, Candidate, double> _gold;
    private readonly OracleOptions _options;
    // System.Random, seeded: Feedback has no dependency on Tensors (so not its Rng), and a seeded System.Random
    // replays the same stream on every run.
    private readonly Random _random;
    private readonly Lock _lock = new();

    /// <param name="goldScorer">The true reward: (prompt, candidate) → score, higher is better.</param>
    public OracleLabeler(Func<string, Candidate, double> goldScorer, OracleOptions? options = null, string name = "oracle")
    {
        _gold = goldScorer ?? throw new ArgumentNullException(nameof(goldScorer));
        _options = options ?? new OracleOptions();
        if (!(_options.Temperature > 0)) throw new ArgumentException($"oracle temperature must be positive; got {_options.Temperature}.");
        if (!(_options.Epsilon >= 0 && _options.Epsilon <= 1)) throw new ArgumentException($"oracle epsilon must lie in [0, 1]; got {_options.Epsilon}.");
        if (!(_options.TieThreshold >= 0)) throw new ArgumentException($"oracle tie threshold must be ≥ 0; got {_options.TieThreshold}.");
        _random = new Random(_options.Seed);
        Name = name;
    }

    public string Name { get; }

    public Task<Answer> AnswerAsync(Query query, CancellationToken ct = default) => Task.FromResult(Answer(query));

    public Answer Answer(Query query)
    {
        var scores = query.Candidates.Select(c => _gold(query.Prompt, c)).ToArray();
        return Choose(scores);
    }

    /// <summary>The oracle's answer for candidates with these gold scores (safe to call from several threads).</summary>
    public Answer Choose(IReadOnlyList<double> scores)
    {
        lock (_lock) return ChooseLocked(scores);
    }

    private Answer ChooseLocked(IReadOnlyList<double> scores)
    {
        int k = scores.Count;
        if (k < 2) throw new ArgumentException($"a query needs at least 2 candidates; got {k}.");
        if (_random.NextDouble() < _options.Epsilon)
        {
            if (!_options.Rank) return Feedback.Answer.Prefer(_random.Next(k));
            var perm = Enumerable.Range(0, k).ToArray();
            _random.Shuffle(perm);
            return Feedback.Answer.Rank(perm);
        }
        if (k == 2 && _options.TieThreshold > 0 && Math.Abs(scores[0] - scores[1]) < _options.TieThreshold) return Feedback.Answer.Tie();
        if (!_options.Rank) return Feedback.Answer.Prefer(SampleSoftmax(scores, Enumerable.Range(0, k).ToList()));
        // Plackett–Luce: pick the best by softmax, then the best of the rest, and so on.
        var left = Enumerable.Range(0, k).ToList();
        var ranking = new int[k];
        for (int r = 0; r < k; r++)
        {
            int pick = SampleSoftmax(scores, left);
            ranking[r] = pick;
            left.Remove(pick);
        }
        return Feedback.Answer.Rank(ranking);
    }

    private int SampleSoftmax(IReadOnlyList<double> scores, List<int> among)
    {
        double max = among.Max(i => scores[i]);
        // Subtract the max before exp so a steep temperature cannot overflow.
        var w = among.Select(i => Math.Exp((scores[i] - max) / _options.Temperature)).ToArray();
        double u = _random.NextDouble() * w.Sum();
        for (int j = 0; j < w.Length; j++)
        {
            u -= w[j];
            if (u < 0) return among[j];
        }
        return among[^1];
    }
}
