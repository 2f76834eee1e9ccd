// What every data-parallel trainer does the same way under mpirun (docs/distributed.md), beside the gradient sum itself
// (Distributed.ShardedGradient): all ranks stop at the same step when any one heard Ctrl-C or SIGTERM, rank 0 alone
// writes the run folder, and at the end the ranks check that their trained weights hash the same.
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using RlhfSharp.Distributed;
using RlhfSharp.Models;
using RlhfSharp.Runs;

namespace RlhfSharp.Alignment;

internal static class DataParallel
{
    /// <summary>The run folder to write to: the given one on rank 0 (and in one process), null on the other ranks.</summary>
    public static RunDirectory? Writer(RunDirectory? run) => Cluster.World.IsRoot ? run : null;

    /// <summary>
    /// True when this step should not start: the token is cancelled here or, under mpirun, on any rank (each rank hears
    /// the signal on its own, and a rank that stopped alone would leave the others waiting in a collective).
    /// </summary>
    public static bool StopRequested(CancellationToken ct)
    {
        var world = Cluster.World;
        bool stop = ct.IsCancellationRequested;
        if (world.Size > 1) stop = world.AllGather(stop ? 1L : 0L).Any(x => x != 0);
        return stop;
    }

    /// <summary>
    /// Under mpirun: every rank applied the same summed gradient, so the trained weights (with LoRA, the adapter's) must be
    /// equal; a rank that differs (different data, settings or build on one machine) is reported instead of ignored.
    /// </summary>
    public static void CheckSameWeights(Gpt model, string what)
    {
        var world = Cluster.World;
        if (world.Size == 1) return;
        var digest = SHA256.HashData(MemoryMarshal.AsBytes(model.TrainableParameters.Values.AsSpan()));
        var all = world.AllGather(BitConverter.ToInt64(digest, 0));
        for (int r = 0; r < all.Length; r++)
            if (all[r] != all[0])
                throw new InvalidOperationException($"data parallelism: rank {r}'s {what} weights differ from rank 0's after training; every rank needs the same data, settings and rlhf build.");
    }
}
