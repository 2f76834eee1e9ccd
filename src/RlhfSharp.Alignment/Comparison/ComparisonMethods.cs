// The twelve methods of `rlhf compare`, each run for a planned number of steps through its trainer's public API from the
// same SFT model, with the same reward (the task's scorer), the same completions per step (B), completion length and
// learning rate. What a step is, per method (B = batch_size, G = group_size):
//   ppo               one rollout batch of B episodes, 4 PPO epochs, value model from the SFT trunk, adaptive β (Ziegler)
//   rloo              one batch of B/G prompts × G samples, leave-one-out baseline, fixed β in the reward
//   grpo / dr_grpo / dapo   one batch of B/G prompts × G samples (GrpoConfig.WithVariant's published defaults)
//   online_dpo        B/2 prompts sampled twice, the pair judged by the scorer, one DPO update
//   dpo / ipo / simpo one update on B/2 pairs; the pairs are sampled from the SFT model and labelled by the scorer
//                     (higher score chosen; equal scores dropped), as many as the steps consume, inside the timed run
//   kto               one update on B unpaired examples (each pair's chosen desirable, rejected undesirable; TRL's unpairing)
//   best_of_n         no training: N samples per held-out prompt from the SFT model, the best by the scorer (N = steps)
//   expert_iteration  one round: B/G prompts × G samples, the best of each kept (on the verifiable task: only if correct),
//                     4 SFT steps on everything kept so far (Sampling/ExpertIteration)
// Using the scorer as the reward makes every method optimise the quantity it is judged on; a reward model's errors (the
// over-optimisation `rlhf demo` shows) are left out on purpose, so the table compares optimisers, not reward models.
using System.Diagnostics;
using RlhfSharp.Alignment.Dpo;
using RlhfSharp.Alignment.Grpo;
using RlhfSharp.Alignment.Ppo;
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Alignment.Sampling;
using RlhfSharp.Models;
using RlhfSharp.Tensors;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment.Comparison;

/// <summary>A method that cannot run on a task (e.g. no preference pair to learn from); the cell is reported n/a with the reason.</summary>
public sealed class MethodNotApplicableException(string reason) : Exception(reason);

/// <summary>What one method needs: the starting model, its tokenizer, the task, the shared settings and the seed.</summary>
public sealed record ComparisonContext(Gpt Sft, ITokenizer Tokenizer, ComparisonTask Task, CompareConfig Config, ulong Seed);

/// <summary>
/// A method's outcome before evaluation: the trained policy (null for best-of-N, which samples the SFT model
/// <paramref name="BestOfN"/> times), the steps done, whether it stopped on cancellation, and its wall time.
/// </summary>
public sealed record MethodRun(Gpt? Policy, int? BestOfN, int Steps, bool Cancelled, double Seconds, IReadOnlyList<IReadOnlyDictionary<string, double>> History);

public static class ComparisonMethods
{
    /// <summary>Every method, in the table's order.</summary>
    public static IReadOnlyList<string> All { get; } =
        ["ppo", "rloo", "grpo", "dr_grpo", "dapo", "online_dpo", "dpo", "ipo", "kto", "simpo", "best_of_n", "expert_iteration"];

    /// <summary>How each method is shown in the table.</summary>
    public static string Display(string method) => method switch
    {
        "ppo" => "PPO (adaptive β)",
        "rloo" => "RLOO",
        "grpo" => "GRPO",
        "dr_grpo" => "Dr. GRPO",
        "dapo" => "DAPO",
        "online_dpo" => "online DPO",
        "dpo" => "DPO",
        "ipo" => "IPO",
        "kto" => "KTO",
        "simpo" => "SimPO",
        "best_of_n" => "best-of-N",
        "expert_iteration" => "expert iteration",
        _ => method,
    };

    // Each method draws its preference pairs from its own stream of the seed, so adding a method changes no other's bits.
    private const ulong PairStream = 0x9A1E_D5EEDUL;

    /// <summary>
    /// Trains <paramref name="method"/> for <paramref name="steps"/> steps (best-of-N: draws N = steps samples per
    /// held-out prompt when evaluated, so here it only records N). Wall time covers everything the method does before
    /// evaluation, its preference data included.
    /// </summary>
    public static MethodRun Train(string method, int steps, ComparisonContext ctx, IProgress<AlignmentProgress>? progress = null, CancellationToken ct = default)
    {
        if (steps < 1) throw new ArgumentException($"compare: {method} needs at least 1 step; got {steps}.");
        var c = ctx.Config;
        var reward = new FunctionReward(ctx.Task.Score);
        var prompts = ctx.Task.TrainingPrompts;
        int B = c.BatchSize, G = c.GroupSize;
        var watch = Stopwatch.StartNew();
        MethodRun Done(Gpt policy, IReadOnlyList<IReadOnlyDictionary<string, double>> history, bool cancelled, int done) =>
            new(policy, null, done, cancelled, watch.Elapsed.TotalSeconds, history);

        switch (method)
        {
            case "ppo":
            case "rloo":
            {
                bool rloo = method == "rloo";
                var config = new PpoConfig
                {
                    Algorithm = rloo ? PolicyAlgorithm.Rloo : PolicyAlgorithm.Ppo, Steps = steps, BatchSize = B, MiniBatchSize = Math.Min(8, B),
                    MaxNewTokens = c.MaxNewTokens, LearningRate = c.LearningRate, RlooSamples = G,
                    InitialKlCoef = rloo ? c.RlooBeta : 0.05, TargetKl = rloo ? null : c.TargetKl, KlHorizon = c.KlHorizon,
                    CheckpointInterval = 0, Seed = ctx.Seed,
                };
                var r = new PpoTrainer(config).Train(ctx.Sft, ctx.Tokenizer, prompts, reward, null, new PpoTrainer.Options(Progress: progress), ct);
                return Done(r.Policy, r.History, r.Cancelled, r.History.Count);
            }
            case "grpo":
            case "dr_grpo":
            case "dapo":
            {
                var config = new GrpoConfig
                {
                    Steps = steps, BatchSize = B, NumGenerations = G, MiniBatchSize = B, MaxNewTokens = c.MaxNewTokens, LearningRate = c.LearningRate,
                    CheckpointInterval = 0, Seed = ctx.Seed,
                }.WithVariant(method);
                var r = new GrpoTrainer(config).Train(ctx.Sft, ctx.Tokenizer, prompts, reward, new GrpoTrainer.Options(Progress: progress), ct);
                return Done(r.Policy, r.History, r.Cancelled, r.Steps);
            }
            case "online_dpo":
            {
                var config = new OnlineDpoConfig
                {
                    Steps = steps, BatchSize = B / 2, Beta = c.DpoBeta, MaxNewTokens = c.MaxNewTokens, LearningRate = c.LearningRate,
                    CheckpointInterval = 0, Seed = ctx.Seed,
                };
                var r = new OnlineDpoTrainer(config).Train(ctx.Sft, ctx.Tokenizer, prompts, reward, new OnlineDpoTrainer.Options(Progress: progress), ct);
                return Done(r.Policy, r.History, r.Cancelled, r.History.Count);
            }
            case "dpo":
            case "ipo":
            case "simpo":
            {
                int perStep = B / 2;
                var pairs = SamplePairs(ctx, steps * perStep, ct);
                if (ct.IsCancellationRequested) return Done(ctx.Sft, [], true, 0);
                var (loss, beta) = method switch
                {
                    "ipo" => (DpoLossType.Ipo, c.DpoBeta),
                    "simpo" => (DpoLossType.Simpo, c.SimPoBeta),
                    _ => (DpoLossType.Sigmoid, c.DpoBeta),
                };
                var config = new DpoConfig
                {
                    LossType = loss, Beta = beta, BatchSize = perStep, Epochs = EpochsFor(steps, perStep, pairs.Count), LearningRate = c.LearningRate,
                    HeldOutFraction = 0, CheckpointInterval = 0, Seed = ctx.Seed,
                };
                var examples = pairs.Select(p => new PreferenceExample(p.Prompt, [p.Chosen, p.Rejected], PreferenceKind.Pair)).ToList();
                var r = new DpoTrainer(config).Train(ctx.Sft, ctx.Tokenizer, examples, null, progress, ct);
                return Done(r.Policy, r.History, r.Cancelled, r.History.Count);
            }
            case "kto":
            {
                var pairs = SamplePairs(ctx, (steps * B + 1) / 2, ct);
                if (ct.IsCancellationRequested) return Done(ctx.Sft, [], true, 0);
                var data = pairs.SelectMany(p => new[] { new Dpo.UnpairedExample(p.Prompt, p.Chosen, true), new Dpo.UnpairedExample(p.Prompt, p.Rejected, false) }).ToList();
                var config = new KtoConfig
                {
                    Beta = c.DpoBeta, BatchSize = B, Epochs = EpochsFor(steps, B, data.Count), LearningRate = c.LearningRate,
                    HeldOutFraction = 0, CheckpointInterval = 0, Seed = ctx.Seed,
                };
                var r = new KtoTrainer(config).Train(ctx.Sft, ctx.Tokenizer, data, null, progress, ct);
                return Done(r.Policy, r.History, r.Cancelled, r.History.Count);
            }
            case "best_of_n":
                return new MethodRun(null, steps, steps, false, 0, []);
            case "expert_iteration":
            {
                var config = new ExpertIterationConfig
                {
                    Rounds = steps, PromptsPerRound = B / G, SamplesPerPrompt = G, MinReward = ctx.Task.Verifiable ? 1 : null,
                    SftStepsPerRound = 4, BatchSize = B, LearningRate = c.LearningRate, MaxNewTokens = c.MaxNewTokens, Seed = ctx.Seed,
                };
                var r = new ExpertIteration(config).Train(ctx.Sft, ctx.Tokenizer, prompts, reward, null, progress, ct);
                return Done(r.Policy, r.History, r.Cancelled, r.Rounds);
            }
            default:
                throw new ArgumentException($"compare: unknown method \"{method}\"; choose from {string.Join(", ", All)}.");
        }
    }

    /// <summary>Epochs over <paramref name="available"/> examples that give at least <paramref name="steps"/> steps of <paramref name="batch"/>.</summary>
    private static int EpochsFor(int steps, int batch, int available)
    {
        if (available < 2) throw new MethodNotApplicableException($"the task's scorer told apart {available} of the SFT model's sampled pairs; preference data needs at least 2");
        int perEpoch = (available + batch - 1) / batch;
        return Math.Max(1, (steps + perEpoch - 1) / perEpoch);
    }

    /// <summary>
    /// Offline preference data: two samples of the SFT model per training prompt (temperature 1), the higher-scored one
    /// chosen; pairs the scorer cannot tell apart are dropped. Stops at <paramref name="count"/> pairs, or after 8·count
    /// prompts (a scorer that rarely separates samples, as the verifier on a model that is always right or always wrong).
    /// </summary>
    public static List<(string Prompt, string Chosen, string Rejected)> SamplePairs(ComparisonContext ctx, int count, CancellationToken ct = default)
    {
        var c = ctx.Config;
        var prompts = ctx.Task.TrainingPrompts;
        int eos = ctx.Tokenizer.EosId ?? ctx.Sft.Config.EosTokenId ?? throw new ArgumentException("compare: the tokenizer has no end-of-text token.");
        var rng = new Rng(ctx.Seed ^ PairStream);
        int[] order = rng.Permutation(prompts.Count);
        int cursor = 0, tried = 0, perBatch = Math.Max(1, c.BatchSize / 2);
        var generator = new GptGenerator(ctx.Sft);
        var pairs = new List<(string, string, string)>(count);
        while (pairs.Count < count && tried < 8 * count && !ct.IsCancellationRequested)
        {
            var chunk = new List<string>(perBatch);
            for (int i = 0; i < perBatch; i++)
            {
                if (cursor == order.Length) { order = rng.Permutation(prompts.Count); cursor = 0; }
                chunk.Add(prompts[order[cursor++]]);
            }
            tried += chunk.Count;
            var twice = chunk.SelectMany(p => new[] { p, p }).ToList();
            RolloutBatch batch;
            using (Autograd.NoGrad()) batch = PolicyRollouts.Sample(generator, ctx.Tokenizer, eos, twice, c.MaxNewTokens, 1f, rng);
            for (int i = 0; i < chunk.Count && pairs.Count < count; i++)
            {
                string a = batch.Responses[2 * i], b = batch.Responses[2 * i + 1];
                double sa = ctx.Task.Score(chunk[i], a), sb = ctx.Task.Score(chunk[i], b);
                if (sa == sb) continue;
                pairs.Add(sa > sb ? (chunk[i], a, b) : (chunk[i], b, a));
            }
        }
        return pairs;
    }
}
