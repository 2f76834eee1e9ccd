// Fused causal attention: forward against the float64 reference (both layouts, blocks past 128 rows),
// the masking rule, and backward against central differences.
using RlhfSharp.Tensors.Kernels;

namespace RlhfSharp.Tensors.Tests;

public sealed class AttentionTests
{
    // Batch 0 is left-padded by two tokens (positions 0 and 1 attend nothing); batch 1 has a pad in the middle.
    private static Tensor Mask(int T) => Tensor.FromArray(
        Enumerable.Range(0, T).Select(t => t < 2 ? 0f : 1f).Concat(Enumerable.Range(0, T).Select(t => t == 3 ? 0f : 1f)).ToArray(), 2, T);

    [Theory]
    [InlineData(5, 3, false)]
    [InlineData(70, 4, true)]
    [InlineData(130, 8, true)]
    public void ForwardMatchesReference(int T, int HS, bool masked)
    {
        var rng = new Rng((ulong)(T * 10 + HS));
        int B = 2, NH = 3;
        var q = Tensor.Randn(rng, 1f, B, NH, T, HS);
        var k = Tensor.Randn(rng, 1f, B, NH, T, HS);
        var v = Tensor.Randn(rng, 1f, B, NH, T, HS);
        var mask = masked ? Mask(T) : null;
        var y = Ops.CausalAttention(q, k, v, mask).ToArray();
        var expected = AttentionReference.Forward(B, NH, T, HS, q.ToArray(), k.ToArray(), v.ToArray(), mask?.ToArray().Select(m => (byte)m).ToArray());
        for (int i = 0; i < y.Length; i++) Assert.True(Math.Abs(y[i] - expected[i]) < 1e-5, $"element {i}: {y[i]} vs {expected[i]}");
        if (masked)
        {
            for (int h = 0; h < NH; h++)
                for (int t = 0; t < 2; t++)
                    for (int i = 0; i < HS; i++)
                        Assert.Equal(0f, y[((0 * NH + h) * T + t) * HS + i]); // left-pad queries: zeros, not NaN
        }
    }

    [Fact]
    public void FusedQkvLayoutEqualsSplitHeads()
    {
        var rng = new Rng(5);
        int B = 2, T = 9, NH = 2, HS = 4, C = NH * HS;
        var qkv = Tensor.Randn(rng, 1f, B, T, 3 * C);
        var mask = Mask(T);
        var fused = Ops.CausalAttention(qkv, NH, mask);
        Tensor Head(int part) => Ops.Permute(Ops.Narrow(qkv, 2, part * C, C).Reshape(B, T, NH, HS), 0, 2, 1, 3);
        var split = Ops.CausalAttention(Head(0), Head(1), Head(2), mask);
        var merged = Ops.Permute(split, 0, 2, 1, 3).Reshape(B, T, C);
        Assert.Equal(merged.ToArray(), fused.ToArray());
    }

    [Fact]
    public void BackwardMatchesCentralDifferencesWithPaddingMask()
    {
        var rng = new Rng(6);
        var mask = Mask(5);
        GradCheck.Check(x => Ops.CausalAttention(x[0], x[1], x[2], mask),
            [Tensor.Randn(rng, 1f, 2, 2, 5, 3), Tensor.Randn(rng, 1f, 2, 2, 5, 3), Tensor.Randn(rng, 1f, 2, 2, 5, 3)]);
    }

    [Fact]
    public void FusedBackwardMatchesCentralDifferencesWithPaddingMask()
    {
        // Past the kernel's 128-row block: KernelGradientTests.
        var rng = new Rng(7);
        var mask = Mask(67);
        GradCheck.Check(x => Ops.CausalAttention(x[0], 2, mask), [Tensor.Randn(rng, 1f, 2, 67, 6)]);
    }

    [Fact]
    public void FullyMaskedRowsGiveZeroGradientsNotNaN()
    {
        var qkv = Tensor.Randn(new Rng(8), 1f, 1, 4, 6);
        qkv.RequiresGrad = true;
        var y = Ops.CausalAttention(qkv, 1, Tensor.Zeros(1, 4));
        Assert.All(y.ToArray(), v => Assert.Equal(0f, v));
        Ops.Sum(y).Backward();
        Assert.All(qkv.Grad!.ToArray(), g => Assert.Equal(0f, g));
    }
}
