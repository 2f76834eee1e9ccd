// Switches for measuring the kernels, not for normal use: benchmarks flip UseScalarReference to time the
// plain scalar references against the SIMD kernels in the same process.
namespace RlhfSharp.Tensors.Kernels;

public static class KernelOptions
{
    /// <summary>When true, softmax, layer norm, GELU, attention rows and AdamW run their scalar reference code.</summary>
    public static bool UseScalarReference { get; set; }
}

/// <summary>A per-thread scratch buffer, grown on demand, so row kernels do not allocate per call.</summary>
internal static class Scratch
{
    [ThreadStatic] private static float[]? _a;
    [ThreadStatic] private static float[]? _b;

    public static Span<float> A(int n) => Get(ref _a, n);

    public static Span<float> B(int n) => Get(ref _b, n);

    private static Span<float> Get(ref float[]? buffer, int n)
    {
        if (buffer is null || buffer.Length < n) buffer = new float[Math.Max(n, 1024)];
        return buffer.AsSpan(0, n);
    }
}
