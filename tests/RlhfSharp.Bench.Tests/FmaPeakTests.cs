// The FMA peak that `rlhf bench train` divides by: it must come out as a usable denominator. Its size is a speed and
// is not asserted here (docs/design.md, "Rules the code keeps": speed is measured by `rlhf bench`, never by a timed
// unit test).
using System.Runtime.Intrinsics.X86;
using RlhfSharp.Bench;

namespace RlhfSharp.Bench.Tests;

public sealed class FmaPeakTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void Given_a_thread_count_When_the_peak_is_measured_Then_it_is_positive_finite_and_names_the_instruction_set_in_use(int threads)
    {
        var peak = FmaPeak.Measure(threads, seconds: 0.2);

        Assert.True(double.IsFinite(peak.Gflops) && peak.Gflops > 0, $"peak {peak.Gflops} GFLOP/s");
        Assert.Equal(threads, peak.Threads);
        Assert.Equal(Avx512F.IsSupported ? "avx512" : Fma.IsSupported ? "avx2_fma" : "scalar_fma", peak.Isa);
    }

    [Fact]
    public void Given_no_threads_When_measured_Then_it_is_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => FmaPeak.Measure(0));
    }
}
