// report.html of `rlhf prefrl`: true and predicted (Σ r̂) episode returns over env steps for the run and, with --with-frozen,
// for the frozen-predictor ablation beside it — reward hacking shows as a predicted curve that climbs while the true one does not.
using System.Globalization;
using RlhfSharp.Control.Preferences;
using RlhfSharp.Control.Rl;
using RlhfSharp.Runs.Reports;

namespace RlhfSharp.Cli.Commands;

internal static class PrefRlReport
{
    /// <summary>One run in the report: its name ("online", "frozen"), its metrics rows and its evaluation.</summary>
    internal sealed record Entry(string Name, IReadOnlyList<MetricsRow> Metrics, PreferenceEvaluation Eval);

    public static HtmlReport Build(string envId, int budget, IReadOnlyList<Entry> entries)
    {
        var report = new HtmlReport($"prefrl on {envId}", $"{budget} oracle or human labels; PPO on the learned reward r̂ only");
        var top = report.Section("summary", "Final policies");
        top.Figures([.. entries.SelectMany(e => new[]
        {
            new ReportFigure($"{e.Name}: true return", e.Eval.MeanTrueReturn.ToString("F1", CultureInfo.InvariantCulture), "deterministic evaluation episodes"),
            new ReportFigure($"{e.Name}: r̂ vs true", double.IsFinite(e.Eval.RewardCorrelation) ? e.Eval.RewardCorrelation.ToString("F2", CultureInfo.InvariantCulture) : "n/a",
                "Pearson correlation of Σ r̂ and true return over evaluation episodes"),
        })]);
        var curves = report.Section("curves", "Learning curves");
        curves.Text("Each point is the mean over the episodes that ended in one PPO update, smoothed over 10 updates. The true return is what " +
            "the agent never sees; the predicted return is Σ r̂ over the same episodes (before PPO's normalisation). A frozen predictor " +
            "(fitted once before RL) whose predicted return keeps rising while the true return lags the online run's is reward hacking.");
        curves.Charts(
            SvgChart.Line(new ChartFrame("True episode return", "env steps", "return"),
                [.. entries.Select(e => Series(e.Name, e.Metrics, "charts/episodic_return"))]),
            SvgChart.Line(new ChartFrame("Predicted episode return Σ r̂", "env steps", "Σ r̂"),
                [.. entries.Select(e => Series(e.Name, e.Metrics, "prefrl/predicted_episodic_return"))]));
        return report;
    }

    /// <summary>A metric over env steps, NaN rows (no episode ended) left out, then a trailing mean over 10 points.</summary>
    internal static ChartSeries Series(string name, IReadOnlyList<MetricsRow> rows, string key)
    {
        var raw = rows.Where(r => r.Values.TryGetValue(key, out var v) && double.IsFinite(v)).Select(r => (X: (double)r.GlobalStep, Y: r.Values[key])).ToList();
        var pts = new List<ChartPoint>(raw.Count);
        for (int i = 0; i < raw.Count; i++)
        {
            int from = Math.Max(0, i - 9);
            pts.Add(new ChartPoint(raw[i].X, raw.Skip(from).Take(i - from + 1).Average(p => p.Y)));
        }
        return new ChartSeries(name, pts);
    }
}
