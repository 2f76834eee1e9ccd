// Best-of-N sampling against a reward model (Nakano et al. 2021; Stiennon et al. 2020): draw N responses per prompt
// from the policy and keep the one the reward scores highest. The baseline PPO is compared with at equal KL: best-of-N
// has KL(π_BoN‖π) = log N − (N − 1)/N analytically (Stiennon et al. appendix; Hilton & Gao).
using RlhfSharp.Alignment.Ppo;
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Models;
using RlhfSharp.Tensors;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment.Sampling;

/// <summary>The best of N responses to one prompt, with every candidate's score.</summary>
public sealed record BestOfNSample(string Prompt, string Best, double BestScore, IReadOnlyList<string> Candidates, IReadOnlyList<double> Scores)
{
    /// <summary>The analytic KL of best-of-N sampling from its base policy, in nats.</summary>
    public static double AnalyticKl(int n) => Math.Log(n) - (n - 1.0) / n;
}

public static class BestOfN
{
    /// <summary>The reward model (or ensemble) folder as the judge of best-of-N; its tokenizer must match the policy's.</summary>
    public static RewardModelReward RewardModel(string directory, ITokenizer policyTokenizer)
    {
        var ensemble = RewardEnsemble.Load(directory);
        if (ensemble.First.Tokenizer.VocabSize != policyTokenizer.VocabSize)
            throw new ArgumentException($"{directory}: the reward model's tokenizer has {ensemble.First.Tokenizer.VocabSize} ids, the policy's {policyTokenizer.VocabSize}.");
        return new RewardModelReward(ensemble);
    }

    /// <summary>Samples <paramref name="n"/> responses per prompt with <paramref name="options"/> and picks the best by <paramref name="reward"/>.</summary>
    public static IReadOnlyList<BestOfNSample> Sample(Gpt policy, ITokenizer tokenizer, IReadOnlyList<string> prompts, int n, IRolloutReward reward,
        GenerationOptions options, Rng rng, int batchSize = 32, CancellationToken ct = default)
    {
        if (n < 1) throw new ArgumentException($"best-of-N: N = {n} must be ≥ 1.");
        int eos = options.EosTokenId ?? tokenizer.EosId ?? -1;
        var result = new List<BestOfNSample>(prompts.Count);
        var generator = new GptGenerator(policy);
        int perBatch = Math.Max(1, batchSize / n);
        for (int start = 0; start < prompts.Count; start += perBatch)
        {
            ct.ThrowIfCancellationRequested();
            var chunk = prompts.Skip(start).Take(perBatch).ToList();
            var encoded = chunk.SelectMany(p => Enumerable.Repeat(tokenizer.Encode(p) is { Length: > 0 } t ? t : [eos], n)).ToList();
            var gen = generator.Generate(encoded, options, rng);
            var texts = new List<string>();
            var rows = new List<int[]>();
            for (int b = 0; b < gen.Batch; b++)
            {
                var resp = gen.Response(b);
                texts.Add(tokenizer.Decode(resp.Length > 0 && resp[^1] == eos ? resp.AsSpan(0, resp.Length - 1) : resp));
                rows.Add([.. gen.Prompt(b), .. resp]);
            }
            var scores = reward.Score(chunk.SelectMany(p => Enumerable.Repeat(p, n)).ToList(), texts, rows);
            for (int i = 0; i < chunk.Count; i++)
            {
                int best = i * n;
                for (int k = 1; k < n; k++) if (scores[i * n + k] > scores[best]) best = i * n + k;
                result.Add(new BestOfNSample(chunk[i], texts[best], scores[best], texts.GetRange(i * n, n), scores.Skip(i * n).Take(n).Select(s => (double)s).ToList()));
            }
        }
        return result;
    }
}
