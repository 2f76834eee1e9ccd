// The run contract every training command keeps (docs/runs.md): a new run records, in RUN/config.json, the command line
// that started it, the working directory and every option's resolved value (defaults included, so the data sources are
// named even when they were defaults); `--resume` then continues from the run folder alone. The resumed command line is
// the recorded one: an option given again with the same value is fine, a different value is refused naming both, and a
// finished run (RUN/status.json) has nothing to do. Only options that cannot change the bits (--threads) may differ.
using System.CommandLine;
using System.CommandLine.Parsing;
using System.Text.Json;
using System.Text.Json.Nodes;
using RlhfSharp.Runs;
using RlhfSharp.Runs.Reports;

namespace RlhfSharp.Cli.Commands;

internal static class RunContract
{
    /// <summary>Options a resumed run may set differently: they decide where and how fast, not what is computed.</summary>
    private static readonly HashSet<string> FreeOnResume = ["--resume", "--run", "--threads"];

    /// <summary>The arguments the process was started with (after a resume was resolved), set by Program.</summary>
    public static string[] Args { get; set; } = [];

    /// <summary>
    /// Opens the run folder of a training command. A new run records its invocation in config.json (the trainer adds
    /// its own section later); a resumed one is opened as it is.
    /// </summary>
    public static RunDirectory Open(ParseResult p, string path, bool resume)
    {
        var run = RunDirectory.Open(path, resume, warning => Console.Error.WriteLine(RlhfSharp.Text.TerminalText.Escape($"rlhf: warning: {warning}")));
        if (!run.Resumed)
        {
            var command = p.CommandResult.Command;
            run.UpdateConfig(root =>
            {
                root["rlhf_version"] = typeof(RunContract).Assembly.GetName().Version?.ToString(3);
                root["command"] = string.Join(' ', CommandPath(p.CommandResult));
                root["args"] = new JsonArray([.. Args.Select(a => (JsonNode?)JsonValue.Create(a))]);
                root["working_directory"] = Environment.CurrentDirectory;
                var options = new JsonObject();
                foreach (var option in command.Options)
                {
                    if (!option.Name.StartsWith("--", StringComparison.Ordinal) || option.Name is "--help" || FreeOnResume.Contains(option.Name)) continue;
                    options[Key(option)] = ResolvedValue(p, option);
                }
                root["options"] = options;
            });
        }
        return run;
    }

    /// <summary>Marks the run finished once its outputs are written (a later --resume has nothing to do) and writes its report.html.</summary>
    public static void Finish(RunDirectory run, long step, string? output, string? note = null)
    {
        run.MarkFinished(step, output, note);
        RunReport.Write(run.Path);
    }

    /// <summary>
    /// Turns `rlhf CMD ... --resume` into the command line that started the run (plus --resume); returns the arguments
    /// to run, or an exit code when there is nothing to run. Other command lines pass through unchanged.
    /// </summary>
    public static (string[] Args, int? ExitCode) ResolveResume(RootCommand root, string[] args)
    {
        if (!args.Contains("--resume")) return (args, null);
        var given = root.Parse(args);
        var command = given.CommandResult.Command;
        // The training commands (a run folder in --run); `demo` keeps its own resume by stages in its --out folder.
        if (!command.Options.Any(o => o.Name == "--resume") || !command.Options.Any(o => o.Name == "--run")) return (args, null);
        string[] path = CommandPath(given.CommandResult);
        string display = "rlhf " + string.Join(' ', path);

        // --run names the run folder (`rl` also spells it --out); where --out is an output folder of its own, the run folder
        // is the default one derived from it.
        var runOption = command.Options.First(o => o.Name == "--run");
        string[] runNames = [runOption.Name, .. runOption.Aliases];
        string runPath = ValueAfter(args, runNames)
            ?? (!runNames.Contains("--out") && ValueAfter(args, ["--out"]) is { } outDir ? DefaultRunFolder(path, outDir) : null)
            ?? throw new ArgumentException($"{display} --resume: name the run with --run RUN (or give the --out the run was started with).");
        runPath = Path.GetFullPath(runPath);
        if (!Directory.Exists(runPath)) throw new DirectoryNotFoundException($"Cannot resume: run folder {runPath} does not exist.");

        string configFile = Path.Combine(runPath, RunDirectory.ConfigFileName);
        JsonObject config;
        using (var run = RunDirectory.OpenToRead(runPath)) config = run.ReadConfigRoot();
        if (config["args"] is not JsonArray storedArgs || config["options"] is not JsonObject storedOptions)
            throw new FormatException($"{configFile}: the command line that started the run is not recorded (\"args\", \"options\"); it cannot be resumed.");
        string startedBy = config["command"]?.GetValue<string>() ?? "";
        if (startedBy != string.Join(' ', path))
            throw new ArgumentException($"{runPath} was started by `rlhf {startedBy}`; resume it with `rlhf {startedBy} --resume --run {runPath}`.");
        if (RunDirectory.ReadStatus(runPath) is { State: "finished" } status)
        {
            Console.Error.WriteLine($"{display}: {runPath} finished at step {status.Step}{(status.Output is null ? "" : $" (output in {status.Output})")}; nothing to do.");
            return ([], 0);
        }

        // An option given again must say what the run was started with.
        foreach (var result in given.CommandResult.Children.OfType<OptionResult>())
        {
            if (result.Implicit || FreeOnResume.Contains(result.Option.Name)) continue;
            var now = ResolvedValue(given, result.Option);
            var then = storedOptions[Key(result.Option)];
            if (!JsonNode.DeepEquals(now, then))
                throw new ArgumentException($"{result.Option.Name} {Show(now)} contradicts the run, which was started with {result.Option.Name} {Show(then)} ({configFile}); a resumed run keeps its settings.");
        }

        if (config["working_directory"]?.GetValue<string>() is { } wd && Directory.Exists(wd)) Environment.CurrentDirectory = wd;
        var resumed = storedArgs.Select(a => a!.GetValue<string>()).ToList();
        foreach (string name in runNames) resumed = WithoutOption(resumed, name);
        resumed.AddRange(["--run", runPath, "--resume"]);
        // Settings from a --config FILE come from the run's own record instead, so an edited file cannot change the run.
        if (command.Options.Any(o => o.Name == "--config") && config[RunDirectory.TrainerSection] is not null)
        {
            resumed = WithoutOption(resumed, "--config");
            resumed.AddRange(["--config", configFile]);
        }
        // Free options given now (--threads) replace the recorded ones.
        foreach (var result in given.CommandResult.Children.OfType<OptionResult>())
        {
            string name = result.Option.Name;
            if (result.Implicit || !FreeOnResume.Contains(name) || name is "--run" or "--resume") continue;
            resumed = WithoutOption(resumed, name);
            resumed.AddRange([name, .. result.Tokens.Select(t => t.Value)]);
        }
        return ([.. resumed], null);
    }

    /// <summary>The default run folder: runs/STAGE-NAME, NAME the --out folder's name, STAGE the command ("reward" for `reward train`).</summary>
    public static string DefaultRunFolder(IReadOnlyList<string> commandPath, string outDir) =>
        Path.Combine("runs", $"{commandPath[0]}-{Path.GetFileName(Path.GetFullPath(outDir).TrimEnd(Path.DirectorySeparatorChar))}");

    private static string[] CommandPath(CommandResult result)
    {
        var names = new List<string>();
        for (var c = result; c is not null && c.Parent is CommandResult; c = c.Parent as CommandResult) names.Insert(0, c.Command.Name);
        return [.. names];
    }

    private static string Key(Option option) => option.Name.TrimStart('-').Replace('-', '_');

    /// <summary>The value the command sees for <paramref name="option"/>: given, its default, or its type's default (0 for an int).</summary>
    private static JsonNode? ResolvedValue(ParseResult p, Option option)
    {
        var getValue = typeof(ParseResult).GetMethods()
            .Single(m => m.Name == nameof(ParseResult.GetValue) && m.IsGenericMethodDefinition && m.GetParameters() is [{ ParameterType.IsGenericType: true } only]
                && only.ParameterType.GetGenericTypeDefinition() == typeof(Option<>))
            .MakeGenericMethod(option.ValueType);
        object? value = getValue.Invoke(p, [option]);
        return value is null ? null : JsonSerializer.SerializeToNode(value, value.GetType());
    }

    private static string Show(JsonNode? node) => node switch
    {
        null => "(not set)",
        JsonArray a => string.Join(' ', a.Select(x => Show(x))),
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        _ => node.ToJsonString(),
    };

    /// <summary>The value of an option spelt any of <paramref name="names"/> (as `--name V` or `--name=V`), the last one if repeated.</summary>
    private static string? ValueAfter(string[] args, string[] names)
    {
        string? value = null;
        for (int i = 0; i < args.Length; i++)
            foreach (string name in names)
            {
                if (args[i] == name && i + 1 < args.Length) value = args[i + 1];
                else if (args[i].StartsWith(name + "=", StringComparison.Ordinal)) value = args[i][(name.Length + 1)..];
            }
        return value;
    }

    /// <summary>The arguments without --name and the values that follow it (up to the next option).</summary>
    private static List<string> WithoutOption(List<string> args, string name)
    {
        var kept = new List<string>();
        for (int i = 0; i < args.Count; i++)
        {
            if (args[i].StartsWith(name + "=", StringComparison.Ordinal)) continue;
            if (args[i] != name)
            {
                kept.Add(args[i]);
                continue;
            }
            while (i + 1 < args.Count && !args[i + 1].StartsWith("--", StringComparison.Ordinal)) i++;
        }
        return kept;
    }
}
