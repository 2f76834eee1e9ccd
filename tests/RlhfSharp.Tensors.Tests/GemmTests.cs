// Gemm.Multiply against GemmReference: every form, accumulate on and off, every size 1..257 in each of
// M, N and K (so every row, column and depth tail of the 12×32 tile and the 256 depth slice is hit),
// strided operands, 1 and 2 threads, and bit-identical repeats.
using RlhfSharp.Tensors.Kernels;

namespace RlhfSharp.Tensors.Tests;

// Two tests flip process-wide kernel switches (the Vector512 tile, the skinny tile): the class runs alone.
[Collection(ProcessWideSettings.Name)]
public sealed unsafe class GemmTests
{
    private static readonly GemmForm[] Forms = [GemmForm.NN, GemmForm.NT, GemmForm.TN];

    /// <summary>Operands of one product, stored with leading dimensions larger than their rows and a sentinel in the gaps.</summary>
    private sealed class Case
    {
        public const float Sentinel = 12345.5f;
        public readonly GemmForm Form;
        public readonly int M, N, K, Lda, Ldb, Ldc;
        public readonly bool Accumulate;
        public readonly float[] A, B, C0;

        public Case(GemmForm form, int m, int n, int k, bool accumulate, Rng rng, int pad = 3)
        {
            (Form, M, N, K, Accumulate) = (form, m, n, k, accumulate);
            (int aRows, int aCols) = form == GemmForm.TN ? (k, m) : (m, k);
            (int bRows, int bCols) = form == GemmForm.NT ? (n, k) : (k, n);
            Lda = aCols + pad;
            Ldb = bCols + pad + 1;
            Ldc = n + pad + 2;
            A = Fill(aRows, aCols, Lda, rng);
            B = Fill(bRows, bCols, Ldb, rng);
            C0 = Fill(m, n, Ldc, rng);
        }

        private static float[] Fill(int rows, int cols, int ld, Rng rng)
        {
            var x = new float[rows * ld];
            Array.Fill(x, Sentinel);
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++) x[r * ld + c] = (float)rng.Uniform(-1, 1);
            return x;
        }

        public float[] RunOurs(int threads)
        {
            var c = (float[])C0.Clone();
            fixed (float* pa = A, pb = B, pc = c)
            {
                // Split threshold 0: even a 1×1×1 product is split over the threads asked for.
                Gemm.MultiplyCore(Form, M, N, K, pa, Lda, pb, Ldb, pc, Ldc, Accumulate, threads, minMultiplyAddsPerThread: 0);
            }
            return c;
        }

        public float[] RunReference()
        {
            var c = (float[])C0.Clone();
            fixed (float* pa = A, pb = B, pc = c)
            {
                GemmReference.Multiply(Form, M, N, K, pa, Lda, pb, Ldb, pc, Ldc, Accumulate);
            }
            return c;
        }

        /// <summary>Σ_p |a_ip||b_pj| (+ |c0_ij| when accumulating): the scale a float32 rounding error is measured in.</summary>
        public double Magnitude(int i, int j)
        {
            double s = Accumulate ? Math.Abs(C0[i * Ldc + j]) : 0;
            for (int p = 0; p < K; p++)
            {
                float av = Form == GemmForm.TN ? A[p * Lda + i] : A[i * Lda + p];
                float bv = Form == GemmForm.NT ? B[j * Ldb + p] : B[p * Ldb + j];
                s += Math.Abs((double)av * bv);
            }
            return s;
        }

        public string Name => $"{Form} M={M} N={N} K={K} accumulate={Accumulate}";
    }

    /// <summary>
    /// Runs ours with 1 and 2 threads and checks both against the reference and each other; with
    /// <paramref name="repeat"/>, runs each again and requires the same bits.
    /// </summary>
    private static void Check(Case tc, bool repeat = true)
    {
        var expected = tc.RunReference();
        var one = tc.RunOurs(1);
        var two = tc.RunOurs(2);
        if (repeat)
        {
            Assert.True(one.AsSpan().SequenceEqual(tc.RunOurs(1)), $"{tc.Name}: 1-thread result changed on a repeat run");
            Assert.True(two.AsSpan().SequenceEqual(tc.RunOurs(2)), $"{tc.Name}: 2-thread result changed on a repeat run");
        }
        // Every element is the same FMA sequence whatever the split, so the thread count cannot change the bits.
        Assert.True(one.AsSpan().SequenceEqual(two), $"{tc.Name}: 1 and 2 threads differ");

        // float32 accumulation of K terms: |error| ≤ K·u·Σ|a||b| (u = 2⁻²⁴); allow twice that plus the final rounding.
        double u = Math.Pow(2, -24);
        for (int i = 0; i < tc.M; i++)
        {
            for (int j = 0; j < tc.Ldc; j++)
            {
                int at = i * tc.Ldc + j;
                if (j >= tc.N)
                {
                    if (one[at] != Case.Sentinel) Assert.Fail($"{tc.Name}: wrote C[{i},{j}] outside the {tc.N} columns");
                    continue;
                }
                double tolerance = 2 * (tc.K + 2) * u * tc.Magnitude(i, j) + 1e-30;
                double error = Math.Abs((double)one[at] - expected[at]);
                if (!(error <= tolerance))
                    Assert.Fail($"{tc.Name}: C[{i},{j}] = {one[at]} but reference {expected[at]} (error {error:g3} > {tolerance:g3})");
            }
        }
    }

    [Theory]
    [InlineData(GemmForm.NN)]
    [InlineData(GemmForm.NT)]
    [InlineData(GemmForm.TN)]
    public void EveryMFrom1To257MatchesReference(GemmForm form)
    {
        var rng = new Rng(100 + (ulong)form);
        for (int m = 1; m <= 257; m++) Check(new Case(form, m, 37, 29, accumulate: m % 2 == 0, rng), repeat: m % 4 == 1);
    }

    [Theory]
    [InlineData(GemmForm.NN)]
    [InlineData(GemmForm.NT)]
    [InlineData(GemmForm.TN)]
    public void EveryNFrom1To257MatchesReference(GemmForm form)
    {
        var rng = new Rng(200 + (ulong)form);
        for (int n = 1; n <= 257; n++) Check(new Case(form, 29, n, 23, accumulate: n % 2 == 1, rng), repeat: n % 4 == 1);
    }

    [Theory]
    [InlineData(GemmForm.NN)]
    [InlineData(GemmForm.NT)]
    [InlineData(GemmForm.TN)]
    public void EveryKFrom1To257MatchesReference(GemmForm form)
    {
        var rng = new Rng(300 + (ulong)form);
        for (int k = 1; k <= 257; k++) Check(new Case(form, 17, 35, k, accumulate: k % 3 == 0, rng), repeat: k % 4 == 1);
    }

    [Fact]
    public void RandomShapesAndPaddingMatchReference()
    {
        var rng = new Rng(400);
        for (int t = 0; t < 120; t++)
        {
            var form = Forms[rng.NextInt(3)];
            int m = 1 + rng.NextInt(120), n = 1 + rng.NextInt(120), k = 1 + rng.NextInt(300);
            Check(new Case(form, m, n, k, accumulate: rng.NextInt(2) == 1, rng, pad: rng.NextInt(40)));
        }
    }

    [Theory]
    [InlineData(GemmForm.NN, 13, 1100, 300)]  // N crosses a 1024-column B block, K a 256 depth slice
    [InlineData(GemmForm.TN, 13, 1100, 300)]
    [InlineData(GemmForm.NT, 13, 1100, 300)]  // NT with few rows computes Cᵀ = B·Aᵀ
    [InlineData(GemmForm.NT, 300, 45, 260)]   // NT with many rows packs B transposed
    [InlineData(GemmForm.NN, 301, 97, 515)]   // rows split over threads, several depth slices
    public void LargerShapesCrossEveryBlockBoundary(GemmForm form, int m, int n, int k)
    {
        var rng = new Rng(500);
        Check(new Case(form, m, n, k, accumulate: false, rng));
        Check(new Case(form, m, n, k, accumulate: true, rng));
    }

    [Fact]
    public void Vector256PathGivesTheSameBitsAsVector512()
    {
        var rng = new Rng(600);
        var cases = new List<Case>();
        foreach (var form in Forms)
        {
            cases.Add(new Case(form, 37, 70, 300, accumulate: true, rng));
            cases.Add(new Case(form, 5, 33, 17, accumulate: false, rng));
        }
        var wide = cases.Select(c => c.RunOurs(2)).ToList();
        bool saved = GemmBlocked.UseVector512;
        GemmBlocked.UseVector512 = false;
        try
        {
            for (int i = 0; i < cases.Count; i++)
            {
                Assert.True(wide[i].AsSpan().SequenceEqual(cases[i].RunOurs(2)), $"{cases[i].Name}: Vector256 path differs");
                // Also against the reference, in case both paths were wrong the same way.
                Check(cases[i]);
            }
        }
        finally
        {
            GemmBlocked.UseVector512 = saved;
        }
    }

    [Fact]
    public void SkinnyTilesGiveTheSameBitsAsTheBlockedPath()
    {
        // Decode-shaped products (at most 16 rows of A, form NT) take GemmSkinny's tile, which reads the weights in place; every
        // element must still be the blocked path's FMA sequence, so switching them off changes no bit.
        var rng = new Rng(900);
        var cases = new List<Case>();
        foreach (var form in new[] { GemmForm.NN, GemmForm.NT })
            for (int m = 1; m <= 16; m++)
                foreach (var (n, k) in new[] { (64, 1), (97, 256), (130, 257), (300, 600), (33, 70) })
                    cases.Add(new Case(form, m, n, k, accumulate: m % 2 == 0, rng));
        if (!GemmBlocked.UseVector512)
        {
            // The skinny tile is a Vector512 kernel: on a CPU without AVX-512 (this test has met AMD EPYC machines with AVX2
            // only) every product must take the blocked path, which the rest of this class checks bit for bit.
            Assert.All(cases, c => Assert.Equal(GemmKind.Blocked, GemmSkinny.Choose(c.Form, c.M, c.N, c.K)));
            return;
        }
        Assert.Contains(cases, c => GemmSkinny.Choose(c.Form, c.M, c.N, c.K) == GemmKind.FewCols);
        var skinny = cases.Select(c => c.RunOurs(2)).ToList();
        GemmSkinny.Enabled = false;
        try
        {
            for (int i = 0; i < cases.Count; i++)
                Assert.True(skinny[i].AsSpan().SequenceEqual(cases[i].RunOurs(2)), $"{cases[i].Name}: skinny tiles differ from the blocked path");
        }
        finally
        {
            GemmSkinny.Enabled = true;
        }
        foreach (var c in cases) Check(c, repeat: false);
    }

    [Fact]
    public void Bf16Weights_GiveTheFloat32BitsOnTheWidenedWeights_OnEveryTileAndPath()
    {
        // Gemm.MultiplyBf16 widens B while packing (NN) or as the skinny tile / A panels read it (NT with few rows): the
        // float32 values are those of the widened B, so every element is the float32 GEMM's FMA sequence — same bits — on
        // the Vector512 tiles, the skinny tile off, and the AVX2 tiles; and within float32 rounding of the scalar reference.
        var rng = new Rng(2103);
        var cases = new List<(Case Case, ushort[] Bits)>();
        foreach (var form in new[] { GemmForm.NN, GemmForm.NT })
            foreach (var (m, n, k) in new[] { (1, 64, 1), (3, 97, 256), (8, 130, 257), (16, 300, 600), (13, 1100, 40), (17, 70, 33), (40, 290, 300) })
                cases.Add(Narrowed(new Case(form, m, n, k, accumulate: m % 2 == 1, rng)));
        bool saved512 = GemmBlocked.UseVector512;
        try
        {
            foreach (var (useVector512, skinny) in new[] { (saved512, true), (saved512, false), (false, true) })
            {
                GemmBlocked.UseVector512 = useVector512;
                GemmSkinny.Enabled = skinny;
                foreach (var (tc, bits) in cases)
                    foreach (int threads in new[] { 1, 2 })
                    {
                        var f32 = tc.RunOurs(threads);
                        var c = (float[])tc.C0.Clone();
                        Gemm.MultiplyBf16(tc.Form, tc.M, tc.N, tc.K, tc.A, tc.Lda, bits, tc.Ldb, c, tc.Ldc, tc.Accumulate, threads);
                        Assert.True(f32.AsSpan().SequenceEqual(c), $"{tc.Name} threads={threads} vector512={useVector512} skinny={skinny}: bf16 B differs from float32 on the widened B");
                    }
            }
        }
        finally
        {
            GemmBlocked.UseVector512 = saved512;
            GemmSkinny.Enabled = true;
        }
        foreach (var (tc, _) in cases) Check(tc, repeat: false);
        Assert.False(Gemm.SupportsBf16(GemmForm.NT, 300, 400));
        Assert.False(Gemm.SupportsBf16(GemmForm.TN, 4, 400));
        Assert.Throws<ArgumentException>(() => Gemm.MultiplyBf16(GemmForm.TN, 2, 4, 3, new float[6], 2, new ushort[12], 4, new float[8], 4, false));

        // B rounded to bf16 in place (sentinels too: they are the gaps of a strided B), its bits kept for MultiplyBf16.
        static (Case, ushort[]) Narrowed(Case tc)
        {
            var bits = new ushort[tc.B.Length];
            BFloat16.NarrowReference(tc.B, bits);
            BFloat16.WidenReference(bits, tc.B);
            return (tc, bits);
        }
    }

    [Fact]
    public void FormNtGivesTheSameBitsThroughTheTransposedAndThePlainMapping()
    {
        // NT products with M < N ≤ 256 rows go through D = Cᵀ (B's rows as P) up to GemmPlan.TransposedNtMaxRows rows and the
        // plain mapping above it: every element is the same FMA sequence over k either way, so moving the threshold must
        // change no bit, on the Vector512 and the AVX2 tiles, with 1 and 2 threads, over depth slices and tile tails.
        var rng = new Rng(4242);
        var cases = new List<Case>();
        foreach (var (m, n, k) in new[] { (64, 97, 300), (100, 130, 257), (255, 300, 513), (256, 290, 40), (17, 70, 33) })
            cases.Add(new Case(GemmForm.NT, m, n, k, accumulate: m % 2 == 0, rng));
        int savedRows = GemmPlan.TransposedNtMaxRows;
        bool saved512 = GemmBlocked.UseVector512;
        try
        {
            foreach (bool useVector512 in saved512 ? new[] { true, false } : new[] { false })
            {
                GemmBlocked.UseVector512 = useVector512;
                foreach (var c in cases)
                    foreach (int threads in new[] { 1, 2 })
                    {
                        GemmPlan.TransposedNtMaxRows = 256;
                        var transposed = c.RunOurs(threads);
                        GemmPlan.TransposedNtMaxRows = 0;
                        var plain = c.RunOurs(threads);
                        Assert.True(transposed.AsSpan().SequenceEqual(plain), $"{c.Name} threads={threads} vector512={useVector512}: the two NT mappings differ");
                    }
            }
        }
        finally
        {
            GemmPlan.TransposedNtMaxRows = savedRows;
            GemmBlocked.UseVector512 = saved512;
        }
        foreach (var c in cases) Check(c, repeat: false);
    }

    [Fact]
    public void ThreadSplitCoversEveryElementOfCExactlyOnce()
    {
        foreach (var form in Forms)
        {
            foreach (var (m, n, k) in new[] { (1, 1, 1), (3, 700, 5), (700, 3, 5), (64, 2304, 8), (8192, 64, 8), (97, 97, 300), (13, 1100, 4) })
            {
                for (int parts = 1; parts <= 5; parts++)
                {
                    var hits = new int[m * n];
                    fixed (float* c = new float[1])
                    {
                        var plan = GemmPlan.Create(form, m, n, k, null, 1, null, 1, c, n, accumulate: false);
                        for (int part = 0; part < parts; part++)
                        {
                            var (r0, r1, s0, s1) = plan.Part(part, parts);
                            Assert.True(0 <= r0 && r0 <= r1 && r1 <= plan.Rows && 0 <= s0 && s0 <= s1 && s1 <= plan.Cols,
                                $"{form} {m}×{n}: part {part}/{parts} = rows [{r0},{r1}) cols [{s0},{s1}) leaves [{plan.Rows},{plan.Cols}]");
                            for (int r = r0; r < r1; r++)
                            {
                                for (int s = s0; s < s1; s++)
                                {
                                    // D is C or Cᵀ: map back to C's element.
                                    long offset = r * plan.DRowStride + s * plan.DColStride;
                                    hits[(offset / n) * n + offset % n]++;
                                }
                            }
                        }
                    }
                    Assert.True(hits.All(h => h == 1), $"{form} {m}×{n} split {parts} ways: some element computed {hits.Min()}..{hits.Max()} times");
                }
            }
        }
    }

    [Theory]
    [InlineData(3)]
    [InlineData(5)]
    public void MoreThreadsThanCoresGiveTheSameBits(int threads)
    {
        var rng = new Rng(800);
        foreach (var form in Forms)
        {
            var tc = new Case(form, 151, 203, 97, accumulate: true, rng);
            Assert.True(tc.RunOurs(1).AsSpan().SequenceEqual(tc.RunOurs(threads)), $"{tc.Name}: {threads} threads differ from 1");
        }
    }

    [Fact]
    public void TransposeCopyMovesEveryElementAcrossTheDiagonal()
    {
        var rng = new Rng(700);
        for (int rows = 1; rows <= 20; rows++)
        {
            for (int cols = 1; cols <= 20; cols++)
            {
                int lds = cols + 3, ldd = rows + 5;
                var src = Enumerable.Range(0, rows * lds).Select(_ => (float)rng.Uniform(-1, 1)).ToArray();
                var dst = new float[cols * ldd];
                Array.Fill(dst, Case.Sentinel);
                fixed (float* ps = src, pd = dst) GemmTranspose.Copy(ps, lds, pd, ldd, rows, cols);
                for (int j = 0; j < cols; j++)
                {
                    for (int i = 0; i < ldd; i++)
                    {
                        float expected = i < rows ? src[i * lds + j] : Case.Sentinel;
                        if (dst[j * ldd + i] != expected) Assert.Fail($"{rows}×{cols}: dst[{j},{i}] = {dst[j * ldd + i]}, expected {expected}");
                    }
                }
            }
        }
    }

    [Fact]
    public void ZeroDepthClearsOrKeepsC()
    {
        var c = new float[] { 1, 2, 3, 4 };
        Gemm.Multiply(GemmForm.NN, 2, 2, 0, ReadOnlySpan<float>.Empty, 0, ReadOnlySpan<float>.Empty, 2, c, 2, accumulate: true);
        Assert.Equal([1f, 2, 3, 4], c);
        Gemm.Multiply(GemmForm.NN, 2, 2, 0, ReadOnlySpan<float>.Empty, 0, ReadOnlySpan<float>.Empty, 2, c, 2, accumulate: false);
        Assert.Equal([0f, 0, 0, 0], c);
    }

    [Fact]
    public void SpanOverloadNamesTheShortOperand()
    {
        var a = new float[6];
        var b = new float[5];
        var c = new float[4];
        var ex = Assert.Throws<ArgumentException>(() => Gemm.Multiply(GemmForm.NN, 2, 2, 3, a, 3, b, 2, c, 2, accumulate: false));
        Assert.Contains("B holds 5 floats", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => Gemm.Multiply(GemmForm.NT, 2, 2, 3, a, 2, b, 3, c, 2, accumulate: false));
        Assert.Contains("leading dimension of A (2)", ex.Message);
    }
}
