// The `rlhf` command: one entry point for every stage of the pipeline.
// Each subcommand lives in Commands/ as a static factory; library exceptions become one clear line here.
using System.CommandLine;
using RlhfSharp.Cli.Commands;

var root = RlhfCommand.Create();

// Under `mpirun -np N rlhf ...` every rank runs this program; MPI starts here (Cluster: nothing is loaded without mpirun).
bool distributed = false;
try
{
    distributed = RlhfSharp.Distributed.Cluster.Start().Size > 1;
    // `CMD --resume` runs the command line recorded in the run folder (RunContract); a finished run has nothing to do.
    var (resolved, exitCode) = RunContract.ResolveResume(root, args);
    if (exitCode is int code) return code;
    RunContract.Args = resolved;
    // Our handler below, not System.CommandLine's (which prints a stack trace): one line and exit code 1.
    var parsed = root.Parse(resolved);
    if (distributed) ClusterRuns.RequireSupported(parsed);
    // A parse error (unknown option, bad value) is one line on stderr and exit 1, as every other bad input; System.CommandLine's
    // own handling would also print the whole help screen on stdout, burying the line. `rlhf` alone still shows the help.
    if (parsed.Errors.Count > 0 && args.Length > 0)
    {
        var path = new List<string>();
        for (var c = parsed.CommandResult; c is not null; c = c.Parent as System.CommandLine.Parsing.CommandResult) path.Insert(0, c.Command.Name);
        path[0] = "rlhf";
        Console.Error.WriteLine(RlhfSharp.Text.TerminalText.Escape($"rlhf: error: {string.Join(" ", parsed.Errors.Select(e => e.Message.ReplaceLineEndings(" ")))} (see `{string.Join(" ", path)} --help`)"));
        return 1;
    }
    int exit = parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
    RlhfSharp.Distributed.Cluster.Stop();
    return exit;
}
catch (Exception ex) when (ex is not OutOfMemoryException)
{
    // The message may quote the bad input (a JSONL value, a merges line): its control characters are shown, not obeyed.
    string rank = distributed ? $"rank {RlhfSharp.Distributed.Cluster.World.Rank}: " : "";
    Console.Error.WriteLine(RlhfSharp.Text.TerminalText.Escape($"rlhf: error: {rank}{ex.Message.ReplaceLineEndings(" ")}"));
    // The other ranks may be waiting in a collective for this one: stop the whole job.
    if (distributed) RlhfSharp.Distributed.Cluster.Abort(1);
    return 1;
}
