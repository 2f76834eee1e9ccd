// The engine's thread budget: kernels split work into fixed chunks over this many threads, so results
// never depend on thread timing (same inputs and thread count, same bits).
namespace RlhfSharp.Tensors;

public static class Parallelism
{
    private static int _threads = Math.Max(1, Environment.ProcessorCount);

    /// <summary>Threads the kernels may use (default: the machine's core count).</summary>
    public static int Threads
    {
        get => _threads;
        set => _threads = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "Parallelism.Threads must be at least 1.");
    }
}
