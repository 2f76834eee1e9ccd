// Runs a loop over [0, count) split into Parallelism.Threads fixed, contiguous chunks. Every index is
// handled by exactly one chunk and each chunk's work does not depend on the others, so results do not
// depend on thread timing (only on the thread count where a caller reduces per chunk).
// The chunks run on the GEMM workers (GemmWorkers.TryRunChunks) when those are free, else on the thread pool: the
// same chunks either way.
namespace RlhfSharp.Tensors.Kernels;

public static class ParallelChunks
{
    /// <summary>body(start, end) for each chunk; chunk 0 runs on the calling thread.</summary>
    public static void For(int count, Action<int, int> body, int minPerChunk = 1)
    {
        int threads = Math.Min(Parallelism.Threads, Math.Max(1, count / Math.Max(1, minPerChunk)));
        if (threads <= 1 || count <= 1)
        {
            if (count > 0) body(0, count);
            return;
        }
        if (GemmWorkers.TryRunChunks(count, threads, body)) return;
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, c =>
        {
            int start = (int)((long)count * c / threads), end = (int)((long)count * (c + 1) / threads);
            if (end > start) body(start, end);
        });
    }
}
