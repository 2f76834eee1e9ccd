// The machine's float32 peak, measured in the run that divides by it: the denominator of MFU in `rlhf bench train`.
//
// Method. Each of T threads (T = Parallelism.Threads, the count the trainer's kernels use) runs a loop of fused
// multiply-adds on the widest vectors the JIT uses here (Vector512 with AVX-512F, else Vector256 with FMA, else scalar
// MathF.FusedMultiplyAdd) into independent accumulators that stay in registers: 16 chains on the 32 EVEX registers,
// 12 on the 16 VEX ones, enough to cover an FMA latency of 4–5 cycles on two FMA pipes, so the loop is bound by FMA
// throughput alone, with no loads or stores. All threads start together at a barrier; one round is timed by the wall
// clock from the release to the last thread's finish, and the fastest of a few rounds (~0.1 s each, ~0.3–0.5 s in all)
// is the peak: 2 FLOPs per lane per FMA. Under load from other processes the peak falls with the training speed it is
// compared with, so MFU stays a ratio of two figures taken on the same machine in the same conditions.
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace RlhfSharp.Bench;

/// <summary>A measured peak: GFLOP/s over all threads, the thread count and the instruction set it ran on.</summary>
public sealed record FmaPeakResult(double Gflops, int Threads, string Isa);

public static class FmaPeak
{
    /// <summary>Iterations of the single-thread calibration call that sizes the timed rounds (a few milliseconds).</summary>
    private const long IterationsPerCall = 1 << 20;

    /// <summary>Measures the peak on <paramref name="threads"/> threads in about <paramref name="seconds"/> of wall time.</summary>
    public static FmaPeakResult Measure(int threads, double seconds = 0.3)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(seconds);
        var (isa, flopsPerIteration) = Isa();
        Kernel(1024); // compiled and run once before timing ([AggressiveOptimization] skips tier 0 anyway)

        // Size a round to ~0.1 s from one single-thread call, so a slow machine still finishes in about `seconds`.
        long start = Stopwatch.GetTimestamp();
        Kernel(IterationsPerCall);
        double callSeconds = Math.Max(1e-6, Stopwatch.GetElapsedTime(start).TotalSeconds);
        long iterations = Math.Max(IterationsPerCall, (long)(IterationsPerCall * 0.1 / callSeconds));
        int rounds = Math.Clamp((int)Math.Round(seconds / 0.1), 2, 20);

        double best = 0;
        using var ready = new Barrier(threads + 1);
        using var finished = new CountdownEvent(threads);
        var sink = new float[threads];
        var workers = new Thread[threads];
        for (int t = 0; t < threads; t++)
        {
            int index = t;
            workers[t] = new Thread(() =>
            {
                for (int r = 0; r < rounds; r++)
                {
                    // The next round's barrier also holds a thread until the timer has read this round.
                    ready.SignalAndWait();
                    sink[index] += Kernel(iterations);
                    finished.Signal();
                }
            })
            { IsBackground = true, Name = $"fma peak {index}" };
            workers[t].Start();
        }
        for (int round = 0; round < rounds; round++)
        {
            finished.Reset();
            ready.SignalAndWait();
            long t0 = Stopwatch.GetTimestamp();
            finished.Wait();
            double elapsed = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            best = Math.Max(best, threads * iterations * flopsPerIteration / elapsed / 1e9);
        }
        foreach (var w in workers) w.Join();
        // The accumulators converge to 1 (see Kernel); a NaN here would mean the loop computed something else.
        if (!sink.All(float.IsFinite)) throw new InvalidOperationException("fma peak: the FMA loop produced a non-finite value.");
        return new FmaPeakResult(best, threads, isa);
    }

    /// <summary>The instruction set Kernel runs on here and the FLOPs of one iteration (chains × lanes × 2).</summary>
    private static (string Isa, double Flops) Isa()
    {
        if (Avx512F.IsSupported) return ("avx512", 16 * 16 * 2);
        if (Fma.IsSupported) return ("avx2_fma", 12 * 8 * 2);
        return ("scalar_fma", 8 * 2);
    }

    /// <summary>
    /// <paramref name="iterations"/> steps of acc = acc·b + c on independent chains. With b = 0.999 and c = 0.001 every
    /// accumulator converges to 1 from 0, so no value overflows or turns subnormal (which would slow the FMA units).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Kernel(long iterations)
    {
        if (Avx512F.IsSupported)
        {
            var b = Vector512.Create(0.999f);
            var c = Vector512.Create(0.001f);
            Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
            Vector512<float> a8 = default, a9 = default, a10 = default, a11 = default, a12 = default, a13 = default, a14 = default, a15 = default;
            for (long i = 0; i < iterations; i++)
            {
                a0 = Avx512F.FusedMultiplyAdd(a0, b, c); a1 = Avx512F.FusedMultiplyAdd(a1, b, c);
                a2 = Avx512F.FusedMultiplyAdd(a2, b, c); a3 = Avx512F.FusedMultiplyAdd(a3, b, c);
                a4 = Avx512F.FusedMultiplyAdd(a4, b, c); a5 = Avx512F.FusedMultiplyAdd(a5, b, c);
                a6 = Avx512F.FusedMultiplyAdd(a6, b, c); a7 = Avx512F.FusedMultiplyAdd(a7, b, c);
                a8 = Avx512F.FusedMultiplyAdd(a8, b, c); a9 = Avx512F.FusedMultiplyAdd(a9, b, c);
                a10 = Avx512F.FusedMultiplyAdd(a10, b, c); a11 = Avx512F.FusedMultiplyAdd(a11, b, c);
                a12 = Avx512F.FusedMultiplyAdd(a12, b, c); a13 = Avx512F.FusedMultiplyAdd(a13, b, c);
                a14 = Avx512F.FusedMultiplyAdd(a14, b, c); a15 = Avx512F.FusedMultiplyAdd(a15, b, c);
            }
            var sum = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + ((a8 + a9) + (a10 + a11)) + ((a12 + a13) + (a14 + a15));
            return Vector512.Sum(sum);
        }
        if (Fma.IsSupported)
        {
            var b = Vector256.Create(0.999f);
            var c = Vector256.Create(0.001f);
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default;
            Vector256<float> a6 = default, a7 = default, a8 = default, a9 = default, a10 = default, a11 = default;
            for (long i = 0; i < iterations; i++)
            {
                a0 = Fma.MultiplyAdd(a0, b, c); a1 = Fma.MultiplyAdd(a1, b, c);
                a2 = Fma.MultiplyAdd(a2, b, c); a3 = Fma.MultiplyAdd(a3, b, c);
                a4 = Fma.MultiplyAdd(a4, b, c); a5 = Fma.MultiplyAdd(a5, b, c);
                a6 = Fma.MultiplyAdd(a6, b, c); a7 = Fma.MultiplyAdd(a7, b, c);
                a8 = Fma.MultiplyAdd(a8, b, c); a9 = Fma.MultiplyAdd(a9, b, c);
                a10 = Fma.MultiplyAdd(a10, b, c); a11 = Fma.MultiplyAdd(a11, b, c);
            }
            var sum = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) + ((a8 + a9) + (a10 + a11));
            return Vector256.Sum(sum);
        }
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
        for (long i = 0; i < iterations; i++)
        {
            s0 = MathF.FusedMultiplyAdd(s0, 0.999f, 0.001f); s1 = MathF.FusedMultiplyAdd(s1, 0.999f, 0.001f);
            s2 = MathF.FusedMultiplyAdd(s2, 0.999f, 0.001f); s3 = MathF.FusedMultiplyAdd(s3, 0.999f, 0.001f);
            s4 = MathF.FusedMultiplyAdd(s4, 0.999f, 0.001f); s5 = MathF.FusedMultiplyAdd(s5, 0.999f, 0.001f);
            s6 = MathF.FusedMultiplyAdd(s6, 0.999f, 0.001f); s7 = MathF.FusedMultiplyAdd(s7, 0.999f, 0.001f);
        }
        return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
    }
}
