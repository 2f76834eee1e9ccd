// Group relative policy optimisation for language models (Shao et al. 2024, DeepSeekMath §4.1), with the Dr. GRPO and
// DAPO variants as options. Objective, for prompts x ~ D and G completions y_1..G ~ π_old(·|x) scored r_1..G:
//   maximise  E[ Σ_t w_t·min(ρ_t·A_i, clip(ρ_t, 1 − ε_low, 1 + ε_high)·A_i) ] − β·E[k3(π_θ, π_ref)],
//   A_i = (r_i − mean r) / (std r + 1e-4)  — no value model: the group is the baseline.
// The equations live in Objectives.GrpoLoss; this file is the loop. Numbered steps, carried by the code:
//  1. Roles: policy π (a copy of the SFT model); frozen reference π_ref (the SFT model), loaded only when β > 0;
//     reward r: a reward model, the gold scorer or a verifier, behind IRolloutReward.
//  2. Rollouts: batch_size / G prompts, each repeated G times, sampled with the KV-cached generator (PolicyRollouts,
//     shared with PPO).
//  3. Rewards: r(x, y) per completion, plus DAPO's soft overlong penalty when overlong_buffer > 0.
//  4. Group advantages (GrpoLoss.Advantages; scale_rewards off for Dr. GRPO). DAPO's dynamic sampling drops groups
//     whose rewards are all equal (A ≡ 0, no signal) and samples more prompts, up to max_num_gen_batches rounds.
//  5. log π_old and log π_ref of the kept completions, one fused forward each, no tape.
//  6. μ passes × minibatches: GrpoLoss.Compute on log π from the logits on the tape (clip, k3, the loss_type's
//     aggregation; truncated completions masked out when asked), gradient clipping, AdamW.
//  7. Logging with TRL's GRPO keys (train/reward, train/reward_std, train/frac_reward_zero_std, train/kl,
//     train/clip_ratio/…, train/entropy, completions/…).
//  7b. Over-optimisation monitors (Options.Monitor), once per step; a rule may stop the run after the step.
//  8. Checkpoints (policy, AdamW moments, RNG, step) and a resume that continues bit-identically.
//  9. Data parallelism (GrpoTrainer.DataParallel.cs, docs/distributed.md): with GradShards = S > 1, each generation
//     round's sampling and scoring and each minibatch's gradient are split into S slices (slice r on rank r under
//     mpirun); rank 0 alone writes.
using System.Diagnostics;
using RlhfSharp.Alignment.Ppo;
using RlhfSharp.Distributed;
using RlhfSharp.Models;
using RlhfSharp.Models.Checkpoints;
using RlhfSharp.Objectives;
using RlhfSharp.Runs;
using RlhfSharp.Tensors;
using RlhfSharp.Tensors.Optim;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment.Grpo;

/// <summary>What a GRPO run returns: the trained policy, this call's metrics, whether it stopped on cancellation, the steps done in all.</summary>
public sealed record GrpoResult(Gpt Policy, IReadOnlyList<IReadOnlyDictionary<string, double>> History, bool Cancelled, int Steps);

public sealed partial class GrpoTrainer
{
    private readonly GrpoConfig _config;

    public GrpoTrainer(GrpoConfig config)
    {
        config.Validate();
        _config = config;
    }

    /// <summary>Optional extras of a run.</summary>
    /// <param name="Gold">A scorer logged as objective/gold (never trained on).</param>
    /// <param name="Run">Where metrics, checkpoints and the final policy go; also what a resume reads.</param>
    /// <param name="Progress">Progress reports, one per step.</param>
    /// <param name="Monitor">Over-optimisation monitors (Evaluation.OverOptimisationMonitor), called once per step; may stop the run.</param>
    public sealed record Options(Func<string, string, double>? Gold = null, RunDirectory? Run = null, IProgress<AlignmentProgress>? Progress = null,
        Evaluation.ITrainingMonitor? Monitor = null);

    public GrpoResult Train(Gpt sft, ITokenizer tokenizer, IReadOnlyList<string> prompts, IRolloutReward reward, Options? options = null, CancellationToken ct = default)
    {
        options ??= new Options();
        if (prompts.Count == 0) throw new ArgumentException("grpo: no prompts.");
        int eos = tokenizer.EosId ?? sft.Config.EosTokenId ?? throw new ArgumentException("grpo: the tokenizer has no end-of-text token, so completions cannot end.");
        // 9. Rank 0 alone writes; every rank reads the checkpoint it resumes from.
        _shards = _config.GradShards > 1 ? new ShardedGradient(Cluster.World, _config.GradShards) : null;
        var run = DataParallel.Writer(options.Run);

        // 1. Roles.
        var rng = new Rng(_config.Seed);
        Gpt? reference = _config.Beta > 0 ? sft : null;
        var policy = sft.Clone();
        // Frozen weights in BF16 (opt-in), narrowed in place: the reference (the SFT model; the policy is a clone) and reward models.
        reference?.HoldFrozenWeightsAs(_config.FrozenDtype);
        (reward as RewardModelReward)?.Ensemble.HoldFrozenWeightsAs(_config.FrozenDtype);
        var opt = NewOptimizer(policy);
        int step = 0;
        if (options.Run is { Resumed: true } && options.Run.LatestCheckpoint() is { } checkpoint)
        {
            // 8. Resume: policy, AdamW moments, RNG as they were after the checkpoint's step.
            policy = Gpt.Load(Path.Combine(checkpoint.Path, "policy"));
            opt = NewOptimizer(policy);
            var state = TrainerCheckpoint.ReadState<GrpoState>(checkpoint.Path);
            TrainerCheckpoint.ReadOptimizers(checkpoint.Path, ("policy", opt));
            opt.StepCount = state.AdamSteps;
            rng.SetState(state.Rng);
            step = state.Step;
        }
        else
        {
            run?.WriteConfig(_config);
        }
        policy.ActivationCheckpointing = _config.ActivationCheckpointing;

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
            var metrics = TrainStep(policy, reference, opt, generator, tokenizer, eos, prompts, reward, options, rng);
            bool monitorStop = options.Monitor?.AfterStep(step + 1, policy, sft, metrics, ct) ?? false; // 7b. monitors (own RNG)
            history.Add(metrics);
            run?.Log(step + 1, metrics);
            options.Progress?.Report(new AlignmentProgress("grpo", step + 1, _config.Steps, metrics));
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
        return new GrpoResult(policy, history, cancelled, step);
    }

    private AdamW NewOptimizer(Gpt model) =>
        new(model.ParameterSet, new AdamWConfig { LearningRate = _config.LearningRate, WeightDecay = 0f });

    private Dictionary<string, double> TrainStep(Gpt policy, Gpt? reference, AdamW opt, GptGenerator generator, ITokenizer tokenizer, int eos,
        IReadOnlyList<string> prompts, IRolloutReward reward, Options options, Rng rng)
    {
        var total = Stopwatch.StartNew();
        int G = _config.NumGenerations, groupsWanted = _config.BatchSize / G;

        // 2.–4. Rollouts, rewards and group advantages; with dynamic sampling, more rounds until the batch is full of groups
        // that carry a signal.
        var picks = new List<(RolloutBatch Batch, int Row)>();
        var keptAdvantages = new List<float>();
        var allRewards = new List<float>();
        var allGroupStd = new List<double>();
        int groupsSeen = 0, zeroStdGroups = 0, rounds = 0;
        double goldSum = 0;
        int goldCount = 0;
        var scoreWatch = new Stopwatch();
        while (picks.Count < groupsWanted * G && rounds < (_config.DynamicSampling ? _config.MaxGenerationRounds : 1))
        {
            rounds++;
            var batchPrompts = new List<string>(_config.BatchSize);
            for (int i = 0; i < groupsWanted; i++)
            {
                string p = prompts[rng.NextInt(prompts.Count)];
                for (int k = 0; k < G; k++) batchPrompts.Add(p);
            }
            RolloutBatch batch;
            float[] rewards;
            if (_shards is null)
            {
                batch = PolicyRollouts.Sample(generator, tokenizer, eos, batchPrompts, _config.MaxNewTokens, _config.Temperature, rng);
                scoreWatch.Start();
                rewards = reward.Score(batch.Prompts, batch.Responses, batch.Rows);
            }
            else (batch, rewards) = ShardedRound(_shards, generator, tokenizer, eos, batchPrompts, reward, rng, scoreWatch); // 9.
            if (rewards.Length != batch.Batch) throw new InvalidOperationException($"grpo: the reward returned {rewards.Length} scores for {batch.Batch} completions.");
            if (_config.OverlongBuffer > 0)
                for (int b = 0; b < rewards.Length; b++)
                    rewards[b] += (float)GrpoLoss.OverlongPenalty(batch.Lengths[b], _config.MaxNewTokens, _config.OverlongBuffer);
            if (options.Gold is { } gold)
                for (int b = 0; b < batch.Batch; b++, goldCount++) goldSum += gold(batch.Prompts[b], batch.Responses[b]);
            scoreWatch.Stop();
            var groups = GrpoLoss.Advantages(rewards, G, _config.ScaleRewards);
            allRewards.AddRange(rewards);
            allGroupStd.AddRange(groups.GroupStd);
            for (int g = 0; g < groupsWanted; g++)
            {
                groupsSeen++;
                if (groups.ZeroStdGroups[g]) zeroStdGroups++;
                if ((_config.DynamicSampling && groups.ZeroStdGroups[g]) || picks.Count >= groupsWanted * G) continue;
                for (int k = 0; k < G; k++)
                {
                    picks.Add((batch, g * G + k));
                    keptAdvantages.Add(groups.Advantages[g * G + k]);
                }
            }
        }

        var metrics = new Dictionary<string, double>
        {
            [MetricKeys.GrpoReward] = allRewards.Average(),
            [MetricKeys.GrpoRewardStd] = allGroupStd.Average(),
            [MetricKeys.GrpoZeroStdFraction] = zeroStdGroups / (double)groupsSeen,
        };
        if (goldCount > 0) metrics[MetricKeys.GoldScore] = goldSum / goldCount;
        if (_config.DynamicSampling)
        {
            metrics[MetricKeys.GrpoGroupsKept] = picks.Count / G;
            metrics[MetricKeys.GrpoGenerationRounds] = rounds;
        }
        if (picks.Count == 0)
        {
            // Every group was uniform in every round: nothing to learn from this step (logged, no update).
            metrics["time/step_s"] = total.Elapsed.TotalSeconds;
            return metrics;
        }

        var kept = _config.DynamicSampling ? PolicyRollouts.Select(picks) : picks[0].Batch;
        int B = kept.Batch, Tp = kept.PromptLength, R = kept.ResponseLength;
        var advantages = keptAdvantages.ToArray();

        // 5. log π_old and log π_ref.
        scoreWatch.Start();
        float[] oldLogp;
        float[]? refLogp;
        if (_shards is null)
        {
            oldLogp = PolicyRollouts.ResponseLogProbs(policy, kept.Input, Tp, R, _config.Temperature);
            refLogp = reference is null ? null : PolicyRollouts.ResponseLogProbs(reference, kept.Input, Tp, R, _config.Temperature);
        }
        else (oldLogp, refLogp) = ShardedLogProbs(_shards, policy, reference, kept); // 9.
        scoreWatch.Stop();
        var lossMask = (float[])kept.Mask.Clone();
        if (_config.MaskTruncatedCompletions)
            for (int b = 0; b < B; b++)
                if (!kept.EndsWithEos[b]) lossMask.AsSpan(b * R, R).Clear();
        double batchTokens = lossMask.Sum(m => (double)m);

        // 6. μ passes × minibatches.
        var trainWatch = Stopwatch.StartNew();
        double loss = 0, kl = 0, low = 0, high = 0, entropy = 0;
        int updates = 0, M = _config.MiniBatchSize;
        for (int iteration = 0; iteration < _config.NumIterations; iteration++)
        {
            var perm = rng.Permutation(B);
            for (int start = 0; start < B; start += M)
            {
                var idx = perm.Skip(start).Take(M).ToArray();
                int b = idx.Length;
                var sub = PolicyRollouts.Rows(kept.Input, idx);
                var subMask = PolicyRollouts.Gather(lossMask, idx, R);
                // DAPO's normaliser: every token of the rollout batch weighs the same in whichever minibatch it falls.
                var weights = GrpoLoss.Weights(subMask, b, R, _config.LossType, _config.MaxNewTokens, dapoTokens: batchTokens * b / B);
                if (_shards is not null)
                {
                    // 9. The minibatch's slices: the loss is Σ w·ℓ, so the slices' losses and gradients add up to it.
                    var g = SlicedGradient(_shards, policy, kept.Input, idx, lossMask, weights, oldLogp, refLogp, advantages, Tp, R);
                    (loss, kl, low, high, entropy) = (loss + g.Loss, kl + g.Kl, low + g.Low, high + g.High, entropy + g.Entropy);
                }
                else
                {
                    policy.ZeroGrad();
                    var taped = PolicyRollouts.LogProbsOnTape(policy, sub, Tp, R, _config.Temperature);
                    var res = GrpoLoss.Compute(taped.LogProbs, PolicyRollouts.Gather(oldLogp, idx, R), refLogp is null ? default : PolicyRollouts.Gather(refLogp, idx, R),
                        [.. idx.Select(i => advantages[i])], subMask, weights, _config.Epsilon, _config.UpperEpsilon, (float)_config.Beta);
                    res.Loss.Backward();
                    using (Autograd.NoGrad())
                    {
                        var ent = Ops.Narrow(Ops.Entropy(taped.Logits.Detach()), 1, Tp - 1, R);
                        if (subMask.Any(m => m != 0)) entropy += Ops.MaskedMean(ent, Tensor.FromArray(subMask, b, R)).Item();
                    }
                    PolicyRollouts.Backward(policy, taped, _config.Temperature);
                    loss += res.Loss.Item();
                    kl += res.Kl;
                    low += res.LowClipFraction;
                    high += res.HighClipFraction;
                }
                policy.ParameterSet.ClipGradNorm(_config.MaxGradNorm);
                opt.Step();
                updates++;
            }
        }

        // 7. Metrics.
        int realTokens = kept.Lengths.Sum();
        metrics[MetricKeys.TrainLoss] = loss / updates;
        if (reference is not null) metrics[MetricKeys.GrpoKl] = kl / updates;
        metrics[MetricKeys.GrpoClipLow] = low / updates;
        metrics[MetricKeys.GrpoClipHigh] = high / updates;
        metrics[MetricKeys.GrpoClipRegion] = (low + high) / updates;
        metrics[MetricKeys.GrpoEntropy] = entropy / updates;
        metrics[MetricKeys.MeanLength] = (double)realTokens / B;
        metrics[MetricKeys.ClippedRatio] = kept.EndsWithEos.Count(e => !e) / (double)B;
        metrics["time/generation_s"] = picks.Select(p => p.Batch).Distinct().Sum(x => x.GenerationSeconds);
        metrics["time/scoring_s"] = scoreWatch.Elapsed.TotalSeconds;
        metrics["time/training_s"] = trainWatch.Elapsed.TotalSeconds;
        metrics[MetricKeys.TokensPerSecond] = realTokens / Math.Max(1e-9, total.Elapsed.TotalSeconds);
        metrics["time/step_s"] = total.Elapsed.TotalSeconds;
        return metrics;
    }

    // 8. Checkpoints.
    private sealed record GrpoState(int Step, ulong[] Rng, int AdamSteps);

    private void SaveCheckpoint(RunDirectory run, int step, Gpt policy, AdamW opt, Rng rng) =>
        run.SaveCheckpoint(step, dir =>
        {
            policy.Save(Path.Combine(dir, "policy"));
            TrainerCheckpoint.WriteOptimizers(dir, ("policy", opt));
            TrainerCheckpoint.WriteState(dir, new GrpoState(step, rng.GetState(), opt.StepCount));
        }, _config.KeepCheckpoints);
}
