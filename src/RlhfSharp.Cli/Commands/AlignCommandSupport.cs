// What `rlhf reward train`, `rlhf ppo`, `rlhf dpo` and `sample --best-of` share: reading prompts, the progress bar on
// standard error (drawn from the trainers' AlignmentProgress), and Ctrl-C as a cancellation the trainers answer cleanly.
using System.Globalization;
using System.Text.Json;
using RlhfSharp.Alignment;
using Spectre.Console;

namespace RlhfSharp.Cli.Commands;

internal static class AlignCommandSupport
{
    /// <summary>Runs <paramref name="train"/> under a progress bar; Ctrl-C cancels the token instead of killing the process.</summary>
    public static T WithProgress<T>(string title, long totalSteps, Func<IProgress<AlignmentProgress>, CancellationToken, T> train) =>
        WithProgress(title, totalSteps, (_, progress, ct) => train(progress, ct));

    /// <summary>As above; <paramref name="train"/> also gets the console, whose lines print above the live bar.</summary>
    public static T WithProgress<T>(string title, long totalSteps, Func<IAnsiConsole, IProgress<AlignmentProgress>, CancellationToken, T> train)
    {
        using var cts = new CancellationTokenSource();
        ConsoleCancelEventHandler onCancel = (_, e) =>
        {
            e.Cancel = true; // the trainer writes its checkpoint before returning
            cts.Cancel();
        };
        Console.CancelKeyPress += onCancel;
        try
        {
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
            T result = default!;
            console.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask(Markup.Escape(title), maxValue: Math.Max(1, totalSteps));
                    result = train(console, new BarProgress(task), cts.Token);
                    task.Value = task.MaxValue;
                });
            return result;
        }
        finally
        {
            Console.CancelKeyPress -= onCancel;
        }
    }

    private sealed class BarProgress(ProgressTask task) : IProgress<AlignmentProgress>
    {
        public void Report(AlignmentProgress p)
        {
            task.MaxValue = Math.Max(1, p.TotalSteps);
            task.Value = p.Step;
            // The stage's key figure beside its name.
            string key = p.Metrics.TryGetValue("objective/rlhf_reward", out double r) ? $"reward {r:F3}"
                : p.Metrics.TryGetValue("loss/train", out double l) ? $"loss {l:F3}"
                : p.Metrics.TryGetValue("labels/judgments", out double j) ? $"{j:F0}/{p.TotalSteps} judgments in" : "";
            task.Description = Markup.Escape($"{p.Stage} {key}".Trim());
        }
    }

    /// <summary>Prompts from a JSONL file ({"prompt": ...} per line) or a text file (one per line); errors name file:line.</summary>
    public static List<string> ReadPrompts(string file)
    {
        if (!File.Exists(file)) throw new FileNotFoundException($"--prompts: {file} does not exist.", file);
        var list = new List<string>();
        int lineNumber = 0;
        bool jsonl = file.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase);
        foreach (var line in File.ReadLines(file))
        {
            lineNumber++;
            if (line.Trim().Length == 0) continue;
            if (!jsonl)
            {
                list.Add(line);
                continue;
            }
            try
            {
                using var doc = JsonDocument.Parse(line);
                if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("prompt", out var p) || p.ValueKind != JsonValueKind.String)
                    throw new FormatException($"{file}:{lineNumber}: expected an object with a string field \"prompt\".");
                list.Add(p.GetString()!);
            }
            catch (JsonException ex)
            {
                throw new FormatException($"{file}:{lineNumber}: not valid JSON ({ex.Message}).");
            }
        }
        if (list.Count == 0) throw new ArgumentException($"--prompts: {file} holds no prompts.");
        return list;
    }

    /// <summary>Default run folder: runs/STAGE-NAME with NAME the --out folder's name.</summary>
    public static string RunFolder(string? run, string stage, string outDir) =>
        run ?? Path.Combine("runs", $"{stage}-{Path.GetFileName(Path.GetFullPath(outDir).TrimEnd(Path.DirectorySeparatorChar))}");

    public static string Format(double x) => x.ToString("0.####", CultureInfo.InvariantCulture);
}
