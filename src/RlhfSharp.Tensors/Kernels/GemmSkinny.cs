// GEMM tiles for products with at most 16 rows on one side — decoding, where a batch of 16 token rows meets the weights.
// The blocked driver would copy the big operand into packed panels only to read each panel once or twice (and, for the
// tied LM head, fill half of every 32-wide tile with padding); these tiles read the big operand where it lies.
// Every element is the same FMA sequence as in GemmBlocked — a chain from zero over each KC depth slice, added to the
// running value of D — so the bits equal the blocked path's (tests compare both), whatever the thread split.
//
//   FewRows (form NN, M ≤ 16):  D = C [M, N];  P = A rows (stride lda), read in place; Q = B rows [K, N], read in place.
//   FewCols (form NT, M ≤ 16, M < N): D = Cᵀ [N, M] = B·Aᵀ;  P = B rows [N, K] (the weights), read in place;
//            Q(p, s) = A[s, p], packed once per call into [K, 16] so one Vector512 holds the 16 columns of a depth p.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace RlhfSharp.Tensors.Kernels;

/// <summary>Which driver runs a plan.</summary>
internal enum GemmKind : byte
{
    Blocked,
    FewRows,
    FewCols,
}

internal static unsafe class GemmSkinny
{
    /// <summary>The most rows (FewRows) or columns (FewCols) the skinny tiles take.</summary>
    public const int MaxSmall = 16;

    /// <summary>Depth the FewCols pack of Q holds in a thread's B block (KC·NC floats).</summary>
    public const int MaxFewColsDepth = GemmBlocking.KC * GemmBlocking.NC / MaxSmall;

    /// <summary>Use the skinny tiles where they apply; tests switch this off to compare against the blocked path's bits.</summary>
    internal static volatile bool Enabled = true;

    /// <summary>Which driver suits a product: the skinny ones only with the Vector512 tile, for the shapes named above.</summary>
    public static GemmKind Choose(GemmForm form, int m, int n, int k)
    {
        if (!Enabled || !GemmBlocked.UseVector512 || m > MaxSmall || k == 0) return GemmKind.Blocked;
        if (form == GemmForm.NN && n >= 2 * GemmBlocking.NR) return GemmKind.FewRows;
        if (form == GemmForm.NT && m < n && k <= MaxFewColsDepth) return GemmKind.FewCols;
        return GemmKind.Blocked;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunPart(in GemmPlan plan, int r0, int r1, int s0, int s1)
    {
        if (r0 >= r1 || s0 >= s1) return;
        if (plan.Kind == GemmKind.FewCols) FewCols(plan, r0, r1, s0, s1);
        else FewRows(plan, r0, r1, s0, s1);
    }

    // ---- FewRows: D [R ≤ 16, S], one 8-row × 32-column tile at a time; each 32-column slice of B rows is read by the first
    // 8 rows from memory and by the next 8 from L1.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FewRows(in GemmPlan plan, int r0, int r1, int s0, int s1)
    {
        const int NR = GemmBlocking.NR, KC = GemmBlocking.KC;
        var buffers = GemmPackBuffers.ForCurrentThread();
        float* panel = buffers.BBlock;
        float* tile = buffers.Tile;
        for (int pc = 0; pc < plan.Depth; pc += KC)
        {
            int kc = Math.Min(KC, plan.Depth - pc);
            bool add = plan.Accumulate || pc > 0;
            for (int j = s0; j < s1; j += NR)
            {
                int cols = Math.Min(NR, s1 - j);
                float* b = plan.Q + pc * plan.Ldq + j;
                long ldb = plan.Ldq;
                if (cols < NR)
                {
                    // Column tail: a zero-padded copy, so the tile never reads past the operand.
                    for (int p = 0; p < kc; p++)
                    {
                        int c = 0;
                        for (; c < cols; c++) panel[p * NR + c] = b[p * ldb + c];
                        for (; c < NR; c++) panel[p * NR + c] = 0;
                    }
                    b = panel;
                    ldb = NR;
                }
                for (int i = r0; i < r1; i += 8)
                {
                    int rows = Math.Min(8, r1 - i);
                    float* a = plan.P + i * plan.Ldp + pc;
                    float* d = plan.D + i * plan.DRowStride + j;
                    if (cols == NR)
                    {
                        Tile8x32(a, plan.Ldp, rows, b, ldb, kc, d, plan.DRowStride, add);
                    }
                    else
                    {
                        Tile8x32(a, plan.Ldp, rows, b, ldb, kc, tile, NR, add: false);
                        for (int r = 0; r < rows; r++)
                        {
                            float* dr = d + r * plan.DRowStride;
                            float* tr = tile + r * NR;
                            if (add) for (int c = 0; c < cols; c++) dr[c] += tr[c];
                            else for (int c = 0; c < cols; c++) dr[c] = tr[c];
                        }
                    }
                }
            }
        }
    }

    /// <summary>D[rows ≤ 8, 32] = (add ? D : 0) + A[rows, kc]·B[kc, 32]; rows past <paramref name="rows"/> repeat the last row and are not stored.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile8x32(float* a, long lda, int rows, float* b, long ldb, int kc, float* d, long ldd, bool add)
    {
        float* a0 = a, a1 = a + Math.Min(1, rows - 1) * lda, a2 = a + Math.Min(2, rows - 1) * lda, a3 = a + Math.Min(3, rows - 1) * lda;
        float* a4 = a + Math.Min(4, rows - 1) * lda, a5 = a + Math.Min(5, rows - 1) * lda, a6 = a + Math.Min(6, rows - 1) * lda, a7 = a + Math.Min(7, rows - 1) * lda;
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector512<float> c20 = default, c21 = default, c30 = default, c31 = default;
        Vector512<float> c40 = default, c41 = default, c50 = default, c51 = default;
        Vector512<float> c60 = default, c61 = default, c70 = default, c71 = default;
        for (int p = 0; p < kc; p++, b += ldb)
        {
            var b0 = Vector512.Load(b);
            var b1 = Vector512.Load(b + 16);
            { var x = Vector512.Create(a0[p]); c00 = Vector512.FusedMultiplyAdd(x, b0, c00); c01 = Vector512.FusedMultiplyAdd(x, b1, c01); }
            { var x = Vector512.Create(a1[p]); c10 = Vector512.FusedMultiplyAdd(x, b0, c10); c11 = Vector512.FusedMultiplyAdd(x, b1, c11); }
            { var x = Vector512.Create(a2[p]); c20 = Vector512.FusedMultiplyAdd(x, b0, c20); c21 = Vector512.FusedMultiplyAdd(x, b1, c21); }
            { var x = Vector512.Create(a3[p]); c30 = Vector512.FusedMultiplyAdd(x, b0, c30); c31 = Vector512.FusedMultiplyAdd(x, b1, c31); }
            { var x = Vector512.Create(a4[p]); c40 = Vector512.FusedMultiplyAdd(x, b0, c40); c41 = Vector512.FusedMultiplyAdd(x, b1, c41); }
            { var x = Vector512.Create(a5[p]); c50 = Vector512.FusedMultiplyAdd(x, b0, c50); c51 = Vector512.FusedMultiplyAdd(x, b1, c51); }
            { var x = Vector512.Create(a6[p]); c60 = Vector512.FusedMultiplyAdd(x, b0, c60); c61 = Vector512.FusedMultiplyAdd(x, b1, c61); }
            { var x = Vector512.Create(a7[p]); c70 = Vector512.FusedMultiplyAdd(x, b0, c70); c71 = Vector512.FusedMultiplyAdd(x, b1, c71); }
        }
        Store(d, c00, c01, add);
        if (rows > 1) Store(d + 1 * ldd, c10, c11, add);
        if (rows > 2) Store(d + 2 * ldd, c20, c21, add);
        if (rows > 3) Store(d + 3 * ldd, c30, c31, add);
        if (rows > 4) Store(d + 4 * ldd, c40, c41, add);
        if (rows > 5) Store(d + 5 * ldd, c50, c51, add);
        if (rows > 6) Store(d + 6 * ldd, c60, c61, add);
        if (rows > 7) Store(d + 7 * ldd, c70, c71, add);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* d, Vector512<float> v0, Vector512<float> v1, bool add)
    {
        if (add)
        {
            v0 += Vector512.Load(d);
            v1 += Vector512.Load(d + 16);
        }
        v0.Store(d);
        v1.Store(d + 16);
    }

    // ---- FewCols: D = Cᵀ [R, S ≤ 16]; 8 rows of P (the weights) at a time, each accumulator one P row × the 16 columns.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void FewCols(in GemmPlan plan, int r0, int r1, int s0, int s1)
    {
        const int W = MaxSmall, KC = GemmBlocking.KC;
        int S = s1 - s0, K = plan.Depth;
        var buffers = GemmPackBuffers.ForCurrentThread();
        // Q packed [K, 16]: qt[p·16 + s] = Q(p, s0 + s), zero past S.
        float* qt = buffers.BBlock;
        for (int p = 0; p < K; p++)
        {
            int s = 0;
            for (; s < S; s++) qt[p * W + s] = plan.Q[(s0 + s) * plan.Ldq + p];
            for (; s < W; s++) qt[p * W + s] = 0;
        }
        // Running D values of an 8-row block, [8 rows, 16 columns]; written back transposed into C at the end.
        float* t = buffers.Tile;
        for (int i = r0; i < r1; i += 8)
        {
            int rows = Math.Min(8, r1 - i);
            float* d = plan.D + i * plan.DRowStride + s0 * plan.DColStride;
            if (plan.Accumulate)
            {
                for (int r = 0; r < rows; r++)
                    for (int s = 0; s < S; s++) t[r * W + s] = d[r * plan.DRowStride + s * plan.DColStride];
            }
            for (int pc = 0; pc < K; pc += KC)
                Tile8x16(plan.P + i * plan.Ldp + pc, plan.Ldp, rows, qt + pc * W, Math.Min(KC, K - pc), t, add: plan.Accumulate || pc > 0);
            for (int r = 0; r < rows; r++)
                for (int s = 0; s < S; s++) d[r * plan.DRowStride + s * plan.DColStride] = t[r * W + s];
        }
    }

    /// <summary>
    /// T[rows ≤ 8, 16] = (add ? T : 0) + P[rows, kc]·Q[kc, 16]; rows past <paramref name="rows"/> repeat the last and are not
    /// stored. Eight rows, not more: their eight pointers, the loop state and Q's pointer still fit the general registers.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile8x16(float* p, long ldp, int rows, float* q, int kc, float* t, bool add)
    {
        int last = rows - 1;
        float* p0 = p, p1 = p + Math.Min(1, last) * ldp, p2 = p + Math.Min(2, last) * ldp, p3 = p + Math.Min(3, last) * ldp;
        float* p4 = p + Math.Min(4, last) * ldp, p5 = p + Math.Min(5, last) * ldp, p6 = p + Math.Min(6, last) * ldp, p7 = p + Math.Min(7, last) * ldp;
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
        for (int k = 0; k < kc; k++)
        {
            var qk = Vector512.Load(q + k * MaxSmall);
            c0 = Vector512.FusedMultiplyAdd(Vector512.Create(p0[k]), qk, c0);
            c1 = Vector512.FusedMultiplyAdd(Vector512.Create(p1[k]), qk, c1);
            c2 = Vector512.FusedMultiplyAdd(Vector512.Create(p2[k]), qk, c2);
            c3 = Vector512.FusedMultiplyAdd(Vector512.Create(p3[k]), qk, c3);
            c4 = Vector512.FusedMultiplyAdd(Vector512.Create(p4[k]), qk, c4);
            c5 = Vector512.FusedMultiplyAdd(Vector512.Create(p5[k]), qk, c5);
            c6 = Vector512.FusedMultiplyAdd(Vector512.Create(p6[k]), qk, c6);
            c7 = Vector512.FusedMultiplyAdd(Vector512.Create(p7[k]), qk, c7);
        }
        Store16(t, 0, rows, c0, add);
        Store16(t, 1, rows, c1, add);
        Store16(t, 2, rows, c2, add);
        Store16(t, 3, rows, c3, add);
        Store16(t, 4, rows, c4, add);
        Store16(t, 5, rows, c5, add);
        Store16(t, 6, rows, c6, add);
        Store16(t, 7, rows, c7, add);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store16(float* t, int row, int rows, Vector512<float> v, bool add)
    {
        if (row >= rows) return;
        float* at = t + row * MaxSmall;
        if (add) v += Vector512.Load(at);
        v.Store(at);
    }
}
