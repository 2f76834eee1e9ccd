// The deterministic reduction kernels against their float64 references on every length 0..257, and bit for bit
// against a scalar program of their written-out order (what makes AVX2 and AVX-512 machines agree).
using RlhfSharp.Tensors.Kernels;

namespace RlhfSharp.Tensors.Tests;

public sealed class ReduceTests
{
    [Fact]
    public void SumAndDotMatchReferenceOnEveryLength()
    {
        var rng = new Rng(11);
        for (int n = 0; n <= 257; n++)
        {
            var x = Tensor.Randn(rng, 1f, n).ToArray();
            var y = Tensor.Randn(rng, 1f, n).ToArray();
            double scale = Math.Sqrt(n + 1);
            Assert.True(Math.Abs(Reduce.Sum(x) - Reduce.SumReference(x)) < 1e-5 * scale, $"sum n={n}");
            Assert.True(Math.Abs(Reduce.Dot(x, y) - Reduce.DotReference(x, y)) < 1e-5 * scale, $"dot n={n}");
        }
    }

    [Fact]
    public void SumDoesNotDependOnTheBuffersAlignment()
    {
        var rng = new Rng(12);
        var values = Tensor.Randn(rng, 1f, 1000).ToArray();
        float expected = Reduce.Sum(values);
        for (int shift = 1; shift < 16; shift++)
        {
            var padded = new float[values.Length + shift];
            values.CopyTo(padded, shift);
            Assert.Equal(expected, Reduce.Sum(padded.AsSpan(shift)));
        }
    }

    [Fact]
    public void SumAndDotGiveExactlyTheBitsOfTheirWrittenOutOrder()
    {
        // SumInOrder/DotInOrder write the order out as a scalar program (blocks of 32 in four accumulators of eight lanes,
        // lanes combined as ((0+4)+(2+6)) + ((1+5)+(3+7)), then the tail); any machine must reproduce its bits.
        var rng = new Rng(13);
        for (int n = 0; n <= 300; n++)
        {
            var x = Tensor.Randn(rng, 1f, n).ToArray();
            var y = Tensor.Randn(rng, 1f, n).ToArray();
            Assert.Equal(Reduce.SumInOrder(x), Reduce.Sum(x));
            Assert.Equal(Reduce.DotInOrder(x, y), Reduce.Dot(x, y));
        }
    }

    [Fact]
    public void HorizontalSumAddsTheLanesInItsWrittenOrder()
    {
        // Lanes chosen so that any other association rounds differently: 1e8 swallows a 1 added to it alone.
        var v = System.Runtime.Intrinsics.Vector256.Create(1e8f, 1f, 1f, 1f, -1e8f, 1f, 1f, 1f);
        float expected = (((1e8f + -1e8f) + (1f + 1f)) + ((1f + 1f) + (1f + 1f)));
        Assert.Equal(expected, Reduce.HorizontalSum(v));
        Assert.Equal(6f, Reduce.HorizontalSum(v));
    }
}
