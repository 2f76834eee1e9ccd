// The next-token training loop shared by pre-training and SFT: weighted cross-entropy, AdamW with linear warm-up and
// cosine decay to a floor, global gradient clipping, held-out loss and perplexity, metrics, progress, and checkpoints
// that resume bit-identically (model folder + AdamW moments + RNG state + data position). Not here: what a row is
// (PretrainTrainer: windows of a token stream; SftTrainer: prompt ++ completion with the prompt masked).
// Data parallelism (docs/distributed.md): with GradShards = S > 1 each batch is cut into S equal row slices whose
// gradients, each divided by the whole batch's weight, are summed in shard order (ShardedGradient); under mpirun rank r
// computes slice r, every rank draws the same global batch from the same data stream and applies the same summed
// gradient, so the weights stay equal on every rank without being sent. N ranks are bit-identical to one process with
// GradShards = N; GradShards = 1 is the single-pass path (the golden tests'). Rank 0 alone logs and checkpoints;
// every rank restores from the same checkpoint.
using System.Diagnostics;
using System.Globalization;
using RlhfSharp.Distributed;
using RlhfSharp.Models;
using RlhfSharp.Models.Checkpoints;
using RlhfSharp.Runs;
using RlhfSharp.Runs.Reports;
using RlhfSharp.Tensors;
using RlhfSharp.Tensors.Optim;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment.LanguageModeling;

/// <summary>
/// One batch: rows (B,T) with their mask, next-token targets (B·T) and per-target weights (0 = not trained on).
/// <paramref name="Tokens"/> counts real tokens (for tokens/s).
/// </summary>
internal sealed record LmBatch(GptInput Input, int[] Targets, float[] Weights, long Tokens)
{
    /// <summary>Rows [start, start + count) of this batch.</summary>
    public LmBatch Rows(int start, int count)
    {
        int T = Input.Length, from = start * T, n = count * T;
        var mask = Input.AttentionMask?.AsSpan(from, n).ToArray();
        var weights = Weights.AsSpan(from, n).ToArray();
        long tokens = mask is null ? n : mask.Count(m => m != 0);
        return new LmBatch(new GptInput(count, T, Input.Tokens.AsSpan(from, n).ToArray(), mask), Targets.AsSpan(from, n).ToArray(), weights, tokens);
    }
}

/// <summary>Where a data source stands: the epoch and how many items of its shuffled order were used.</summary>
public sealed record LmDataPosition(long Epoch, long Index);

/// <summary>A source of training batches with a resumable position, and a fixed list of held-out batches.</summary>
internal interface ILmBatchSource
{
    LmDataPosition Position { get; set; }

    LmBatch Next();

    IReadOnlyList<LmBatch> HeldOut { get; }
}

/// <summary>
/// Items 0..n-1 in a fresh shuffled order each epoch. The order of epoch e depends only on (seed, e), so a position
/// (epoch, index) is all a checkpoint needs to continue the exact sequence.
/// </summary>
internal sealed class EpochOrder(int count, ulong seed)
{
    private int[] _order = [];
    private long _orderEpoch = -1;

    public LmDataPosition Position { get; set; } = new(0, 0);

    public int Next()
    {
        var (epoch, index) = Position;
        if (index >= count) (epoch, index) = (epoch + 1, 0);
        if (_orderEpoch != epoch)
        {
            _order = new Rng(seed ^ (0x9E3779B97F4A7C15UL * (ulong)(epoch + 1))).Permutation(count);
            _orderEpoch = epoch;
        }
        Position = new LmDataPosition(epoch, index + 1);
        return _order[index];
    }
}

/// <summary>What a training run ended with.</summary>
/// <param name="Steps">Optimiser steps completed (including those before a resume).</param>
/// <param name="TrainLoss">Loss of the last training batch.</param>
/// <param name="HeldOutLoss">Mean held-out loss at the last evaluation (nats per token).</param>
/// <param name="TokensPerSecond">Real tokens trained on per second of this process's training.</param>
/// <param name="Cancelled">True when the run stopped early on cancellation (a checkpoint was written if there is a run folder).</param>
/// <param name="Elapsed">Wall time of this call.</param>
/// <param name="Model">The trained model when the trainer made a new handle for it (SFT with LoRA: base + adapter); null = the one passed in.</param>
public sealed record LmTrainResult(int Steps, double TrainLoss, double HeldOutLoss, double TokensPerSecond, bool Cancelled, TimeSpan Elapsed, Gpt? Model = null)
{
    /// <summary>Under mpirun: bytes this rank sent per step in the gradient sum (0 in one process).</summary>
    public double GradientBytesPerStep { get; init; }

    /// <summary>Under mpirun: seconds per step this rank spent in the gradient sum, waiting for the slowest rank included.</summary>
    public double GradientSumSecondsPerStep { get; init; }

    /// <summary>exp(held-out loss).</summary>
    public double HeldOutPerplexity => Math.Exp(HeldOutLoss);
}

internal static class LmTrainingLoop
{
    // Separate stream for dropout so changing the data order does not change the masks.
    private const ulong DropoutStream = 0xD40F0A7UL;

    /// <summary>Runs (or, when <paramref name="run"/> was opened to resume, continues) a training run on <paramref name="model"/>.</summary>
    public static LmTrainResult Run(string stage, Gpt model, ITokenizer tokenizer, ILmBatchSource data, LmTrainingOptions o,
        RunDirectory? run, IProgress<AlignmentProgress>? progress, CancellationToken ct)
    {
        o.Validate(stage + " config");
        if (o.Threads > 0) Parallelism.Threads = o.Threads;
        model.ActivationCheckpointing = o.ActivationCheckpointing;   // Gpt.Checkpointing.cs: recompute blocks in backward
        var watch = Stopwatch.StartNew();
        var opt = new AdamW(model.TrainableParameters, new AdamWConfig { LearningRate = o.LearningRate, Beta1 = o.Beta1, Beta2 = o.Beta2, Eps = o.Eps, WeightDecay = o.WeightDecay });
        var schedule = new LearningRateSchedule
        {
            Kind = ScheduleKind.Cosine, PeakRate = o.LearningRate, WarmupSteps = o.WarmupSteps,
            TotalSteps = Math.Max(o.Steps, o.WarmupSteps + 1), FinalRate = o.LearningRate * o.MinLearningRateFraction,
        };
        var dropoutRng = new Rng(o.Seed ^ DropoutStream);
        var world = Cluster.World;
        var shards = new ShardedGradient(world, o.GradShards);
        // Rank 0 alone writes; the other ranks read the run folder only to resume.
        var writer = world.IsRoot ? run : null;

        int step = 0;
        if (run is not null && run.Resumed && run.LatestCheckpoint() is { } checkpoint)
            step = Restore(checkpoint, model, opt, dropoutRng, data);

        int lastCheckpoint = step;
        double trainLoss = double.NaN, heldOut = double.NaN;
        long tokens = 0;
        var trainTime = TimeSpan.Zero;
        var sumTime = TimeSpan.Zero;
        long sumBytes = 0;
        int stepsHere = 0;
        bool cancelled = false;
        GptPass? pass = null;
        float[] dLogits = [];
        while (step < o.Steps)
        {
            // Under mpirun every rank stops at the same step (each hears the signal on its own).
            if (DataParallel.StopRequested(ct))
            {
                cancelled = true;
                break;
            }
            long t0 = Stopwatch.GetTimestamp();
            var batch = data.Next();
            if (shards.Shards == 1)
            {
                // 1. forward, 2. weighted next-token cross-entropy and its gradient (fused), 3. backward.
                model.ZeroGrad();
                bool dropout = model.Config.Dropout > 0 || model.Adapter?.Config.LoraDropout > 0;
                pass = model.Forward(batch.Input, new GptForwardOptions { DropoutRng = dropout ? dropoutRng : null }, pass);
                int size = batch.Input.Batch * batch.Input.Length * model.Config.VocabSize;
                if (dLogits.Length != size) dLogits = new float[size];
                trainLoss = Gpt.CrossEntropy(pass, batch.Targets, batch.Weights, dLogits);
                model.Backward(pass, dLogits);
            }
            else
            {
                // 1–3 per shard (this rank's, or all S one after another), each divided by the whole batch's weight;
                // then the shard gradients and losses summed in shard order on every rank.
                double total = 0;
                foreach (float w in batch.Weights) total += w;
                foreach (int s in shards.LocalShards)
                {
                    var (start, count) = shards.Rows(s, batch.Input.Batch);
                    var slice = batch.Rows(start, count);
                    model.ZeroGrad();
                    // Dropout masks come from a stream of (seed, step, shard), so they do not depend on which rank draws them.
                    var shardDropout = model.Config.Dropout > 0 || model.Adapter?.Config.LoraDropout > 0 ? new Rng(o.Seed ^ DropoutStream ^ (0x9E3779B97F4A7C15UL * (ulong)((long)step * shards.Shards + s + 1))) : null;
                    pass = model.Forward(slice.Input, new GptForwardOptions { DropoutRng = shardDropout }, pass);
                    int size = slice.Input.Batch * slice.Input.Length * model.Config.VocabSize;
                    if (dLogits.Length != size) dLogits = new float[size];
                    double loss = Gpt.CrossEntropy(pass, slice.Targets, slice.Weights, dLogits, total);
                    model.Backward(pass, dLogits);
                    shards.Add(s, model.TrainableParameters.Grads, loss); // with LoRA: the adapter's gradient, the only one trained
                }
                long sum0 = Stopwatch.GetTimestamp(), bytes0 = world.BytesSent;
                trainLoss = shards.Finish(model.TrainableParameters.Grads);
                sumTime += Stopwatch.GetElapsedTime(sum0);
                sumBytes += world.BytesSent - bytes0;
            }
            // 4. clip the global gradient norm, 5. AdamW at the scheduled rate.
            double gradNorm = o.MaxGradNorm > 0 ? model.TrainableParameters.ClipGradNorm(o.MaxGradNorm) : model.TrainableParameters.GradNorm();
            float lr = schedule.At(step);
            // A diverged step stops the run before anything is logged, checkpointed or written (NumericGuard).
            string hint = NumericGuard.LearningRateHint(lr);
            NumericGuard.Check(step + 1, "loss", trainLoss, hint);
            NumericGuard.Check(step + 1, "gradient norm", gradNorm, hint);
            opt.Step(lr);
            step++;
            stepsHere++;
            NumericGuard.CheckParameters(step, model.ParameterSet, hint);
            var dt = Stopwatch.GetElapsedTime(t0);
            trainTime += dt;
            tokens += batch.Tokens;

            var metrics = new Dictionary<string, double>
            {
                [MetricKeys.TrainLoss] = trainLoss,
                [MetricKeys.LearningRate] = lr,
                [MetricKeys.GradNorm] = gradNorm,
                [MetricKeys.TokensPerSecond] = batch.Tokens / Math.Max(dt.TotalSeconds, 1e-9),
            };
            if (step % o.EvalInterval == 0 || step == o.Steps)
            {
                heldOut = Evaluate(model, data.HeldOut);
                NumericGuard.Check(step, "held-out loss", heldOut, hint);
                metrics[MetricKeys.EvalLoss] = heldOut;
                metrics[MetricKeys.EvalPerplexity] = Math.Exp(heldOut);
            }
            writer?.Log(step, metrics);
            progress?.Report(new AlignmentProgress(stage, step, o.Steps, metrics));
            if (writer is not null && o.CheckpointInterval > 0 && step % o.CheckpointInterval == 0)
            {
                Save(writer, step, model, tokenizer, opt, dropoutRng, data, o.KeepCheckpoints);
                lastCheckpoint = step;
            }
        }
        if (writer is not null && lastCheckpoint != step) Save(writer, step, model, tokenizer, opt, dropoutRng, data, o.KeepCheckpoints);
        if (double.IsNaN(heldOut)) heldOut = Evaluate(model, data.HeldOut);
        var result = new LmTrainResult(step, trainLoss, heldOut, tokens / Math.Max(trainTime.TotalSeconds, 1e-9), cancelled, watch.Elapsed)
        {
            GradientBytesPerStep = stepsHere == 0 ? 0 : (double)sumBytes / stepsHere,
            GradientSumSecondsPerStep = stepsHere == 0 ? 0 : sumTime.TotalSeconds / stepsHere,
        };
        DataParallel.CheckSameWeights(model, "model");
        if (writer is not null) RunReport.Write(writer.Path); // read back from metrics.jsonl, so a resumed run shows every step
        return result;
    }

    /// <summary>Token-weighted mean cross-entropy over <paramref name="batches"/> (evaluation mode: no dropout, no gradients kept).</summary>
    public static double Evaluate(Gpt model, IReadOnlyList<LmBatch> batches)
    {
        double sum = 0, weight = 0;
        GptPass? pass = null;
        float[] scratch = [];
        foreach (var b in batches)
        {
            pass = model.Forward(b.Input, null, pass);
            int size = b.Input.Batch * b.Input.Length * model.Config.VocabSize;
            if (scratch.Length != size) scratch = new float[size];
            double w = 0;
            foreach (float x in b.Weights) w += x;
            sum += w * Gpt.CrossEntropy(pass, b.Targets, b.Weights, scratch);
            weight += w;
        }
        if (weight == 0) throw new InvalidOperationException("held-out evaluation: no held-out targets.");
        return sum / weight;
    }

    private sealed record TrainerState(int Step, int AdamStep, ulong[] DropoutRng, long DataEpoch, long DataIndex);

    private static void Save(RunDirectory run, int step, Gpt model, ITokenizer tokenizer, AdamW opt, Rng dropoutRng, ILmBatchSource data, int keep)
    {
        run.SaveCheckpoint(step, dir =>
        {
            model.Save(dir);
            tokenizer.Save(dir);
            TrainerCheckpoint.WriteOptimizers(dir, ("adamw", opt));
            TrainerCheckpoint.WriteState(dir, new TrainerState(step, opt.StepCount, dropoutRng.GetState(), data.Position.Epoch, data.Position.Index));
        }, keep);
    }

    private static int Restore(Checkpoint checkpoint, Gpt model, AdamW opt, Rng dropoutRng, ILmBatchSource data)
    {
        string dir = checkpoint.Path;
        var saved = Gpt.Load(dir);
        if (saved.Config with { Dropout = model.Config.Dropout } != model.Config with { Dropout = model.Config.Dropout } || saved.Parameters.Length != model.Parameters.Length)
            throw new InvalidOperationException($"{dir}: the checkpoint's model shape differs from the model being trained; resume with the same settings.");
        saved.Parameters.CopyTo(model.Parameters, 0);
        if (model.Adapter is not null) model.Adapter.CopyFrom(saved.Adapter ?? throw new InvalidOperationException($"{dir}: the checkpoint holds no LoRA adapter; resume with the same settings."));
        TrainerCheckpoint.ReadOptimizers(dir, ("adamw", opt));
        var state = TrainerCheckpoint.ReadState<TrainerState>(dir);
        opt.StepCount = state.AdamStep;
        dropoutRng.SetState(state.DropoutRng);
        data.Position = new LmDataPosition(state.DataEpoch, state.DataIndex);
        return state.Step;
    }
}
