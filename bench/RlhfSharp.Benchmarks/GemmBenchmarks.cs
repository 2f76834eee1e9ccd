// BenchmarkDotNet: the blocked GEMM against its scalar reference on one transformer-sized shape.
// For the comparison with OpenBLAS on every shape and form, use `rlhf bench gemm`.
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using RlhfSharp.Tensors;
using RlhfSharp.Tensors.Kernels;

namespace RlhfSharp.Benchmarks;

[MemoryDiagnoser]
public unsafe class GemmBenchmarks
{
    // (M, K, N) = (256, 384, 256): one attention-block projection of a 256-token batch at width 384.
    private const int M = 256, K = 384, N = 256;
    private float* _a, _b, _c;

    [Params(GemmForm.NN, GemmForm.NT, GemmForm.TN)]
    public GemmForm Form { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var rng = new Rng(1);
        _a = Allocate(M * K, rng);
        _b = Allocate(K * N, rng);
        _c = Allocate(M * N, rng);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        NativeMemory.AlignedFree(_a);
        NativeMemory.AlignedFree(_b);
        NativeMemory.AlignedFree(_c);
    }

    private int Lda => Form == GemmForm.TN ? M : K;
    private int Ldb => Form == GemmForm.NT ? K : N;

    [Benchmark(Baseline = true)]
    public void Reference() => GemmReference.Multiply(Form, M, N, K, _a, Lda, _b, Ldb, _c, N, accumulate: false);

    [Benchmark]
    public void BlockedOneThread() => Gemm.Multiply(Form, M, N, K, _a, Lda, _b, Ldb, _c, N, accumulate: false, threads: 1);

    [Benchmark]
    public void BlockedAllThreads() => Gemm.Multiply(Form, M, N, K, _a, Lda, _b, Ldb, _c, N, accumulate: false);

    private static float* Allocate(int count, Rng rng)
    {
        var p = (float*)NativeMemory.AlignedAlloc((nuint)count * sizeof(float), 64);
        for (int i = 0; i < count; i++) p[i] = (float)rng.Uniform(-1, 1);
        return p;
    }
}
