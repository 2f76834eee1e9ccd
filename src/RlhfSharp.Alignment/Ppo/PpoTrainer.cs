// RLHF policy optimisation for language models (Ziegler et al. 2019; InstructGPT step 3), and RLOO on the same rollouts.
// Objective, for prompts x ~ D and responses y ~ π_θ(·|x):
//   maximise  E[ r(x, y) − β·log(π_θ(y|x)/π_ref(y|x)) ]  +  γ_ptx·E_{x∼D_pretrain}[log π_θ(x)]
// by PPO (Schulman et al. 2017) over response tokens, by REINFORCE with a leave-one-out baseline (RLOO), or by REINFORCE
// with a learned value baseline (Williams 1992). The rollout pieces live in PolicyRollouts, shared with GRPO and online DPO.
// Numbered steps, carried by the code:
//  1. Roles: policy π (a copy of the SFT model), frozen reference π_ref (the SFT model), value model (the reward model's
//     trunk with its head as the value head, Ziegler §2.2; the SFT trunk with a fresh head when the reward is a function),
//     reward r (reward-model ensemble mean, or any Func<prompt, response, double>). With LoRA (Lora.R > 0) no model is
//     copied: π is the SFT base plus an adapter, π_ref that same base with the adapter off, and the value model the
//     reward model's (or SFT's) base plus its own adapter carrying the value head. 1b. FrozenDtype = Bf16 holds the
//     reference and the reward models in BF16, computed in float32 (Gpt.Bf16.cs): with full fine-tuning once the value
//     model has copied its trunk, under LoRA the bases themselves before the adapters are attached.
//  2. Rollouts: a batch of prompts, responses sampled with the KV-cached generator (GptGenerator).
//  3. Scoring: log π_old and log π_ref per response token and V per token (fused forward passes, no tape); r(x, y);
//     responses without EOS lose MissingEosPenalty; optional reward clipping.
//  4. Per-token reward: −β·(log π_old − log π_ref) at every token (the k1 estimator), plus the score at the last token
//     (Objectives.RlhfRewards); optional whitening of these rewards.
//  5. Advantages: PPO — GAE over response tokens with γ, λ (Objectives.Advantages.Gae), returns = A + V;
//     RLOO — sequence reward R = score − β·Σ k1 (RlhfRewards.PerSequence), A = R − mean of the other K − 1 samples of the prompt
//     (Objectives.Advantages.LeaveOneOut), the same A on every token; REINFORCE — A_t = G_t − V_t, G the return-to-go
//     (GAE with λ = 1), V the value model.
//  6. Advantage whitening over the batch's real tokens (Objectives.Whitening).
//  7. Epochs × minibatches: clipped policy loss (Objectives.PpoLosses.ClippedPolicy) through the policy's logits, clipped
//     value loss × vf_coef (PpoLosses.ClippedValue) through the value head; REINFORCE uses −mean A·log π
//     (PolicyGradientLosses.Reinforce) and ½(V − G)² in one pass; ent_coef > 0 adds −c_e·H[π] computed from the logits on
//     the tape (PolicyGradientLosses.EntropyBonus); PPO-ptx adds γ_ptx·cross-entropy on pre-training rows; gradients
//     clipped per model; AdamW.
//  8. β update: Ziegler's proportional controller (Objectives.AdaptiveKlController) from the batch's mean KL, or fixed.
//  9. Logging: TRL's keys — objective/kl (k1) beside objective/kl_k3, objective/rlhf_reward, objective/scores,
//     policy/clipfrac, policy/approx_kl, policy/entropy, loss/policy, loss/value, val/explained_variance,
//     perf/tokens_per_s and the time split between generation, scoring and training.
//  9b. Over-optimisation monitors (Options.Monitor), once per step: held-out figures under monitor/*, rules that may stop
//     the run after this step, best/ kept by the monitored quantity.
// 10. Checkpoints (policy, value, optimiser moments, RNG, β, step) and resume that continues bit-identically; policy
//     snapshots every SnapshotEvery steps handed to the caller (the over-optimisation evaluation scores them).
// 11. Data parallelism (PpoTrainer.DataParallel.cs, docs/distributed.md): with GradShards = S > 1, rollouts, scoring and
//     each minibatch's gradient are split into S slices (slice r on rank r under mpirun); rank 0 alone writes.
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Distributed;
using RlhfSharp.Models;
using RlhfSharp.Models.Checkpoints;
using RlhfSharp.Objectives;
using RlhfSharp.Runs;
using RlhfSharp.Tensors;
using RlhfSharp.Tensors.Optim;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment.Ppo;

/// <summary>
/// What a PPO run returns: the trained policy, its value model (null for RLOO), the metrics of this call's steps, whether
/// it stopped on cancellation, and the steps done in all (including those before a resume).
/// </summary>
/// <summary>
/// Timers for <see cref="PpoTrainer.Options.Profile"/>: Steps gets the step's phases (score/…, train/policy_forward,
/// train/policy_backward, train/value_forward, …), Policy and Value the kernel phases of those models' passes (GptProfile).
/// </summary>
public sealed record PpoProfile(GptProfile Steps, GptProfile Policy, GptProfile Value)
{
    public PpoProfile() : this(new GptProfile(), new GptProfile(), new GptProfile()) { }
}

public sealed record PpoResult(Gpt Policy, Gpt? Value, IReadOnlyList<IReadOnlyDictionary<string, double>> History, bool Cancelled, int Steps = 0);

public sealed partial class PpoTrainer
{
    private readonly PpoConfig _config;

    public PpoTrainer(PpoConfig config)
    {
        config.Validate();
        _config = config;
    }

    /// <summary>Optional extras of a run.</summary>
    /// <param name="Gold">A scorer logged as objective/gold (never trained on): the demo's proxy-vs-gold curves.</param>
    /// <param name="PretrainRows">PPO-ptx token rows (each a document's tokens), used when PtxCoef &gt; 0.</param>
    /// <param name="Run">Where metrics, checkpoints and the final policy go; also what <c>resume</c> reads.</param>
    /// <param name="Progress">Progress reports, one per step.</param>
    /// <param name="Snapshot">
    /// Called with (steps done, live policy) at step 0 and every <see cref="PpoConfig.SnapshotEvery"/> steps and after the
    /// last step: the over-optimisation evaluation scores these snapshots. The policy keeps training after the call
    /// returns, so save or clone it there.
    /// </param>
    /// <param name="Monitor">Over-optimisation monitors (Evaluation.OverOptimisationMonitor), called once per step; may stop the run.</param>
    /// <param name="Logged">More (prompt, response) scorers logged per step as the batch mean under their keys, never trained on (e.g. objective/bleu and objective/chrf when the reward is a translation metric).</param>
    /// <param name="Profile">Where the time goes (`rlhf bench ppo --profile`): the step's phases and the policy's and value model's kernels.</param>
    public sealed record Options(Func<string, string, double>? Gold = null, IReadOnlyList<int[]>? PretrainRows = null, RunDirectory? Run = null,
        IProgress<AlignmentProgress>? Progress = null, Action<int, Gpt>? Snapshot = null, Evaluation.ITrainingMonitor? Monitor = null,
        IReadOnlyList<(string Key, Func<string, string, double> Score)>? Logged = null, PpoProfile? Profile = null);

    /// <summary>
    /// Runs PPO (or RLOO) from <paramref name="sft"/>. When <paramref name="options"/>.Run was opened to resume and holds a
    /// checkpoint, training continues from it. <paramref name="rewardModel"/> initialises the value model when the reward
    /// is a reward model; pass null with a function reward.
    /// </summary>
    public PpoResult Train(Gpt sft, ITokenizer tokenizer, IReadOnlyList<string> prompts, IRolloutReward reward, RewardEnsemble? rewardModel = null,
        Options? options = null, CancellationToken ct = default)
    {
        options ??= new Options();
        if (prompts.Count == 0) throw new ArgumentException("ppo: no prompts.");
        if (_config.PtxCoef > 0 && (options.PretrainRows is null || options.PretrainRows.Count == 0))
            throw new ArgumentException("ppo: PtxCoef > 0 needs pre-training rows (PPO-ptx).");
        int eos = tokenizer.EosId ?? sft.Config.EosTokenId ?? throw new ArgumentException("ppo: the tokenizer has no end-of-text token, so responses cannot end.");
        // 11. Rank 0 alone writes; every rank reads the checkpoint it resumes from.
        _shards = _config.GradShards > 1 ? new ShardedGradient(Cluster.World, _config.GradShards) : null;
        var run = DataParallel.Writer(options.Run);

        // 1. Roles.
        var rng = new Rng(_config.Seed);
        var lora = _config.Lora;
        // 1b. Frozen weights in BF16 (opt-in, Gpt.Bf16.cs), narrowed in place. Under LoRA before any adapter is attached: the
        // SFT base (policy and reference) and the reward model (also the value model's base) train only through adapters.
        if (lora.Enabled) HoldFrozenWeights(sft, rewardModel, reward);
        var policy = lora.Enabled ? sft.WithAdapter(LoraAdapter.Create(sft, lora, new Rng(_config.Seed ^ LoraStream))) : sft.Clone();
        var reference = lora.Enabled ? policy.WithAdapterOff() : sft;
        Gpt? value = null;
        Gpt? valueBase = null;
        if (_config.Algorithm != PolicyAlgorithm.Rloo)
        {
            var headRng = rng.Fork();
            if (lora.Enabled)
            {
                valueBase = rewardModel is not null ? FrozenBase(rewardModel.First.Model) : sft;
                value = valueBase.WithAdapter(LoraAdapter.Create(valueBase, lora, headRng, GptHeads.Value));
                if (rewardModel is not null) FoldRewardHead(rewardModel.First, value);
            }
            else value = rewardModel is not null ? ValueFromRewardModel(rewardModel.First, headRng) : sft.WithHeads(GptHeads.Value, headRng);
        }
        // 1b. Full fine-tuning: the reference (the SFT model itself) and the reward models go BF16 now that the value model
        // has copied its trunk from float32 weights.
        if (!lora.Enabled) HoldFrozenWeights(sft, rewardModel, reward);
        var policyOpt = NewOptimizer(policy);
        var valueOpt = value is null ? null : NewOptimizer(value);
        IKlController kl = _config.TargetKl is double target
            ? new AdaptiveKlController(_config.InitialKlCoef, target, _config.KlHorizon)
            : new FixedKlController(_config.InitialKlCoef);
        int startStep = 0;
        var history = new List<IReadOnlyDictionary<string, double>>();

        if (options.Run is { Resumed: true } && options.Run.LatestCheckpoint() is { } checkpoint)
        {
            // 10. Resume: models, optimiser moments, RNG and β as they were after the checkpoint's step.
            // LoRA: only the adapters are read back, onto the bases already in memory.
            policy = lora.Enabled ? sft.WithAdapter(LoraAdapter.Load(Path.Combine(checkpoint.Path, "policy"), sft.Config)) : Gpt.Load(Path.Combine(checkpoint.Path, "policy"));
            if (lora.Enabled) reference = policy.WithAdapterOff();
            policyOpt = NewOptimizer(policy);
            if (value is not null)
            {
                value = valueBase is not null ? valueBase.WithAdapter(LoraAdapter.Load(Path.Combine(checkpoint.Path, "value"), valueBase.Config)) : Gpt.Load(Path.Combine(checkpoint.Path, "value"));
                valueOpt = NewOptimizer(value);
            }
            var state = TrainerCheckpoint.ReadState<PpoState>(checkpoint.Path);
            TrainerCheckpoint.ReadOptimizers(checkpoint.Path, Optimizers(policyOpt, valueOpt));
            policyOpt.StepCount = state.PolicyAdamSteps;
            if (valueOpt is not null) valueOpt.StepCount = state.ValueAdamSteps;
            rng.SetState(state.Rng);
            kl = _config.TargetKl is double t2 ? new AdaptiveKlController(state.Beta, t2, _config.KlHorizon) : new FixedKlController(state.Beta);
            startStep = state.Step;
        }
        else
        {
            run?.WriteConfig(_config);
        }
        // Activation checkpointing (Gpt.Checkpointing.cs) on the two models that train.
        policy.ActivationCheckpointing = _config.ActivationCheckpointing;
        if (value is not null) value.ActivationCheckpointing = _config.ActivationCheckpointing;

        if (options.Profile is { } profile)
        {
            policy.Profile = profile.Policy;
            if (value is not null) value.Profile = profile.Value;
        }
        var generator = new GptGenerator(policy);
        bool cancelled = false;
        int step = startStep;
        if (step == 0 && _config.SnapshotEvery > 0) options.Snapshot?.Invoke(0, policy);
        for (; step < _config.Steps; step++)
        {
            if (DataParallel.StopRequested(ct))
            {
                cancelled = true;
                break;
            }
            var metrics = TrainStep(step, policy, reference, value, policyOpt, valueOpt, kl, generator, tokenizer, eos, prompts, reward, options, rng);
            // A step leaves gigabytes of large-object garbage at the GPT-2 shapes (rollout, scoring and minibatch buffers). The
            // workstation collector grows the heap rather than collect generation 2, so full fine-tuning's resident set rose
            // by ~1 GB a step (6.1, 6.8, 8.1, 9.6 GB over 4 steps) while the live data stayed at 4.3 GB. One blocking collection
            // per step keeps it at the first step's (bench ppo --measure-live); it touches no number the step computed.
            GC.Collect();
            bool monitorStop = options.Monitor?.AfterStep(step + 1, policy, reference, metrics, ct) ?? false; // 9b. monitors (own RNG)
            history.Add(metrics);
            run?.Log(step + 1, metrics);
            options.Progress?.Report(new AlignmentProgress(_config.Algorithm.ToString().ToLowerInvariant(), step + 1, _config.Steps, metrics));
            if (run is not null && _config.CheckpointInterval > 0 && (step + 1) % _config.CheckpointInterval == 0 && step + 1 < _config.Steps)
                SaveCheckpoint(run, step + 1, policy, value, policyOpt, valueOpt, kl, rng, _config.KeepCheckpoints);
            if (_config.SnapshotEvery > 0 && ((step + 1) % _config.SnapshotEvery == 0 || step + 1 == _config.Steps))
                options.Snapshot?.Invoke(step + 1, policy);
            if (monitorStop)
            {
                step++;
                break;
            }
        }
        DataParallel.CheckSameWeights(policy, "policy");
        if (value is not null) DataParallel.CheckSameWeights(value, "value model");
        if (run is not null)
        {
            if (run.LatestCheckpoint()?.Step != step) SaveCheckpoint(run, step, policy, value, policyOpt, valueOpt, kl, rng, _config.KeepCheckpoints);
            if (!cancelled)
            {
                policy.Save(Path.Combine(run.Path, "policy"));
                tokenizer.Save(Path.Combine(run.Path, "policy"));
            }
        }
        return new PpoResult(policy, value, history, cancelled, step);
    }

    /// <summary>
    /// Step 1's value model: the reward model's trunk, and a value head equal to its reward head with the normalisation
    /// folded in, so V at a sequence's last token is the normalised reward r(x, y) before any training.
    /// </summary>
    internal static Gpt ValueFromRewardModel(RewardModel rm, Rng rng)
    {
        var value = rm.Model.WithHeads(GptHeads.Value, rng);
        var w = rm.Model.Param(GptCheckpoint.RewardHeadWeight);
        var vw = value.Param(GptCheckpoint.ValueHeadWeight);
        for (int c = 0; c < w.Length; c++) vw[c] = (float)(rm.Normalization.Gain * w[c]);
        value.Param(GptCheckpoint.ValueHeadBias)[0] = (float)rm.Normalization.Bias;
        return value;
    }

    // The value adapter's own head, set as ValueFromRewardModel sets a full value model's.
    private static void FoldRewardHead(RewardModel rm, Gpt value)
    {
        var w = rm.Model.Param(GptCheckpoint.RewardHeadWeight);
        if (rm.Model.Adapter?.Head(GptCheckpoint.RewardHeadWeight) is { } trained) w = trained.Span;
        var vw = value.Adapter!.Head(GptCheckpoint.ValueHeadWeight)!.Span;
        for (int c = 0; c < w.Length; c++) vw[c] = (float)(rm.Normalization.Gain * w[c]);
        value.Adapter.Head(GptCheckpoint.ValueHeadBias)!.Span[0] = (float)rm.Normalization.Bias;
    }

    // A reward model trained with LoRA has its own adapter: the value model starts from that adapter merged (one copy).
    private void HoldFrozenWeights(Gpt sft, RewardEnsemble? rewardModel, IRolloutReward reward)
    {
        sft.HoldFrozenWeightsAs(_config.FrozenDtype);
        rewardModel?.HoldFrozenWeightsAs(_config.FrozenDtype);
        if (reward is RewardModelReward { Ensemble: var scorer } && scorer != rewardModel) scorer.HoldFrozenWeightsAs(_config.FrozenDtype);
    }

    private static Gpt FrozenBase(Gpt model) => model.Adapter is null ? model : model.Merged();

    private const ulong LoraStream = 0x10A7UL;

    private AdamW NewOptimizer(Gpt model) =>
        new(model.TrainableParameters, new AdamWConfig { LearningRate = _config.LearningRate, WeightDecay = 0f, Eps = 1e-5f }); // Adam eps 1e-5: CleanRL/baselines PPO

    private Dictionary<string, double> TrainStep(int step, Gpt policy, Gpt reference, Gpt? value, AdamW policyOpt, AdamW? valueOpt, IKlController kl,
        GptGenerator generator, ITokenizer tokenizer, int eos, IReadOnlyList<string> prompts, IRolloutReward reward, Options options, Rng rng)
    {
        var total = Stopwatch.StartNew();
        var steps = options.Profile?.Steps;
        int B = _config.BatchSize;
        double beta = kl.Beta;

        // 2. Rollouts. RLOO repeats each prompt K times so the samples of one prompt sit together.
        int perPrompt = _config.Algorithm == PolicyAlgorithm.Rloo ? _config.RlooSamples : 1;
        var batchPrompts = new List<string>(B);
        for (int i = 0; i < B / perPrompt; i++)
        {
            string p = prompts[rng.NextInt(prompts.Count)];
            for (int k = 0; k < perPrompt; k++) batchPrompts.Add(p);
        }
        RolloutBatch batch;
        float[] oldLogp, refLogp, oldValues, scores;
        double generationSeconds, scoringSeconds;
        var scoreWatch = Stopwatch.StartNew();
        if (_shards is null)
        {
            batch = PolicyRollouts.Sample(generator, tokenizer, eos, batchPrompts, _config.MaxNewTokens, _config.Temperature, rng);
            generationSeconds = batch.GenerationSeconds;

            // 3. Scoring.
            scoreWatch.Restart();
            steps?.Restart();
            int Tp0 = batch.PromptLength, R0 = batch.ResponseLength;
            oldLogp = PolicyRollouts.ResponseLogProbs(policy, batch.Input, Tp0, R0, _config.Temperature);
            steps?.Lap("score/policy");
            refLogp = PolicyRollouts.ResponseLogProbs(reference, batch.Input, Tp0, R0, _config.Temperature);
            steps?.Lap("score/reference");
            oldValues = value is null ? new float[B * R0] : PolicyRollouts.ResponseValues(value, batch.Input, Tp0, R0);
            steps?.Lap("score/value");
            scores = reward.Score(batchPrompts, batch.Responses, batch.Rows);
            steps?.Lap("score/reward");
            if (scores.Length != B) throw new InvalidOperationException($"ppo: the reward returned {scores.Length} scores for {B} responses.");
            scoringSeconds = scoreWatch.Elapsed.TotalSeconds;
        }
        else
        {
            // 2.–3. Sampled and scored slice by slice (11).
            var sharded = ShardedRollouts(step, _shards, policy, reference, value, generator, tokenizer, eos, batchPrompts, reward);
            (batch, oldLogp, refLogp, oldValues, scores) = (sharded.Batch, sharded.OldLogp, sharded.RefLogp, sharded.OldValues, sharded.Scores);
            (generationSeconds, scoringSeconds) = (sharded.GenerationSeconds, sharded.ScoringSeconds);
        }
        int Tp = batch.PromptLength, R = batch.ResponseLength, L = batch.Input.Length;
        var (input, mask, lengths, responses, rows, endsWithEos) = (batch.Input, batch.Mask, batch.Lengths, batch.Responses, batch.Rows, batch.EndsWithEos);
        var rawScores = (float[])scores.Clone();
        for (int b = 0; b < B; b++)
        {
            if (!endsWithEos[b] && _config.MissingEosPenalty is double pen) scores[b] -= (float)pen;
            if (_config.RewardClip is double clip) scores[b] = Math.Clamp(scores[b], (float)-clip, (float)clip);
        }

        // 4. Per-token rewards: −β·k1 everywhere, the score at the last real token.
        var (rewards, klK1, klK3) = RlhfRewards.PerToken(scores, oldLogp, refLogp, lengths, R, beta);
        var boolMask = mask.Select(m => m != 0).ToArray();
        if (_config.WhitenRewards) Whitening.Whiten(rewards, boolMask, shiftMean: false);

        // 5. Advantages (and returns for the value model).
        float[] advantages, returns;
        if (_config.Algorithm == PolicyAlgorithm.Ppo)
        {
            (advantages, returns) = Advantages.Gae(rewards, oldValues, lengths, R, _config.Gamma, _config.Lambda);
        }
        else if (_config.Algorithm == PolicyAlgorithm.Reinforce)
        {
            // REINFORCE with a learned baseline: A_t = G_t − V(s_t), G the return-to-go (GAE with λ = 1).
            (advantages, returns) = Advantages.Gae(rewards, oldValues, lengths, R, _config.Gamma, lambda: 1.0);
        }
        else
        {
            var loo = Advantages.LeaveOneOut(RlhfRewards.PerSequence(scores, klK1, beta), _config.RlooSamples);
            advantages = new float[B * R];
            for (int b = 0; b < B; b++) for (int t = 0; t < lengths[b]; t++) advantages[b * R + t] = loo[b];
            returns = new float[B * R];
        }
        // 6. Whitening over real tokens.
        if (_config.WhitenAdvantages) Whitening.Whiten(advantages, boolMask);
        for (int i = 0; i < advantages.Length; i++) if (!boolMask[i]) advantages[i] = 0;

        // 7. Epochs × minibatches.
        var trainWatch = Stopwatch.StartNew();
        double pgLoss = 0, vfLoss = 0, clipFrac = 0, approxKl = 0, entropy = 0, vfClipFrac = 0, ptxLoss = 0;
        int updates = 0;
        int M = _config.MiniBatchSize;
        GptPass? valuePass = null; // minibatch passes reuse their buffers (same shape), as the LM loop's do
        TapedLogProbs? policyTaped = null;
        // REINFORCE is on-policy: one pass over the minibatches whatever Epochs says.
        int epochs = _config.Algorithm == PolicyAlgorithm.Reinforce ? 1 : _config.Epochs;
        for (int epoch = 0; epoch < epochs; epoch++)
        {
            var perm = rng.Permutation(B);
            for (int start = 0; start < B; start += M)
            {
                var idx = perm.Skip(start).Take(M).ToArray();
                var sub = PolicyRollouts.Rows(input, idx);
                int b = idx.Length;
                var subMask = Tensor.FromArray(PolicyRollouts.Gather(mask, idx, R), b, R);

                double policyLossValue;
                if (_shards is not null)
                {
                    // 11. The minibatch's slices, their gradients summed in slice order.
                    var g = ShardedPolicyGradient(_shards, policy, input, idx, mask, oldLogp, advantages, Tp, R);
                    policyLossValue = g.Loss;
                    (pgLoss, clipFrac, approxKl, entropy) = (pgLoss + g.PolicyLoss, clipFrac + g.ClipFraction, approxKl + g.ApproxKl, entropy + g.Entropy);
                }
                else
                {
                    steps?.Restart();
                    policy.ZeroGrad();
                    var taped = PolicyLogProbsOnTape(policy, sub, Tp, R, policyTaped);
                    policyTaped = taped;
                    steps?.Lap("train/policy_forward");
                    var m = MinibatchPolicyLoss(taped, idx, subMask, oldLogp, advantages, Tp, R);
                    var policyLoss = m.Loss;
                    (pgLoss, clipFrac, approxKl, entropy) = (pgLoss + m.PolicyLoss, clipFrac + m.ClipFraction, approxKl + m.ApproxKl, entropy + m.Entropy);
                    policyLoss.Backward();
                    steps?.Lap("train/policy_loss");
                    PolicyRollouts.Backward(policy, taped, _config.Temperature);
                    policyLossValue = policyLoss.Item();
                    steps?.Lap("train/policy_backward");
                }
                if (_config.PtxCoef > 0) ptxLoss += PtxGradient(policy, options.PretrainRows!, rng);
                double policyGradNorm = policy.TrainableParameters.ClipGradNorm(_config.MaxGradNorm);
                // A diverged minibatch stops the run before the step is logged or checkpointed (NumericGuard).
                string hint = NumericGuard.LearningRateHint(_config.LearningRate);
                NumericGuard.Check(step + 1, "policy loss", policyLossValue, hint);
                NumericGuard.Check(step + 1, "policy gradient norm", policyGradNorm, hint);
                policyOpt.Step();
                NumericGuard.CheckParameters(step + 1, policy.ParameterSet, hint, "policy");
                steps?.Lap("train/policy_optimizer");

                if (value is not null)
                {
                    double valueLoss, valueClipFraction;
                    if (_shards is not null) (valueLoss, valueClipFraction) = ShardedValueGradient(_shards, value, input, idx, mask, oldValues, returns, Tp, R);
                    else
                    {
                        value.ZeroGrad();
                        var vpass = value.Forward(sub, new GptForwardOptions { Logits = false }, valuePass);
                        valuePass = vpass;
                        steps?.Lap("train/value_forward");
                        var vAll = Tensor.Wrap(vpass.Values!, b, L);
                        vAll.RequiresGrad = true;
                        var v = Ops.Narrow(vAll, 1, Tp - 1, R);
                        var vl = MinibatchValueLoss(v, idx, subMask, oldValues, returns, R);
                        Ops.MulScalar(vl.Loss, _config.ValueCoef).Backward();
                        value.Backward(vpass, dValues: vAll.Grad!.ToArray());
                        (valueLoss, valueClipFraction) = (vl.Loss.Item(), vl.ClipFraction);
                        steps?.Lap("train/value_backward");
                    }
                    double valueGradNorm = value.TrainableParameters.ClipGradNorm(_config.MaxGradNorm);
                    NumericGuard.Check(step + 1, "value loss", valueLoss, hint);
                    NumericGuard.Check(step + 1, "value gradient norm", valueGradNorm, hint);
                    valueOpt!.Step();
                    NumericGuard.CheckParameters(step + 1, value.ParameterSet, hint, "value model");
                    steps?.Lap("train/value_optimizer");
                    vfLoss += valueLoss;
                    vfClipFrac += valueClipFraction;
                }
                updates++;
            }
        }
        double trainingSeconds = trainWatch.Elapsed.TotalSeconds;

        // 8. β from this batch's KL.
        double meanKl = klK1.Average();
        kl.Update(meanKl, B);

        // 9. Metrics.
        int realTokens = lengths.Sum();
        var metrics = new Dictionary<string, double>
        {
            [MetricKeys.Kl] = meanKl,
            [MetricKeys.KlK3] = klK3.Average(),
            [MetricKeys.Scores] = rawScores.Average(),
            [MetricKeys.NonScoreReward] = -beta * meanKl,
            [MetricKeys.RlhfReward] = scores.Average() - beta * meanKl,
            [MetricKeys.Entropy] = -Enumerable.Range(0, B).Sum(b => Enumerable.Range(0, lengths[b]).Sum(t => (double)oldLogp[b * R + t])) / B,
            [MetricKeys.KlCoef] = beta,
            [MetricKeys.PolicyClipFraction] = clipFrac / updates,
            [MetricKeys.PolicyApproxKl] = approxKl / updates,
            [MetricKeys.PolicyEntropy] = entropy / updates,
            [MetricKeys.PolicyLoss] = pgLoss / updates,
            [MetricKeys.MeanLength] = (double)realTokens / B,
            [MetricKeys.ClippedRatio] = endsWithEos.Count(e => !e) / (double)B, // responses cut at the length limit, without EOS
            ["time/generation_s"] = generationSeconds,
            ["time/scoring_s"] = scoringSeconds,
            ["time/training_s"] = trainingSeconds,
            [MetricKeys.TokensPerSecond] = realTokens / Math.Max(1e-9, total.Elapsed.TotalSeconds),
        };
        if (_config.Algorithm == PolicyAlgorithm.Reinforce)
        {
            // No ratio and no clipping in REINFORCE: those figures would be a constant 0.
            metrics.Remove(MetricKeys.PolicyClipFraction);
            metrics.Remove(MetricKeys.PolicyApproxKl);
        }
        if (value is not null)
        {
            metrics[MetricKeys.ValueLoss] = vfLoss / updates;
            if (_config.Algorithm == PolicyAlgorithm.Ppo) metrics[MetricKeys.ValueClipFraction] = vfClipFrac / updates;
            metrics[MetricKeys.ValueExplainedVariance] = ValueDiagnostics.ExplainedVariance(oldValues, returns, boolMask);
            metrics[MetricKeys.ValueMean] = realTokens > 0 ? Enumerable.Range(0, mask.Length).Where(i => boolMask[i]).Average(i => (double)oldValues[i]) : 0;
        }
        if (_config.PtxCoef > 0) metrics[MetricKeys.PtxLoss] = ptxLoss / updates;
        if (options.Gold is { } gold)
            metrics[MetricKeys.GoldScore] = Enumerable.Range(0, B).Average(b => gold(batchPrompts[b], responses[b]));
        foreach (var (key, score) in options.Logged ?? [])
            metrics[key] = Enumerable.Range(0, B).Average(b => score(batchPrompts[b], responses[b]));
        metrics["time/step_s"] = total.Elapsed.TotalSeconds;
        return metrics;
    }

    /// <summary>PPO-ptx: accumulates γ_ptx·∇(−mean log π(x)) over a batch of pre-training rows; returns that mean NLL.</summary>
    private float PtxGradient(Gpt policy, IReadOnlyList<int[]> pretrain, Rng rng)
    {
        var batch = Enumerable.Range(0, _config.PtxBatchSize).Select(_ =>
        {
            var r = pretrain[rng.NextInt(pretrain.Count)];
            return r.Length > policy.Config.BlockSize ? r[..policy.Config.BlockSize] : r;
        }).Where(r => r.Length >= 2).ToList();
        if (batch.Count == 0) return 0;
        var input = TokenRows.RightPadded(batch);
        int T = input.Length, B = batch.Count, V = policy.Config.VocabSize;
        var targets = new int[B * T];
        var weights = new float[B * T];
        for (int b = 0; b < B; b++)
            for (int t = 0; t + 1 < batch[b].Length; t++)
            {
                targets[b * T + t] = batch[b][t + 1];
                weights[b * T + t] = 1f;
            }
        var pass = policy.Forward(input);
        var dLogits = new float[B * T * V];
        float loss = Gpt.CrossEntropy(pass, targets, weights, dLogits);
        PolicyRollouts.Scale(dLogits, _config.PtxCoef, inPlace: true);
        policy.Backward(pass, dLogits);
        return loss;
    }

    // 10. Checkpoints.
    private sealed record PpoState(int Step, double Beta, ulong[] Rng, int PolicyAdamSteps, int ValueAdamSteps);

    private static void SaveCheckpoint(RunDirectory run, int step, Gpt policy, Gpt? value, AdamW policyOpt, AdamW? valueOpt, IKlController kl, Rng rng, int keepLast)
    {
        run.SaveCheckpoint(step, dir =>
        {
            policy.Save(Path.Combine(dir, "policy"));
            value?.Save(Path.Combine(dir, "value"));
            TrainerCheckpoint.WriteOptimizers(dir, Optimizers(policyOpt, valueOpt));
            TrainerCheckpoint.WriteState(dir, new PpoState(step, kl.Beta, rng.GetState(), policyOpt.StepCount, valueOpt?.StepCount ?? 0));
        }, keepLast);
    }

    private static (string, AdamW)[] Optimizers(AdamW policyOpt, AdamW? valueOpt) =>
        valueOpt is null ? [("policy", policyOpt)] : [("policy", policyOpt), ("value", valueOpt)];
}
