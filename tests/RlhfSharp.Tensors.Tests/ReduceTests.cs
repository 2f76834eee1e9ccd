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
        // Four accumulators of eight lanes over blocks of 32, lanes combined as ((0+4)+(2+6)) + ((1+5)+(3+7)), then the tail
        // in index order; Dot uses a fused multiply-add at every step. Any machine must reproduce this program's bits.
        var rng = new Rng(13);
        for (int n = 0; n <= 300; n++)
        {
            var x = Tensor.Randn(rng, 1f, n).ToArray();
            var y = Tensor.Randn(rng, 1f, n).ToArray();
            Assert.Equal(Ordered(x, null), Reduce.Sum(x));
            Assert.Equal(Ordered(x, y), Reduce.Dot(x, y));
        }

        static float Ordered(float[] x, float[]? y)
        {
            int n = x.Length, i = 0;
            float s = 0f;
            if (n >= 32)
            {
                var acc = new float[4, 8];
                for (; i <= n - 32; i += 32)
                    for (int a = 0; a < 4; a++)
                        for (int l = 0; l < 8; l++)
                        {
                            int at = i + 8 * a + l;
                            acc[a, l] = y is null ? acc[a, l] + x[at] : MathF.FusedMultiplyAdd(x[at], y[at], acc[a, l]);
                        }
                var v = new float[8];
                for (int l = 0; l < 8; l++) v[l] = (acc[0, l] + acc[1, l]) + (acc[2, l] + acc[3, l]);
                float h0 = v[0] + v[4], h1 = v[1] + v[5], h2 = v[2] + v[6], h3 = v[3] + v[7];
                s = (h0 + h2) + (h1 + h3);
            }
            for (; i < n; i++) s = y is null ? s + x[i] : MathF.FusedMultiplyAdd(x[i], y[i], s);
            return s;
        }
    }
}
