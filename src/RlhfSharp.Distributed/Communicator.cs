// The ranks of a data-parallel job as the trainers see them: who am I, how many are we, and the two collectives data
// parallelism needs — a gradient sum in a fixed order, and gathering one number from every rank. One process is the
// one-rank case (SingleProcess), with no MPI library loaded; under mpirun, MpiCommunicator over MPI_COMM_WORLD.
//
// Why not MPI_Allreduce(MPI_SUM): the MPI standard leaves the order of its additions to the implementation (Open MPI picks
// a ring, a tree or recursive doubling by message size and rank count), and float addition is not associative, so its
// bits may differ from a sum in rank order. SumInRankOrder is a reduce-scatter and an all-gather made from MPI_Alltoallv
// and MPI_Allgatherv: rank r receives chunk r of every rank's buffer, adds them element by element in rank order
// ((g₀ + g₁) + g₂) + …, and the summed chunks are gathered back. Same bytes on the wire as a ring all-reduce,
// 2·(N−1)/N·P floats sent per rank, and the same bits as one process adding the N buffers in order.
using System.Buffers.Binary;

namespace RlhfSharp.Distributed;

/// <summary>The ranks of a data-parallel job.</summary>
public interface ICommunicator
{
    /// <summary>This process's rank, 0..Size−1.</summary>
    int Rank { get; }

    /// <summary>The number of ranks (1 without mpirun).</summary>
    int Size { get; }

    /// <summary>Rank 0: the one that writes checkpoints, metrics, reports and outputs.</summary>
    bool IsRoot => Rank == 0;

    /// <summary>Bytes this rank has sent in collectives so far (for the per-step traffic the bench reports).</summary>
    long BytesSent { get; }

    /// <summary>
    /// In place on every rank: buffer ← Σ_r buffer_r, each element summed in rank order ((b₀ + b₁) + b₂) + … .
    /// Every rank must pass a buffer of the same length.
    /// </summary>
    void SumInRankOrder(float[] buffer);

    /// <summary>value of every rank, indexed by rank.</summary>
    double[] AllGather(double value);

    /// <summary>value of every rank, indexed by rank.</summary>
    long[] AllGather(long value);

    /// <summary>The k values of every rank, rank r's at [r·k, (r+1)·k); every rank passes the same k.</summary>
    double[] AllGather(double[] values);

    /// <summary>Every rank's bytes, indexed by rank; the lengths may differ (RL rollouts of one rank's slice).</summary>
    byte[][] AllGather(byte[] bytes);

    /// <summary>Waits until every rank has called it.</summary>
    void Barrier();
}

/// <summary>One process: rank 0 of 1. Collectives are the identity.</summary>
public sealed class SingleProcess : ICommunicator
{
    public static readonly SingleProcess Instance = new();

    private SingleProcess() { }

    public int Rank => 0;

    public int Size => 1;

    public long BytesSent => 0;

    public void SumInRankOrder(float[] buffer) { }

    public double[] AllGather(double value) => [value];

    public long[] AllGather(long value) => [value];

    public double[] AllGather(double[] values) => (double[])values.Clone();

    public byte[][] AllGather(byte[] bytes) => [bytes];

    public void Barrier() { }
}

/// <summary>MPI_COMM_WORLD of an mpirun launch (Open MPI through <see cref="MpiLibrary"/>).</summary>
public sealed unsafe class MpiCommunicator : ICommunicator
{
    private readonly MpiLibrary _mpi;
    private float[] _received = [];
    private long _bytesSent;

    internal MpiCommunicator(MpiLibrary mpi)
    {
        _mpi = mpi;
        Rank = mpi.Rank();
        Size = mpi.Size();
    }

    public int Rank { get; }

    public int Size { get; }

    public long BytesSent => _bytesSent;

    /// <summary>Chunk r of a buffer of length P: [r·P/N, (r+1)·P/N).</summary>
    private (int Start, int Length) Chunk(int r, int length)
    {
        int start = (int)((long)r * length / Size), end = (int)((long)(r + 1) * length / Size);
        return (start, end - start);
    }

    public void SumInRankOrder(float[] buffer)
    {
        int N = Size, P = buffer.Length;
        var (mine, mineLength) = Chunk(Rank, P);
        if (_received.Length < N * mineLength) _received = new float[N * mineLength];
        var sendCounts = stackalloc int[N];
        var sendDispls = stackalloc int[N];
        var recvCounts = stackalloc int[N];
        var recvDispls = stackalloc int[N];
        for (int r = 0; r < N; r++)
        {
            (sendDispls[r], sendCounts[r]) = Chunk(r, P);
            recvCounts[r] = mineLength;
            recvDispls[r] = r * mineLength;
        }
        // 1. Reduce-scatter: chunk r of every rank's buffer goes to rank r ...
        fixed (float* send = buffer, recv = _received)
            _mpi.Alltoallv(send, sendCounts, sendDispls, _mpi.Float, recv, recvCounts, recvDispls);
        // ... which adds them in rank order, element by element (an element-wise add rounds the same at any vector width).
        var sum = buffer.AsSpan(mine, mineLength);
        _received.AsSpan(0, mineLength).CopyTo(sum);
        for (int r = 1; r < N; r++)
        {
            var next = _received.AsSpan(r * mineLength, mineLength);
            for (int i = 0; i < sum.Length; i++) sum[i] += next[i];
        }
        // 2. All-gather the summed chunks back into every rank's buffer.
        fixed (float* all = buffer)
            _mpi.Allgatherv(MpiLibrary.InPlace, 0, _mpi.Float, all, sendCounts, sendDispls);
        _bytesSent += 2L * (P - mineLength) * sizeof(float);
    }

    public double[] AllGather(double value)
    {
        var bits = AllGather(BitConverter.DoubleToInt64Bits(value));
        return Array.ConvertAll(bits, BitConverter.Int64BitsToDouble);
    }

    public long[] AllGather(long value)
    {
        int N = Size;
        var bytes = new byte[N * sizeof(long)];
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(Rank * sizeof(long)), value);
        var counts = stackalloc int[N];
        var displs = stackalloc int[N];
        for (int r = 0; r < N; r++) (counts[r], displs[r]) = (sizeof(long), r * sizeof(long));
        fixed (byte* all = bytes)
            _mpi.Allgatherv(MpiLibrary.InPlace, 0, _mpi.Byte, all, counts, displs);
        _bytesSent += (N - 1) * sizeof(long);
        var values = new long[N];
        for (int r = 0; r < N; r++) values[r] = BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(r * sizeof(long)));
        return values;
    }

    public double[] AllGather(double[] values)
    {
        int N = Size, k = values.Length;
        var all = new double[N * k];
        values.CopyTo(all, Rank * k);
        var counts = stackalloc int[N];
        var displs = stackalloc int[N];
        for (int r = 0; r < N; r++) (counts[r], displs[r]) = (k * sizeof(double), r * k * sizeof(double));
        // Bytes, not MPI_DOUBLE: the values travel bit for bit (both ends are the same little-endian build).
        fixed (double* buffer = all)
            _mpi.Allgatherv(MpiLibrary.InPlace, 0, _mpi.Byte, buffer, counts, displs);
        _bytesSent += (long)(N - 1) * k * sizeof(double);
        return all;
    }

    public byte[][] AllGather(byte[] bytes)
    {
        int N = Size;
        var lengths = AllGather((long)bytes.Length);
        long total = lengths.Sum();
        if (total > Array.MaxLength) throw new InvalidOperationException($"MPI: {total} bytes to gather do not fit in one buffer.");
        var all = new byte[total];
        var counts = stackalloc int[N];
        var displs = stackalloc int[N];
        int offset = 0;
        for (int r = 0; r < N; r++)
        {
            (counts[r], displs[r]) = ((int)lengths[r], offset);
            offset += (int)lengths[r];
        }
        bytes.CopyTo(all, displs[Rank]);
        fixed (byte* buffer = all)
            _mpi.Allgatherv(MpiLibrary.InPlace, 0, _mpi.Byte, buffer, counts, displs);
        _bytesSent += (long)(N - 1) * bytes.Length;
        var result = new byte[N][];
        for (int r = 0; r < N; r++) result[r] = all.AsSpan(displs[r], counts[r]).ToArray();
        return result;
    }

    public void Barrier() => _mpi.Barrier();

    internal void Abort(int code) => _mpi.Abort(code);

    internal void Finish() => _mpi.Close();
}
