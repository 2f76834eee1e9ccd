// The deterministic reduction kernels against their float64 references on every length 0..257.
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
}
