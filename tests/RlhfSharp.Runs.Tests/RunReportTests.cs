// report.html for any run folder: the sections follow what the run logged (RL curves for an RL run, calibration for a
// reward model), every metric gets a chart, and a folder that is not a run is refused naming the missing file.
using System.Text.RegularExpressions;
using RlhfSharp.Runs.Reports;

namespace RlhfSharp.Runs.Tests;

public sealed class RunReportTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("runreport-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private sealed record Cfg(double KlCoef, int Steps);

    [Fact]
    public void RlRun_HasKlRewardAndEntropyCurves_AndEveryMetric()
    {
        string path = Path.Combine(_dir, "ppo");
        using (var run = RunDirectory.Open(path, resume: false))
        {
            run.UpdateConfig(root => { root["command"] = "ppo"; root["args"] = new System.Text.Json.Nodes.JsonArray("ppo", "--steps", "3"); });
            run.WriteConfig(new Cfg(0.05, 3));
            for (int s = 1; s <= 3; s++)
                run.Log(s, new Dictionary<string, double> { ["objective/kl"] = 0.1 * s, ["objective/scores"] = s, ["objective/entropy"] = 2 - 0.1 * s, ["val/clipfrac"] = 0.01 });
            run.MarkFinished(3, Path.Combine(_dir, "out"));
        }
        string html = File.ReadAllText(RunReport.Write(path));
        Assert.Equal(["The run", "Headline curves", "Every metric"], Regex.Matches(html, "<h2>([^<]*)</h2>").Select(m => m.Groups[1].Value));
        foreach (var title in new[] { "Reward", "KL to the reference", "Entropy" }) Assert.Contains($">{title}</text>", html);
        Assert.DoesNotContain(">Loss</text>", html); // nothing of a loss was logged
        Assert.Contains("val/clipfrac", html);
        Assert.Contains("rlhf ppo --steps 3", html);
        Assert.Contains("kl_coef", html); // the trainer's record, snake_case
        Assert.Contains("finished", html);
    }

    [Fact]
    public void RewardRun_HasCalibration()
    {
        string path = Path.Combine(_dir, "rm");
        using (var run = RunDirectory.Open(path, resume: false))
            run.Log(1, new Dictionary<string, double> { ["train/loss"] = 0.7, ["eval/accuracy"] = 0.6 });
        File.WriteAllText(Path.Combine(path, "reward_eval.json"),
            """{"Accuracy":0.75,"Loss":0.5,"MeanMargin":0.3,"Pairs":8,"ExpectedCalibrationError":0.125,"Calibration":[{"Low":0,"High":0.5,"Count":4,"MeanPredicted":0.3,"Observed":0.25},{"Low":0.5,"High":1,"Count":4,"MeanPredicted":0.7,"Observed":0.75}]}""");
        string html = File.ReadAllText(RunReport.Write(path));
        Assert.Contains("Reward-model calibration (held out)", html);
        Assert.Contains(">0.125<", html);
        Assert.Contains(">Reliability</text>", html);
    }

    [Fact]
    public void NotARunFolder_IsRefusedNamingTheFile()
    {
        var ex = Assert.Throws<FileNotFoundException>(() => RunReport.Write(_dir));
        Assert.Contains(Path.Combine(_dir, "metrics.jsonl"), ex.Message);
    }
}
