// The RLHF-specific sections of report.html, built from what the trainers and the evaluator return: learning curves
// from PPO histories, reward-model accuracy and calibration, proxy vs gold reward against √KL (over-optimisation),
// the KL–reward frontier across β, win rates with their intervals, and SFT-vs-PPO samples for the same prompts.
using System.Globalization;
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Runs.Reports;

namespace RlhfSharp.Alignment.Evaluation;

/// <summary>One checkpoint of a run for the over-optimisation chart: its KL to the reference and mean proxy (RM) and gold rewards.</summary>
public sealed record OverOptimisationPoint(string Run, double Kl, double Proxy, double Gold);

/// <summary>One point of Ziegler's frontier: a run (e.g. one β) and the KL and gold reward it reached.</summary>
public sealed record FrontierPoint(string Label, double Kl, double Gold);

public static class RlhfReportSections
{
    /// <summary>The PPO metrics charted, with their axis labels; a metric no run logged is left out.</summary>
    private static readonly (string Key, string Title, string Axis)[] Curves =
    [
        ("objective/rlhf_reward", "RLHF reward (RM score − β·KL)", "reward (RM units)"),
        ("objective/scores", "Reward-model score", "score (RM units)"),
        ("objective/gold", "Gold reward", "gold reward (scorer units)"),
        ("objective/kl", "KL to reference (k1)", "KL (nats per response)"),
        ("objective/beta", "KL coefficient β", "β (RM units per nat)"),
        ("loss/policy", "Policy loss", "loss"),
        ("policy/clipfrac", "Clip fraction", "fraction of tokens clipped"),
    ];

    /// <summary>Line charts of each PPO metric, one series per run; x is the PPO update (1-based).</summary>
    public static ReportSection LearningCurves(HtmlReport report, IReadOnlyDictionary<string, IReadOnlyList<IReadOnlyDictionary<string, double>>> histories)
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentNullException.ThrowIfNull(histories);
        var section = report.Section("learning-curves", "Learning curves (PPO)");
        var charts = new List<string>();
        foreach (var (key, title, axis) in Curves)
        {
            var series = histories
                .Select(h => new ChartSeries(h.Key, h.Value.Select((m, i) => (m, i)).Where(x => x.m.ContainsKey(key)).Select(x => new ChartPoint(x.i + 1, x.m[key])).ToList()))
                .Where(s => s.Points.Count > 0).ToList();
            if (series.Count > 0) charts.Add(SvgChart.Line(new ChartFrame(title, "PPO update", axis), series));
        }
        if (charts.Count == 0) return section.Text("No PPO metrics were logged.");
        return section.Charts(charts);
    }

    /// <summary>Held-out accuracy, loss and expected calibration error, and the reliability diagram of the non-empty bins.</summary>
    public static ReportSection RewardModel(HtmlReport report, RewardEvaluation heldOut)
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentNullException.ThrowIfNull(heldOut);
        var bins = heldOut.Calibration.Where(b => b.Count > 0).Select(b => new ChartPoint(b.MeanPredicted, b.Observed)).ToList();
        return report.Section("reward-model", "Reward model")
            .Figures(
                new ReportFigure("held-out accuracy", Pct(heldOut.Accuracy), $"{heldOut.Pairs} pairs"),
                new ReportFigure("held-out loss", F(heldOut.Loss), "−log σ(r_w − r_l), nats"),
                new ReportFigure("mean margin", F(heldOut.MeanMargin), "r_w − r_l, RM units"),
                new ReportFigure("calibration error", F(heldOut.ExpectedCalibrationError), "ECE"))
            .Charts(SvgChart.Reliability(new ChartFrame("Calibration on held-out pairs", "predicted P(chosen ≻ rejected)", "observed frequency"), bins));
    }

    /// <summary>
    /// Proxy (reward-model) and gold reward against √KL for each run's checkpoints: where gold peaks and falls while
    /// proxy keeps rising, the policy is over-optimising the reward model (Gao et al. 2022 plot against √KL).
    /// </summary>
    public static ReportSection ProxyVsGold(HtmlReport report, IReadOnlyList<OverOptimisationPoint> points)
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentNullException.ThrowIfNull(points);
        var series = new List<ChartSeries>();
        foreach (var run in points.GroupBy(p => p.Run))
        {
            series.Add(new ChartSeries($"{run.Key}: proxy (RM)", run.Select(p => new ChartPoint(Math.Sqrt(Math.Max(0, p.Kl)), p.Proxy)).ToList()));
            series.Add(new ChartSeries($"{run.Key}: gold", run.Select(p => new ChartPoint(Math.Sqrt(Math.Max(0, p.Kl)), p.Gold)).ToList()));
        }
        return report.Section("proxy-vs-gold", "Over-optimisation: proxy vs gold reward")
            .Text("Each point is a checkpoint. The reward model's score (proxy) and the true (gold) reward of its samples, against the square root of its KL to the reference. Where gold falls while proxy rises, the policy exploits the reward model.")
            .Charts(SvgChart.Line(new ChartFrame("Proxy and gold reward vs √KL", "√KL (√nats)", "mean reward"), series));
    }

    /// <summary>Ziegler et al.'s frontier: gold reward reached at each KL across runs (e.g. a sweep of β or KL targets).</summary>
    public static ReportSection Frontier(HtmlReport report, IReadOnlyList<FrontierPoint> points)
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentNullException.ThrowIfNull(points);
        var series = points.Select(p => new ChartSeries(p.Label, [new ChartPoint(p.Kl, p.Gold)])).ToList();
        return report.Section("frontier", "KL–reward frontier")
            .Charts(SvgChart.Scatter(new ChartFrame("Gold reward vs KL across runs", "KL to reference (nats)", "mean gold reward"), series))
            .Table(new ReportTable(["run", "KL (nats)", "gold reward"], points.Select(p => (IReadOnlyList<string>)[p.Label, F(p.Kl), F(p.Gold)]).ToList()));
    }

    /// <summary>Win rates over the baseline with 95% Wilson intervals (ties ½), and each policy's figures beside the baseline's.</summary>
    public static ReportSection WinRates(HtmlReport report, IReadOnlyList<(string Policy, EvaluationResult Result)> evaluations, string baselineName)
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentNullException.ThrowIfNull(evaluations);
        var bars = evaluations.Select(e => new ChartBar(e.Policy, Finite(e.Result.WinRate.Rate), Math.Max(0, Finite(e.Result.WinRate.Rate) - e.Result.WinRate.Low), Math.Max(0, e.Result.WinRate.High - Finite(e.Result.WinRate.Rate)))).ToList();
        var rows = new List<IReadOnlyList<string>>();
        foreach (var (name, r) in evaluations)
        {
            var w = r.WinRate;
            rows.Add([name, $"{Pct(w.Rate)} [{Pct(w.Low)}, {Pct(w.High)}]", $"{w.Wins}/{w.Losses}/{w.Ties}/{w.Skipped}", r.Judge,
                F(r.Policy.MeanGold), F(r.Policy.MeanRewardModel), F(r.Policy.KlK1), F(r.Policy.KlK3), F(r.Policy.MeanLength), F(r.Policy.Distinct1), F(r.Policy.Distinct2)]);
        }
        if (evaluations.Count > 0)
        {
            var b = evaluations[0].Result.Baseline;
            rows.Add([baselineName + " (baseline)", "—", "—", "—", F(b.MeanGold), F(b.MeanRewardModel), F(b.KlK1), F(b.KlK3), F(b.MeanLength), F(b.Distinct1), F(b.Distinct2)]);
        }
        return report.Section("win-rate", $"Win rate over {baselineName}")
            .Charts(SvgChart.Bars(new ChartFrame($"Win rate over {baselineName} (95% Wilson interval, ties ½)", "policy", "win rate", ReferenceY: 0.5), bars))
            .Table(new ReportTable(["policy", "win rate [95% CI]", "W/L/T/skip", "judge", "gold", "RM score", "KL k1 (nats)", "KL k3 (nats)", "length (tokens)", "distinct-1", "distinct-2"], rows));
    }

    /// <summary>The same prompts answered by the baseline (SFT) and the policy (PPO), with the judge's verdict.</summary>
    public static ReportSection Samples(HtmlReport report, IReadOnlyList<EvaluatedSample> samples, string baselineName, string policyName)
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentNullException.ThrowIfNull(samples);
        return report.Section("samples", $"Samples: {baselineName} vs {policyName}")
            .Table(new ReportTable(["prompt", baselineName, policyName, $"verdict for {policyName}"],
                samples.Select(s => (IReadOnlyList<string>)[s.Prompt, s.BaselineResponse, s.PolicyResponse, s.Verdict]).ToList()));
    }

    private static double Finite(double v) => double.IsFinite(v) ? v : 0;
    private static string F(double v) => double.IsNaN(v) ? "—" : v.ToString("0.###", CultureInfo.InvariantCulture);
    private static string Pct(double v) => double.IsNaN(v) ? "—" : v.ToString("0.0%", CultureInfo.InvariantCulture);
}
