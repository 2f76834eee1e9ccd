// What `rlhf pretrain` and `rlhf sft` share: the optimisation options (defaults and meanings from LmTrainingOptions),
// the progress bar on standard error, Ctrl-C as a cancellation the trainer answers with a checkpoint, and the summary line.
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using RlhfSharp.Alignment;
using RlhfSharp.Alignment.LanguageModeling;
using Spectre.Console;

namespace RlhfSharp.Cli.Commands;

internal sealed class LmTrainingOptionSet
{
    public const string ResumeDescription = "Continue the run (--run, or the default folder of --out) from its latest checkpoint with the command line recorded in its config.json; other options may be left out.";

    public readonly Option<int?> Steps = new("--steps") { Description = "Optimiser steps in the whole run (the cosine schedule ends there)." };
    public readonly Option<float?> LearningRate = new("--lr") { Description = "Peak AdamW learning rate, reached after warm-up; cosine decay to a tenth of it." };
    public readonly Option<int?> Warmup = new("--warmup") { Description = "Steps of linear warm-up." };
    public readonly Option<int?> BatchSize = new("--batch-size") { Description = "Rows per optimiser step." };
    public readonly Option<int?> EvalInterval = new("--eval-interval") { Description = "Held-out loss every this many steps (and at the end)." };
    public readonly Option<int?> CheckpointInterval = new("--checkpoint-interval") { Description = "Checkpoint every this many steps into RUN/checkpoints/step-N (0: only at the end or on Ctrl-C)." };
    public readonly Option<double?> HeldOut = new("--held-out") { Description = "Fraction of the data held out for loss and perplexity." };
    public readonly Option<ulong?> Seed = new("--seed") { Description = "Seed of initialisation, data order and dropout." };
    public readonly Option<int?> Threads = new("--threads") { Description = "Kernel threads (default: all cores)." };
    public readonly Option<string?> Run = new("--run") { Description = "Run folder for config.json, metrics.jsonl, TensorBoard events and checkpoints (default runs/STAGE-NAME, NAME = the --out folder's name)." };
    public readonly Option<bool> Resume = new("--resume") { Description = ResumeDescription };

    public void AddTo(Command command)
    {
        foreach (var o in new Option[] { Steps, LearningRate, Warmup, BatchSize, EvalInterval, CheckpointInterval, HeldOut, Seed, Threads, Run, Resume })
            command.Options.Add(o);
    }

    /// <summary>The defaults with whatever the command line sets.</summary>
    public LmTrainingOptions Apply(ParseResult p, LmTrainingOptions d) => d with
    {
        Steps = p.GetValue(Steps) ?? d.Steps,
        LearningRate = p.GetValue(LearningRate) ?? d.LearningRate,
        WarmupSteps = p.GetValue(Warmup) ?? Math.Min(d.WarmupSteps, Math.Max(0, (p.GetValue(Steps) ?? d.Steps) / 10)),
        BatchSize = p.GetValue(BatchSize) ?? d.BatchSize,
        EvalInterval = p.GetValue(EvalInterval) ?? d.EvalInterval,
        CheckpointInterval = p.GetValue(CheckpointInterval) ?? d.CheckpointInterval,
        HeldOutFraction = p.GetValue(HeldOut) ?? d.HeldOutFraction,
        Seed = p.GetValue(Seed) ?? d.Seed,
        Threads = p.GetValue(Threads) ?? d.Threads,
    };

    public string RunFolder(ParseResult p, string stage, string outDir) =>
        p.GetValue(Run) ?? Path.Combine("runs", $"{stage}-{Path.GetFileName(Path.GetFullPath(outDir).TrimEnd(Path.DirectorySeparatorChar))}");
}

internal static class LmCommandSupport
{
    /// <summary>Runs <paramref name="train"/> under the shared progress bar; Ctrl-C or SIGTERM makes the trainer checkpoint and return.</summary>
    public static LmTrainResult WithProgress(string title, int totalSteps, Func<IProgress<AlignmentProgress>, CancellationToken, LmTrainResult> train) =>
        AlignCommandSupport.WithProgress(title, totalSteps, train);

    /// <summary>One JSON line on standard output for scripts, and the exit code (130 after Ctrl-C, as shells expect).</summary>
    public static int Report(string stage, LmTrainResult r, string outDir, string runDir)
    {
        var summary = new Dictionary<string, object>
        {
            ["steps"] = r.Steps,
            ["train_loss"] = Math.Round(r.TrainLoss, 4),
            ["heldout_loss"] = Math.Round(r.HeldOutLoss, 4),
            ["heldout_perplexity"] = Math.Round(r.HeldOutPerplexity, 3),
            ["tokens_per_s"] = Math.Round(r.TokensPerSecond, 1),
            ["elapsed_s"] = Math.Round(r.Elapsed.TotalSeconds, 1),
            ["cancelled"] = r.Cancelled,
            ["out"] = r.Cancelled ? "" : Path.GetFullPath(outDir),
            ["run"] = Path.GetFullPath(runDir),
        };
        Console.WriteLine(JsonSerializer.Serialize(summary));
        return r.Cancelled ? AlignCommandSupport.Stopped(stage, runDir, r.Steps) : 0;
    }
}
