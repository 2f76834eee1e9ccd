// GFLOP/s of Gemm.Multiply beside OpenBLAS's cblas_sgemm on the same inputs in the same process, for the
// transformer-sized shapes the engine runs most, each form (NN, NT, TN), 1 and 2 threads (`rlhf bench gemm`).
// The two sides alternate so that load from other processes falls on both alike; the fastest run of each is kept.
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using RlhfSharp.Tensors;
using RlhfSharp.Tensors.Kernels;

namespace RlhfSharp.Bench;

/// <summary>One measured configuration; GFLOP/s from the fastest repetition, null where OpenBLAS is absent.</summary>
public sealed record GemmResult(int M, int K, int N, GemmForm Form, int Threads, double Ours, double? OpenBlas)
{
    public double? Ratio => OpenBlas is > 0 ? Ours / OpenBlas : null;
}

public static unsafe class GemmBench
{
    /// <summary>(M, K, N) of the measured products: attention/MLP projections, a square, a small batch, a narrow head.</summary>
    public static readonly (int M, int K, int N)[] Shapes =
        [(512, 384, 1536), (512, 1536, 384), (1024, 1024, 1024), (64, 768, 2304), (8192, 768, 64)];

    private static readonly GemmForm[] Forms = [GemmForm.NN, GemmForm.NT, GemmForm.TN];
    private static readonly int[] ThreadCounts = [1, 2];

    /// <summary>
    /// Measures every shape × form × thread count with <paramref name="reps"/> timed runs per side after one warm-up.
    /// <paramref name="blas"/> null measures ours alone. With <paramref name="cpuTime"/> (Linux), 1-thread runs are timed
    /// by the calling thread's CPU time, steadier on a loaded machine; 2-thread runs stay wall-clock.
    /// </summary>
    public static List<GemmResult> Run(IReadOnlyList<(int M, int K, int N)> shapes, int reps, bool cpuTime, OpenBlas? blas)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(reps, 1);
        if (cpuTime && !OperatingSystem.IsLinux()) throw new PlatformNotSupportedException("GEMM CPU-time timing needs Linux (clock_gettime with CLOCK_THREAD_CPUTIME_ID).");
        var results = new List<GemmResult>();
        var rng = new Rng(2024);
        foreach (var (m, k, n) in shapes)
        {
            foreach (var form in Forms)
            {
                using var operands = new Operands(form, m, n, k, rng);
                foreach (int threads in ThreadCounts)
                {
                    void Ours() => Gemm.Multiply(form, m, n, k, operands.A, operands.Lda, operands.B, operands.Ldb, operands.C, n, accumulate: false, threads);
                    void Theirs() => blas!.Sgemm(form, m, n, k, operands.A, operands.Lda, operands.B, operands.Ldb, operands.C, n);
                    blas?.SetThreads(threads);
                    Ours();
                    if (blas is not null) Theirs();
                    double ours = double.MaxValue, theirs = double.MaxValue;
                    bool threadClock = cpuTime && threads == 1;
                    for (int r = 0; r < reps; r++)
                    {
                        ours = Math.Min(ours, Seconds(Ours, threadClock));
                        if (blas is null) continue;
                        theirs = Math.Min(theirs, Seconds(Theirs, threadClock));
                        // OpenBLAS's idle threads spin for ~2^28 cycles after a call; let them sleep before we time ours.
                        if (threads > 1) Thread.Sleep(150);
                    }
                    double flops = 2.0 * m * n * k;
                    results.Add(new GemmResult(m, k, n, form, threads, flops / ours / 1e9, blas is null ? null : flops / theirs / 1e9));
                }
            }
        }
        return results;
    }

    /// <summary>A JSON array with one object per line: m, k, n, form, threads, ours_gflops, openblas_gflops, ratio.</summary>
    public static string ToJson(IEnumerable<GemmResult> results)
    {
        var lines = results.Select(r =>
        {
            var buffer = new System.Buffers.ArrayBufferWriter<byte>();
            using (var writer = new Utf8JsonWriter(buffer))
            {
                writer.WriteStartObject();
                writer.WriteNumber("m", r.M);
                writer.WriteNumber("k", r.K);
                writer.WriteNumber("n", r.N);
                writer.WriteString("form", r.Form.ToString());
                writer.WriteNumber("threads", r.Threads);
                writer.WriteNumber("ours_gflops", Math.Round(r.Ours, 2));
                WriteNullable(writer, "openblas_gflops", r.OpenBlas, 2);
                WriteNullable(writer, "ratio", r.Ratio, 3);
                writer.WriteEndObject();
            }
            return System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
        });
        return "[\n" + string.Join(",\n", lines) + "\n]\n";

        static void WriteNullable(Utf8JsonWriter writer, string name, double? value, int digits)
        {
            if (value is double v) writer.WriteNumber(name, Math.Round(v, digits));
            else writer.WriteNull(name);
        }
    }

    [DllImport("libc", EntryPoint = "clock_gettime")]
    private static extern int ClockGetTime(int clock, long* timespec);

    /// <summary>Seconds one call takes: wall clock, or the calling thread's CPU time (time the thread was not running is left out).</summary>
    private static double Seconds(Action run, bool threadClock)
    {
        if (!threadClock)
        {
            long start = Stopwatch.GetTimestamp();
            run();
            return Stopwatch.GetElapsedTime(start).TotalSeconds;
        }
        const int ThreadCpuClock = 3; // CLOCK_THREAD_CPUTIME_ID (linux/time.h)
        long* t = stackalloc long[4];
        ClockGetTime(ThreadCpuClock, t);
        run();
        ClockGetTime(ThreadCpuClock, t + 2);
        return (t[2] - t[0]) + (t[3] - t[1]) * 1e-9;
    }

    /// <summary>A, B and C for one shape and form in 64-byte-aligned native memory, A and B uniform in [-1, 1).</summary>
    private sealed class Operands : IDisposable
    {
        public readonly float* A, B, C;
        public readonly int Lda, Ldb;

        public Operands(GemmForm form, int m, int n, int k, Rng rng)
        {
            Lda = form == GemmForm.TN ? m : k;
            Ldb = form == GemmForm.NT ? k : n;
            A = Allocate((long)m * k, rng);
            B = Allocate((long)k * n, rng);
            C = Allocate((long)m * n, rng);
        }

        private static float* Allocate(long count, Rng rng)
        {
            var p = (float*)NativeMemory.AlignedAlloc((nuint)(count * sizeof(float)), 64);
            for (long i = 0; i < count; i++) p[i] = (float)rng.Uniform(-1, 1);
            return p;
        }

        public void Dispose()
        {
            NativeMemory.AlignedFree(A);
            NativeMemory.AlignedFree(B);
            NativeMemory.AlignedFree(C);
        }
    }
}
