// How the golden tests hash metrics.jsonl: timing fields must not count, everything else must, and a new clock-like
// field must be refused rather than make the golden hash flicker. Fast; runs with the ordinary suite.
using RlhfSharp.Golden;

namespace RlhfSharp.Cli.Tests;

public sealed class GoldenHashingTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "rlhf-golden-hash-" + Guid.NewGuid().ToString("N"));

    public GoldenHashingTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Hash(params string[] lines)
    {
        string file = Path.Combine(_dir, Guid.NewGuid().ToString("N") + ".jsonl");
        File.WriteAllLines(file, lines);
        return GoldenJobs.HashMetrics(file);
    }

    [Fact]
    public void Given_two_runs_that_differ_only_in_timing_fields_When_hashed_Then_the_hashes_are_equal()
    {
        string a = Hash(
            """{"step":1,"wall_time":1796236143.65,"loss/train":6.25,"perf/tokens_per_s":180.3}""",
            """{"step":2,"wall_time":1796236144.5,"objective/kl":0.1,"time/generation_s":0.36,"time/step_s":2.0}""",
            """{"step":256,"charts/SPS":265.7,"charts/episodic_return":22.4,"perf/rollout_seconds":0.24}""");
        string b = Hash(
            """{"step":1,"wall_time":1796239999.01,"loss/train":6.25,"perf/tokens_per_s":99999}""",
            """{"step":2,"wall_time":1796240000.2,"objective/kl":0.1,"time/generation_s":0.01,"time/step_s":0.5}""",
            """{"step":256,"charts/SPS":1472.8,"charts/episodic_return":22.4,"perf/rollout_seconds":0.03}""");
        Assert.Equal(a, b);
    }

    [Fact]
    public void Given_two_runs_whose_last_digit_of_one_loss_differs_When_hashed_Then_the_hashes_differ()
    {
        string a = Hash("""{"step":1,"wall_time":1.0,"loss/train":6.255754470825195}""", """{"step":2,"wall_time":2.0,"loss/train":6.2}""");
        string b = Hash("""{"step":1,"wall_time":1.0,"loss/train":6.255754470825196}""", """{"step":2,"wall_time":2.0,"loss/train":6.2}""");
        string c = Hash("""{"step":1,"wall_time":1.0,"loss/train":6.255754470825195}""");
        Assert.NotEqual(a, b);
        Assert.NotEqual(a, c);
    }

    [Fact]
    public void Given_a_clock_like_field_the_list_does_not_name_When_hashed_Then_refused_naming_the_field_and_line()
    {
        var ex = Assert.Throws<InvalidDataException>(() => Hash("""{"step":1,"loss/train":6.2}""", """{"step":2,"loss/train":6.1,"eval/elapsed_s":3.5}"""));
        Assert.Contains("eval/elapsed_s", ex.Message, StringComparison.Ordinal);
        Assert.Contains(":2:", ex.Message, StringComparison.Ordinal);
    }
}
