// Reward-model training (InstructGPT step 2; Ziegler et al. 2019 §2.2; Christiano et al. 2017 §2.2.3).
// Objective, per batch of labelled comparisons with rewards r = r_φ(x, y) read at each response's last real token:
//   L(φ) = mean over examples of  −[μ·log σ(r_a − r_b − m) + (1 − μ)·log σ(r_b − r_a − m)]        (pairs; tie μ = ½)
//                                 −1/C(K,2) · Σ_{y_w ≻ y_l} log σ(r_w − r_l)                        (K-wise rankings)
//                                 −log softmax(r_1..r_K)[best]                                       (best-of-K)
// Implementation details (numbers appear in the code):
//  1. The trunk comes from the SFT checkpoint; the LM head gives way to a scalar head (score.weight) initialised
//     N(0, 0.02) — InstructGPT starts from the SFT model, Ziegler from the pre-trained LM.
//  2. Each sequence is prompt ++ response ++ EOS, so the head reads the end-of-text position (last real token).
//  3. All candidates of one example are in the same batch: a K-wise ranking's K·(K−1)/2 pairs form one batch element
//     (shuffled apart, InstructGPT found the model overfits).
//  4. The loss is computed on a [rows] tensor of rewards with Objectives.PreferenceLosses; its gradient with respect
//     to each reward goes back through the fused GPT backward (Gpt.Backward dRewards).
//  5. AdamW, gradient clipping at 1.0, one pass (InstructGPT trains its RM for a single epoch to avoid overfitting).
//  6. An ensemble of M members, each on a bootstrap resample of the training split with its own seed (Christiano).
//  7. After training, each member's bias (and optionally gain) is set so that responses sampled from the reference
//     (SFT) policy score mean 0 (and std 1).
//  8. Held-out accuracy, loss and a reliability table (predicted P(a ≻ b) binned against the observed frequency, each
//     pair counted in both orientations) are logged and returned.
//  9. Checkpoints (finished members, the current member with its AdamW moments, RNG states, bootstrap sample, step)
//     every CheckpointInterval steps, when a member ends and on cancellation; a resumed run continues bit-identically.
// 10. Data parallelism (docs/distributed.md): with GradShards = S > 1 each batch's examples are cut into S slices
//     (Distributed.ShardedGradient), each slice's loss divided by the whole batch's example count, the gradients and
//     the accuracy and margin counts summed in slice order; under mpirun rank r computes slice r, so N ranks equal one
//     process with GradShards = N bit for bit. Rank 0 alone writes; every rank holds the same members.
using System.Text.Json.Serialization;
using RlhfSharp.Distributed;
using RlhfSharp.Models;
using RlhfSharp.Models.Checkpoints;
using RlhfSharp.Objectives;
using RlhfSharp.Runs;
using RlhfSharp.Tensors;
using RlhfSharp.Tensors.Optim;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment.RewardModeling;

/// <summary>How a reward model is trained.</summary>
public sealed record RewardTrainerConfig
{
    [ConfigOption("Ensemble size M; members train on bootstrap resamples when M &gt; 1.", Min = 1)]
    public int Members { get; init; } = 1;

    [ConfigOption("Passes over the training split (InstructGPT: 1).", Name = "--epochs", Aliases = ["--num-train-epochs"], Min = 1)]
    [JsonPropertyName("num_train_epochs")]
    public int Epochs { get; init; } = 1;

    [ConfigOption("Examples per optimiser step (each brings all its candidates).", Name = "--batch-size", Aliases = ["--per-device-train-batch-size"], Min = 1)]
    [JsonPropertyName("per_device_train_batch_size")]
    public int BatchSize { get; init; } = 16;

    [ConfigOption("AdamW peak learning rate (linear decay to 0 over training).", Name = "--lr", Aliases = ["--learning-rate"], Min = 0, MinExclusive = true)]
    public float LearningRate { get; init; } = 1e-4f;

    [ConfigOption("AdamW decoupled weight decay on matrices.", Min = 0)]
    public float WeightDecay { get; init; }

    [ConfigOption("Gradient norm clip.", Min = 0, MinExclusive = true)]
    public double MaxGradNorm { get; init; } = 1.0;

    [ConfigOption("Share of examples held out for accuracy, loss and calibration, whole prompts at a time (no prompt on both sides).", Name = "--held-out", Aliases = ["--held-out-fraction"], Min = 0, Max = 1, MaxExclusive = true)]
    public double HeldOutFraction { get; init; } = 0.1;

    [ConfigOption("Steps between held-out evaluations (0: only at the end of each member).", Name = "--eval-interval", Aliases = ["--eval-steps"], Min = 0)]
    [JsonPropertyName("eval_steps")]
    public int EvalEvery { get; init; }

    [ConfigOption("Fit a gain too, so reference samples score std 1 (mean 0 is always fitted).")]
    public bool NormalizeStd { get; init; }

    [ConfigOption("Reference samples drawn from the SFT model for the normalisation (0 skips normalising).", Min = 0)]
    public int NormalizationSamples { get; init; } = 64;

    [ConfigOption("Longest reference sample, in tokens.", Min = 1)]
    public int NormalizationMaxNewTokens { get; init; } = 32;

    [ConfigOption("Bins of the reliability table.", Min = 1)]
    public int CalibrationBins { get; init; } = 10;

    [ConfigOption("Seed for the split, shuffling, bootstrap, head initialisation and reference samples.", Min = 0)]
    public ulong Seed { get; init; } = 1;

    [ConfigOption("Checkpoint into the run folder every this many steps of a member (0: only when stopped and when a member ends).", Name = "--checkpoint-interval", Aliases = ["--save-steps"], Min = 0)]
    [JsonPropertyName("save_steps")]
    public int CheckpointInterval { get; init; }

    [ConfigOption("Slices each batch is cut into, their gradients summed in slice order: under mpirun it follows -np (slice r on rank r), and one process with the same value gives the same bits (docs/distributed.md).", Min = 1)]
    public int GradShards { get; init; } = 1;

    [ConfigOption("Activation checkpointing (HF: gradient_checkpointing): the training forward keeps only each block's input and backward recomputes the block; less memory, about a third more training compute, the same gradients bit for bit.", Name = "--activation-checkpointing", Aliases = ["--gradient-checkpointing"])]
    [JsonPropertyName("gradient_checkpointing")]
    public bool ActivationCheckpointing { get; init; }

    /// <summary>LoRA: with r &gt; 0 only low-rank adapters (and heads) train; the base stays frozen.</summary>
    public LoraConfig Lora { get; init; } = new();

    public void Validate()
    {
        ConfigRanges.Validate(this, "reward config");
        Lora.Validate();
    }
}

/// <summary>One row of the reliability table.</summary>
/// <param name="Low">Lower edge of predicted P(a ≻ b).</param>
/// <param name="High">Upper edge.</param>
/// <param name="Count">Pair orientations whose prediction fell in the bin.</param>
/// <param name="MeanPredicted">Mean predicted probability in the bin.</param>
/// <param name="Observed">Share of them where a was in fact preferred.</param>
public sealed record CalibrationBin(double Low, double High, int Count, double MeanPredicted, double Observed);

/// <summary>How a reward model (or ensemble mean) does on labelled comparisons.</summary>
/// <param name="Accuracy">Share of ordered pairs (ties excluded) where the preferred response scores higher.</param>
/// <param name="Loss">The training loss on these examples.</param>
/// <param name="MeanMargin">Mean r_w − r_l over ordered pairs.</param>
/// <param name="Pairs">Ordered pairs evaluated.</param>
/// <param name="ExpectedCalibrationError">Σ_bins (count/N)·|observed − predicted|.</param>
/// <param name="Calibration">The reliability table.</param>
public sealed record RewardEvaluation(double Accuracy, double Loss, double MeanMargin, int Pairs, double ExpectedCalibrationError, IReadOnlyList<CalibrationBin> Calibration);

/// <summary>What training produced.</summary>
/// <param name="Ensemble">The trained, normalised members.</param>
/// <param name="HeldOut">The ensemble mean's held-out evaluation (null when nothing was held out).</param>
/// <param name="MemberHeldOut">Each member's own held-out evaluation.</param>
/// <param name="TrainExamples">Examples in the training split.</param>
/// <param name="HeldOutExamples">Examples held out.</param>
/// <param name="Cancelled">True when training stopped on cancellation (a checkpoint was written; the ensemble is incomplete).</param>
/// <param name="Steps">Optimiser steps done over all members (including those before a resume).</param>
public sealed record RewardTrainingResult(RewardEnsemble Ensemble, RewardEvaluation? HeldOut, IReadOnlyList<RewardEvaluation> MemberHeldOut, int TrainExamples, int HeldOutExamples,
    bool Cancelled = false, long Steps = 0);

public sealed class RewardTrainer
{
    private readonly RewardTrainerConfig _config;

    public RewardTrainer(RewardTrainerConfig config)
    {
        config.Validate();
        _config = config;
    }

    /// <summary>
    /// Trains M members from <paramref name="sft"/> (left untouched) on <paramref name="examples"/>; logs to
    /// <paramref name="run"/> when given. <paramref name="normalizationPrompts"/> (default: the examples' prompts) are
    /// continued by the SFT model for step 7.
    /// </summary>
    public RewardTrainingResult Train(Gpt sft, ITokenizer tokenizer, IReadOnlyList<PreferenceExample> examples,
        IReadOnlyList<string>? normalizationPrompts = null, RunDirectory? run = null, IProgress<AlignmentProgress>? progress = null, CancellationToken ct = default)
    {
        if (examples.Count < 2) throw new ArgumentException($"reward training: {examples.Count} examples; need at least 2.");
        var rng = new Rng(_config.Seed);
        // Held out by prompt (GroupedSplit): pairs exported from one K-wise query, or two labels of one prompt, stay on one side.
        var (heldIdx, trainIdx) = GroupedSplit.Split([.. examples.Select(e => e.Prompt)], _config.HeldOutFraction, rng);
        var held = heldIdx.Select(i => examples[i]).ToList();
        var train = trainIdx.Select(i => examples[i]).ToList();
        // 10. Rank 0 alone writes; every rank reads the checkpoint it resumes from.
        var shards = new ShardedGradient(Cluster.World, _config.GradShards);
        var writer = DataParallel.Writer(run);
        writer?.WriteConfig(_config);

        int stepsPerEpoch = (train.Count + _config.BatchSize - 1) / _config.BatchSize;
        int stepsPerMember = stepsPerEpoch * _config.Epochs;
        var members = new List<RewardModel>();
        var memberEvals = new List<RewardEvaluation>();

        // 9. Resume: finished members as saved, the current member's model, AdamW, bootstrap sample and step, and the RNGs
        // as they were (the main one after forking this member's, the member's own before the current epoch's shuffle).
        RewardState? resumed = null;
        string? checkpointPath = null;
        if (run is not null && run.Resumed && run.LatestCheckpoint() is { } checkpoint)
        {
            checkpointPath = checkpoint.Path;
            resumed = TrainerCheckpoint.ReadState<RewardState>(checkpoint.Path);
            for (int i = 0; i < resumed.Member; i++) members.Add(RewardModel.Load(Path.Combine(checkpoint.Path, $"member-{i}")));
            memberEvals.AddRange(resumed.MemberEvaluations);
            rng.SetState(resumed.MainRng);
        }
        for (int m = resumed?.Member ?? 0; m < _config.Members; m++)
        {
            // A checkpoint taken when a member ended starts the next one afresh (it holds no current member).
            bool continuing = resumed is { EpochRng: not null } && m == resumed.Member;
            var memberRng = continuing ? new Rng(0) : rng.Fork();
            RewardModel model;
            int[]? sample;
            if (continuing)
            {
                model = RewardModel.Load(Path.Combine(checkpointPath!, "current"));
                sample = resumed!.Bootstrap;
            }
            else
            {
                // 1. SFT trunk + fresh scalar head.
                var trunk = sft.WithHeads(GptHeads.Reward, memberRng.Fork());
                // LoRA: the member's head trains in full inside its adapter (PEFT's modules_to_save), its trunk frozen.
                if (_config.Lora.Enabled) trunk = trunk.WithAdapter(LoraAdapter.Create(trunk, _config.Lora, new Rng(_config.Seed ^ 0x10A7UL ^ (ulong)m)));
                model = new RewardModel(trunk, tokenizer);
                // 6. Bootstrap resample per member (the whole split for a single model).
                sample = _config.Members == 1 ? null : Enumerable.Range(0, train.Count).Select(_ => memberRng.NextInt(train.Count)).ToArray();
            }
            model.Model.ActivationCheckpointing = _config.ActivationCheckpointing;
            var data = sample is null ? train : sample.Select(i => train[i]).ToList();
            var opt = new AdamW(model.Model.TrainableParameters, new AdamWConfig { LearningRate = _config.LearningRate, WeightDecay = _config.WeightDecay });
            int step = 0;
            ulong[]? epochRng = null;
            if (continuing)
            {
                TrainerCheckpoint.ReadOptimizers(checkpointPath!, ("current", opt));
                opt.StepCount = resumed!.AdamStep;
                step = resumed.Step;
                epochRng = resumed.EpochRng;
            }
            ulong[] mainRng = rng.GetState();
            string stage = _config.Members == 1 ? "reward" : $"reward member {m + 1}/{_config.Members}";
            void Save(int atStep) => SaveCheckpoint(writer!, (long)m * stepsPerMember + atStep, members, memberEvals, model, opt,
                new RewardState(m, atStep, opt.StepCount, mainRng, epochRng!, sample, [.. memberEvals]));
            for (int epoch = step / Math.Max(1, stepsPerEpoch); epoch < _config.Epochs; epoch++)
            {
                if (epochRng is not null) memberRng.SetState(epochRng);
                epochRng = memberRng.GetState();
                var perm = memberRng.Permutation(data.Count);
                for (int start = (step - epoch * stepsPerEpoch) * _config.BatchSize; start < data.Count; start += _config.BatchSize)
                {
                    if (DataParallel.StopRequested(ct))
                    {
                        if (writer is not null) Save(step);
                        return new RewardTrainingResult(new RewardEnsemble([.. members, model]), null, memberEvals, train.Count, held.Count, Cancelled: true, (long)m * stepsPerMember + step);
                    }
                    var batch = perm.Skip(start).Take(_config.BatchSize).Select(i => data[i]).ToList();
                    var stats = shards.Shards == 1 ? WholeBatch(model, batch) : Sharded(model, batch, shards);
                    double gradNorm = model.Model.TrainableParameters.ClipGradNorm(_config.MaxGradNorm);
                    // 5. AdamW with a linear decay of the rate to 0.
                    float lr = _config.LearningRate * (1f - (float)step / stepsPerMember);
                    long at = (long)m * stepsPerMember + step + 1;
                    string hint = NumericGuard.LearningRateHint(lr);
                    NumericGuard.Check(at, "loss", stats.Loss, hint);
                    NumericGuard.Check(at, "gradient norm", gradNorm, hint);
                    opt.Step(lr);
                    step++;
                    NumericGuard.CheckParameters(at, model.Model.ParameterSet, hint, $"reward model (member {m})");
                    var metrics = new Dictionary<string, double>
                    {
                        [MetricKeys.TrainLoss] = stats.Loss,
                        [MetricKeys.TrainAccuracy] = stats.Accuracy,
                        [MetricKeys.TrainMargin] = stats.Margin,
                        [MetricKeys.GradNorm] = gradNorm,
                        [MetricKeys.LearningRate] = lr,
                        [MetricKeys.Member] = m,
                    };
                    if (_config.EvalEvery > 0 && step % _config.EvalEvery == 0 && held.Count > 0 && step < stepsPerMember)
                    {
                        var e = Evaluate([model], held);
                        metrics[MetricKeys.EvalLoss] = e.Loss;
                        metrics[MetricKeys.EvalAccuracy] = e.Accuracy;
                    }
                    writer?.Log((long)m * stepsPerMember + step, metrics);
                    progress?.Report(new AlignmentProgress(stage, step, stepsPerMember, metrics));
                    if (writer is not null && _config.CheckpointInterval > 0 && step % _config.CheckpointInterval == 0 && step < stepsPerMember) Save(step);
                }
                epochRng = null;
            }
            if (held.Count > 0)
            {
                var e = Evaluate([model], held);
                memberEvals.Add(e);
                writer?.Log((long)(m + 1) * stepsPerMember, new Dictionary<string, double> { [MetricKeys.EvalLoss] = e.Loss, [MetricKeys.EvalAccuracy] = e.Accuracy, [MetricKeys.EvalCalibrationError] = e.ExpectedCalibrationError, [MetricKeys.Member] = m });
            }
            DataParallel.CheckSameWeights(model.Model, $"reward model (member {m})");
            members.Add(model);
            resumed = null;
            // A finished member is checkpointed as the start of the next (the main RNG after this member's fork).
            if (writer is not null)
                SaveCheckpoint(writer, (long)(m + 1) * stepsPerMember, members, memberEvals, null, null,
                    new RewardState(m + 1, 0, 0, rng.GetState(), null, null, [.. memberEvals]));
        }

        // 7. Normalise each member on reference samples.
        if (_config.NormalizationSamples > 0)
        {
            var prompts = (normalizationPrompts is { Count: > 0 } ? normalizationPrompts : examples.Select(e => e.Prompt).Distinct().ToList());
            var rows = ReferenceSamples(sft, tokenizer, prompts, rng.Fork());
            foreach (var member in members) member.Normalization = FitNormalization(member.RawScores(rows), _config.NormalizeStd);
            progress?.Report(new AlignmentProgress("normalise", 1, 1, new Dictionary<string, double>()));
        }
        var ensemble = new RewardEnsemble(members);
        RewardEvaluation? heldEval = held.Count > 0 ? Evaluate(members, held) : null;
        if (heldEval is not null && writer is not null)
        {
            writer.Log((long)_config.Members * stepsPerMember + 1, new Dictionary<string, double>
            {
                [MetricKeys.EvalLoss] = heldEval.Loss,
                [MetricKeys.EvalAccuracy] = heldEval.Accuracy,
                [MetricKeys.EvalCalibrationError] = heldEval.ExpectedCalibrationError,
                [MetricKeys.EvalPairs] = heldEval.Pairs,
            });
            var json = System.Text.Json.JsonSerializer.Serialize(heldEval, new System.Text.Json.JsonSerializerOptions { WriteIndented = true });
            Runs.AtomicFile.WriteAllText(Path.Combine(writer.Path, "reward_eval.json"), json + "\n");
        }
        return new RewardTrainingResult(ensemble, heldEval, memberEvals, train.Count, held.Count, Cancelled: false, (long)_config.Members * stepsPerMember);
    }

    /// <summary>Where training stands: the member being trained (or next, with Step 0), its step, optimiser step count, RNG states and bootstrap sample.</summary>
    private sealed record RewardState(int Member, int Step, int AdamStep, ulong[] MainRng, ulong[]? EpochRng, int[]? Bootstrap, RewardEvaluation[] MemberEvaluations);

    private static void SaveCheckpoint(RunDirectory run, long step, List<RewardModel> finished, List<RewardEvaluation> evals, RewardModel? current, AdamW? opt, RewardState state) =>
        run.SaveCheckpoint(step, dir =>
        {
            for (int i = 0; i < finished.Count; i++) finished[i].Save(Path.Combine(dir, $"member-{i}"));
            if (current is not null)
            {
                current.Save(Path.Combine(dir, "current"));
                TrainerCheckpoint.WriteOptimizers(dir, ("current", opt!));
            }
            TrainerCheckpoint.WriteState(dir, state);
        }, keepLast: 2);

    /// <summary>Bias −mean (and gain 1/std) so that <paramref name="raw"/> maps to mean 0 (std 1).</summary>
    public static RewardNormalization FitNormalization(IReadOnlyList<float> raw, bool normalizeStd)
    {
        if (raw.Count == 0) throw new ArgumentException("reward normalisation: no reference scores.");
        double mean = raw.Average(x => (double)x);
        double gain = 1;
        if (normalizeStd && raw.Count > 1)
        {
            double var = raw.Sum(x => (x - mean) * (x - mean)) / (raw.Count - 1);
            gain = var > 1e-12 ? 1 / Math.Sqrt(var) : 1;
        }
        return new RewardNormalization(gain, -gain * mean);
    }

    private List<int[]> ReferenceSamples(Gpt sft, ITokenizer tokenizer, IReadOnlyList<string> prompts, Rng rng)
    {
        var gen = new GptGenerator(sft);
        var rows = new List<int[]>();
        int maxNew = Math.Min(_config.NormalizationMaxNewTokens, sft.Config.BlockSize - 1);
        const int chunk = 16;
        for (int start = 0; start < _config.NormalizationSamples; start += chunk)
        {
            var encoded = Enumerable.Range(start, Math.Min(chunk, _config.NormalizationSamples - start))
                .Select(i => Clip(tokenizer.Encode(prompts[i % prompts.Count]), sft.Config.BlockSize - maxNew)).ToList();
            var result = gen.Generate(encoded, new GenerationOptions { MaxNewTokens = maxNew, EosTokenId = tokenizer.EosId }, rng);
            for (int b = 0; b < result.Batch; b++) rows.Add([.. result.Prompt(b), .. result.Response(b)]);
        }
        return rows;
    }

    private static int[] Clip(int[] prompt, int max) => prompt.Length == 0 ? [0] : prompt.Length > max ? prompt[^max..] : prompt;

    /// <summary>A batch's loss and its ordered pairs: how many the model ranks right and the sum of r_w − r_l.</summary>
    internal readonly record struct BatchStats(double Loss, int Correct, int Pairs, double MarginSum)
    {
        public double Accuracy => Pairs > 0 ? (double)Correct / Pairs : 0;

        public double Margin => Pairs > 0 ? MarginSum / Pairs : 0;
    }

    /// <summary>Steps 2–4 on the whole batch in one pass (GradShards = 1, the golden tests' path).</summary>
    private static BatchStats WholeBatch(RewardModel model, List<PreferenceExample> batch)
    {
        model.Model.ZeroGrad();
        return LossAndGradient(model, batch, backward: true);
    }

    /// <summary>
    /// 10. Steps 2–4 slice by slice (this rank's slice under mpirun), each divided by the whole batch's example count; the
    /// gradient, loss and pair counts summed in slice order into the model's gradient and the returned figures.
    /// </summary>
    private static BatchStats Sharded(RewardModel model, List<PreferenceExample> batch, ShardedGradient shards)
    {
        var gradient = model.Model.TrainableParameters.Grads;
        foreach (int s in shards.LocalShards)
        {
            var (start, count) = shards.Slice(s, batch.Count);
            model.Model.ZeroGrad();
            var stats = count == 0 ? default : LossAndGradient(model, batch.GetRange(start, count), backward: true, batchSize: batch.Count);
            shards.Add(s, gradient, [stats.Loss, stats.Correct, stats.Pairs, stats.MarginSum]);
        }
        double loss = shards.Finish(gradient);
        var t = shards.Totals;
        return new BatchStats(loss, (int)t[1], (int)t[2], t[3]);
    }

    /// <summary>
    /// The batch loss (steps 2–4): rows are laid out by loss form so each group is a contiguous slice of one rewards
    /// tensor; the loss is the example-weighted mean of the group losses, divided by <paramref name="batchSize"/>
    /// examples when given (a slice of a larger batch) instead of this batch's count.
    /// </summary>
    internal static BatchStats LossAndGradient(RewardModel model, IReadOnlyList<PreferenceExample> batch, bool backward, int? batchSize = null)
    {
        var tok = model.Tokenizer;
        int block = model.Model.Config.BlockSize;
        var rows = new List<int[]>();
        var pairs = batch.Where(e => e.Kind == PreferenceKind.Pair).ToList();
        // 3. A group per (form, K): pairs as [all first | all second], rankings and best-of-K as K consecutive rows each.
        foreach (var e in pairs) rows.Add(TokenRows.Encode(tok, e.Prompt, e.Responses[0], block, templated: e.Templated).Tokens);
        foreach (var e in pairs) rows.Add(TokenRows.Encode(tok, e.Prompt, e.Responses[1], block, templated: e.Templated).Tokens);
        var groups = batch.Where(e => e.Kind != PreferenceKind.Pair).GroupBy(e => (e.Kind, e.Responses.Count)).Select(g => g.ToList()).ToList();
        foreach (var g in groups)
            foreach (var e in g)
                foreach (var r in e.Responses) rows.Add(TokenRows.Encode(tok, e.Prompt, r, block, templated: e.Templated).Tokens);

        // 2. One fused forward; rewards at each row's last real token.
        var pass = model.Model.Forward(TokenRows.RightPadded(rows), new GptForwardOptions { Logits = false });
        var raw = pass.Rewards!;
        var rewards = Tensor.FromArray(raw, raw.Length);
        rewards.RequiresGrad = backward;
        Tensor? total = null;
        int offset = 0;
        float n = batchSize ?? batch.Count;
        if (pairs.Count > 0)
        {
            int P = pairs.Count;
            var mu = pairs.Select(e => e.Tie ? 0.5f : 1f).ToArray();
            var margin = pairs.Select(e => e.Margin).ToArray();
            var loss = PreferenceLosses.Pairwise(Ops.Narrow(rewards, 0, 0, P), Ops.Narrow(rewards, 0, P, P), mu, margin);
            total = Ops.MulScalar(loss, P / n);
            offset = 2 * P;
        }
        foreach (var g in groups)
        {
            int K = g[0].Responses.Count, G = g.Count;
            var slice = Ops.Reshape(Ops.Narrow(rewards, 0, offset, G * K), G, K);
            var loss = g[0].Kind == PreferenceKind.Ranking
                ? PreferenceLosses.Ranking(slice, g.Select(e => e.Ranking!).ToList())
                : PreferenceLosses.BestOfK(slice, g.Select(e => e.Best!.Value).ToArray());
            var weighted = Ops.MulScalar(loss, G / n);
            total = total is null ? weighted : Ops.Add(total, weighted);
            offset += G * K;
        }
        if (backward)
        {
            total!.Backward();
            // 4. dL/dr for each row into the trunk and head.
            model.Model.Backward(pass, dRewards: rewards.Grad!.ToArray());
        }

        // Accuracy and margin over the ordered pairs each example implies.
        var index = RowIndex(batch, pairs, groups);
        int correct = 0, count = 0;
        double marginSum = 0;
        foreach (var (e, rowsOf) in index)
            foreach (var (w, l) in e.OrderedPairs())
            {
                double d = raw[rowsOf[w]] - raw[rowsOf[l]];
                marginSum += d;
                if (d > 0) correct++;
                count++;
            }
        return new BatchStats(total!.Item(), correct, count, marginSum);
    }

    private static List<(PreferenceExample Example, int[] Rows)> RowIndex(IReadOnlyList<PreferenceExample> batch, List<PreferenceExample> pairs, List<List<PreferenceExample>> groups)
    {
        var list = new List<(PreferenceExample, int[])>();
        for (int i = 0; i < pairs.Count; i++) list.Add((pairs[i], [i, pairs.Count + i]));
        int offset = 2 * pairs.Count;
        foreach (var g in groups)
            foreach (var e in g)
            {
                list.Add((e, Enumerable.Range(offset, e.Responses.Count).ToArray()));
                offset += e.Responses.Count;
            }
        return list;
    }

    /// <summary>Step 8: accuracy and reliability of the members' mean normalised score, and their mean loss, on <paramref name="examples"/>.</summary>
    public RewardEvaluation Evaluate(IReadOnlyList<RewardModel> members, IReadOnlyList<PreferenceExample> examples)
    {
        double lossSum = 0;
        int correct = 0, count = 0;
        double marginSum = 0;
        int bins = _config.CalibrationBins;
        var binCount = new int[bins];
        var binPred = new double[bins];
        var binObs = new double[bins];
        using (Autograd.NoGrad())
        {
            for (int start = 0; start < examples.Count; start += _config.BatchSize)
            {
                var batch = examples.Skip(start).Take(_config.BatchSize).ToList();
                // Loss of the ensemble is the members' mean loss; accuracy and calibration use the mean (normalised) score.
                double l = 0;
                foreach (var m in members) l += LossAndGradient(m, batch, backward: false).Loss;
                lossSum += l / members.Count * batch.Count;
                foreach (var e in batch)
                {
                    var rows = e.Responses.Select(r => TokenRows.Encode(members[0].Tokenizer, e.Prompt, r, members[0].Model.Config.BlockSize, templated: e.Templated).Tokens).ToList();
                    var scores = new double[rows.Count];
                    foreach (var m in members)
                    {
                        var s = m.ScoreTokens(rows);
                        for (int i = 0; i < s.Length; i++) scores[i] += s[i] / members.Count;
                    }
                    foreach (var (w, lo) in e.OrderedPairs())
                    {
                        double d = scores[w] - scores[lo];
                        marginSum += d;
                        if (d > 0) correct++;
                        count++;
                        double p = 1 / (1 + Math.Exp(-d));
                        // Both orientations: (p, winner first) and (1 − p, loser first), so the table is not one-sided.
                        Add(p, 1);
                        Add(1 - p, 0);
                    }
                }
            }
        }
        int total = binCount.Sum();
        var table = new List<CalibrationBin>();
        double ece = 0;
        for (int b = 0; b < bins; b++)
        {
            double pred = binCount[b] > 0 ? binPred[b] / binCount[b] : 0;
            double obs = binCount[b] > 0 ? binObs[b] / binCount[b] : 0;
            table.Add(new CalibrationBin((double)b / bins, (double)(b + 1) / bins, binCount[b], pred, obs));
            if (total > 0) ece += (double)binCount[b] / total * Math.Abs(obs - pred);
        }
        return new RewardEvaluation(count > 0 ? (double)correct / count : 0, examples.Count > 0 ? lossSum / examples.Count : 0,
            count > 0 ? marginSum / count : 0, count, ece, table);

        void Add(double p, double observed)
        {
            int b = Math.Min(bins - 1, (int)(p * bins));
            binCount[b]++;
            binPred[b] += p;
            binObs[b] += observed;
        }
    }
}
