// Online DPO (Guo et al. 2024, "Direct language model alignment from online AI feedback"; TRL's OnlineDPOTrainer): DPO on
// pairs the policy itself just sampled, judged on the spot. Objective per step, for prompts x and y¹, y² ~ π_θ(·|x):
//   (y_w, y_l) = the pair ordered by the judge's scores r(x, y¹), r(x, y²);
//   L = −mean log σ(β·[(log π_θ(y_w) − log π_ref(y_w)) − (log π_θ(y_l) − log π_ref(y_l))])   (Objectives.DpoLoss)
// Numbered steps, carried by the code:
//  1. Roles: policy π_θ (a copy of the SFT model), frozen reference π_ref (the SFT model), judge r (reward model or gold
//     scorer, behind IRolloutReward).
//  2. Rollouts: P prompts, two completions each, sampled with the KV-cached generator (PolicyRollouts, shared with PPO and
//     GRPO); rows 0..P−1 hold the first completions, P..2P−1 the second.
//  3. Judging: scores of both; a completion without EOS loses missing_eos_penalty (TRL); the higher score is chosen (the
//     first on a tie, as TRL's `scores[:n] >= scores[n:]`).
//  4. Log-probs summed over response tokens: π_ref without tape, π_θ on the tape; the DPO loss, its gradient through the
//     logits into the GPT, gradient clipping, AdamW.
//  5. Logging with TRL's keys (objective/scores, objective/kl, rewards/chosen, rewards/rejected, rewards/accuracies,
//     rewards/margins); checkpoints (policy, AdamW, RNG, step) and a bit-identical resume.
//  6. Over-optimisation monitors (Options.Monitor), once per step; a rule may stop the run after the step.
//  7. Data parallelism (docs/distributed.md): with GradShards = S > 1 the 2P rows are sampled, judged and scored by the
//     reference in S slices (Ppo.ShardedRollouts, streams keyed by one draw of the run's RNG and the slice), and the
//     update's P pairs are cut into S slices, each slice's DPO loss count/P of the mean; rank r computes slice r under
//     mpirun, bit-identical to one process with GradShards = S. Rank 0 alone writes.
using System.Text.Json.Serialization;
using RlhfSharp.Alignment.Ppo;
using RlhfSharp.Distributed;
using RlhfSharp.Models;
using RlhfSharp.Models.Checkpoints;
using RlhfSharp.Objectives;
using RlhfSharp.Runs;
using RlhfSharp.Tensors;
using RlhfSharp.Tensors.Optim;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment.Dpo;

/// <summary>How online DPO trains (TRL OnlineDPOConfig's names where they apply).</summary>
public sealed record OnlineDpoConfig
{
    [ConfigOption("Steps: sample, judge, one DPO update.", Aliases = ["--max-steps"], Min = 1)]
    public int Steps { get; init; } = 100;

    [ConfigOption("Prompts per step (each sampled twice).", Name = "--batch-size", Aliases = ["--per-device-train-batch-size"], Min = 1)]
    [JsonPropertyName("per_device_train_batch_size")]
    public int BatchSize { get; init; } = 16;

    [ConfigOption("β of the DPO loss (TRL: 0.1).", Min = 0, MinExclusive = true)]
    public float Beta { get; init; } = 0.1f;

    [ConfigOption("Completion length limit in tokens.", Name = "--max-new-tokens", Min = 1)]
    [JsonPropertyName("max_new_tokens")]
    public int MaxNewTokens { get; init; } = 32;

    [ConfigOption("Sampling temperature (TRL: 0.9); the loss uses plain log-probabilities, as TRL.", Min = 0, MinExclusive = true)]
    public float Temperature { get; init; } = 0.9f;

    [ConfigOption("Subtracted from the score of a completion without EOS (TRL missing_eos_penalty); unset for none.", Min = 0)]
    [JsonPropertyName("missing_eos_penalty")]
    public double? MissingEosPenalty { get; init; }

    [ConfigOption("AdamW learning rate (constant).", Name = "--lr", Aliases = ["--learning-rate"], Min = 0, MinExclusive = true)]
    public float LearningRate { get; init; } = 1e-5f;

    [ConfigOption("Gradient norm clip.", Min = 0, MinExclusive = true)]
    public double MaxGradNorm { get; init; } = 1.0;

    [ConfigOption("Write a checkpoint every this many steps (0: only at the end and on cancellation).", Name = "--checkpoint-interval", Aliases = ["--save-steps"], Min = 0)]
    [JsonPropertyName("save_steps")]
    public int CheckpointInterval { get; init; } = 10;

    [ConfigOption("Seed for prompt order and sampling.", Min = 0)]
    public ulong Seed { get; init; } = 1;

    /// <summary>Over-optimisation monitors (off unless Monitor.Every &gt; 0): see Evaluation.OverOptimisationMonitor.</summary>
    public Evaluation.MonitorConfig Monitor { get; init; } = new();

    [ConfigOption("Frozen weights (the reference and the reward-model judge) held as f32 or bf16: bf16 rounds their matrices to nearest even and widens them to float32 when used (half their memory; the trainer narrows the models it is given in place).")]
    public RlhfSharp.Models.FrozenDtype FrozenDtype { get; init; }

    [ConfigOption("Slices each step's sampling, judging and pairs are cut into: under mpirun it follows -np (slice r on rank r), and one process with the same value gives the same bits (docs/distributed.md).", Min = 1)]
    public int GradShards { get; init; } = 1;

    public void Validate()
    {
        void Check(bool ok, string what) { if (!ok) throw new ArgumentException($"online-dpo config: {what}."); }
        ConfigRanges.Validate(Monitor, "online-dpo config: monitor");
        Check(Steps >= 1 && BatchSize >= 1, $"steps {Steps} and batch size {BatchSize} must be ≥ 1");
        Check(Beta > 0, $"β {Beta} must be positive");
        Check(MaxNewTokens >= 1, $"max new tokens {MaxNewTokens} must be ≥ 1");
        Check(Temperature > 0 && LearningRate > 0, $"temperature {Temperature} and learning rate {LearningRate} must be positive");
        Check(CheckpointInterval >= 0, $"checkpoint interval {CheckpointInterval} must be ≥ 0");
    }
}

public sealed partial class OnlineDpoTrainer
{
    private readonly OnlineDpoConfig _config;

    public OnlineDpoTrainer(OnlineDpoConfig config)
    {
        config.Validate();
        _config = config;
    }

    /// <summary>Optional extras: a gold scorer logged as objective/gold, the run folder, progress reports.</summary>
    /// <param name="Monitor">Over-optimisation monitors (Evaluation.OverOptimisationMonitor), called once per step; may stop the run.</param>
    public sealed record Options(Func<string, string, double>? Gold = null, RunDirectory? Run = null, IProgress<AlignmentProgress>? Progress = null,
        Evaluation.ITrainingMonitor? Monitor = null);

    public PpoResult Train(Gpt sft, ITokenizer tokenizer, IReadOnlyList<string> prompts, IRolloutReward judge, Options? options = null, CancellationToken ct = default)
    {
        options ??= new Options();
        if (prompts.Count == 0) throw new ArgumentException("online-dpo: no prompts.");
        int eos = tokenizer.EosId ?? sft.Config.EosTokenId ?? throw new ArgumentException("online-dpo: the tokenizer has no end-of-text token.");
        var run = options.Run;
        // 1. Roles.
        var rng = new Rng(_config.Seed);
        var policy = sft.Clone();
        // Frozen weights in BF16 (opt-in), narrowed in place: the reference (the SFT model; the policy is a clone) and a reward-model judge.
        sft.HoldFrozenWeightsAs(_config.FrozenDtype);
        (judge as RewardModelReward)?.Ensemble.HoldFrozenWeightsAs(_config.FrozenDtype);
        var opt = NewOptimizer(policy);
        int step = 0;
        // 6. Rank 0 alone writes; every rank reads the checkpoint it resumes from.
        _shards = _config.GradShards > 1 ? new ShardedGradient(Cluster.World, _config.GradShards) : null;
        var resumeFrom = run;
        run = DataParallel.Writer(run);
        if (resumeFrom is { Resumed: true } && resumeFrom.LatestCheckpoint() is { } checkpoint)
        {
            policy = Gpt.Load(Path.Combine(checkpoint.Path, "policy"));
            opt = NewOptimizer(policy);
            var state = TrainerCheckpoint.ReadState<OnlineDpoState>(checkpoint.Path);
            TrainerCheckpoint.ReadOptimizers(checkpoint.Path, ("policy", opt));
            opt.StepCount = state.AdamSteps;
            rng.SetState(state.Rng);
            step = state.Step;
        }
        else
        {
            run?.WriteConfig(_config);
        }
        var generator = new GptGenerator(policy);
        var history = new List<IReadOnlyDictionary<string, double>>();
        bool cancelled = false;
        for (; step < _config.Steps; step++)
        {
            if (DataParallel.StopRequested(ct))
            {
                cancelled = true;
                break;
            }
            var metrics = TrainStep(policy, sft, opt, generator, tokenizer, eos, prompts, judge, options, rng);
            bool monitorStop = options.Monitor?.AfterStep(step + 1, policy, sft, metrics, ct) ?? false; // monitors (own RNG)
            history.Add(metrics);
            run?.Log(step + 1, metrics);
            options.Progress?.Report(new AlignmentProgress("online-dpo", step + 1, _config.Steps, metrics));
            if (run is not null && _config.CheckpointInterval > 0 && (step + 1) % _config.CheckpointInterval == 0 && step + 1 < _config.Steps)
                SaveCheckpoint(run, step + 1, policy, opt, rng);
            if (monitorStop)
            {
                step++;
                break;
            }
        }
        DataParallel.CheckSameWeights(policy, "policy");
        if (run is not null)
        {
            if (run.LatestCheckpoint()?.Step != step) SaveCheckpoint(run, step, policy, opt, rng);
            if (!cancelled)
            {
                policy.Save(Path.Combine(run.Path, "policy"));
                tokenizer.Save(Path.Combine(run.Path, "policy"));
            }
        }
        return new PpoResult(policy, null, history, cancelled, step);
    }

    private AdamW NewOptimizer(Gpt model) => new(model.ParameterSet, new AdamWConfig { LearningRate = _config.LearningRate, WeightDecay = 0f });

    private Dictionary<string, double> TrainStep(Gpt policy, Gpt reference, AdamW opt, GptGenerator generator, ITokenizer tokenizer, int eos,
        IReadOnlyList<string> prompts, IRolloutReward judge, Options options, Rng rng)
    {
        int P = _config.BatchSize;
        // 2. Two completions per prompt: rows b and P + b.
        var picked = Enumerable.Range(0, P).Select(_ => prompts[rng.NextInt(prompts.Count)]).ToList();
        RolloutBatch batch;
        float[] scores;
        if (_shards is null)
        {
            batch = PolicyRollouts.Sample(generator, tokenizer, eos, [.. picked, .. picked], _config.MaxNewTokens, _config.Temperature, rng);
            // 3. Judging.
            scores = judge.Score(batch.Prompts, batch.Responses, batch.Rows);
        }
        else (batch, scores) = ShardedRollout(_shards, generator, tokenizer, eos, [.. picked, .. picked], judge, rng); // 6.
        int Tp = batch.PromptLength, R = batch.ResponseLength;
        if (scores.Length != 2 * P) throw new InvalidOperationException($"online-dpo: the judge returned {scores.Length} scores for {2 * P} completions.");
        var rawScores = (float[])scores.Clone();
        if (_config.MissingEosPenalty is double pen)
            for (int b = 0; b < 2 * P; b++) if (!batch.EndsWithEos[b]) scores[b] -= (float)pen;
        var firstWins = new float[P];
        for (int b = 0; b < P; b++) firstWins[b] = scores[b] >= scores[P + b] ? 1f : 0f;

        // 4. Summed log-probs of the response tokens, reference then policy (temperature 1, as TRL's loss).
        var refTokens = _shards is null ? PolicyRollouts.ResponseLogProbs(reference, batch.Input, Tp, R, 1f) : ShardedReferenceLogProbs(_shards, reference, batch);
        var refSums = new float[2 * P];
        for (int b = 0; b < 2 * P; b++) for (int t = 0; t < R; t++) refSums[b] += batch.Mask[b * R + t] * refTokens[b * R + t];
        var refChosen = new float[P];
        var refRejected = new float[P];
        for (int b = 0; b < P; b++)
        {
            bool first = firstWins[b] == 1f;
            refChosen[b] = first ? refSums[b] : refSums[P + b];
            refRejected[b] = first ? refSums[P + b] : refSums[b];
        }
        double loss, chosenMean, rejectedMean, accuracy, margin, kl = 0;
        if (_shards is not null)
        {
            // 6. The pairs' slices, each slice's loss count/P of the mean, summed in slice order.
            (loss, chosenMean, rejectedMean, accuracy, margin, kl) = ShardedUpdate(_shards, policy, batch, firstWins, refSums, refChosen, refRejected);
        }
        else
        {
            policy.ZeroGrad();
            var taped = PolicyRollouts.LogProbsOnTape(policy, batch.Input, Tp, R, 1f);
            var sums = Ops.Sum(Ops.Mul(taped.LogProbs, Tensor.FromArray(batch.Mask, 2 * P, R)), 1); // [2P]
            var (a, c) = (Ops.Narrow(sums, 0, 0, P), Ops.Narrow(sums, 0, P, P));
            var wins = Tensor.FromArray(firstWins, P);
            var chosen = Ops.Where(wins, a, c);
            var rejected = Ops.Where(wins, c, a);
            var res = DpoLoss.Compute(chosen, rejected, refChosen, refRejected, _config.Beta);
            res.Loss.Backward();
            PolicyRollouts.Backward(policy, taped, 1f);
            loss = res.Loss.Item();
            (chosenMean, rejectedMean, accuracy) = (res.ChosenRewards.Average(), res.RejectedRewards.Average(), res.Accuracy);
            margin = res.ChosenRewards.Zip(res.RejectedRewards).Average(x => x.First - x.Second);
            // 5. Metrics: KL as TRL logs it, the mean of Σ(log π − log π_ref) over the sampled completions.
            var s = sums.Span;
            for (int b = 0; b < 2 * P; b++) kl += s[b] - refSums[b];
            kl /= 2 * P;
        }
        double gradNorm = policy.ParameterSet.ClipGradNorm(_config.MaxGradNorm);
        opt.Step();

        var metrics = new Dictionary<string, double>
        {
            [MetricKeys.TrainLoss] = loss,
            [MetricKeys.Scores] = rawScores.Average(),
            [MetricKeys.Kl] = kl,
            [MetricKeys.RewardsChosen] = chosenMean,
            [MetricKeys.RewardsRejected] = rejectedMean,
            [MetricKeys.RewardsAccuracies] = accuracy,
            [MetricKeys.RewardsMargins] = margin,
            [MetricKeys.GradNorm] = gradNorm,
            [MetricKeys.MeanLength] = batch.Lengths.Average(),
            ["time/generation_s"] = batch.GenerationSeconds,
        };
        if (options.Gold is { } gold) metrics[MetricKeys.GoldScore] = Enumerable.Range(0, 2 * P).Average(b => gold(batch.Prompts[b], batch.Responses[b]));
        return metrics;
    }

    private sealed record OnlineDpoState(int Step, ulong[] Rng, int AdamSteps);

    private static void SaveCheckpoint(RunDirectory run, int step, Gpt policy, AdamW opt, Rng rng) =>
        run.SaveCheckpoint(step, dir =>
        {
            policy.Save(Path.Combine(dir, "policy"));
            TrainerCheckpoint.WriteOptimizers(dir, ("policy", opt));
            TrainerCheckpoint.WriteState(dir, new OnlineDpoState(step, rng.GetState(), opt.StepCount));
        });
}
