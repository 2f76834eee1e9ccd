// `rlhf demo`'s pipeline at its quick sizes: every stage is recorded, report.html holds every section, the summary is
// finite, and a resumed run skips the finished stages.
using System.Text.Json;
using RlhfSharp.Alignment.Demo;
using RlhfSharp.Alignment.Evaluation;
using Xunit.Abstractions;

namespace RlhfSharp.Alignment.Tests;

public sealed class DemoPipelineTests(ITestOutputHelper output)
{
    [Fact]
    public void QuickPipelineWritesEveryStageAndEveryReportSection()
    {
        using var tmp = new TempDirectory();
        string dir = Path.Combine(tmp.Path, "demo");
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var stagesSeen = new List<string>();
        var progress = new SyncProgress(p => { lock (stagesSeen) if (!stagesSeen.Contains(p.Stage)) stagesSeen.Add(p.Stage); });
        var summary = new DemoPipeline(DemoConfig.Quick).Run(dir, resume: false, progress);
        output.WriteLine($"quick demo {watch.Elapsed.TotalSeconds:F0}s: {JsonSerializer.Serialize(summary)}");

        var recorded = JsonSerializer.Deserialize<List<string>>(File.ReadAllText(Path.Combine(dir, DemoPipeline.StagesFileName)))!;
        Assert.Equal(DemoPipeline.Stages, recorded);
        Assert.Contains("pretrain", stagesSeen);
        Assert.Contains("ppo-beta0", stagesSeen);
        string html = File.ReadAllText(Path.Combine(dir, DemoPipeline.ReportFileName));
        foreach (var id in new[] { "learning-curves", "reward-model", "kl-control", "proxy-vs-gold", "best-of-n", "frontier", "win-rate", "samples" })
            Assert.Contains($"id=\"{id}\"", html);
        Assert.Contains("<svg", html);
        // The story world trains an SFT model, and the report calls the baseline by that name.
        Assert.Equal("SFT", summary.ReferenceName);
        Assert.Contains("Win rate over SFT", html);
        Assert.Contains("best-of-N from SFT", html);
        foreach (var p in new[] { summary.Ppo, summary.PpoBetaZero })
        {
            Assert.True(double.IsFinite(p.WinRate) && p.WinRate is >= 0 and <= 1, $"win rate {p.WinRate}");
            Assert.True(p.WinLow <= p.WinRate && p.WinRate <= p.WinHigh, $"CI [{p.WinLow}, {p.WinHigh}] around {p.WinRate}");
            Assert.True(double.IsFinite(p.Kl) && double.IsFinite(p.Gold) && double.IsFinite(p.RewardModelScore), $"{p}");
        }
        Assert.True(summary.RewardModelAccuracy is >= 0 and <= 1, $"RM accuracy {summary.RewardModelAccuracy}");

        // Every PPO snapshot was evaluated on held-out prompts (step 0, every SnapshotEvery-th step and the last), step 0 of
        // both runs is the same SFT model sampled from the same seed, and best-of-N covers N = 1, 2, 4, 8.
        var checkpoints = JsonSerializer.Deserialize<List<CheckpointEvaluation>>(File.ReadAllText(Path.Combine(dir, "checkpoints", "checkpoints.json")))!;
        var q = DemoConfig.Quick;
        var expectedSteps = Enumerable.Range(0, q.PpoSteps + 1).Where(s => s % q.SnapshotEvery == 0 || s == q.PpoSteps).ToList();
        foreach (var run in checkpoints.GroupBy(c => c.Run))
            Assert.Equal(expectedSteps, run.Select(c => c.Step));
        Assert.Equal(2, checkpoints.Select(c => c.Run).Distinct().Count());
        var zeros = checkpoints.Where(c => c.Step == 0).ToList();
        Assert.Equal(2, zeros.Count);
        Assert.Equal(zeros[0] with { Run = "" }, zeros[1] with { Run = "" });
        Assert.True(Math.Abs(zeros[0].KlK1) < 1e-3, $"step-0 KL {zeros[0].KlK1}");
        var bestOfN = JsonSerializer.Deserialize<List<BestOfNPoint>>(File.ReadAllText(Path.Combine(dir, "best-of-n", "best_of_n.json")))!;
        Assert.Equal([1, 2, 4, 8], bestOfN.Select(p => p.N));
        var frontier = JsonSerializer.Deserialize<List<CheckpointEvaluation>>(File.ReadAllText(Path.Combine(dir, "frontier", "frontier.json")))!;
        Assert.Equal(DemoConfig.Quick.FrontierBetas.Count, frontier.Count);

        // A resumed run finds every stage finished: it trains nothing (no progress) and returns the same numbers.
        var again = new List<string>();
        var resumed = new DemoPipeline(DemoConfig.Quick).Run(dir, resume: true, new SyncProgress(p => again.Add(p.Stage)));
        Assert.Empty(again);
        Assert.Equal(summary.Ppo, resumed.Ppo);
        Assert.Equal(summary.RewardModelAccuracy, resumed.RewardModelAccuracy);
        // Without resume a used folder is refused rather than overwritten.
        Assert.Throws<IOException>(() => new DemoPipeline(DemoConfig.Quick).Run(dir, resume: false));
    }

    private sealed class SyncProgress(Action<AlignmentProgress> report) : IProgress<AlignmentProgress>
    {
        public void Report(AlignmentProgress value) => report(value);
    }
}
