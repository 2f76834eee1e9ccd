// Direct preference optimisation (Rafailov et al. 2023): the offline baseline users compare PPO with, and its offline
// relatives by loss_type: IPO, SimPO and ORPO (Objectives.DpoVariantLosses; KTO, on unpaired data, is KtoTrainer).
// Objective, over labelled pairs (x, y_w, y_l) with log-probabilities summed over response tokens:
//   L(θ) = −E[ log σ( β·[(log π_θ(y_w|x) − log π_ref(y_w|x)) − (log π_θ(y_l|x) − log π_ref(y_l|x))] ) ]
// Implementation details (numbers appear in the code):
//  1. π_θ starts as a copy of the SFT model; π_ref is the SFT model, and its log-probabilities of every training and
//     held-out response are computed once, before training (TRL's precompute_ref_log_probs).
//  2. Rankings and best-of-K labels become their implied ordered pairs; ties carry no DPO signal and are dropped.
//  3. Each sequence is prompt ++ response ++ EOS; only response tokens (EOS included) count in the sums.
//  4. The loss is Objectives.DpoLoss (or IPO, SimPO, ORPO from DpoVariantLosses, which average over each response's
//     tokens) on [B] tensors of summed log-probs, taken from the fused forward's logits; its gradient goes back through
//     Gpt.Backward. SimPO and ORPO need no reference log-probs.
//  5. AdamW with linear decay, gradient clipping at 1.0; held-out loss and implicit-reward accuracy logged
//     (TRL's rewards/chosen, rewards/rejected, rewards/accuracies, rewards/margins).
//  6. Checkpoints (policy, AdamW, the RNG before the current epoch's shuffle, the step) every CheckpointInterval steps,
//     on cancellation and at the end; a resumed run continues bit-identically.
//  7. Data parallelism (docs/distributed.md): with GradShards = S > 1 each batch's pairs are cut into S slices
//     (Distributed.ShardedGradient), each slice's loss divided by the whole batch's pair count (ORPO's NLL by its
//     chosen-token count), gradients and implicit-reward sums added in slice order; under mpirun rank r computes slice
//     r, so N ranks equal one process with GradShards = N bit for bit. Rank 0 alone writes.
using System.Text.Json.Serialization;
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Distributed;
using RlhfSharp.Models;
using RlhfSharp.Models.Checkpoints;
using RlhfSharp.Objectives;
using RlhfSharp.Runs;
using RlhfSharp.Tensors;
using RlhfSharp.Tensors.Optim;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment.Dpo;

/// <summary>Which preference loss the offline trainer minimises (TRL's loss_type; SimPO as TRL's CPOTrainer, ORPO as its ORPOTrainer).</summary>
public enum DpoLossType
{
    /// <summary>DPO: −log σ(β·h), summed log-probs (Rafailov et al. 2023); with label smoothing, cDPO.</summary>
    Sigmoid,
    /// <summary>IPO: (h − 1/(2β))² on per-token averages (Azar et al. 2023).</summary>
    Ipo,
    /// <summary>SimPO: −log σ(β·(s̄_w − s̄_l) − γ), no reference model (Meng et al. 2024).</summary>
    Simpo,
    /// <summary>ORPO: NLL(y_w) − β·log σ(log-odds ratio), no reference model (Hong et al. 2024); β is ORPO's λ.</summary>
    Orpo,
}

/// <summary>How DPO trains.</summary>
public sealed record DpoConfig
{
    [ConfigOption("β: the strength of the implicit KL leash (Rafailov et al.: 0.1–0.5); SimPO's β (paper: 2–2.5); ORPO's λ (TRL: 0.1).", Min = 0, MinExclusive = true)]
    public float Beta { get; init; } = 0.1f;

    [ConfigOption("The preference loss: sigmoid (DPO), ipo, simpo or orpo (Objectives.DpoLoss, DpoVariantLosses).")]
    [JsonPropertyName("loss_type")]
    public DpoLossType LossType { get; init; } = DpoLossType.Sigmoid;

    [ConfigOption("SimPO's target reward margin γ (TRL CPOConfig simpo_gamma).", Min = -1000, Max = 1000)]
    [JsonPropertyName("simpo_gamma")]
    public float SimPoGamma { get; init; } = DpoVariantLosses.SimPoDefaultGamma;

    [ConfigOption("Label smoothing ε (conservative DPO); 0 is plain DPO.", Min = 0, Max = 0.5, MaxExclusive = true)]
    public float LabelSmoothing { get; init; }

    [ConfigOption("Passes over the training pairs.", Aliases = ["--epochs"], Min = 1)]
    [JsonPropertyName("num_train_epochs")]
    public int Epochs { get; init; } = 1;

    [ConfigOption("Pairs per optimiser step.", Name = "--batch-size", Aliases = ["--per-device-train-batch-size"], Min = 1)]
    [JsonPropertyName("per_device_train_batch_size")]
    public int BatchSize { get; init; } = 8;

    [ConfigOption("AdamW peak learning rate (linear decay to 0).", Name = "--lr", Aliases = ["--learning-rate"], Min = 0, MinExclusive = true)]
    public float LearningRate { get; init; } = 1e-5f;

    [ConfigOption("Gradient norm clip.", Min = 0, MinExclusive = true)]
    public double MaxGradNorm { get; init; } = 1.0;

    [ConfigOption("Share of pairs held out for evaluation, whole prompts at a time (no prompt on both sides).", Name = "--held-out", Aliases = ["--held-out-fraction"], Min = 0, Max = 1, MaxExclusive = true)]
    public double HeldOutFraction { get; init; } = 0.1;

    [ConfigOption("Seed for the split and shuffling.", Min = 0)]
    public ulong Seed { get; init; } = 1;

    [ConfigOption("Checkpoint into the run folder every this many steps (0: only when stopped and at the end).", Name = "--checkpoint-interval", Aliases = ["--save-steps"], Min = 0)]
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
        ConfigRanges.Validate(this, "dpo config");
        if (LabelSmoothing > 0 && LossType != DpoLossType.Sigmoid) throw new ArgumentException($"dpo config: label smoothing applies to the sigmoid loss only, not {LossType}.");
        Lora.Validate();
    }
}

/// <summary>
/// The trained policy and its last held-out evaluation (null when nothing was held out or the run was stopped), the
/// metrics of this call's steps, whether it stopped on cancellation (a checkpoint was written), and the steps done in all.
/// </summary>
public sealed record DpoResult(Gpt Policy, double? HeldOutLoss, double? HeldOutAccuracy, IReadOnlyList<IReadOnlyDictionary<string, double>> History,
    bool Cancelled = false, int Steps = 0);

public sealed class DpoTrainer
{
    private readonly DpoConfig _config;

    public DpoTrainer(DpoConfig config)
    {
        config.Validate();
        _config = config;
    }

    private sealed record Pair(int[] Chosen, int[] Rejected, int ChosenPrompt, int RejectedPrompt)
    {
        public int ChosenLength => Chosen.Length - ChosenPrompt;
        public int RejectedLength => Rejected.Length - RejectedPrompt;

        public float RefChosen { get; set; }
        public float RefRejected { get; set; }
    }

    public DpoResult Train(Gpt sft, ITokenizer tokenizer, IReadOnlyList<PreferenceExample> examples, RunDirectory? run = null,
        IProgress<AlignmentProgress>? progress = null, CancellationToken ct = default)
    {
        int block = sft.Config.BlockSize;
        // 2. and 3. Ordered pairs as token rows.
        var pairs = new List<Pair>();
        var pairPrompts = new List<string>();
        foreach (var e in examples)
            foreach (var (w, l) in e.OrderedPairs())
            {
                var (cw, pw) = TokenRows.Encode(tokenizer, e.Prompt, e.Responses[w], block, templated: e.Templated);
                var (cl, pl) = TokenRows.Encode(tokenizer, e.Prompt, e.Responses[l], block, templated: e.Templated);
                pairs.Add(new Pair(cw, cl, pw, pl));
                pairPrompts.Add(e.Prompt);
            }
        if (pairs.Count < 2) throw new ArgumentException($"dpo: {pairs.Count} ordered pairs in the data; need at least 2.");
        var rng = new Rng(_config.Seed);
        // Held out by prompt (GroupedSplit), not by pair: the K·(K−1)/2 pairs of one ranking share responses, so a per-pair
        // split put the same responses on both sides.
        var (heldIdx, trainIdx) = GroupedSplit.Split(pairPrompts, _config.HeldOutFraction, rng);
        var held = heldIdx.Select(i => pairs[i]).ToList();
        var train = trainIdx.Select(i => pairs[i]).ToList();
        // 7. Rank 0 alone writes; every rank reads the checkpoint it resumes from.
        var shards = new ShardedGradient(Cluster.World, _config.GradShards);
        var writer = DataParallel.Writer(run);
        writer?.WriteConfig(_config);

        // 1. Reference log-probs, once (again after a resume: they are a pure function of the SFT model and the data);
        // SimPO and ORPO have no reference model.
        bool needsReference = _config.LossType is DpoLossType.Sigmoid or DpoLossType.Ipo;
        for (int start = 0; needsReference && start < pairs.Count; start += _config.BatchSize)
        {
            var batch = pairs.Skip(start).Take(_config.BatchSize).ToList();
            using (Autograd.NoGrad())
            {
                var (lp, _, _) = SequenceLogProbs(sft, batch, requireGrad: false);
                for (int i = 0; i < batch.Count; i++)
                {
                    batch[i].RefChosen = lp.Span[i];
                    batch[i].RefRejected = lp.Span[batch.Count + i];
                }
            }
        }

        // With LoRA the policy is the SFT base plus an adapter (no copy); the reference log-probs above are the base's.
        var policy = _config.Lora.Enabled ? sft.WithAdapter(LoraAdapter.Create(sft, _config.Lora, new Rng(_config.Seed ^ 0x10A7UL))) : sft.Clone();
        var opt = new AdamW(policy.TrainableParameters, new AdamWConfig { LearningRate = _config.LearningRate, WeightDecay = 0f });
        int stepsPerEpoch = (train.Count + _config.BatchSize - 1) / _config.BatchSize;
        int total = stepsPerEpoch * _config.Epochs;
        int step = 0;
        // 6. Resume: the policy, AdamW, and the RNG as it was before the current epoch's shuffle, so that epoch's order
        // is drawn again and its first (step − epoch·stepsPerEpoch) batches are skipped.
        ulong[]? epochRng = null;
        if (run is not null && run.Resumed && run.LatestCheckpoint() is { } checkpoint)
        {
            var saved = Gpt.Load(Path.Combine(checkpoint.Path, "policy"));
            if (policy.Adapter is null) saved.Parameters.CopyTo(policy.Parameters, 0);
            else policy.Adapter.CopyFrom(saved.Adapter ?? throw new InvalidOperationException($"{checkpoint.Path}: the checkpoint's policy has no LoRA adapter; resume with the same settings."));
            TrainerCheckpoint.ReadOptimizers(checkpoint.Path, ("policy", opt));
            var state = TrainerCheckpoint.ReadState<DpoState>(checkpoint.Path);
            opt.StepCount = state.AdamStep;
            step = state.Step;
            epochRng = state.EpochRng;
        }
        policy.ActivationCheckpointing = _config.ActivationCheckpointing;
        var history = new List<IReadOnlyDictionary<string, double>>();
        for (int epoch = step / Math.Max(1, stepsPerEpoch); epoch < _config.Epochs; epoch++)
        {
            if (epochRng is not null) rng.SetState(epochRng);
            epochRng = rng.GetState();
            var perm = rng.Permutation(train.Count);
            for (int start = (step - epoch * stepsPerEpoch) * _config.BatchSize; start < train.Count; start += _config.BatchSize)
            {
                if (DataParallel.StopRequested(ct))
                {
                    if (writer is not null) SaveCheckpoint(writer, step, policy, opt, epochRng);
                    return new DpoResult(policy, null, null, history, Cancelled: true, step);
                }
                var batch = perm.Skip(start).Take(_config.BatchSize).Select(i => train[i]).ToList();
                var stats = shards.Shards == 1 ? WholeBatch(policy, batch) : Sharded(policy, batch, shards);
                double gradNorm = policy.TrainableParameters.ClipGradNorm(_config.MaxGradNorm);
                // 5. Linear decay.
                float lr = _config.LearningRate * (1f - (float)step / total);
                string hint = NumericGuard.LearningRateHint(lr);
                NumericGuard.Check(step + 1, "loss", stats.Loss, hint);
                NumericGuard.Check(step + 1, "gradient norm", gradNorm, hint);
                opt.Step(lr);
                step++;
                NumericGuard.CheckParameters(step, policy.ParameterSet, hint, "policy");
                var metrics = new Dictionary<string, double>
                {
                    [MetricKeys.TrainLoss] = stats.Loss,
                    [MetricKeys.RewardsChosen] = stats.Chosen,
                    [MetricKeys.RewardsRejected] = stats.Rejected,
                    [MetricKeys.RewardsAccuracies] = stats.Accuracy,
                    [MetricKeys.RewardsMargins] = stats.Margin,
                    [MetricKeys.GradNorm] = gradNorm,
                    [MetricKeys.LearningRate] = lr,
                };
                history.Add(metrics);
                writer?.Log(step, metrics);
                progress?.Report(new AlignmentProgress("dpo", step, total, metrics));
                if (writer is not null && _config.CheckpointInterval > 0 && step % _config.CheckpointInterval == 0 && step < total)
                    SaveCheckpoint(writer, step, policy, opt, epochRng);
            }
            epochRng = null;
        }
        double? heldLoss = null, heldAcc = null;
        if (held.Count > 0)
        {
            (heldLoss, heldAcc) = Evaluate(policy, held);
            writer?.Log(step, new Dictionary<string, double> { [MetricKeys.EvalLoss] = heldLoss.Value, [MetricKeys.EvalRewardsAccuracies] = heldAcc.Value });
        }
        DataParallel.CheckSameWeights(policy, "policy");
        if (writer is not null)
        {
            if (writer.LatestCheckpoint()?.Step != step) SaveCheckpoint(writer, step, policy, opt, rng.GetState());
            policy.Save(Path.Combine(writer.Path, "policy"));
            tokenizer.Save(Path.Combine(writer.Path, "policy"));
        }
        return new DpoResult(policy, heldLoss, heldAcc, history, Cancelled: false, step);
    }

    private sealed record DpoState(int Step, int AdamStep, ulong[] EpochRng);

    /// <summary>A step's loss and TRL's rewards/* figures: mean implicit rewards, share ranked right, mean margin.</summary>
    private readonly record struct StepStats(double Loss, double Chosen, double Rejected, double Accuracy, double Margin);

    /// <summary>Steps 4 on the whole batch in one pass (GradShards = 1, the golden tests' path).</summary>
    private StepStats WholeBatch(Gpt policy, List<Pair> batch)
    {
        policy.ZeroGrad();
        var (lp, pass, logits) = SequenceLogProbs(policy, batch, requireGrad: true);
        var res = Loss(lp, batch);
        // 4. Through the logits into the fused backward.
        res.Loss.Backward();
        policy.Backward(pass!, logits!.Grad!.ToArray());
        return new StepStats(res.Loss.Item(), res.ChosenRewards.Average(), res.RejectedRewards.Average(), res.Accuracy,
            res.ChosenRewards.Zip(res.RejectedRewards).Average(p => p.First - p.Second));
    }

    /// <summary>
    /// 7. Step 4 slice by slice (this rank's slice under mpirun), each slice's loss a share of the whole batch's; the
    /// gradients, losses and implicit-reward sums added in slice order.
    /// </summary>
    private StepStats Sharded(Gpt policy, List<Pair> batch, ShardedGradient shards)
    {
        int B = batch.Count;
        long chosenTokens = 0;
        foreach (var p in batch) chosenTokens += p.ChosenLength;
        var gradient = policy.TrainableParameters.Grads;
        foreach (int s in shards.LocalShards)
        {
            var (start, count) = shards.Slice(s, B);
            policy.ZeroGrad();
            double[] values = new double[5];
            if (count > 0)
            {
                var slice = batch.GetRange(start, count);
                var (lp, pass, logits) = SequenceLogProbs(policy, slice, requireGrad: true);
                // Every loss is a mean over pairs, so a slice's share is count/B of it; ORPO's NLL is a mean over the
                // batch's chosen tokens, so it takes the whole batch's divisors instead.
                var res = Loss(lp, slice, (B, chosenTokens));
                var loss = _config.LossType == DpoLossType.Orpo ? res.Loss : Ops.MulScalar(res.Loss, (float)count / B);
                loss.Backward();
                policy.Backward(pass!, logits!.Grad!.ToArray());
                values[0] = loss.Item();
                for (int i = 0; i < count; i++)
                {
                    values[1] += res.ChosenRewards[i];
                    values[2] += res.RejectedRewards[i];
                    if (res.ChosenRewards[i] > res.RejectedRewards[i]) values[3]++;
                    values[4] += res.ChosenRewards[i] - res.RejectedRewards[i];
                }
            }
            shards.Add(s, gradient, values);
        }
        double total = shards.Finish(gradient);
        var t = shards.Totals;
        return new StepStats(total, t[1] / B, t[2] / B, t[3] / B, t[4] / B);
    }

    private static void SaveCheckpoint(RunDirectory run, int step, Gpt policy, AdamW opt, ulong[] epochRng) =>
        run.SaveCheckpoint(step, dir =>
        {
            policy.Save(Path.Combine(dir, "policy"));
            TrainerCheckpoint.WriteOptimizers(dir, ("policy", opt));
            TrainerCheckpoint.WriteState(dir, new DpoState(step, opt.StepCount, epochRng));
        });

    /// <param name="whole">For a slice: the whole batch's pair and chosen-token counts (ORPO divides by them).</param>
    private DpoLossResult Loss(Tensor lp, List<Pair> batch, (int Pairs, long ChosenTokens)? whole = null)
    {
        int b = batch.Count;
        var (chosen, rejected) = (Ops.Narrow(lp, 0, 0, b), Ops.Narrow(lp, 0, b, b));
        int[] chosenLengths = [.. batch.Select(p => p.ChosenLength)], rejectedLengths = [.. batch.Select(p => p.RejectedLength)];
        float[] refChosen = [.. batch.Select(p => p.RefChosen)], refRejected = [.. batch.Select(p => p.RefRejected)];
        return _config.LossType switch
        {
            DpoLossType.Ipo => DpoVariantLosses.Ipo(chosen, rejected, refChosen, refRejected, chosenLengths, rejectedLengths, _config.Beta),
            DpoLossType.Simpo => DpoVariantLosses.SimPo(chosen, rejected, chosenLengths, rejectedLengths, _config.Beta, _config.SimPoGamma),
            DpoLossType.Orpo => DpoVariantLosses.Orpo(chosen, rejected, chosenLengths, rejectedLengths, _config.Beta, whole),
            _ => DpoLoss.Compute(chosen, rejected, refChosen, refRejected, _config.Beta, _config.LabelSmoothing),
        };
    }

    private (double Loss, double Accuracy) Evaluate(Gpt policy, List<Pair> pairs)
    {
        double loss = 0, correct = 0;
        using (Autograd.NoGrad())
        {
            for (int start = 0; start < pairs.Count; start += _config.BatchSize)
            {
                var batch = pairs.Skip(start).Take(_config.BatchSize).ToList();
                var (lp, _, _) = SequenceLogProbs(policy, batch, requireGrad: false);
                var res = Loss(lp, batch);
                loss += res.Loss.Item() * batch.Count;
                correct += res.Accuracy * batch.Count;
            }
        }
        return (loss / pairs.Count, correct / pairs.Count);
    }

    /// <summary>
    /// Σ log π(response tokens) for [chosen rows…, rejected rows…] → [2b]; with <paramref name="requireGrad"/>, the
    /// logits tensor is a leaf whose gradient feeds Gpt.Backward.
    /// </summary>
    private static (Tensor LogProbs, GptPass? Pass, Tensor? Logits) SequenceLogProbs(Gpt model, List<Pair> batch, bool requireGrad) =>
        SequenceLogProbs(model, [.. batch.Select(p => p.Chosen).Concat(batch.Select(p => p.Rejected))],
            [.. batch.Select(p => p.ChosenPrompt).Concat(batch.Select(p => p.RejectedPrompt))], requireGrad);

    /// <summary>Σ log π(response tokens) per row → [N]; row r's first prompts[r] tokens are its prompt.</summary>
    internal static (Tensor LogProbs, GptPass? Pass, Tensor? Logits) SequenceLogProbs(Gpt model, IReadOnlyList<int[]> rows, IReadOnlyList<int> prompts, bool requireGrad)
    {
        var input = TokenRows.RightPadded(rows);
        int N = rows.Count, T = input.Length, V = model.Config.VocabSize;
        var pass = model.Forward(input, new GptForwardOptions { KeepActivations = requireGrad });
        var logits = Tensor.Wrap(pass.Logits!, N, T, V);
        logits.RequiresGrad = requireGrad;
        var targets = new int[N * T];
        var mask = new float[N * T];
        for (int r = 0; r < N; r++)
            for (int t = 0; t + 1 < rows[r].Length; t++)
            {
                targets[r * T + t] = rows[r][t + 1];
                // 3. Position t predicts token t + 1: it counts when that token belongs to the response.
                if (t + 1 >= prompts[r]) mask[r * T + t] = 1f;
            }
        var lp = Ops.Sum(Ops.Mul(Ops.TokenLogProbs(logits, targets), Tensor.Wrap(mask, N, T)), 1);
        return (lp, requireGrad ? pass : null, requireGrad ? logits : null);
    }
}
