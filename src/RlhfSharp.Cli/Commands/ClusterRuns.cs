// What a training command does differently under `mpirun -np N` (docs/distributed.md): rank 0 opens (creates or resumes)
// the run folder and alone writes to it; the other ranks open it only to read the checkpoint they resume from. Commands
// not yet data-parallel refuse to start under mpirun rather than run N copies writing one folder.
using System.CommandLine;
using System.CommandLine.Parsing;
using RlhfSharp.Distributed;
using RlhfSharp.Runs;

namespace RlhfSharp.Cli.Commands;

internal static class ClusterRuns
{
    /// <summary>The commands (paths below `rlhf`) whose trainers split each batch over the ranks.</summary>
    private static readonly HashSet<string> DataParallel = new(StringComparer.Ordinal) { "pretrain", "sft", "reward train", "dpo", "ppo", "grpo", "online-dpo" };

    /// <summary>Throws under mpirun when the command is not data-parallel yet.</summary>
    public static void RequireSupported(ParseResult parsed)
    {
        var names = new List<string>();
        for (var c = parsed.CommandResult; c is not null && c.Parent is CommandResult; c = c.Parent as CommandResult) names.Insert(0, c.Command.Name);
        string name = string.Join(' ', names);
        if (!DataParallel.Contains(name))
            throw new NotSupportedException($"`rlhf {name}` does not run under mpirun yet ({Cluster.World.Size} ranks); data-parallel commands: {string.Join(", ", DataParallel.Order(StringComparer.Ordinal))}.");
    }

    /// <summary>
    /// The shard count a trainer runs with: under mpirun it follows -np unless --grad-shards (or --config) sets it, so each
    /// rank computes one slice of every batch; in one process the configured value.
    /// </summary>
    public static int GradShards<T>(ConfigOptions<T> settings, ParseResult p, int configured) where T : class, new() =>
        Cluster.World.Size > 1 && !settings.IsSet(p, "GradShards") ? Cluster.World.Size : configured;

    /// <summary>The run folder: opened by rank 0 as <see cref="RunContract.Open"/> does, then by the other ranks to read.</summary>
    public static RunDirectory Open(ParseResult p, string path, bool resume)
    {
        var world = Cluster.World;
        if (world.Size == 1) return RunContract.Open(p, path, resume);
        var run = world.IsRoot ? RunContract.Open(p, path, resume) : null;
        world.Barrier(); // the folder exists and its staging leftovers are gone before anyone reads it
        return run ?? RunDirectory.OpenToRead(path);
    }
}
