// Over-optimisation measured on held-out prompts (Gao et al. 2022, "Scaling laws for reward model overoptimization"):
// each PPO snapshot and each best-of-N setting gets its proxy (reward-model) score, its gold reward and its KL to the
// reference, so gold can be plotted against √KL beside the proxy it was optimised for.
using RlhfSharp.Alignment.Ppo;
using RlhfSharp.Alignment.Sampling;
using RlhfSharp.Models;
using RlhfSharp.Tensors;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment.Evaluation;

/// <summary>One policy snapshot's samples on the held-out prompts.</summary>
/// <param name="Run">Which run the snapshot belongs to ("adaptive β", "β = 0", "β = 0.3").</param>
/// <param name="Step">PPO updates done when the snapshot was taken (0 is the SFT model).</param>
/// <param name="Proxy">Mean score of the reward the run optimised (the reward-model ensemble mean).</param>
/// <param name="Gold">Mean true reward.</param>
/// <param name="KlK1">Mean over prompts of Σ_t (log π − log π_ref), nats per response (unbiased, can be negative).</param>
/// <param name="KlK3">Mean over prompts of Σ_t ((r − 1) − log r), r = π_ref/π, nats per response (never negative).</param>
/// <param name="MeanLength">Mean response length in tokens.</param>
public sealed record CheckpointEvaluation(string Run, int Step, double Proxy, double Gold, double KlK1, double KlK3, double MeanLength)
{
    /// <summary>√KL with KL from k1 clipped at 0 (sampling noise makes k1 slightly negative near the reference).</summary>
    public double SqrtKl => Math.Sqrt(Math.Max(0, KlK1));
}

/// <summary>Best-of-N from the SFT model at one N: the pick's proxy and gold, and KL(π_BoN ‖ π_SFT) from the analytic formula.</summary>
public sealed record BestOfNPoint(int N, double Kl, double Proxy, double Gold)
{
    public double SqrtKl => Math.Sqrt(Kl);
}

/// <summary>Scores policy snapshots on one fixed set of held-out prompts.</summary>
public sealed class CheckpointEvaluator(EvaluationOptions? options = null)
{
    private readonly EvaluationOptions _options = options ?? new EvaluationOptions();

    /// <summary>
    /// Samples one response per prompt from <paramref name="policy"/> and scores it. Every snapshot is sampled from the
    /// same seed (common random numbers), so differences between snapshots are not sampling noise of the evaluation
    /// stream, and a snapshot identical to the reference reproduces the reference's own evaluation.
    /// </summary>
    public CheckpointEvaluation Evaluate(string run, int step, Gpt policy, Gpt reference, ITokenizer tokenizer, IReadOnlyList<string> prompts,
        IRolloutReward proxy, Func<string, string, double> gold, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(proxy);
        ArgumentNullException.ThrowIfNull(gold);
        if (prompts.Count == 0) throw new ArgumentException($"checkpoint evaluation of {run} step {step}: no prompts.");
        var sampled = new PolicyEvaluator(_options).Sample(policy, reference, tokenizer, prompts, new Rng(_options.Seed), ct);
        var scores = proxy.Score(prompts, sampled.Texts, sampled.Rows);
        double meanGold = Enumerable.Range(0, prompts.Count).Average(i => gold(prompts[i], sampled.Texts[i]));
        return new CheckpointEvaluation(run, step, scores.Average(s => (double)s), meanGold, sampled.KlK1.Average(), sampled.KlK3.Average(), sampled.Lengths.Average());
    }
}

/// <summary>Best-of-N over N from one pool of samples per prompt.</summary>
public static class BestOfNCurve
{
    /// <summary>1, 2, 4, … up to <paramref name="maxN"/> (included even when it is not a power of two).</summary>
    public static IReadOnlyList<int> Settings(int maxN)
    {
        if (maxN < 1) throw new ArgumentException($"best-of-N curve: largest N {maxN} must be ≥ 1.");
        var ns = new List<int>();
        for (int n = 1; n < maxN; n *= 2) ns.Add(n);
        ns.Add(maxN);
        return ns;
    }

    /// <summary>
    /// Draws <paramref name="maxN"/> responses per prompt from <paramref name="policy"/> once and, for every N of
    /// <see cref="Settings"/>, the expected proxy and gold of the best of N of them (<see cref="ExpectedOfBest"/>), averaged over prompts.
    /// </summary>
    public static IReadOnlyList<BestOfNPoint> Evaluate(Gpt policy, ITokenizer tokenizer, IReadOnlyList<string> prompts, int maxN, IRolloutReward proxy,
        Func<string, string, double> gold, GenerationOptions generation, Rng rng, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(gold);
        if (prompts.Count == 0) throw new ArgumentException("best-of-N curve: no prompts.");
        var ns = Settings(maxN);
        var pools = BestOfN.Sample(policy, tokenizer, prompts, maxN, proxy, generation, rng, ct: ct);
        var proxySum = new double[ns.Count];
        var goldSum = new double[ns.Count];
        foreach (var pool in pools)
        {
            var golds = pool.Candidates.Select(c => gold(pool.Prompt, c)).ToList();
            for (int k = 0; k < ns.Count; k++)
            {
                proxySum[k] += ExpectedOfBest(pool.Scores, pool.Scores, ns[k]);
                goldSum[k] += ExpectedOfBest(pool.Scores, golds, ns[k]);
            }
        }
        return ns.Select((n, k) => new BestOfNPoint(n, BestOfNSample.AnalyticKl(n), proxySum[k] / pools.Count, goldSum[k] / pools.Count)).ToList();
    }

    /// <summary>
    /// E[value of the highest-scored candidate] when N of the M candidates are drawn without replacement: the candidate
    /// of ascending score rank i (0-based) is the best of the N with probability C(i, N−1) / C(M, N). Averaging over all
    /// N-subsets instead of one uses the whole pool (Nakano et al. 2021, appendix; Gao et al. 2022, §2.2 use this estimator).
    /// </summary>
    public static double ExpectedOfBest(IReadOnlyList<double> scores, IReadOnlyList<double> values, int n)
    {
        ArgumentNullException.ThrowIfNull(scores);
        ArgumentNullException.ThrowIfNull(values);
        int m = scores.Count;
        if (values.Count != m) throw new ArgumentException($"best-of-N: {m} scores but {values.Count} values.");
        if (n < 1 || n > m) throw new ArgumentException($"best-of-N: N = {n} must lie in 1..{m} (the pool size).");
        var order = Enumerable.Range(0, m).OrderBy(i => scores[i]).ThenBy(i => i).ToArray();
        double logTotal = LogChoose(m, n), sum = 0;
        for (int rank = n - 1; rank < m; rank++)
            sum += Math.Exp(LogChoose(rank, n - 1) - logTotal) * values[order[rank]];
        return sum;
    }

    private static double LogChoose(int a, int b)
    {
        double s = 0;
        for (int k = 1; k <= b; k++) s += Math.Log((a - b + k) / (double)k);
        return s;
    }
}
