// Runs the `rlhf` entry point in-process with standard output and error captured. Console streams are process-wide, so
// every test that uses this runner sits in one collection that xunit runs serially.
using RlhfSharp.Cli.Commands;

namespace RlhfSharp.Cli.Tests;

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ConsoleCollection
{
    public const string Name = "console";
}

/// <summary>What one `rlhf` invocation did.</summary>
/// <param name="Exit">The process exit code Main returned.</param>
/// <param name="Out">Everything written to standard output.</param>
/// <param name="ErrorLines">The non-blank lines written to standard error.</param>
internal sealed record RlhfRun(int Exit, string Out, IReadOnlyList<string> ErrorLines);

internal static class RlhfRunner
{
    public static RlhfRun Run(params string[] args)
    {
        var entry = typeof(DemoCommand).Assembly.EntryPoint ?? throw new InvalidOperationException("the rlhf assembly has no entry point.");
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        Console.SetOut(stdout);
        Console.SetError(stderr);
        // Spectre's static console keeps the writer it first saw; a later run must not write to an earlier run's (closed) one.
        Spectre.Console.AnsiConsole.Console = Spectre.Console.AnsiConsole.Create(new Spectre.Console.AnsiConsoleSettings { Out = new Spectre.Console.AnsiConsoleOutput(stdout) });
        try
        {
            int exit = (int)entry.Invoke(null, [args])!;
            return new RlhfRun(exit, stdout.ToString(), [.. stderr.ToString().Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Trim().Length > 0)]);
        }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
        }
    }
}
