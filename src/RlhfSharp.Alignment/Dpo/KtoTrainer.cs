// Kahneman–Tversky optimisation (Ethayarajh et al. 2024) on unpaired feedback: each example is a prompt, one completion
// and a label (desirable or not), TRL's unpaired preference format {"prompt", "completion", "label"}.
// Objective (Objectives.DpoVariantLosses.Kto), with s = Σ log π(y|x) over the completion's tokens:
//   z = max(0, mean over the batch of (s_KL − sʳᵉᶠ_KL)) on mismatched pairs (x_i, y_{i−1}), held constant,
//   L = mean[ λ_D·(1 − σ(β·((s − sʳᵉᶠ) − z))) over desirable, λ_U·(1 − σ(β·(z − (s − sʳᵉᶠ)))) over undesirable ].
// Implementation details (numbers appear in the code), after TRL's KTOTrainer (kto_trainer.py):
//  1. π_θ starts as a copy of the SFT model; π_ref is the SFT model; its log-probs of every example are computed once.
//  2. The KL pairs of a batch put each prompt with the previous example's completion (TRL's "+1 offset" in
//     _get_kl_dataset); their log-probs under π_θ and π_ref are taken without gradient (TRL computes them under no_grad).
//  3. Each sequence is prompt ++ completion ++ EOS; only completion tokens (EOS included) count in the sums.
//  4. AdamW with linear decay, gradient clipping; logged: train/loss, train/kl (z), rewards/chosen and rewards/rejected
//     (mean β·(s − sʳᵉᶠ) of desirable and undesirable examples), held-out loss at the end.
//  5. Checkpoints (policy, AdamW, the RNG before the current epoch's shuffle, the step); a resumed run continues
//     bit-identically.
using System.Text.Json.Serialization;
using RlhfSharp.Feedback;
using RlhfSharp.Models;
using RlhfSharp.Models.Checkpoints;
using RlhfSharp.Objectives;
using RlhfSharp.Runs;
using RlhfSharp.Tensors;
using RlhfSharp.Tensors.Optim;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment.Dpo;

/// <summary>One unpaired example: a prompt, a completion, and whether the completion is desirable.</summary>
public sealed record UnpairedExample(string Prompt, string Completion, bool Label);

public static class UnpairedData
{
    /// <summary>Reads {"prompt", "completion", "label": true|false} lines; errors name the file and line.</summary>
    public static List<UnpairedExample> Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"unpaired data file {path} does not exist.", path);
        var list = JsonlReader.Read(path, "unpaired data").Select(line =>
            new UnpairedExample(line.String("prompt"), line.String("completion"), line.OptionalBool("label") ?? throw line.Error("field \"label\" (true or false) is missing."))).ToList();
        if (list.Count == 0) throw new FormatException($"{path}: no examples.");
        return list;
    }
}

/// <summary>How KTO trains (TRL KTOConfig's names and defaults where they apply).</summary>
public sealed record KtoConfig
{
    [ConfigOption("β: the strength of the implicit KL leash (TRL: 0.1).", Min = 0, MinExclusive = true)]
    public float Beta { get; init; } = 0.1f;

    [ConfigOption("λ_D: weight of desirable examples (TRL desirable_weight).", Min = 0, MinExclusive = true)]
    [JsonPropertyName("desirable_weight")]
    public float DesirableWeight { get; init; } = 1f;

    [ConfigOption("λ_U: weight of undesirable examples (TRL undesirable_weight).", Min = 0, MinExclusive = true)]
    [JsonPropertyName("undesirable_weight")]
    public float UndesirableWeight { get; init; } = 1f;

    [ConfigOption("Passes over the training examples.", Aliases = ["--epochs"], Min = 1)]
    [JsonPropertyName("num_train_epochs")]
    public int Epochs { get; init; } = 1;

    [ConfigOption("Examples per optimiser step (≥ 2: the KL pairs need another example's completion).", Name = "--batch-size", Aliases = ["--per-device-train-batch-size"], Min = 1)]
    [JsonPropertyName("per_device_train_batch_size")]
    public int BatchSize { get; init; } = 8;

    [ConfigOption("AdamW peak learning rate (linear decay to 0).", Name = "--lr", Aliases = ["--learning-rate"], Min = 0, MinExclusive = true)]
    public float LearningRate { get; init; } = 1e-5f;

    [ConfigOption("Gradient norm clip.", Min = 0, MinExclusive = true)]
    public double MaxGradNorm { get; init; } = 1.0;

    [ConfigOption("Share of examples held out for evaluation, whole prompts at a time (no prompt on both sides).", Name = "--held-out", Aliases = ["--held-out-fraction"], Min = 0, Max = 1, MaxExclusive = true)]
    public double HeldOutFraction { get; init; } = 0.1;

    [ConfigOption("Seed for the split and shuffling.", Min = 0)]
    public ulong Seed { get; init; } = 1;

    [ConfigOption("Checkpoint into the run folder every this many steps (0: only when stopped and at the end).", Name = "--checkpoint-interval", Aliases = ["--save-steps"], Min = 0)]
    [JsonPropertyName("save_steps")]
    public int CheckpointInterval { get; init; }

    public void Validate()
    {
        if (!(Beta > 0)) throw new ArgumentException($"kto config: β {Beta} must be positive.");
        if (!(DesirableWeight >= 0 && UndesirableWeight >= 0)) throw new ArgumentException($"kto config: weights {DesirableWeight}, {UndesirableWeight} must be ≥ 0.");
        if (Epochs < 1 || BatchSize < 2) throw new ArgumentException($"kto config: epochs {Epochs} must be ≥ 1 and batch size {BatchSize} ≥ 2.");
        if (!(LearningRate > 0)) throw new ArgumentException($"kto config: learning rate {LearningRate} must be positive.");
        if (!(HeldOutFraction >= 0 && HeldOutFraction < 1)) throw new ArgumentException($"kto config: held-out fraction {HeldOutFraction} must lie in [0, 1).");
        if (CheckpointInterval < 0) throw new ArgumentException($"kto config: checkpoint interval {CheckpointInterval} must be ≥ 0.");
    }
}

public sealed class KtoTrainer
{
    private readonly KtoConfig _config;

    public KtoTrainer(KtoConfig config)
    {
        config.Validate();
        _config = config;
    }

    private sealed record Example(int[] Row, int PromptLength, bool Label)
    {
        public float Reference { get; set; }
    }

    public DpoResult Train(Gpt sft, ITokenizer tokenizer, IReadOnlyList<UnpairedExample> data, RunDirectory? run = null,
        IProgress<AlignmentProgress>? progress = null, CancellationToken ct = default)
    {
        int block = sft.Config.BlockSize;
        // 3. Token rows.
        var examples = data.Select(e =>
        {
            var (row, p) = TokenRows.Encode(tokenizer, e.Prompt, e.Completion, block);
            return new Example(row, p, e.Label);
        }).ToList();
        if (examples.Count < 2) throw new ArgumentException($"kto: {examples.Count} examples; need at least 2.");
        var rng = new Rng(_config.Seed);
        // Held out by prompt (GroupedSplit): completions of one prompt stay on one side.
        var (heldIdx, trainIdx) = GroupedSplit.Split([.. data.Select(e => e.Prompt)], _config.HeldOutFraction, rng);
        var held = heldIdx.Select(i => examples[i]).ToList();
        var train = trainIdx.Select(i => examples[i]).ToList();
        if (train.Count < 2) throw new ArgumentException($"kto: {train.Count} training examples after holding out {held.Count}; need at least 2.");
        run?.WriteConfig(_config);

        // 1. Reference log-probs, once.
        for (int start = 0; start < examples.Count; start += _config.BatchSize)
        {
            var batch = examples.Skip(start).Take(_config.BatchSize).ToList();
            using (Autograd.NoGrad())
            {
                var (lp, _, _) = DpoTrainer.SequenceLogProbs(sft, [.. batch.Select(e => e.Row)], [.. batch.Select(e => e.PromptLength)], requireGrad: false);
                for (int i = 0; i < batch.Count; i++) batch[i].Reference = lp.Span[i];
            }
        }

        var policy = sft.Clone();
        var opt = new AdamW(policy.ParameterSet, new AdamWConfig { LearningRate = _config.LearningRate, WeightDecay = 0f });
        int stepsPerEpoch = (train.Count + _config.BatchSize - 1) / _config.BatchSize;
        int total = stepsPerEpoch * _config.Epochs;
        int step = 0;
        ulong[]? epochRng = null;
        if (run is not null && run.Resumed && run.LatestCheckpoint() is { } checkpoint)
        {
            // 5. Resume: as DpoTrainer, the epoch's shuffle is drawn again and its done batches skipped.
            Gpt.Load(Path.Combine(checkpoint.Path, "policy")).Parameters.CopyTo(policy.Parameters, 0);
            TrainerCheckpoint.ReadOptimizers(checkpoint.Path, ("policy", opt));
            var state = TrainerCheckpoint.ReadState<KtoState>(checkpoint.Path);
            opt.StepCount = state.AdamStep;
            step = state.Step;
            epochRng = state.EpochRng;
        }
        var history = new List<IReadOnlyDictionary<string, double>>();
        for (int epoch = step / Math.Max(1, stepsPerEpoch); epoch < _config.Epochs; epoch++)
        {
            if (epochRng is not null) rng.SetState(epochRng);
            epochRng = rng.GetState();
            var perm = rng.Permutation(train.Count);
            for (int start = (step - epoch * stepsPerEpoch) * _config.BatchSize; start < train.Count; start += _config.BatchSize)
            {
                if (ct.IsCancellationRequested)
                {
                    if (run is not null) SaveCheckpoint(run, step, policy, opt, epochRng);
                    return new DpoResult(policy, null, null, history, Cancelled: true, step);
                }
                var batch = perm.Skip(start).Take(_config.BatchSize).Select(i => train[i]).ToList();
                if (batch.Count < 2) batch.Add(train[perm[0]]); // a last batch of one borrows an example so it has a KL pair
                policy.ZeroGrad();
                var (z, kl) = KlPairs(policy, sft, batch);
                var (lp, pass, logits) = DpoTrainer.SequenceLogProbs(policy, [.. batch.Select(e => e.Row)], [.. batch.Select(e => e.PromptLength)], requireGrad: true);
                var res = Loss(lp, batch, z, kl);
                res.Loss.Backward();
                policy.Backward(pass!, logits!.Grad!.ToArray());
                double gradNorm = policy.ParameterSet.ClipGradNorm(_config.MaxGradNorm);
                float lr = _config.LearningRate * (1f - (float)step / total);
                opt.Step(lr);
                step++;
                var metrics = new Dictionary<string, double>
                {
                    [MetricKeys.TrainLoss] = res.Loss.Item(),
                    [MetricKeys.GrpoKl] = res.Kl,
                    [MetricKeys.GradNorm] = gradNorm,
                    [MetricKeys.LearningRate] = lr,
                };
                var chosen = batch.Select((e, i) => (e, i)).Where(x => x.e.Label).Select(x => (double)res.Rewards[x.i]).ToList();
                var rejected = batch.Select((e, i) => (e, i)).Where(x => !x.e.Label).Select(x => (double)res.Rewards[x.i]).ToList();
                if (chosen.Count > 0) metrics[MetricKeys.RewardsChosen] = chosen.Average();
                if (rejected.Count > 0) metrics[MetricKeys.RewardsRejected] = rejected.Average();
                history.Add(metrics);
                run?.Log(step, metrics);
                progress?.Report(new AlignmentProgress("kto", step, total, metrics));
                if (run is not null && _config.CheckpointInterval > 0 && step % _config.CheckpointInterval == 0 && step < total)
                    SaveCheckpoint(run, step, policy, opt, epochRng);
            }
            epochRng = null;
        }
        double? heldLoss = null;
        if (held.Count >= 2)
        {
            double sum = 0;
            int n = 0;
            using (Autograd.NoGrad())
                for (int start = 0; start + 1 < held.Count; start += _config.BatchSize)
                {
                    var batch = held.Skip(start).Take(_config.BatchSize).ToList();
                    if (batch.Count < 2) break;
                    var (z, kl) = KlPairs(policy, sft, batch);
                    var (lp, _, _) = DpoTrainer.SequenceLogProbs(policy, [.. batch.Select(e => e.Row)], [.. batch.Select(e => e.PromptLength)], requireGrad: false);
                    sum += Loss(lp, batch, z, kl).Loss.Item() * batch.Count;
                    n += batch.Count;
                }
            if (n > 0)
            {
                heldLoss = sum / n;
                run?.Log(step, new Dictionary<string, double> { [MetricKeys.EvalLoss] = heldLoss.Value });
            }
        }
        if (run is not null)
        {
            if (run.LatestCheckpoint()?.Step != step) SaveCheckpoint(run, step, policy, opt, rng.GetState());
            policy.Save(Path.Combine(run.Path, "policy"));
            tokenizer.Save(Path.Combine(run.Path, "policy"));
        }
        return new DpoResult(policy, heldLoss, null, history, Cancelled: false, step);
    }

    private KtoLossResult Loss(Tensor lp, List<Example> batch, float[] klPolicy, float[] klReference) =>
        DpoVariantLosses.Kto(lp, [.. batch.Select(e => e.Reference)], [.. batch.Select(e => e.Label)], klPolicy, klReference,
            _config.Beta, _config.DesirableWeight, _config.UndesirableWeight);

    /// <summary>2. Σ log π and Σ log π_ref of the mismatched pairs (prompt i, completion i − 1), without gradient.</summary>
    private static (float[] Policy, float[] Reference) KlPairs(Gpt policy, Gpt reference, List<Example> batch)
    {
        int n = batch.Count, block = policy.Config.BlockSize;
        var rows = new List<int[]>(n);
        var prompts = new List<int>(n);
        for (int i = 0; i < n; i++)
        {
            var prompt = batch[i].Row[..batch[i].PromptLength];
            var other = batch[(i + n - 1) % n];
            int[] row = [.. prompt, .. other.Row[other.PromptLength..]];
            int cut = Math.Max(0, row.Length - block);
            rows.Add(row[cut..]);
            prompts.Add(Math.Max(0, prompt.Length - cut));
        }
        using (Autograd.NoGrad())
        {
            var (lp, _, _) = DpoTrainer.SequenceLogProbs(policy, rows, prompts, requireGrad: false);
            var (lr, _, _) = DpoTrainer.SequenceLogProbs(reference, rows, prompts, requireGrad: false);
            return (lp.ToArray(), lr.ToArray());
        }
    }

    private sealed record KtoState(int Step, int AdamStep, ulong[] EpochRng);

    private static void SaveCheckpoint(RunDirectory run, int step, Gpt policy, AdamW opt, ulong[] epochRng) =>
        run.SaveCheckpoint(step, dir =>
        {
            policy.Save(Path.Combine(dir, "policy"));
            TrainerCheckpoint.WriteOptimizers(dir, ("policy", opt));
            TrainerCheckpoint.WriteState(dir, new KtoState(step, opt.StepCount, epochRng));
        });
}
