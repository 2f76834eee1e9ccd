// bfloat16 conversions against their scalar references: narrowing rounds to nearest even (ties worked by hand below),
// widening is exact on every length 0..257 (each vector path's tail). Run once more with DOTNET_EnableAVX512=0 for AVX2.
using RlhfSharp.Tensors.Kernels;

namespace RlhfSharp.Tensors.Tests;

public sealed class BFloat16Tests
{
    [Theory]
    // 1 + 2^-8 is halfway between bf16 1.0 (0x3F80) and 1 + 2^-7 (0x3F81): the tie goes to the even 0x3F80.
    [InlineData(0x3F808000u, (ushort)0x3F80)]
    // 1 + 3·2^-8 is halfway between 0x3F81 and 0x3F82: the tie goes to the even 0x3F82.
    [InlineData(0x3F818000u, (ushort)0x3F82)]
    // Just past halfway rounds up; just below rounds down.
    [InlineData(0x3F808001u, (ushort)0x3F81)]
    [InlineData(0x3F807FFFu, (ushort)0x3F80)]
    // float32's largest finite value rounds past bf16's largest to +∞; infinities and signed zero stay.
    [InlineData(0x7F7FFFFFu, (ushort)0x7F80)]
    [InlineData(0x7F800000u, (ushort)0x7F80)]
    [InlineData(0xFF800000u, (ushort)0xFF80)]
    [InlineData(0x80000000u, (ushort)0x8000)]
    // A NaN whose payload sits in the low half becomes the quiet NaN, not ±∞.
    [InlineData(0x7F800001u, (ushort)0x7FC0)]
    // Subnormals round like any other value.
    [InlineData(0x00018000u, (ushort)0x0002)]
    public void FromFloat_RoundsToNearestEven(uint floatBits, ushort expected)
    {
        float value = BitConverter.UInt32BitsToSingle(floatBits);
        Assert.Equal(expected, BFloat16.FromFloat(value));
        var viaReference = new ushort[1];
        BFloat16.NarrowReference([value], viaReference);
        Assert.Equal(expected, viaReference[0]);
    }

    [Fact]
    public void Narrow_EqualsItsReference_AndWidenIsExactOnEveryLength()
    {
        var rng = new Rng(21);
        for (int n = 0; n <= 257; n++)
        {
            var x = Tensor.Randn(rng, 3f, n).ToArray();
            var bits = new ushort[n];
            var expectedBits = new ushort[n];
            BFloat16.Narrow(x, bits);
            BFloat16.NarrowReference(x, expectedBits);
            Assert.Equal(expectedBits, bits);

            var widened = new float[n + 1];
            widened[n] = 42f;   // past the end: untouched
            var expected = new float[n];
            BFloat16.Widen(bits, widened);
            BFloat16.WidenReference(bits, expected);
            for (int i = 0; i < n; i++)
            {
                Assert.Equal(BitConverter.SingleToUInt32Bits(expected[i]), BitConverter.SingleToUInt32Bits(widened[i]));
                // Widening then narrowing gives the bits back; the widened value is within half a bf16 ulp (2^-8 of its magnitude: 8 significant bits).
                Assert.Equal(bits[i], BFloat16.FromFloat(widened[i]));
                Assert.True(Math.Abs(widened[i] - x[i]) <= Math.Abs(x[i]) * (1.0 / 256), $"n={n} i={i}: {x[i]} -> {widened[i]}");
            }
            Assert.Equal(42f, widened[n]);
        }
    }
}
