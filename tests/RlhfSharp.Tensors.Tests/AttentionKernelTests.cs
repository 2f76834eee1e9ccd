// The attention kernels as a whole: forward (GPT-2's fused qkv layout) against the float64 reference; the row blocks
// and the skipped upper triangle against one unblocked product (the same bits: what lets the GPT and the engine op share
// these kernels without moving a hash); the KV-cached forward against the reference on every key count 1..257 and
// against the full forward's bits. Backward against float64 central differences: KernelGradientTests.
using RlhfSharp.Tensors.Kernels;

namespace RlhfSharp.Tensors.Tests;

public sealed unsafe class AttentionKernelTests
{
    private static float[] Randn(Rng rng, int n) => Tensor.Randn(rng, 1f, n).ToArray();

    // Row 0 is left-padded by two tokens (queries 0 and 1 attend nothing); row 1 has a pad in the middle.
    private static byte[] Mask(int B, int T) =>
        Enumerable.Range(0, B * T).Select(i => (byte)((i / T) % 2 == 0 ? (i % T < 2 ? 0 : 1) : (i % T == 3 ? 0 : 1))).ToArray();

    // GPT-2's layout: qkv (B,T,3C) with head h at columns h·HS of each third; the output (B,T,C).
    private static (Attention.Dims D, AttentionLayout Q, AttentionLayout K, AttentionLayout V, AttentionLayout O) Fused(int B, int NH, int T, int HS)
    {
        int C = NH * HS;
        var q = new AttentionLayout(0, T * 3 * C, HS, 3 * C);
        return (new Attention.Dims(B, NH, T, HS), q, q with { Offset = C }, q with { Offset = 2 * C }, new AttentionLayout(0, T * C, HS, C));
    }

    [Theory]
    [InlineData(1, 4)]
    [InlineData(5, 3)]
    [InlineData(64, 8)]
    [InlineData(65, 5)]
    [InlineData(130, 16)]
    public void ForwardOnTheFusedLayoutMatchesTheFloat64Reference(int T, int HS)
    {
        var rng = new Rng((ulong)(T * 100 + HS));
        int B = 2, NH = 3, C = NH * HS;
        var (d, qL, kL, vL, oL) = Fused(B, NH, T, HS);
        var qkv = Randn(rng, B * T * 3 * C);
        var mask = Mask(B, T);
        var output = Enumerable.Repeat(float.NaN, B * T * C).ToArray(); // every entry must be written
        var probs = Enumerable.Repeat(float.NaN, B * NH * T * T).ToArray();
        Attention.Forward(d, qkv, qL, qkv, kL, qkv, vL, output, oL, mask, probs);

        // Split into [B,NH,T,HS] for the reference.
        float[] Part(int part) => Enumerable.Range(0, B * NH * T * HS).Select(i =>
        {
            int b = i / (NH * T * HS), h = i / (T * HS) % NH, t = i / HS % T, e = i % HS;
            return qkv[(b * T + t) * 3 * C + part * C + h * HS + e];
        }).ToArray();
        var expected = AttentionReference.Forward(B, NH, T, HS, Part(0), Part(1), Part(2), mask);
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++)
                for (int t = 0; t < T; t++)
                {
                    for (int e = 0; e < HS; e++)
                    {
                        float got = output[(b * T + t) * C + h * HS + e], want = expected[((b * NH + h) * T + t) * HS + e];
                        Assert.True(Math.Abs(got - want) < 1e-5, $"T={T} b={b} h={h} t={t} e={e}: {got} vs {want}");
                    }
                    var row = probs.AsSpan(((b * NH + h) * T + t) * T, T);
                    double sum = 0;
                    foreach (float p in row) sum += p;
                    bool attendsNothing = b == 0 && t < 2;
                    Assert.True(attendsNothing ? sum == 0 : Math.Abs(sum - 1) < 1e-5, $"T={T} row {t} of head {h}, batch {b}: Σp = {sum}");
                    Assert.All(row[(t + 1)..].ToArray(), p => Assert.Equal(0f, p)); // the causal triangle stays zero
                }
    }

    [Theory]
    [InlineData(130, 6)]
    [InlineData(300, 12)] // three row blocks, and past one Gemm depth slice (256 keys)
    public void RowBlocksGiveTheBitsOfOneUnblockedProduct(int T, int HS)
    {
        // The kernels compute scores, P·V and dQ only for keys up to each 128-row block's last row. The products over the
        // skipped keys add exact zeros, and Gemm sums over the depth in one order whatever its other sizes, so the result
        // must equal the plain composition: full T×T scores, softmax rows, full products.
        var rng = new Rng((ulong)T);
        int B = 1, NH = 2;
        var d = new Attention.Dims(B, NH, T, HS);
        var L = new AttentionLayout(0, NH * T * HS, T * HS, HS);
        var q = Randn(rng, B * NH * T * HS);
        var k = Randn(rng, q.Length);
        var v = Randn(rng, q.Length);
        var dout = Randn(rng, q.Length);
        var mask = Enumerable.Range(0, T).Select(s => (byte)(s % 11 == 4 ? 0 : 1)).ToArray();
        var output = new float[q.Length];
        var probs = new float[NH * T * T];
        Attention.Forward(d, q, L, k, L, v, L, output, L, mask, probs);
        float[] dq = new float[q.Length], dk = new float[q.Length], dv = new float[q.Length];
        Attention.Backward(d, q, L, k, L, v, L, dout, L, probs, dq, dk, dv);

        float[] o2 = new float[q.Length], dq2 = new float[q.Length], dk2 = new float[q.Length], dv2 = new float[q.Length];
        var p2 = new float[T * T];
        var ds = new float[T * T];
        fixed (byte* pm = mask)
        fixed (float* pp = p2, pds = ds)
            for (int h = 0; h < NH; h++)
            {
                int at = h * T * HS;
                ReadOnlySpan<float> qh = q.AsSpan(at, T * HS), kh = k.AsSpan(at, T * HS), vh = v.AsSpan(at, T * HS), gh = dout.AsSpan(at, T * HS);
                Gemm.Multiply(GemmForm.NT, T, T, HS, qh, HS, kh, HS, p2, T, accumulate: false, threads: 1);
                for (int t = 0; t < T; t++) Attention.MaskedSoftmaxRow(pp + t * T, t, T, pm, d.Scale);
                Gemm.Multiply(GemmForm.NN, T, HS, T, p2, T, vh, HS, o2.AsSpan(at, T * HS), HS, accumulate: false, threads: 1);
                Assert.True(probs.AsSpan(h * T * T, T * T).SequenceEqual(p2), $"probabilities of head {h}");
                Gemm.Multiply(GemmForm.TN, T, HS, T, p2, T, gh, HS, dv2.AsSpan(at, T * HS), HS, accumulate: true, threads: 1);
                Gemm.Multiply(GemmForm.NT, T, T, HS, gh, HS, vh, HS, ds, T, accumulate: false, threads: 1);
                for (int t = 0; t < T; t++)
                {
                    Attention.SoftmaxBackwardRow(pp + t * T, pds + t * T, t + 1, d.Scale);
                    ds.AsSpan(t * T + t + 1, T - t - 1).Clear();
                }
                Gemm.Multiply(GemmForm.NN, T, HS, T, ds, T, kh, HS, dq2.AsSpan(at, T * HS), HS, accumulate: true, threads: 1);
                Gemm.Multiply(GemmForm.TN, T, HS, T, ds, T, qh, HS, dk2.AsSpan(at, T * HS), HS, accumulate: true, threads: 1);
            }
        Assert.Equal(o2, output);
        Assert.Equal(dv2, dv);
        Assert.Equal(dq2, dq);
        Assert.Equal(dk2, dk);
    }

    [Fact]
    public void BackwardSkipsTheGradientsLeftEmpty()
    {
        var rng = new Rng(4);
        int T = 9, HS = 4;
        var d = new Attention.Dims(1, 1, T, HS);
        var L = new AttentionLayout(0, T * HS, T * HS, HS);
        var q = Randn(rng, T * HS);
        var k = Randn(rng, T * HS);
        var v = Randn(rng, T * HS);
        var g = Randn(rng, T * HS);
        var probs = new float[T * T];
        Attention.Forward(d, q, L, k, L, v, L, new float[T * HS], L, default, probs);
        float[] dq = new float[T * HS], dk = new float[T * HS], dv = new float[T * HS];
        Attention.Backward(d, q, L, k, L, v, L, g, L, probs, dq, dk, dv);
        var dkOnly = new float[T * HS];
        Attention.Backward(d, q, L, k, L, v, L, g, L, probs, default, dkOnly, default);
        Assert.Equal(dk, dkOnly);
        Assert.Contains(dq, x => x != 0f);
        Assert.Contains(dv, x => x != 0f);
    }

    [Fact]
    public void ShortBuffersAreRefusedWithTheirNames()
    {
        var d = new Attention.Dims(2, 2, 5, 4);
        var L = new AttentionLayout(0, 2 * 5 * 4, 5 * 4, 4);
        var ok = new float[2 * 2 * 5 * 4];
        var ex = Assert.Throws<ArgumentException>(() => Attention.Forward(d, ok, L, new float[10], L, ok, L, new float[ok.Length], L, default, new float[2 * 2 * 25]));
        Assert.Contains("k holds 10 floats", ex.Message);
        ex = Assert.Throws<ArgumentException>(() => Attention.Forward(d, ok, L, ok, L, ok, L, new float[ok.Length], L, default, new float[7]));
        Assert.Contains("probs holds 7 floats", ex.Message);
    }

    [Theory]
    [InlineData(64)]
    [InlineData(12)]
    public void CachedForwardMatchesTheReferenceForEveryKeyCount(int HS)
    {
        var rng = new Rng((ulong)HS);
        for (int Tk = 1; Tk <= 257; Tk++)
        {
            foreach (int Tq in new[] { 1, 3, 6 }.Where(t => t <= Tk))
            {
                int offset = Tk - Tq, cap = Tk + 5; // the cache holds more positions than are filled
                var q = Randn(rng, Tq * HS);
                var k = Randn(rng, Tk * HS);
                var v = Randn(rng, Tk * HS);
                // Left padding masks the first keys (so a first query may see none), plus scattered holes.
                var mask = Enumerable.Range(0, Tk).Select(s => (byte)(s < Tk / 4 || s % 7 == 3 ? 0 : 1)).ToArray();
                var (kT, vCache) = Cache(k, v, Tk, cap, HS);
                var output = Enumerable.Repeat(float.NaN, Tq * HS).ToArray(); // every entry must be written
                Attention.ForwardCached(output, HS, new float[Tq * Tk], q, HS, kT, cap, vCache, HS, mask, Tq, Tk, offset, HS);

                var expected = AttentionReference.Cached(q, k, v, mask, Tq, Tk, offset, HS);
                for (int i = 0; i < output.Length; i++)
                    Assert.True(Math.Abs(output[i] - expected[i]) < 1e-5, $"HS {HS} Tk {Tk} Tq {Tq} [{i}]: {output[i]} vs {expected[i]}");
            }
        }
    }

    [Theory]
    [InlineData(5, 12)]
    [InlineData(70, 16)]
    [InlineData(200, 64)]
    public void CachedDecodingGivesTheBitsOfTheFullForward(int T, int HS)
    {
        // Decoding one token against the cache computes each score as one FMA chain over d and the output as one FMA chain
        // over the keys, which is what Gemm does up to its 256-deep slice: the last row must come out bit for bit.
        var rng = new Rng((ulong)(T + HS));
        var d = new Attention.Dims(1, 1, T, HS);
        var L = new AttentionLayout(0, T * HS, T * HS, HS);
        var q = Randn(rng, T * HS);
        var k = Randn(rng, T * HS);
        var v = Randn(rng, T * HS);
        var mask = Enumerable.Range(0, T).Select(s => (byte)(s == 1 ? 0 : 1)).ToArray();
        var full = new float[T * HS];
        Attention.Forward(d, q, L, k, L, v, L, full, L, mask, new float[T * T]);

        int cap = T + 3;
        var (kT, vCache) = Cache(k, v, T, cap, HS);
        var last = new float[HS];
        Attention.ForwardCached(last, HS, new float[T], q.AsSpan((T - 1) * HS), HS, kT, cap, vCache, HS, mask, 1, T, T - 1, HS);
        Assert.Equal(full[((T - 1) * HS)..], last);
        var prefill = new float[T * HS];
        Attention.ForwardCached(prefill, HS, new float[T * T], q, HS, kT, cap, vCache, HS, mask, T, T, 0, HS);
        if (T > 4) Assert.Equal(full, prefill); // the prefill path is the same GEMMs and softmax rows
    }

    [Theory]
    [InlineData(64)]
    [InlineData(12)]
    public void Bf16CacheGivesTheBitsOfTheFloat32CacheOnItsWidenedValues(int HS)
    {
        // AttentionCachedBf16 widens keys and values exactly as it reads them, with ForwardCached's loops and FMA chains: on
        // a float32 cache holding the widened bf16 values it must agree bit for bit — every key-count tail of the 32- and
        // 8-key loops, decode (Tq ≤ 4) and prefill (the bf16 GEMMs).
        var rng = new Rng(2100 + (ulong)HS);
        foreach (int Tk in new[] { 1, 7, 8, 9, 31, 32, 45, 77, 300 })
            foreach (int Tq in new[] { 1, 3, 6 }.Where(t => t <= Tk))
            {
                int offset = Tk - Tq, cap = Tk + 5;
                var q = Randn(rng, Tq * HS);
                var mask = Enumerable.Range(0, Tk).Select(s => (byte)(s < Tk / 4 || s % 7 == 3 ? 0 : 1)).ToArray();
                var (kT, vCache) = Cache(Randn(rng, Tk * HS), Randn(rng, Tk * HS), Tk, cap, HS);
                var kT16 = new ushort[kT.Length];
                var v16 = new ushort[vCache.Length];
                BFloat16.NarrowReference(kT, kT16);
                BFloat16.NarrowReference(vCache, v16);
                BFloat16.WidenReference(kT16, kT);
                BFloat16.WidenReference(v16, vCache);
                var expected = new float[Tq * HS];
                Attention.ForwardCached(expected, HS, new float[Tq * Tk], q, HS, kT, cap, vCache, HS, mask, Tq, Tk, offset, HS);
                var output = Enumerable.Repeat(float.NaN, Tq * HS).ToArray();
                AttentionCachedBf16.Forward(output, HS, new float[Tq * Tk], q, HS, kT16, cap, v16, HS, mask, Tq, Tk, offset, HS);
                Assert.True(expected.AsSpan().SequenceEqual(output), $"HS {HS} Tk {Tk} Tq {Tq}: bf16 cache differs from the float32 cache on its widened values");
                // The scores kernel alone against its scalar reference on the widened keys.
                var scores = new float[Tk];
                var reference = new float[Tk];
                AttentionCachedBf16.ScoresTransposed(scores, q, kT16, cap, Tk, HS);
                Attention.ScoresTransposedReference(reference, q, kT, cap, Tk, HS);
                Assert.True(reference.AsSpan().SequenceEqual(scores), $"HS {HS} Tk {Tk}: bf16 scores differ from the scalar reference");
            }
    }

    // Keys transposed per head (HS, cap) and values (cap, HS), as GptKvCache lays them out.
    private static (float[] KT, float[] V) Cache(float[] k, float[] v, int Tk, int cap, int HS)
    {
        var kT = new float[HS * cap];
        var vCache = new float[cap * HS];
        for (int s = 0; s < Tk; s++)
            for (int e = 0; e < HS; e++)
            {
                kT[e * cap + s] = k[s * HS + e];
                vCache[s * HS + e] = v[s * HS + e];
            }
        return (kT, vCache);
    }
}
