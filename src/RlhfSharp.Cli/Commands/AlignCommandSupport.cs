// What every training command and `sample --best-of` share: the progress bar on standard error (drawn
// from the trainers' AlignmentProgress), and Ctrl-C or SIGTERM as a cancellation the trainers answer with a checkpoint.
using System.CommandLine;
using System.Globalization;
using System.Runtime.InteropServices;
using RlhfSharp.Alignment;
using RlhfSharp.Runs;
using Spectre.Console;

namespace RlhfSharp.Cli.Commands;

/// <summary>What the commands that print model outputs share: the JSON options and the opt-in to load diverged weights.</summary>
internal static class InspectionOptions
{
    /// <summary>JSON for standard output: a NaN or ±Infinity (a diverged model's log-probabilities) is written as "NaN" or "Infinity", never an exception.</summary>
    public static readonly System.Text.Json.JsonSerializerOptions Json = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    /// <summary>--allow-non-finite: load weights holding NaN or Infinity, which are otherwise refused naming the tensor.</summary>
    public static System.CommandLine.Option<bool> AllowNonFinite() =>
        new("--allow-non-finite") { Description = "Load weights holding NaN or Infinity (refused by default, naming the tensor), to inspect a diverged model." };
}

internal static class AlignCommandSupport
{
    /// <summary>`--dtype f32|bf16|f16`: the element type of the saved model.safetensors (training itself is float32).</summary>
    public static Option<Models.Checkpoints.SafetensorsDtype> DtypeOption() => new("--dtype")
    {
        Description = "Element type of the saved weights: f32 (default), bf16 or f16 (rounded to nearest even; training stays float32).",
        DefaultValueFactory = _ => Models.Checkpoints.SafetensorsDtype.F32,
    };

    /// <summary>Runs <paramref name="train"/> under a progress bar; Ctrl-C or SIGTERM cancels the token instead of killing the process.</summary>
    public static T WithProgress<T>(string title, long totalSteps, Func<IProgress<AlignmentProgress>, CancellationToken, T> train) =>
        WithProgress(title, totalSteps, (_, progress, ct) => train(progress, ct));

    /// <summary>The signal that cancelled the last <see cref="WithProgress{T}(string, long, Func{IAnsiConsole, IProgress{AlignmentProgress}, CancellationToken, T})"/>, if any.</summary>
    public static PosixSignal? Interrupted { get; private set; }

    /// <summary>The exit code after an interruption, as shells expect: 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM).</summary>
    public static int InterruptedExitCode => Interrupted == PosixSignal.SIGTERM ? 143 : 130;

    /// <summary>
    /// As above; <paramref name="train"/> also gets the console, whose lines print above the live bar. The first Ctrl-C
    /// (SIGINT) or SIGTERM cancels the token and the trainer writes its checkpoint before returning; the process is not
    /// killed, so nothing half-written is left behind.
    /// </summary>
    public static T WithProgress<T>(string title, long totalSteps, Func<IAnsiConsole, IProgress<AlignmentProgress>, CancellationToken, T> train)
    {
        using var cts = new CancellationTokenSource();
        Interrupted = null;
        void OnSignal(PosixSignalContext context)
        {
            context.Cancel = true; // keep the process alive: the trainer checkpoints first
            Interrupted ??= context.Signal;
            cts.Cancel();
        }
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        // Under mpirun only rank 0 draws the bar; the other ranks train silently, still stopping on a signal.
        if (!RlhfSharp.Distributed.Cluster.World.IsRoot) return train(AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(TextWriter.Null) }), Silent.Instance, cts.Token);
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        T result = default!;
        console.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask(Markup.Escape(title), maxValue: Math.Max(1, totalSteps));
                result = train(console, new BarProgress(task), cts.Token);
                if (!cts.IsCancellationRequested) task.Value = task.MaxValue;
            });
        return result;
    }

    /// <summary>The line printed when a trainer stopped on a signal, and the exit code to return.</summary>
    public static int Stopped(string stage, string runPath, long step)
    {
        Console.Error.WriteLine($"{stage}: stopped at step {step} ({(Interrupted == PosixSignal.SIGTERM ? "SIGTERM" : "Ctrl-C")}); the checkpoint is in {runPath}/checkpoints. Continue with `--resume --run {runPath}`.");
        return InterruptedExitCode;
    }

    private sealed class Silent : IProgress<AlignmentProgress>
    {
        public static readonly Silent Instance = new();

        public void Report(AlignmentProgress value) { }
    }

    private sealed class BarProgress(ProgressTask task) : IProgress<AlignmentProgress>
    {
        public void Report(AlignmentProgress p)
        {
            task.MaxValue = Math.Max(1, p.TotalSteps);
            task.Value = p.Step;
            // The stage's key figures beside its name.
            var m = p.Metrics;
            string key = m.TryGetValue(MetricKeys.RlhfReward, out double r) ? $"reward {r:F3}"
                : m.TryGetValue(MetricKeys.TrainLoss, out double l) ? $"loss {l:F3}"
                : m.TryGetValue("labels/judgments", out double j) ? $"{j:F0}/{p.TotalSteps} judgments in"
                : m.TryGetValue(MetricKeys.EpisodicReturn, out double ret) ? $"return {ret:F1}" : "";
            if (m.TryGetValue(MetricKeys.EvalLoss, out double h)) key += $" held-out {h:F3}";
            if (m.TryGetValue(MetricKeys.TokensPerSecond, out double tps)) key += $" {tps:F0} tok/s";
            task.Description = Markup.Escape(string.Create(CultureInfo.InvariantCulture, $"{p.Stage} {key}").Trim());
        }
    }

    /// <summary>Default run folder: runs/STAGE-NAME with NAME the --out folder's name.</summary>
    public static string RunFolder(string? run, string stage, string outDir) =>
        run ?? Path.Combine("runs", $"{stage}-{Path.GetFileName(Path.GetFullPath(outDir).TrimEnd(Path.DirectorySeparatorChar))}");

    public static string Format(double x) => x.ToString("0.####", CultureInfo.InvariantCulture);
}
