// The GEMM register tile: D[rows,32] (+)= Apanel[rows,kc]·Bpanel[kc,32] with every accumulator a named local
// (C# has no const generics; the generic struct parameters below are folded to constants by the JIT).
//
// Shapes: rows = TRows.Rows ∈ {4, 8, 12} (MR = 12), NR = 32 columns = two Vector512<float>, kc ≤ GemmBlocking.KC.
//   Apanel element (r, p) is at a[r·RowStep + p·KStep] (TLayout picks row panels or interleaved columns);
//   Bpanel element (p, j) is at b[p·32 + j]; D row r starts at d + r·ldd.
// 12×32 uses 24 zmm accumulators + 2 B vectors + 1 broadcast of the 32 registers AVX-512 offers.
// Without AVX-512 the same tile runs as four 6×16 Vector256 tiles (12 accumulators of the 16 ymm registers).
// Both checked for spills with DOTNET_JitDisasm='*Tile*' (no stack traffic inside the k loop; the AVX2 one
// under DOTNET_EnableAVX512=0).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace RlhfSharp.Tensors.Kernels;

/// <summary>How many rows of the 12-row panel a tile computes (a compile-time constant per instantiation).</summary>
internal interface ITileRows
{
    static abstract int Rows { get; }
}

internal readonly struct Rows4 : ITileRows { public static int Rows => 4; }
internal readonly struct Rows8 : ITileRows { public static int Rows => 8; }
internal readonly struct Rows12 : ITileRows { public static int Rows => 12; }

/// <summary>Where element (r, p) of a packed A panel lives: a[r·RowStep + p·KStep].</summary>
internal interface IPanelLayout
{
    static abstract int RowStep { get; }
    static abstract int KStep { get; }
}

/// <summary>Each of the 12 rows stored contiguously over k at the fixed stride KC: packing from a row-major [M,K] source is a plain copy.</summary>
internal readonly struct RowPanelLayout : IPanelLayout
{
    public static int RowStep => GemmBlocking.KC;
    public static int KStep => 1;
}

/// <summary>The 12 values of one k stored together: packing from a [K,M] source (the Aᵀ of form TN) is a plain copy.</summary>
internal readonly struct InterleavedLayout : IPanelLayout
{
    public static int RowStep => 1;
    public static int KStep => GemmBlocking.MR;
}

internal static unsafe class GemmTile
{
    /// <summary>D[rows,32] = (add ? D : 0) + Apanel·Bpanel with Vector512 FMA.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Tile<TLayout, TRows>(float* a, float* b, int kc, float* d, long ldd, bool add)
        where TLayout : struct, IPanelLayout
        where TRows : struct, ITileRows
    {
        // Ask for the C rows now so the loads at the end find them near (the k loop takes thousands of cycles).
        // Into L2, not L1: the 32 KiB B panel streams through L1 meanwhile and would evict them.
        for (int r = 0; r < TRows.Rows; r++)
        {
            Prefetch(d + r * ldd);
            Prefetch(d + r * ldd + 16);
        }
        Vector512<float> c00 = default, c01 = default;
        Vector512<float> c10 = default, c11 = default;
        Vector512<float> c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default;
        Vector512<float> c50 = default, c51 = default;
        Vector512<float> c60 = default, c61 = default;
        Vector512<float> c70 = default, c71 = default;
        Vector512<float> c80 = default, c81 = default;
        Vector512<float> c90 = default, c91 = default;
        Vector512<float> c100 = default, c101 = default;
        Vector512<float> c110 = default, c111 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.Load(b);
            var b1 = Vector512.Load(b + 16);
            { var ar = Vector512.Create(a[0]); c00 = Vector512.FusedMultiplyAdd(ar, b0, c00); c01 = Vector512.FusedMultiplyAdd(ar, b1, c01); }
            { var ar = Vector512.Create(a[1 * TLayout.RowStep]); c10 = Vector512.FusedMultiplyAdd(ar, b0, c10); c11 = Vector512.FusedMultiplyAdd(ar, b1, c11); }
            { var ar = Vector512.Create(a[2 * TLayout.RowStep]); c20 = Vector512.FusedMultiplyAdd(ar, b0, c20); c21 = Vector512.FusedMultiplyAdd(ar, b1, c21); }
            { var ar = Vector512.Create(a[3 * TLayout.RowStep]); c30 = Vector512.FusedMultiplyAdd(ar, b0, c30); c31 = Vector512.FusedMultiplyAdd(ar, b1, c31); }
            if (TRows.Rows > 4)
            {
                { var ar = Vector512.Create(a[4 * TLayout.RowStep]); c40 = Vector512.FusedMultiplyAdd(ar, b0, c40); c41 = Vector512.FusedMultiplyAdd(ar, b1, c41); }
                { var ar = Vector512.Create(a[5 * TLayout.RowStep]); c50 = Vector512.FusedMultiplyAdd(ar, b0, c50); c51 = Vector512.FusedMultiplyAdd(ar, b1, c51); }
                { var ar = Vector512.Create(a[6 * TLayout.RowStep]); c60 = Vector512.FusedMultiplyAdd(ar, b0, c60); c61 = Vector512.FusedMultiplyAdd(ar, b1, c61); }
                { var ar = Vector512.Create(a[7 * TLayout.RowStep]); c70 = Vector512.FusedMultiplyAdd(ar, b0, c70); c71 = Vector512.FusedMultiplyAdd(ar, b1, c71); }
            }
            if (TRows.Rows > 8)
            {
                { var ar = Vector512.Create(a[8 * TLayout.RowStep]); c80 = Vector512.FusedMultiplyAdd(ar, b0, c80); c81 = Vector512.FusedMultiplyAdd(ar, b1, c81); }
                { var ar = Vector512.Create(a[9 * TLayout.RowStep]); c90 = Vector512.FusedMultiplyAdd(ar, b0, c90); c91 = Vector512.FusedMultiplyAdd(ar, b1, c91); }
                { var ar = Vector512.Create(a[10 * TLayout.RowStep]); c100 = Vector512.FusedMultiplyAdd(ar, b0, c100); c101 = Vector512.FusedMultiplyAdd(ar, b1, c101); }
                { var ar = Vector512.Create(a[11 * TLayout.RowStep]); c110 = Vector512.FusedMultiplyAdd(ar, b0, c110); c111 = Vector512.FusedMultiplyAdd(ar, b1, c111); }
            }
            a += TLayout.KStep;
            b += GemmBlocking.NR;
        }
        StoreRow(d, c00, c01, add);
        StoreRow(d + 1 * ldd, c10, c11, add);
        StoreRow(d + 2 * ldd, c20, c21, add);
        StoreRow(d + 3 * ldd, c30, c31, add);
        if (TRows.Rows > 4)
        {
            StoreRow(d + 4 * ldd, c40, c41, add);
            StoreRow(d + 5 * ldd, c50, c51, add);
            StoreRow(d + 6 * ldd, c60, c61, add);
            StoreRow(d + 7 * ldd, c70, c71, add);
        }
        if (TRows.Rows > 8)
        {
            StoreRow(d + 8 * ldd, c80, c81, add);
            StoreRow(d + 9 * ldd, c90, c91, add);
            StoreRow(d + 10 * ldd, c100, c101, add);
            StoreRow(d + 11 * ldd, c110, c111, add);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Prefetch(float* p)
    {
        if (Sse.IsSupported) Sse.Prefetch1(p);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow(float* d, Vector512<float> v0, Vector512<float> v1, bool add)
    {
        if (add)
        {
            v0 += Vector512.Load(d);
            v1 += Vector512.Load(d + 16);
        }
        v0.Store(d);
        v1.Store(d + 16);
    }

    /// <summary>
    /// The same contract for machines without AVX-512 (16 vector registers): the 32 columns as two halves of
    /// 16 and the rows in groups of 6, each a 6×16 Vector256 tile of 12 accumulators.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Tile256<TLayout>(float* a, float* b, int kc, int rows, float* d, long ldd, bool add)
        where TLayout : struct, IPanelLayout
    {
        for (int half = 0; half < GemmBlocking.NR; half += 16)
        {
            for (int r0 = 0; r0 < rows; r0 += 6)
            {
                // Rows past `rows` read the panel's spare rows (it always holds MR) and are never stored.
                Tile256Group<TLayout>(a + r0 * TLayout.RowStep, b + half, kc, Math.Min(6, rows - r0), d + r0 * ldd + half, ldd, add);
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile256Group<TLayout>(float* ap, float* bp, int kc, int valid, float* dr, long ldd, bool add)
        where TLayout : struct, IPanelLayout
    {
        Vector256<float> c00 = default, c01 = default;
        Vector256<float> c10 = default, c11 = default;
        Vector256<float> c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default;
        Vector256<float> c40 = default, c41 = default;
        Vector256<float> c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector256.Load(bp);
            var b1 = Vector256.Load(bp + 8);
            var a0 = Vector256.Create(ap[0 * TLayout.RowStep]);
            c00 = Vector256.FusedMultiplyAdd(a0, b0, c00);
            c01 = Vector256.FusedMultiplyAdd(a0, b1, c01);
            var a1 = Vector256.Create(ap[1 * TLayout.RowStep]);
            c10 = Vector256.FusedMultiplyAdd(a1, b0, c10);
            c11 = Vector256.FusedMultiplyAdd(a1, b1, c11);
            var a2 = Vector256.Create(ap[2 * TLayout.RowStep]);
            c20 = Vector256.FusedMultiplyAdd(a2, b0, c20);
            c21 = Vector256.FusedMultiplyAdd(a2, b1, c21);
            var a3 = Vector256.Create(ap[3 * TLayout.RowStep]);
            c30 = Vector256.FusedMultiplyAdd(a3, b0, c30);
            c31 = Vector256.FusedMultiplyAdd(a3, b1, c31);
            var a4 = Vector256.Create(ap[4 * TLayout.RowStep]);
            c40 = Vector256.FusedMultiplyAdd(a4, b0, c40);
            c41 = Vector256.FusedMultiplyAdd(a4, b1, c41);
            var a5 = Vector256.Create(ap[5 * TLayout.RowStep]);
            c50 = Vector256.FusedMultiplyAdd(a5, b0, c50);
            c51 = Vector256.FusedMultiplyAdd(a5, b1, c51);
            ap += TLayout.KStep;
            bp += GemmBlocking.NR;
        }
        StoreRow256(dr + 0 * ldd, c00, c01, add);
        if (1 < valid) StoreRow256(dr + 1 * ldd, c10, c11, add);
        if (2 < valid) StoreRow256(dr + 2 * ldd, c20, c21, add);
        if (3 < valid) StoreRow256(dr + 3 * ldd, c30, c31, add);
        if (4 < valid) StoreRow256(dr + 4 * ldd, c40, c41, add);
        if (5 < valid) StoreRow256(dr + 5 * ldd, c50, c51, add);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow256(float* d, Vector256<float> v0, Vector256<float> v1, bool add)
    {
        if (add)
        {
            v0 += Vector256.Load(d);
            v1 += Vector256.Load(d + 8);
        }
        v0.Store(d);
        v1.Store(d + 8);
    }
}
