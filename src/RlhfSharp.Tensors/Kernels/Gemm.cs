// Single-precision matrix product C (+)= op(A)·op(B) on row-major buffers: the one entry point every
// matmul in the engine goes through. Scalar reference: GemmReference.Multiply (same contract).
//
// Shapes: op(A) is [M,K], op(B) is [K,N], C is [M,N] with row stride ldc.
//   form NN: A stored [M,K] (lda ≥ K), B stored [K,N] (ldb ≥ N)      C = A·B
//   form NT: A stored [M,K] (lda ≥ K), B stored [N,K] (ldb ≥ K)      C = A·Bᵀ
//   form TN: A stored [K,M] (lda ≥ M), B stored [K,N] (ldb ≥ N)      C = Aᵀ·B
// accumulate=false overwrites C; accumulate=true adds to it (backward passes accumulate gradients).
namespace RlhfSharp.Tensors.Kernels;

/// <summary>Which operands of a matrix product are read transposed.</summary>
public enum GemmForm
{
    /// <summary>C = A·B.</summary>
    NN,
    /// <summary>C = A·Bᵀ.</summary>
    NT,
    /// <summary>C = Aᵀ·B.</summary>
    TN,
}

public static unsafe class Gemm
{
    /// <summary>C (+)= op(A)·op(B). <paramref name="threads"/> ≤ 0 means <see cref="Parallelism.Threads"/>.</summary>
    public static void Multiply(GemmForm form, int m, int n, int k,
        float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate, int threads = 0)
    {
        MultiplyCore(form, m, n, k, a, lda, b, ldb, c, ldc, accumulate, threads, GemmBlocking.MinMultiplyAddsPerThread);
    }

    /// <summary>
    /// The pointer form with the split threshold exposed, so tests can force a multi-thread split on small shapes.
    /// A plan splits into min(threads, m·n·k / minMultiplyAddsPerThread) parts (at least one).
    /// </summary>
    internal static void MultiplyCore(GemmForm form, int m, int n, int k,
        float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate, int threads, long minMultiplyAddsPerThread)
    {
        if (m < 0 || n < 0 || k < 0)
            throw new ArgumentException($"gemm: negative dimension (M={m}, N={n}, K={k}).");
        if (m == 0 || n == 0) return;
        int budget = threads > 0 ? threads : Parallelism.Threads;
        long work = (long)m * n * k;
        int parts = (int)Math.Clamp(work / Math.Max(1, minMultiplyAddsPerThread), 1, budget);
        var plan = GemmPlan.Create(form, m, n, k, a, lda, b, ldb, c, ldc, accumulate);
        GemmWorkers.Run(plan, parts);
    }

    /// <summary>Whether <see cref="MultiplyBf16"/> takes this product: form NN, or form NT with M &lt; N and M ≤ 256.</summary>
    public static bool SupportsBf16(GemmForm form, int m, int n) => form == GemmForm.NN || (form == GemmForm.NT && m < n && m <= 256);

    /// <summary>
    /// C (+)= A·op(B) with B held as bfloat16 bits (same layout as its float32 form): the weights are widened exactly while
    /// packed (or, in the skinny tile, as they are read), so C has the bits <see cref="Multiply(GemmForm, int, int, int, ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, Span{float}, int, bool, int)"/>
    /// gives on the widened B, while B's bytes read from memory are halved. Decoding's Conv1D layers (NN) and tied head (NT).
    /// </summary>
    public static void MultiplyBf16(GemmForm form, int m, int n, int k,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<ushort> b, int ldb, Span<float> c, int ldc,
        bool accumulate, int threads = 0)
    {
        GemmReference.Validate(form, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        if (m == 0 || n == 0) return;
        fixed (float* pa = a)
        fixed (ushort* pb = b)
        fixed (float* pc = c)
        {
            int budget = threads > 0 ? threads : Parallelism.Threads;
            long work = (long)m * n * k;
            int parts = (int)Math.Clamp(work / GemmBlocking.MinMultiplyAddsPerThread, 1, budget);
            var plan = GemmPlan.CreateBf16(form, m, n, k, pa, lda, pb, ldb, pc, ldc, accumulate);
            GemmWorkers.Run(plan, parts);
        }
    }

    /// <summary>Span overload: validates lengths, pins, and calls the pointer form.</summary>
    public static void Multiply(GemmForm form, int m, int n, int k,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, Span<float> c, int ldc,
        bool accumulate, int threads = 0)
    {
        GemmReference.Validate(form, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        fixed (float* pa = a)
        fixed (float* pb = b)
        fixed (float* pc = c)
        {
            Multiply(form, m, n, k, pa, lda, pb, ldb, pc, ldc, accumulate, threads);
        }
    }
}

/// <summary>The plain triple loop that every optimised GEMM path is tested against (accumulates in float64).</summary>
public static unsafe class GemmReference
{
    public static void Multiply(GemmForm form, int m, int n, int k,
        float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate)
    {
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double sum = 0;
                for (int p = 0; p < k; p++)
                {
                    float av = form == GemmForm.TN ? a[(long)p * lda + i] : a[(long)i * lda + p];
                    float bv = form == GemmForm.NT ? b[(long)j * ldb + p] : b[(long)p * ldb + j];
                    sum += (double)av * bv;
                }
                float* cij = c + (long)i * ldc + j;
                *cij = accumulate ? (float)(*cij + sum) : (float)sum;
            }
        }
    }

    /// <summary>Throws when a buffer is too short for the shapes and strides given.</summary>
    public static void Validate(GemmForm form, int m, int n, int k, int aLength, int lda, int bLength, int ldb, int cLength, int ldc)
    {
        if (m < 0 || n < 0 || k < 0)
            throw new ArgumentException($"gemm: negative dimension (M={m}, N={n}, K={k}).");
        (int aRows, int aCols) = form == GemmForm.TN ? (k, m) : (m, k);
        (int bRows, int bCols) = form == GemmForm.NT ? (n, k) : (k, n);
        Check("A", aRows, aCols, lda, aLength);
        Check("B", bRows, bCols, ldb, bLength);
        Check("C", m, n, ldc, cLength);

        static void Check(string name, int rows, int cols, int ld, int length)
        {
            if (rows == 0 || cols == 0) return;
            if (ld < cols)
                throw new ArgumentException($"gemm: leading dimension of {name} ({ld}) is smaller than its {cols} columns.");
            long need = (long)(rows - 1) * ld + cols;
            if (length < need)
                throw new ArgumentException($"gemm: {name} holds {length} floats but [{rows},{cols}] with stride {ld} needs {need}.");
        }
    }
}
