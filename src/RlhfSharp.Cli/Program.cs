// The `rlhf` command: one entry point for every stage of the pipeline.
// Each subcommand lives in Commands/ as a static factory; library exceptions become one clear line here.
using System.CommandLine;
using RlhfSharp.Cli.Commands;

var root = new RootCommand("RlhfSharp: reinforcement learning from human feedback, end to end, in C#.");
root.Subcommands.Add(DemoCommand.Create());
root.Subcommands.Add(StoryWorldCommand.Create());
root.Subcommands.Add(BenchCommand.Create());
root.Subcommands.Add(SampleCommand.Create());
root.Subcommands.Add(ScoreCommand.Create());
root.Subcommands.Add(TokenizerCommand.Create());
root.Subcommands.Add(LabelCommand.Create());
root.Subcommands.Add(RlCommand.Create());
root.Subcommands.Add(PrefRlCommand.Create());
root.Subcommands.Add(PretrainCommand.Create());
root.Subcommands.Add(SftCommand.Create());
root.Subcommands.Add(RewardCommand.Create());
root.Subcommands.Add(PpoCommand.Create());
root.Subcommands.Add(DpoCommand.Create());
root.Subcommands.Add(LoraCommand.Create());
root.Subcommands.Add(EvalCommand.Create());
root.Subcommands.Add(ServeCommand.Create());
root.Subcommands.Add(ReportCommand.Create());

try
{
    // `CMD --resume` runs the command line recorded in the run folder (RunContract); a finished run has nothing to do.
    var (resolved, exitCode) = RunContract.ResolveResume(root, args);
    if (exitCode is int code) return code;
    RunContract.Args = resolved;
    // Our handler below, not System.CommandLine's (which prints a stack trace): one line and exit code 1.
    var parsed = root.Parse(resolved);
    // A parse error (unknown option, bad value) is one line on stderr and exit 1, as every other bad input; System.CommandLine's
    // own handling would also print the whole help screen on stdout, burying the line. `rlhf` alone still shows the help.
    if (parsed.Errors.Count > 0 && args.Length > 0)
    {
        var path = new List<string>();
        for (var c = parsed.CommandResult; c is not null; c = c.Parent as System.CommandLine.Parsing.CommandResult) path.Insert(0, c.Command.Name);
        path[0] = "rlhf";
        Console.Error.WriteLine($"rlhf: error: {string.Join(" ", parsed.Errors.Select(e => e.Message.ReplaceLineEndings(" ")))} (see `{string.Join(" ", path)} --help`)");
        return 1;
    }
    return parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
}
catch (Exception ex) when (ex is not OutOfMemoryException)
{
    Console.Error.WriteLine($"rlhf: error: {ex.Message.ReplaceLineEndings(" ")}");
    return 1;
}
