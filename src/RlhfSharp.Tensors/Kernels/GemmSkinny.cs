// A GEMM tile for form NT with at most 16 rows of A — the tied LM head while decoding, where a batch of 16 hidden states
// meets the 50,257 rows of wte. The blocked driver would copy every wte row into a packed panel only to read it once, and
// fill half of each 32-wide tile with padding; this tile reads wte where it lies and is exactly 16 columns wide.
// Every element is the same FMA sequence as in GemmBlocked — a chain from zero over each KC depth slice, added to the
// running value of D — so the bits equal the blocked path's (tests compare both), whatever the thread split.
// (The same idea for form NN — weights [K, N] read in place by 16 rows — measured slower than packing: each depth step
// then loads from a new page, so it is not used.)
//
// Weights held as bfloat16 (GemmPlan.PBf16, from Gemm.MultiplyBf16) are widened exactly as the tile broadcasts them:
// the 32 bits ending with the weight are broadcast and ANDed with 0xFFFF0000 (Tile8x16Bf16): the same float32 values,
// so the same bits as on the widened weights. (An earlier tile widened each weight by a shift and a move per FMA and took
// more CPU than float32; the next widened 8 rows × 256 into the A panel first, 1.28× float32's CPU on the head in a
// one-thread A/B; the AND form measured 0.92–0.94× float32 in a scratch tile A/B.)
//
//   FewCols (form NT, M ≤ 16, M < N): D = Cᵀ [N, M] = B·Aᵀ;  P = B rows [N, K] (the weights), read in place;
//            Q(p, s) = A[s, p], packed once per call into [K, 16] so one Vector512 holds the 16 columns of a depth p.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace RlhfSharp.Tensors.Kernels;

/// <summary>Which driver runs a plan.</summary>
internal enum GemmKind : byte
{
    Blocked,
    FewCols,
}

internal static unsafe class GemmSkinny
{
    /// <summary>The most columns of D (rows of A) the FewCols tile takes.</summary>
    public const int MaxSmall = 16;

    /// <summary>Depth the FewCols pack of Q holds in a thread's B block (KC·NC floats).</summary>
    public const int MaxFewColsDepth = GemmBlocking.KC * GemmBlocking.NC / MaxSmall;

    /// <summary>Use the skinny tile where it applies; tests switch this off to compare against the blocked path's bits.</summary>
    internal static volatile bool Enabled = true;

    /// <summary>Which driver suits a product: FewCols only with the Vector512 tile, for the shape named above.</summary>
    public static GemmKind Choose(GemmForm form, int m, int n, int k)
    {
        if (!Enabled || !GemmBlocked.UseVector512 || m > MaxSmall || k == 0) return GemmKind.Blocked;
        if (form == GemmForm.NT && m < n && k <= MaxFewColsDepth) return GemmKind.FewCols;
        return GemmKind.Blocked;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunPart(in GemmPlan plan, int r0, int r1, int s0, int s1)
    {
        if (r0 >= r1 || s0 >= s1) return;
        FewCols(plan, r0, r1, s0, s1);
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
            {
                int kc = Math.Min(KC, K - pc);
                if (plan.PBf16 != null)
                {
                    Tile8x16Bf16(plan.PBf16 + i * plan.Ldp + pc, plan.Ldp, rows, qt + pc * W, kc, t, add: plan.Accumulate || pc > 0);
                }
                else
                {
                    Tile8x16(plan.P + i * plan.Ldp + pc, plan.Ldp, rows, qt + pc * W, kc, t, add: plan.Accumulate || pc > 0);
                }
            }
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

    /// <summary>
    /// Tile8x16 on bfloat16 weights, widened as they are broadcast: the 32 bits that end with weight k (it and the weight
    /// before it) are broadcast and their low half masked off, which leaves exactly ToFloat(weight k) — one AND beside
    /// each FMA, no widened copy. The first depth step reads no weight before the slice (its row's start may be the
    /// matrix's), so it is peeled and widened alone. Same values, same FMA chains: the bits of Tile8x16 on widened weights.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile8x16Bf16(ushort* p, long ldp, int rows, float* q, int kc, float* t, bool add)
    {
        int last = rows - 1;
        ushort* p0 = p, p1 = p + Math.Min(1, last) * ldp, p2 = p + Math.Min(2, last) * ldp, p3 = p + Math.Min(3, last) * ldp;
        ushort* p4 = p + Math.Min(4, last) * ldp, p5 = p + Math.Min(5, last) * ldp, p6 = p + Math.Min(6, last) * ldp, p7 = p + Math.Min(7, last) * ldp;
        var q0 = Vector512.Load(q);
        var c0 = Vector512.FusedMultiplyAdd(Vector512.Create(BFloat16.ToFloat(*p0)), q0, Vector512<float>.Zero);
        var c1 = Vector512.FusedMultiplyAdd(Vector512.Create(BFloat16.ToFloat(*p1)), q0, Vector512<float>.Zero);
        var c2 = Vector512.FusedMultiplyAdd(Vector512.Create(BFloat16.ToFloat(*p2)), q0, Vector512<float>.Zero);
        var c3 = Vector512.FusedMultiplyAdd(Vector512.Create(BFloat16.ToFloat(*p3)), q0, Vector512<float>.Zero);
        var c4 = Vector512.FusedMultiplyAdd(Vector512.Create(BFloat16.ToFloat(*p4)), q0, Vector512<float>.Zero);
        var c5 = Vector512.FusedMultiplyAdd(Vector512.Create(BFloat16.ToFloat(*p5)), q0, Vector512<float>.Zero);
        var c6 = Vector512.FusedMultiplyAdd(Vector512.Create(BFloat16.ToFloat(*p6)), q0, Vector512<float>.Zero);
        var c7 = Vector512.FusedMultiplyAdd(Vector512.Create(BFloat16.ToFloat(*p7)), q0, Vector512<float>.Zero);
        var high = Vector512.Create(0xFFFF0000u);
        // From here p_r + k − 1 is weight k − 1 of the same row, so the 32-bit read stays inside the slice.
        for (int k = 1; k < kc; k++)
        {
            var qk = Vector512.Load(q + k * MaxSmall);
            c0 = Vector512.FusedMultiplyAdd((Vector512.Create(*(uint*)(p0 + k - 1)) & high).AsSingle(), qk, c0);
            c1 = Vector512.FusedMultiplyAdd((Vector512.Create(*(uint*)(p1 + k - 1)) & high).AsSingle(), qk, c1);
            c2 = Vector512.FusedMultiplyAdd((Vector512.Create(*(uint*)(p2 + k - 1)) & high).AsSingle(), qk, c2);
            c3 = Vector512.FusedMultiplyAdd((Vector512.Create(*(uint*)(p3 + k - 1)) & high).AsSingle(), qk, c3);
            c4 = Vector512.FusedMultiplyAdd((Vector512.Create(*(uint*)(p4 + k - 1)) & high).AsSingle(), qk, c4);
            c5 = Vector512.FusedMultiplyAdd((Vector512.Create(*(uint*)(p5 + k - 1)) & high).AsSingle(), qk, c5);
            c6 = Vector512.FusedMultiplyAdd((Vector512.Create(*(uint*)(p6 + k - 1)) & high).AsSingle(), qk, c6);
            c7 = Vector512.FusedMultiplyAdd((Vector512.Create(*(uint*)(p7 + k - 1)) & high).AsSingle(), qk, c7);
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
