// `rlhf bench store` measures what it says: every judgment it times is stored (two commits each), in the mode asked
// for, and it leaves no file behind. Speed itself is never asserted (docs/feedback.md has the measured figures).
namespace RlhfSharp.Bench.Tests;

public sealed class StoreBenchTests
{
    [Theory]
    [InlineData(false, 1)]
    [InlineData(true, 3)]
    public async Task Given_a_folder_When_measuring_Then_every_judgment_is_counted_and_the_store_file_is_removed(bool durable, int labelers)
    {
        using var dir = new TempDirectory();
        var result = await StoreBench.MeasureAsync(dir.Path, durable, judgments: 30, labelers);
        Assert.Equal((durable, 30, labelers), (result.Durable, result.Judgments, result.Labelers));
        Assert.True(result.Seconds > 0);
        Assert.Equal(2 * result.JudgmentsPerSecond, result.CommitsPerSecond, 9);
        Assert.Equal(durable ? "FULL" : "NORMAL", result.ToFields()["synchronous"]);
        Assert.Empty(Directory.GetFiles(dir.Path));
    }
}
