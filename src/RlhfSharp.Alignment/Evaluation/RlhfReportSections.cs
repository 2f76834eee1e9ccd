// The RLHF-specific sections of report.html, built from what the trainers and the evaluator return: learning curves
// from PPO histories, reward-model accuracy and calibration, proxy vs gold reward against √KL (over-optimisation),
// the KL–reward frontier across β, win rates with their intervals, and SFT-vs-PPO samples for the same prompts.
using System.Globalization;
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Runs.Reports;

namespace RlhfSharp.Alignment.Evaluation;

/// <summary>One point of Ziegler's frontier: a run (e.g. one β) and the KL and gold reward it reached.</summary>
/// <param name="Curve">Points sharing a curve name (e.g. "fixed β") are joined in order of KL; a point without one stands alone under its label.</param>
public sealed record FrontierPoint(string Label, double Kl, double Gold, string? Curve = null);

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
        ("loss/policy_avg", "Policy loss", "loss"),
        ("policy/clipfrac_avg", "Clip fraction", "fraction of tokens clipped"),
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
    /// Proxy (reward-model) and gold reward against √KL, measured on held-out prompts for each PPO snapshot and for
    /// best-of-N from the reference: where gold peaks and falls while proxy keeps rising, the policy is over-optimising
    /// the reward model (Gao et al. 2022 plot both against √KL). Proxy and gold have different units, so each gets its chart.
    /// </summary>
    public static ReportSection ProxyVsGold(HtmlReport report, IReadOnlyList<CheckpointEvaluation> checkpoints, IReadOnlyList<BestOfNPoint> bestOfN, string referenceName = "SFT")
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentNullException.ThrowIfNull(checkpoints);
        ArgumentNullException.ThrowIfNull(bestOfN);
        var runs = checkpoints.GroupBy(c => c.Run).ToList();
        List<ChartSeries> Series(Func<CheckpointEvaluation, double> y, Func<BestOfNPoint, double> yBon)
        {
            var series = runs.Select(r => new ChartSeries($"PPO {r.Key}", r.OrderBy(c => c.Step).Select(c => new ChartPoint(c.SqrtKl, y(c))).ToList())).ToList();
            if (bestOfN.Count > 0) series.Add(new ChartSeries($"best-of-N from {referenceName}", bestOfN.Select(p => new ChartPoint(p.SqrtKl, yBon(p))).ToList()));
            return series;
        }
        var rows = checkpoints.OrderBy(c => c.Run, StringComparer.Ordinal).ThenBy(c => c.Step)
            .Select(c => (IReadOnlyList<string>)[c.Run, c.Step.ToString(CultureInfo.InvariantCulture), F(c.SqrtKl), F(NoNegativeZero(c.KlK1)), F(c.KlK3), F(c.Proxy), F(c.Gold), F(c.MeanLength)]).ToList();
        return report.Section("proxy-vs-gold", "Over-optimisation: proxy vs gold reward")
            .Text($"Each point of a PPO line is a snapshot of the policy (step 0 is the {referenceName} model), sampled on the same held-out prompts; best-of-N picks, by the reward model, " +
                  $"the best of N {referenceName} samples (N = 1, 2, 4, …), at its analytic KL log N − (N − 1)/N. Where gold falls while the proxy keeps rising, the policy exploits the reward model.")
            .Charts(
                SvgChart.LineWithMarkers(new ChartFrame("Proxy: reward-model score vs √KL", $"√KL to {referenceName} (√nats per response)", "mean RM score (RM units)"), Series(c => c.Proxy, p => p.Proxy)),
                SvgChart.LineWithMarkers(new ChartFrame("Gold reward vs √KL", $"√KL to {referenceName} (√nats per response)", "mean gold reward (scorer units)"), Series(c => c.Gold, p => p.Gold)))
            .Table(new ReportTable(["run", "PPO step", "√KL", "KL k1 (nats)", "KL k3 (nats)", "proxy (RM)", "gold", "length (tokens)"], rows, "Held-out evaluation of every snapshot"));
    }

    /// <summary>Best-of-N from the reference at each N: analytic KL, and the expected proxy and gold of the pick.</summary>
    public static ReportSection BestOfN(HtmlReport report, IReadOnlyList<BestOfNPoint> points, int prompts, string referenceName = "SFT")
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentNullException.ThrowIfNull(points);
        var rows = points.Select(p => (IReadOnlyList<string>)[p.N.ToString(CultureInfo.InvariantCulture), F(p.Kl), F(p.SqrtKl), F(p.Proxy), F(p.Gold)]).ToList();
        return report.Section("best-of-n", "Best-of-N against the reward model")
            .Text($"{prompts.ToString(CultureInfo.InvariantCulture)} held-out prompts, one pool of {(points.Count == 0 ? 0 : points.Max(p => p.N)).ToString(CultureInfo.InvariantCulture)} {referenceName} samples each; " +
                  "each N's figure is the expectation over all N-subsets of the pool of the reward model's pick (the unbiased estimator of Nakano et al. 2021). It is the best-of-N line of the charts above.")
            .Table(new ReportTable(["N", "KL = log N − (N−1)/N (nats)", "√KL", "proxy (RM)", "gold"], rows));
    }

    /// <summary>The adaptive run's KL per update against its target, beside β: whether Ziegler's controller held the leash.</summary>
    public static ReportSection KlControl(HtmlReport report, IReadOnlyList<IReadOnlyDictionary<string, double>> history, double targetKl, string note)
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentNullException.ThrowIfNull(history);
        List<ChartPoint> Points(string key) => history.Select((m, i) => (m, i)).Where(x => x.m.ContainsKey(key)).Select(x => new ChartPoint(x.i + 1, x.m[key])).ToList();
        var klSeries = new List<ChartSeries> { new("KL (k1)", Points("objective/kl")), new("KL (k3)", Points("objective/kl_k3")) }.Where(s => s.Points.Count > 0).ToList();
        var beta = Points("objective/beta");
        var last = history.Count == 0 ? null : history[^1];
        var tail = history.Skip(Math.Max(0, history.Count - 10)).Where(m => m.ContainsKey("objective/kl")).Select(m => m["objective/kl"]).ToList();
        var section = report.Section("kl-control", "KL control of the adaptive run")
            .Text(note)
            .Figures(
                new ReportFigure("target KL", F(targetKl), "nats per response"),
                new ReportFigure($"mean KL, last {tail.Count} updates", tail.Count > 0 ? F(tail.Average()) : "—", "k1, nats per response (one batch is noisy)"),
                new ReportFigure("final β", last is not null && last.TryGetValue("objective/beta", out double b) ? F(b) : "—", "RM units per nat"));
        var charts = new List<string> { SvgChart.Line(new ChartFrame("KL to reference vs target (dashed)", "PPO update", "KL (nats per response)", ReferenceY: targetKl), klSeries) };
        if (beta.Count > 0) charts.Add(SvgChart.Line(new ChartFrame("KL coefficient β", "PPO update", "β (RM units per nat)"), [new ChartSeries("β", beta)]));
        return section.Charts(charts);
    }

    /// <summary>
    /// Ziegler et al.'s frontier: gold reward reached at each KL across runs (e.g. a sweep of β or KL targets). The x axis is
    /// √KL, as in the over-optimisation chart, so an unleashed run at tens of nats does not crowd the leashed ones into a corner.
    /// </summary>
    public static ReportSection Frontier(HtmlReport report, IReadOnlyList<FrontierPoint> points, string referenceName = "SFT")
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentNullException.ThrowIfNull(points);
        static ChartPoint At(FrontierPoint p) => new(Math.Sqrt(Math.Max(0, p.Kl)), p.Gold);
        var series = points.Where(p => p.Curve is not null).GroupBy(p => p.Curve!).Select(g => new ChartSeries(g.Key, g.Select(At).ToList()))
            .Concat(points.Where(p => p.Curve is null).Select(p => new ChartSeries(p.Label, [At(p)]))).ToList();
        return report.Section("frontier", "KL–reward frontier")
            .Text($"Each run's policy at its end, sampled on the held-out prompts: the gold reward it reached and its KL to the {referenceName} model. " +
                  "The fixed-β runs trace how much gold each nat of KL buys; a run below the others' curve spent its KL on the reward model's errors.")
            .Charts(SvgChart.LineWithMarkers(new ChartFrame("Gold reward vs √KL across runs", "√KL to reference (√nats per response)", "mean gold reward (scorer units)"), series))
            .Table(new ReportTable(["run", "KL (nats)", "√KL", "gold reward"], points.Select(p => (IReadOnlyList<string>)[p.Label, F(p.Kl), F(Math.Sqrt(Math.Max(0, p.Kl))), F(p.Gold)]).ToList()));
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

    // A snapshot equal to the reference has k1 ≈ −1e−7 from float rounding, which would print as "-0".
    private static double NoNegativeZero(double v) => Math.Abs(v) < 5e-4 ? 0 : v;

    private static double Finite(double v) => double.IsFinite(v) ? v : 0;
    private static string F(double v) => double.IsNaN(v) ? "—" : v.ToString("0.###", CultureInfo.InvariantCulture);
    private static string Pct(double v) => double.IsNaN(v) ? "—" : v.ToString("0.0%", CultureInfo.InvariantCulture);
}
