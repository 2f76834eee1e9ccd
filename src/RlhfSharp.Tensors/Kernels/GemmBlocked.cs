// The blocked GEMM driver behind Gemm.Multiply: packing, cache blocking, and a fixed split over threads.
// It computes D (+)= P·Q, where D is C itself or Cᵀ (form NT with few rows, see GemmPlan.Create), then hands
// 12×32 register tiles to GemmTile.
//
// Shapes: D is [R, S] (R rows, S columns), P is [R, K], Q is [K, S]. Loops, outermost first:
//   pc over K in steps of KC     — one packed depth slice
//   jc over S in steps of NC     — one packed B block (KC×NC, lives in L2), packed panel by panel on first use
//                                  (or all at once, row by row, for a part of at most 16 rows: see PackBRows)
//   ic over R in steps of MR     — one packed A panel (MR×KC, lives in L1), packed just before use
//   jr over the block by NR      — one register tile
// Every element of D is a sum over k in increasing order with the same FMA sequence whatever the tile
// position or the thread split, so results are bit-identical for any thread count.
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace RlhfSharp.Tensors.Kernels;

/// <summary>Tile and block sizes (floats), chosen for 48 KiB L1d and 2 MiB L2 per core.</summary>
internal static class GemmBlocking
{
    /// <summary>Rows of a register tile.</summary>
    public const int MR = 12;
    /// <summary>Columns of a register tile: two Vector512&lt;float&gt;.</summary>
    public const int NR = 32;
    /// <summary>Depth of a packed slice, and the fixed row stride of a packed A panel (12×256 floats = 12 KiB).</summary>
    public const int KC = 256;
    /// <summary>Columns of a packed B block (256×1024 floats = 1 MiB, half of L2).</summary>
    public const int NC = 1024;
    /// <summary>Rows of the tile scratch: MR rounded up to whole 8×8 transpose blocks.</summary>
    public const int TileRows = 16;
    /// <summary>Below this many multiply-adds per thread (about 30 µs of work) a split costs more in hand-off than it saves.</summary>
    public const long MinMultiplyAddsPerThread = 1 << 21;
}

/// <summary>One product D (+)= P·Q in the driver's terms, with element addressing for each operand.</summary>
internal unsafe struct GemmPlan
{
    /// <summary>Rows (R), columns (S) and depth (K) of the product.</summary>
    public int Rows, Cols, Depth;
    /// <summary>P(r, p) is P[r·Ldp + p], or P[p·Ldp + r] when PByColumns.</summary>
    public float* P;
    public long Ldp;
    public bool PByColumns;
    /// <summary>Q(p, s) is Q[p·Ldq + s], or Q[s·Ldq + p] when QByColumns.</summary>
    public float* Q;
    public long Ldq;
    public bool QByColumns;
    /// <summary>D(r, s) is D[r·DRowStride + s·DColStride]; DColStride is 1 unless D is Cᵀ.</summary>
    public float* D;
    public long DRowStride, DColStride;
    /// <summary>When not null, P (PBf16) or Q (QBf16) is held as bfloat16 bits at the same addressing, widened while packing.</summary>
    public ushort* PBf16, QBf16;
    /// <summary>Add to D instead of overwriting it.</summary>
    public bool Accumulate;
    /// <summary>The blocked driver, or GemmSkinny's tile for a side of at most 16.</summary>
    public GemmKind Kind;

    /// <summary>Maps a public call onto the driver: which operand is broadcast, which is vector-loaded, and whether D is C or Cᵀ.</summary>
    public static GemmPlan Create(GemmForm form, int m, int n, int k, float* a, long lda, float* b, long ldb, float* c, long ldc, bool accumulate,
        bool weightsAsP = false)
    {
        var plan = new GemmPlan { Depth = k, Accumulate = accumulate, Kind = GemmSkinny.Choose(form, m, n, k) };
        bool transposed = weightsAsP || plan.Kind == GemmKind.FewCols || m <= TransposedNtMaxRows;
        switch (form)
        {
            case GemmForm.NN:
                plan.SetOperands(m, n, a, lda, false, b, ldb, false, c, ldc, 1);
                break;
            case GemmForm.TN:
                plan.SetOperands(m, n, a, lda, true, b, ldb, false, c, ldc, 1);
                break;
            case GemmForm.NT when m < n && m <= 256 && transposed:
                // Cᵀ = B·Aᵀ: B's rows pack by copying and only the small A needs a transposing pack (see TransposedNtMaxRows).
                plan.SetOperands(n, m, b, ldb, false, a, lda, true, c, 1, ldc);
                break;
            case GemmForm.NT:
                plan.SetOperands(m, n, a, lda, false, b, ldb, true, c, ldc, 1);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(form), form, "gemm: unknown form.");
        }
        return plan;
    }

    /// <summary>
    /// As <see cref="Create"/> with B held as bfloat16: form NN (B [K, N] becomes Q, packed whole block by whole block) or
    /// form NT with m &lt; n and m ≤ 256 (B [N, K] becomes P, the weights the skinny tile or the A panels read).
    /// </summary>
    public static GemmPlan CreateBf16(GemmForm form, int m, int n, int k, float* a, long lda, ushort* b, long ldb, float* c, long ldc, bool accumulate)
    {
        if (!Gemm.SupportsBf16(form, m, n))
            throw new ArgumentException($"gemm bf16: form {form} with M={m}, N={n} is not supported (NN, or NT with M < N and M ≤ 256).");
        var plan = Create(form, m, n, k, a, lda, null, ldb, c, ldc, accumulate, weightsAsP: true);
        if (form == GemmForm.NN) plan.QBf16 = b;
        else plan.PBf16 = b;
        return plan;
    }

    /// <summary>
    /// Form NT with M &lt; N takes the Cᵀ mapping (B's rows as P, D = Cᵀ) only up to this many rows of A, in float32. The Cᵀ
    /// mapping copies B without transposing it, but merges every tile into D through a transpose and reuses each packed
    /// panel of B for only M/32 tiles; from 64 rows the plain mapping (B transposed into panels once per block, then
    /// reused by M/12 panels of A) measured faster: 1-thread CPU-time GFLOP/s (`rlhf bench gemm --cpu-time`, five A/B
    /// rounds at load 31–46), medians Cᵀ → plain: 256×768×3072 151 → 166, 256×768×50257 146 → 160, 256×3072×768 169 → 168,
    /// 64×768×3072 111 → 136 (three rounds). Same bits either way (each element the same FMAs over k in the same order).
    /// BF16 weights and the skinny tile always take the Cᵀ mapping. Tests lower and raise it to compare both mappings.
    /// </summary>
    internal static volatile int TransposedNtMaxRows = 63;

    private void SetOperands(int rows, int cols, float* p, long ldp, bool pByColumns, float* q, long ldq, bool qByColumns,
        float* d, long dRowStride, long dColStride)
    {
        Rows = rows;
        Cols = cols;
        P = p;
        Ldp = ldp;
        PByColumns = pByColumns;
        Q = q;
        Ldq = ldq;
        QByColumns = qByColumns;
        D = d;
        DRowStride = dRowStride;
        DColStride = dColStride;
    }

    /// <summary>
    /// Fixed split into <paramref name="parts"/> rectangles: along R in multiples of 4 rows when R is large,
    /// else along S in multiples of NR columns. Depends only on the shape and the thread count.
    /// </summary>
    public readonly (int R0, int R1, int S0, int S1) Part(int part, int parts)
    {
        if (SplitsRows(parts))
        {
            int quads = (Rows + 3) / 4;
            int r0 = Math.Min(Rows, (int)((long)quads * part / parts) * 4);
            int r1 = Math.Min(Rows, (int)((long)quads * (part + 1) / parts) * 4);
            return (r0, r1, 0, Cols);
        }
        int panels = (Cols + GemmBlocking.NR - 1) / GemmBlocking.NR;
        int s0 = Math.Min(Cols, (int)((long)panels * part / parts) * GemmBlocking.NR);
        int s1 = Math.Min(Cols, (int)((long)panels * (part + 1) / parts) * GemmBlocking.NR);
        return (0, Rows, s0, s1);
    }

    /// <summary>
    /// Each thread packs all of the operand along the dimension it does not split, so split where the packing
    /// per thread is smaller: by rows, each packs all of Q (K×S) and its share of P once per NC block; by
    /// columns, its share of Q and all of P as often. Transposing and strided packs count extra.
    /// </summary>
    private readonly bool SplitsRows(int parts)
    {
        bool rowsPossible = Rows >= 4 * parts, colsPossible = Cols >= GemmBlocking.NR * parts;
        if (!colsPossible) return true;
        if (!rowsPossible) return false;
        // The skinny tile packs nothing big: split the long side, so each thread streams its own share of the weights.
        if (Kind == GemmKind.FewCols) return true;
        double q = QByColumns ? 2.0 : 1.0, p = PByColumns ? 1.5 : 1.0;
        double k = Depth;
        double byRows = k * Cols * q + k * Rows / parts * p * Blocks(Cols);
        double byCols = k * Cols / parts * q + k * Rows * p * Blocks((Cols + parts - 1) / parts);
        return byRows <= byCols;

        static int Blocks(int cols) => (cols + GemmBlocking.NC - 1) / GemmBlocking.NC;
    }
}

/// <summary>Runs one rectangle of a plan on the calling thread, with that thread's packing buffers.</summary>
internal static unsafe class GemmBlocked
{
    /// <summary>
    /// Use the Vector512 tile (else the Vector256 one). Both run the same FMA sequence per element, so they
    /// give the same bits; tests switch this off to cover the AVX2 path on an AVX-512 machine.
    /// </summary>
    internal static volatile bool UseVector512 = Vector512.IsHardwareAccelerated;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RunPart(in GemmPlan plan, int r0, int r1, int s0, int s1)
    {
        if (r0 >= r1 || s0 >= s1) return;
        if (plan.Depth == 0)
        {
            if (!plan.Accumulate) ClearD(plan, r0, r1, s0, s1);
            return;
        }
        if (plan.PByColumns) RunPart<InterleavedLayout>(plan, r0, r1, s0, s1);
        else RunPart<RowPanelLayout>(plan, r0, r1, s0, s1);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RunPart<TLayout>(in GemmPlan plan, int r0, int r1, int s0, int s1)
        where TLayout : struct, IPanelLayout
    {
        const int NR = GemmBlocking.NR, KC = GemmBlocking.KC, NC = GemmBlocking.NC;
        var buffers = GemmPackBuffers.ForCurrentThread();
        float* aPanel = buffers.APanel;
        float* bBlock = buffers.BBlock;
        float* tile = buffers.Tile;
        bool wide = UseVector512;
        bool dContiguous = plan.DColStride == 1;

        for (int pc = 0; pc < plan.Depth; pc += KC)
        {
            int kc = Math.Min(KC, plan.Depth - pc);
            bool add = plan.Accumulate || pc > 0;
            for (int jc = s0; jc < s1; jc += NC)
            {
                int nc = Math.Min(NC, s1 - jc);
                // A part with few rows reads each packed panel only once or twice, so packing is most of its memory
                // traffic: pack the whole block row by row, reading each row of B along nc contiguous columns (pages the
                // prefetcher follows) instead of 32 columns at a time down a stride of ldb. Measured on 16-row decode
                // products with cold weights: 10–20% less CPU time where nc ≥ 1024, the same at nc = 384.
                // BF16 Q always packs this way: its panels are widened row by row (PackBRows).
                bool wholeBlock = (r1 - r0 <= WholeBlockMaxRows || plan.QBf16 != null) && !plan.QByColumns;
                if (wholeBlock) PackBRows(plan, pc, kc, jc, nc, bBlock);
                int rows;
                for (int ic = r0; ic < r1; ic += rows)
                {
                    int remaining = r1 - ic;
                    // Tile heights 12, 8 or 4; 16 remaining rows go as 8+8 rather than 12+4.
                    int kernelRows = remaining > 8 && remaining != 16 ? 12 : remaining > 4 ? 8 : 4;
                    rows = Math.Min(kernelRows, remaining);
                    PackA(plan, ic, rows, pc, kc, aPanel);
                    for (int jr = 0; jr < nc; jr += NR)
                    {
                        int cols = Math.Min(NR, nc - jr);
                        float* bPanel = bBlock + (long)(jr / NR) * KC * NR;
                        if (ic == r0 && !wholeBlock) PackB(plan, pc, kc, jc + jr, cols, bPanel);

                        float* d = plan.D + ic * plan.DRowStride + (jc + jr) * plan.DColStride;
                        bool direct = dContiguous && cols == NR && rows == kernelRows;
                        float* target = direct ? d : tile;
                        long ldt = direct ? plan.DRowStride : NR;
                        bool addInTile = direct && add;
                        if (wide)
                        {
                            if (kernelRows == 12) GemmTile.Tile<TLayout, Rows12>(aPanel, bPanel, kc, target, ldt, addInTile);
                            else if (kernelRows == 8) GemmTile.Tile<TLayout, Rows8>(aPanel, bPanel, kc, target, ldt, addInTile);
                            else GemmTile.Tile<TLayout, Rows4>(aPanel, bPanel, kc, target, ldt, addInTile);
                        }
                        else
                        {
                            GemmTile.Tile256<TLayout>(aPanel, bPanel, kc, kernelRows, target, ldt, addInTile);
                        }
                        if (!direct) MergeTile(tile, rows, cols, d, plan.DRowStride, plan.DColStride, add);
                    }
                }
            }
        }
    }

    private const int PrefetchRowsAhead = 16;

    /// <summary>Parts with at most this many rows pack whole B blocks row by row (decoding: a batch of token rows).</summary>
    private const int WholeBlockMaxRows = 16;

    /// <summary>Copies depth [pc, pc+kc) × columns [s, s+nc) of a row-major Q into the block's [kc, NR] panels, one source row at a time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackBRows(in GemmPlan plan, int pc, int kc, int s, int nc, float* block)
    {
        const int NR = GemmBlocking.NR, KC = GemmBlocking.KC;
        int full = nc / NR * NR;
        if (plan.QBf16 != null)
        {
            PackBRowsBf16(plan, pc, kc, s, nc, block);
            return;
        }
        for (int p = 0; p < kc; p++)
        {
            float* row = plan.Q + (pc + p) * plan.Ldq + s;
            float* dst = block + p * NR;
            for (int j = 0; j < full; j += NR, dst += KC * NR)
            {
                Vector256.Load(row + j).Store(dst);
                Vector256.Load(row + j + 8).Store(dst + 8);
                Vector256.Load(row + j + 16).Store(dst + 16);
                Vector256.Load(row + j + 24).Store(dst + 24);
            }
            if (full < nc)
            {
                int j = 0;
                for (; j < nc - full; j++) dst[j] = row[full + j];
                for (; j < NR; j++) dst[j] = 0;
            }
        }
    }

    /// <summary>
    /// PackBRows for a bfloat16 Q: each 32-column run of a source row (64 bytes, one cache line when aligned) widened
    /// exactly (bits &lt;&lt; 16) into its panel row, so the panels hold the float32 values of the widened weights.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackBRowsBf16(in GemmPlan plan, int pc, int kc, int s, int nc, float* block)
    {
        const int NR = GemmBlocking.NR, KC = GemmBlocking.KC;
        int full = nc / NR * NR;
        bool wide = Vector512.IsHardwareAccelerated;
        for (int p = 0; p < kc; p++)
        {
            ushort* row = plan.QBf16 + (pc + p) * plan.Ldq + s;
            uint* dst = (uint*)(block + p * NR);
            for (int j = 0; j < full; j += NR, dst += KC * NR)
            {
                if (wide)
                {
                    var (lo, hi) = Vector512.Widen(Vector512.Load(row + j));
                    (lo << 16).Store(dst);
                    (hi << 16).Store(dst + 16);
                }
                else
                {
                    var (lo, hi) = Vector256.Widen(Vector256.Load(row + j));
                    (lo << 16).Store(dst);
                    (hi << 16).Store(dst + 8);
                    (lo, hi) = Vector256.Widen(Vector256.Load(row + j + 16));
                    (lo << 16).Store(dst + 16);
                    (hi << 16).Store(dst + 24);
                }
            }
            if (full < nc)
            {
                int j = 0;
                for (; j < nc - full; j++) dst[j] = (uint)row[full + j] << 16;
                for (; j < NR; j++) dst[j] = 0;
            }
        }
    }

    /// <summary>Copies rows [r, r+rows) × depth [pc, pc+kc) of P into the panel layout the tile reads.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackA(in GemmPlan plan, int r, int rows, int pc, int kc, float* panel)
    {
        const int MR = GemmBlocking.MR, KC = GemmBlocking.KC;
        if (plan.PBf16 != null)
        {
            // BF16 weights as P (form NT): rows are plan rows, never interleaved (CreateBf16); widened exactly.
            for (int i = 0; i < rows; i++)
                BFloat16.Widen(new ReadOnlySpan<ushort>(plan.PBf16 + (r + i) * plan.Ldp + pc, kc), new Span<float>(panel + i * KC, kc));
            return;
        }
        if (!plan.PByColumns)
        {
            // Row panels at the fixed stride KC: one contiguous copy per row (inline: a call per row costs
            // more than the copy on small products).
            for (int i = 0; i < rows; i++)
            {
                float* src = plan.P + (r + i) * plan.Ldp + pc;
                float* dst = panel + i * KC;
                int p = 0;
                for (; p + 16 <= kc; p += 16)
                {
                    Vector256.Load(src + p).Store(dst + p);
                    Vector256.Load(src + p + 8).Store(dst + p + 8);
                }
                for (; p < kc; p++) dst[p] = src[p];
            }
            return;
        }
        // Interleaved: the MR values of one k are contiguous in the [K, R] source too.
        float* col = plan.P + pc * plan.Ldp + r;
        if (rows == MR)
        {
            // Rows of the source are a whole stride apart, beyond what the hardware prefetchers follow: fetch ahead,
            // into L2 because strides of 4 KiB put every row in the same L1 set.
            long ahead = PrefetchRowsAhead * plan.Ldp;
            for (int p = 0; p < kc; p++, col += plan.Ldp)
            {
                if (Sse.IsSupported)
                {
                    Sse.Prefetch1(col + ahead);
                    Sse.Prefetch1(col + ahead + MR - 1);
                }
                Vector256.Load(col).Store(panel + p * MR);
                Vector128.Load(col + 8).Store(panel + p * MR + 8);
            }
            return;
        }
        for (int p = 0; p < kc; p++, col += plan.Ldp)
        {
            for (int i = 0; i < rows; i++) panel[p * MR + i] = col[i];
        }
    }

    /// <summary>Copies depth [pc, pc+kc) × columns [s, s+cols) of Q into a [kc, NR] panel, zero-filling missing columns.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PackB(in GemmPlan plan, int pc, int kc, int s, int cols, float* panel)
    {
        const int NR = GemmBlocking.NR;
        if (!plan.QByColumns)
        {
            float* row = plan.Q + pc * plan.Ldq + s;
            if (cols == NR)
            {
                for (int p = 0; p < kc; p++, row += plan.Ldq)
                {
                    Vector256.Load(row).Store(panel + p * NR);
                    Vector256.Load(row + 8).Store(panel + p * NR + 8);
                    Vector256.Load(row + 16).Store(panel + p * NR + 16);
                    Vector256.Load(row + 24).Store(panel + p * NR + 24);
                }
                return;
            }
            for (int p = 0; p < kc; p++, row += plan.Ldq)
            {
                int j = 0;
                for (; j < cols; j++) panel[p * NR + j] = row[j];
                for (; j < NR; j++) panel[p * NR + j] = 0;
            }
            return;
        }
        // Q stored [S, K]: a transposing pack of a [cols, kc] block into the [kc, NR] panel.
        GemmTranspose.Copy(plan.Q + s * plan.Ldq + pc, plan.Ldq, panel, NR, cols, kc);
        for (int j = cols; j < NR; j++)
        {
            for (int p = 0; p < kc; p++) panel[p * NR + j] = 0;
        }
    }

    /// <summary>Writes the valid part of a [MR, NR] tile into D (strided, possibly transposed), adding when asked.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void MergeTile(float* tile, int rows, int cols, float* d, long rowStride, long colStride, bool add)
    {
        const int NR = GemmBlocking.NR;
        if (colStride == 1)
        {
            for (int i = 0; i < rows; i++)
            {
                float* dr = d + i * rowStride;
                float* tr = tile + i * NR;
                if (add) for (int j = 0; j < cols; j++) dr[j] += tr[j];
                else for (int j = 0; j < cols; j++) dr[j] = tr[j];
            }
            return;
        }
        // D is Cᵀ: transpose the tile so that each of C's rows (D's columns) is one contiguous run.
        float* flipped = tile + GemmBlocking.TileRows * NR;
        GemmTranspose.Copy(tile, NR, flipped, GemmBlocking.TileRows, GemmBlocking.TileRows, cols);
        for (int j = 0; j < cols; j++)
        {
            float* dc = d + j * colStride;
            float* tc = flipped + j * GemmBlocking.TileRows;
            int i = 0;
            if (add)
            {
                for (; i + 4 <= rows; i += 4) (Vector128.Load(dc + i) + Vector128.Load(tc + i)).Store(dc + i);
                for (; i < rows; i++) dc[i] += tc[i];
            }
            else
            {
                for (; i + 4 <= rows; i += 4) Vector128.Load(tc + i).Store(dc + i);
                for (; i < rows; i++) dc[i] = tc[i];
            }
        }
    }

    private static void ClearD(in GemmPlan plan, int r0, int r1, int s0, int s1)
    {
        for (int r = r0; r < r1; r++)
        {
            for (int s = s0; s < s1; s++) plan.D[r * plan.DRowStride + s * plan.DColStride] = 0;
        }
    }
}

/// <summary>
/// One thread's packing buffers: 64-byte-aligned native memory allocated once per thread, so the hot path
/// never allocates. Freed by the finalizer when the thread (and with it this object) goes away.
/// </summary>
internal sealed unsafe class GemmPackBuffers
{
    [ThreadStatic] private static GemmPackBuffers? _current;

    public readonly float* APanel;
    public readonly float* BBlock;
    public readonly float* Tile;
    private readonly void* _memory;

    private GemmPackBuffers()
    {
        const long aFloats = (long)GemmBlocking.MR * GemmBlocking.KC;
        const long bFloats = (long)GemmBlocking.KC * GemmBlocking.NC;
        // The tile scratch and its transpose (used when D is Cᵀ).
        const long tileFloats = 2L * GemmBlocking.TileRows * GemmBlocking.NR;
        nuint bytes = (nuint)((aFloats + bFloats + tileFloats) * sizeof(float));
        _memory = NativeMemory.AlignedAlloc(bytes, 64);
        // Zeroed once so the unused rows of an edge panel never hold denormals or NaN.
        NativeMemory.Clear(_memory, bytes);
        APanel = (float*)_memory;
        BBlock = APanel + aFloats;
        Tile = BBlock + bFloats;
    }

    public static GemmPackBuffers ForCurrentThread() => _current ??= new GemmPackBuffers();

    ~GemmPackBuffers() => NativeMemory.AlignedFree(_memory);
}
