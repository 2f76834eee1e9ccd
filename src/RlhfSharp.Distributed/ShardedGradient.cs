// The gradient of a global batch as a fixed-order sum of S shard gradients, computed either by one process (shard after
// shard, `--grad-shards S`) or by S ranks of mpirun (shard r on rank r). Both give the same bits:
//     g = ((g₀ + g₁) + g₂) + … + g_{S−1},   loss = ((ℓ₀ + ℓ₁) + ℓ₂) + … (in double)
// where g_s and ℓ_s are shard s's gradient and loss, each already divided by the global batch's normaliser (so the sum is
// the global mean, not a mean of means). What is NOT bit-identical: S shards against the whole batch in one pass
// (S = 1): a pass over B rows sums each weight gradient over all B·T positions inside one GEMM, whose association differs
// from summing S partial GEMMs. So N ranks equal one process run with `--grad-shards N`, and `--grad-shards 1` (the
// default) is the single-pass path the golden tests pin, unchanged.
// Trainers whose metrics are ratios over the batch (reward accuracy, DPO's implicit rewards) pass each shard's partial
// sums as well (Add with a values vector); Totals adds them in shard order, so the metrics agree bit for bit too.
// The gradient summed is the trainable one (with LoRA only the adapter's: TrainableParameters.Grads).
namespace RlhfSharp.Distributed;

public sealed class ShardedGradient
{
    private readonly ICommunicator _world;
    private readonly double[][] _values;
    private float[] _sum = [];

    /// <param name="world">The job's ranks; with more than one, each rank computes one shard, so <paramref name="shards"/> must equal its size.</param>
    /// <param name="shards">S, the number of shards each global batch is cut into.</param>
    public ShardedGradient(ICommunicator world, int shards)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(shards, 1);
        if (world.Size > 1 && shards != world.Size)
            throw new ArgumentException($"grad_shards = {shards}, but mpirun started {world.Size} ranks: each rank computes one shard, so leave --grad-shards out (it follows -np) or set it to {world.Size}.");
        _world = world;
        Shards = shards;
        _values = new double[shards][];
        LocalShards = world.Size > 1 ? [world.Rank] : Enumerable.Range(0, shards).ToArray();
    }

    /// <summary>S.</summary>
    public int Shards { get; }

    /// <summary>The shards this process computes, in order: all S in one process, shard r on rank r.</summary>
    public IReadOnlyList<int> LocalShards { get; }

    /// <summary>Rows [start, start + count) of a global batch of <paramref name="rows"/> rows that shard <paramref name="shard"/> takes.</summary>
    public (int Start, int Count) Rows(int shard, int rows)
    {
        if (rows % Shards != 0)
            throw new ArgumentException($"batch_size = {rows} must be a multiple of grad_shards = {Shards} (the ranks of mpirun), so every shard has the same rows.");
        int count = rows / Shards;
        return (shard * count, count);
    }

    /// <summary>
    /// Items [start, start + count) of <paramref name="items"/> that shard <paramref name="shard"/> takes, when the count
    /// need not divide (a last, shorter batch of an epoch): [⌊s·n/S⌋, ⌊(s+1)·n/S⌋), possibly empty.
    /// </summary>
    public (int Start, int Count) Slice(int shard, int items)
    {
        int start = (int)((long)shard * items / Shards), end = (int)((long)(shard + 1) * items / Shards);
        return (start, end - start);
    }

    /// <summary>
    /// What every shard computed, in shard order, on every rank: in one process <paramref name="compute"/> runs for each
    /// shard in turn; under mpirun for this rank's shard, and the ranks' bytes are gathered. Both paths hand the caller
    /// the same bytes (RL: each rank samples and scores its slice of the rollouts, and every rank then holds them all).
    /// </summary>
    public byte[][] Gather(Func<int, byte[]> compute)
    {
        if (_world.Size > 1) return _world.AllGather(compute(_world.Rank));
        var all = new byte[Shards][];
        for (int s = 0; s < Shards; s++) all[s] = compute(s);
        return all;
    }

    /// <summary>Records shard <paramref name="shard"/>'s gradient and loss; shards must come in the order of <see cref="LocalShards"/>.</summary>
    public void Add(int shard, float[] gradient, double loss) => Add(shard, gradient, [loss]);

    /// <summary>
    /// Records shard <paramref name="shard"/>'s gradient and its partial sums (values[0] the loss, the rest whatever the
    /// trainer totals over the batch); every shard passes the same number of values.
    /// </summary>
    public void Add(int shard, float[] gradient, double[] values)
    {
        _values[shard] = values;
        if (_world.Size > 1) return; // the rank's one shard stays in the gradient buffer for Finish
        if (_sum.Length != gradient.Length) _sum = new float[gradient.Length];
        if (shard == 0) gradient.CopyTo(_sum, 0);
        else
            for (int i = 0; i < _sum.Length; i++) _sum[i] += gradient[i]; // element-wise: the same rounding as the ranks' sum
    }

    /// <summary>Σ_s of each value passed to Add, in shard order (after <see cref="Finish"/>): Totals[0] is the loss.</summary>
    public double[] Totals { get; private set; } = [];

    /// <summary>Writes g = Σ_s g_s (shard order) into <paramref name="gradient"/> on every rank and returns Σ_s ℓ_s.</summary>
    public double Finish(float[] gradient)
    {
        int k = _values[LocalShards[0]].Length;
        var all = new double[Shards * k]; // shard s's values at [s·k, (s+1)·k)
        if (_world.Size > 1)
        {
            _world.SumInRankOrder(gradient);
            all = _world.AllGather(_values[_world.Rank]);
        }
        else
        {
            if (Shards > 1) _sum.CopyTo(gradient, 0);
            for (int s = 0; s < Shards; s++) _values[s].CopyTo(all, s * k);
        }
        var totals = new double[k];
        for (int s = 0; s < Shards; s++)
            for (int i = 0; i < k; i++) totals[i] += all[s * k + i];
        Totals = totals;
        return totals[0];
    }
}
