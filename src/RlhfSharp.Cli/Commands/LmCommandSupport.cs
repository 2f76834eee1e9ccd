// What `rlhf pretrain` and `rlhf sft` share: the optimisation options (defaults and meanings from LmTrainingOptions),
// the progress bar on standard error, Ctrl-C as a cancellation the trainer answers with a checkpoint, and the summary line.
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using RlhfSharp.Alignment;
using RlhfSharp.Alignment.LanguageModeling;
using Spectre.Console;

namespace RlhfSharp.Cli.Commands;

/// <summary>
/// The run options of `pretrain` and `sft` (--run, --resume), and the trainer settings made from the config record
/// (ConfigOptions): with no --warmup given, warm-up is the record's, capped at a tenth of the steps.
/// </summary>
internal sealed class LmTrainingOptionSet
{
    public const string ResumeDescription = "Continue the run (--run, or the default folder of --out) from its latest checkpoint with the command line recorded in its config.json; other options may be left out.";

    public readonly Option<string?> Run = new("--run") { Description = "Run folder for config.json, metrics.jsonl, TensorBoard events and checkpoints (default runs/STAGE-NAME, NAME = the --out folder's name)." };
    public readonly Option<bool> Resume = new("--resume") { Description = ResumeDescription };

    public void AddTo(Command command)
    {
        command.Options.Add(Run);
        command.Options.Add(Resume);
    }

    /// <summary>The record from its defaults, --config and the options, with the warm-up cap applied.</summary>
    public static T Build<T>(ConfigOptions<T> settings, ParseResult p, Func<T, LmTrainingOptions> training, Func<T, LmTrainingOptions, T> with) where T : class, new()
    {
        var config = settings.Build(p);
        var t = training(config);
        // Under mpirun each rank computes one shard of every batch: the shard count follows -np unless set.
        int ranks = RlhfSharp.Distributed.Cluster.World.Size;
        if (ranks > 1 && !settings.IsSet(p, nameof(LmTrainingOptions.GradShards)))
            config = with(config, t = t with { GradShards = ranks });
        if (!settings.IsSet(p, nameof(LmTrainingOptions.WarmupSteps)))
            config = with(config, t with { WarmupSteps = Math.Min(t.WarmupSteps, Math.Max(0, t.Steps / 10)) });
        return config;
    }

    public string RunFolder(ParseResult p, string stage, string outDir) =>
        p.GetValue(Run) ?? Path.Combine("runs", $"{stage}-{Path.GetFileName(Path.GetFullPath(outDir).TrimEnd(Path.DirectorySeparatorChar))}");
}

internal static class LmCommandSupport
{
    /// <summary>Runs <paramref name="train"/> under the shared progress bar; Ctrl-C or SIGTERM makes the trainer checkpoint and return.
    /// Under mpirun only rank 0 draws the bar; the other ranks train silently, still stopping on a signal.</summary>
    public static LmTrainResult WithProgress(string title, int totalSteps, Func<IProgress<AlignmentProgress>, CancellationToken, LmTrainResult> train) =>
        AlignCommandSupport.WithProgress(title, totalSteps, train);

    /// <summary>One JSON line on standard output for scripts, and the exit code (130 after Ctrl-C, as shells expect).</summary>
    public static int Report(string stage, LmTrainResult r, string outDir, string runDir)
    {
        // A value that is not finite (a run stopped before its first step has no loss) is written as null: JSON has no NaN.
        static object? Number(double x, int digits) => double.IsFinite(x) ? Math.Round(x, digits) : null;
        var summary = new Dictionary<string, object?>
        {
            ["steps"] = r.Steps,
            ["train_loss"] = Number(r.TrainLoss, 4),
            ["heldout_loss"] = Number(r.HeldOutLoss, 4),
            ["heldout_perplexity"] = Number(r.HeldOutPerplexity, 3),
            ["tokens_per_s"] = Number(r.TokensPerSecond, 1),
            ["elapsed_s"] = Number(r.Elapsed.TotalSeconds, 1),
            ["cancelled"] = r.Cancelled,
            ["out"] = r.Cancelled ? "" : Path.GetFullPath(outDir),
            ["run"] = Path.GetFullPath(runDir),
        };
        if (RlhfSharp.Distributed.Cluster.World.Size > 1)
        {
            summary["ranks"] = RlhfSharp.Distributed.Cluster.World.Size;
            summary["gradient_bytes_sent_per_step"] = Math.Round(r.GradientBytesPerStep);
            summary["gradient_sum_s_per_step"] = Number(r.GradientSumSecondsPerStep, 4);
        }
        Console.WriteLine(JsonSerializer.Serialize(summary));
        return r.Cancelled ? AlignCommandSupport.Stopped(stage, runDir, r.Steps) : 0;
    }
}
