// report.html of `rlhf overopt` and its plain-text table: α and β with 95% bootstrap intervals per (RM size, comparisons),
// the paper's claims with verdicts, and per RM size the measured gold gains against d = √KL with the fitted curves
// (best-of-n: d·(α − β·d); RL: d·(α − β·log d)), points and curve of one comparison count in one colour.
using System.Globalization;
using System.Text;
using RlhfSharp.Runs.Reports;

namespace RlhfSharp.Alignment.Evaluation;

public static class OverOptimisationReport
{
    public static readonly IReadOnlyList<string> TableHeader =
        ["RM size", "comparisons", "seeds", "RM accuracy", "α_bon [95%]", "β_bon [95%]", "α_RL [95%]", "β_RL [95%]"];

    /// <summary>One row per (RM size, comparisons): the fitted α, β with their intervals.</summary>
    public static IReadOnlyList<IReadOnlyList<string>> TableRows(OverOptimisationResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        static string Alpha(ScalingLawFit? f) => f is null ? "—" : $"{F(f.Alpha)} [{F(f.AlphaLow)}, {F(f.AlphaHigh)}]";
        static string Beta(ScalingLawFit? f) => f is null ? "—" : $"{F(f.Beta)} [{F(f.BetaLow)}, {F(f.BetaHigh)}]";
        return [.. result.Fits.Select(r => (IReadOnlyList<string>)[r.RmSize, r.Comparisons.ToString(CultureInfo.InvariantCulture), r.Seeds.ToString(CultureInfo.InvariantCulture),
            F(r.RmHeldOutAccuracy), Alpha(r.BestOfN), Beta(r.BestOfN), Alpha(r.Rl), Beta(r.Rl)])];
    }

    /// <summary>The table and the claims as Markdown (table.md in the run folder, and the CLI's output).</summary>
    public static string Markdown(OverOptimisationResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        var sb = new StringBuilder();
        sb.Append("| ").AppendJoin(" | ", TableHeader).Append(" |\n|").Append(string.Concat(Enumerable.Repeat("---|", TableHeader.Count))).Append('\n');
        foreach (var row in TableRows(result)) sb.Append("| ").AppendJoin(" | ", row).Append(" |\n");
        sb.Append("\n| claim | verdict | numbers |\n|---|---|---|\n");
        foreach (var c in result.Claims) sb.Append($"| {c.Claim} | {c.Verdict} | {c.Evidence} |\n");
        return sb.ToString();
    }

    public static void Write(string path, OverOptimisationResult result, OverOptimisationConfig config)
    {
        ArgumentNullException.ThrowIfNull(result);
        ArgumentNullException.ThrowIfNull(config);
        int planned = config.Cells().Count;
        var report = new HtmlReport("Reward-model over-optimisation (Gao et al. 2022)",
            $"story world; policy {config.PolicySize}; RM sizes {string.Join(", ", config.RmSizes)}; comparisons {string.Join(", ", config.Comparisons)}; seeds {string.Join(", ", config.Seeds)}" +
            (result.Cells.Count < planned ? $" — partial: {result.Cells.Count} of {planned} cells finished" : ""));
        report.Section("fits", "Fitted α and β")
            .Text("d = √KL(π‖π_SFT); R = gold(π) − gold(π_SFT) from the story world's gold scorer. Best-of-n: R = d·(α_bon − β_bon·d) at KL = log n − (n−1)/n; " +
                  $"PPO (fixed β = {F(config.KlCoef)}) snapshots: R = d·(α_RL − β_RL·log d). Least squares on R; intervals are 95% bootstrap percentiles ({config.Bootstrap} resamples of seeds, then of points within each seed).")
            .Table(new ReportTable(TableHeader, TableRows(result)));
        report.Section("claims", "The paper's claims, checked")
            .Table(new ReportTable(["claim", "verdict", "numbers"], [.. result.Claims.Select(c => (IReadOnlyList<string>)[c.Claim, c.Verdict, c.Evidence])]));
        var sizes = result.Fits.Select(f => f.RmSize).Distinct().ToList();
        foreach (string size in sizes)
        {
            var rows = result.Fits.Where(f => f.RmSize == size).OrderBy(f => f.Comparisons).ToList();
            string Chart(OverOptimisationForm form)
            {
                var series = new List<ChartSeries>();
                for (int i = 0; i < rows.Count; i++)
                {
                    var row = rows[i];
                    var cells = result.Cells.Where(c => c.Cell.RmSize == size && c.Cell.Comparisons == row.Comparisons).ToList();
                    var points = form == OverOptimisationForm.BestOfN
                        ? cells.SelectMany(c => c.BestOfN.Select(p => new ChartPoint(p.D, p.GoldGain))).ToList()
                        : cells.SelectMany(c => c.Rl.Select(p => new ChartPoint(p.D, p.GoldGain))).ToList();
                    series.Add(new ChartSeries($"{row.Comparisons} comparisons", points, PointsOnly: true, Color: i));
                    var fit = form == OverOptimisationForm.BestOfN ? row.BestOfN : row.Rl;
                    double maxD = form == OverOptimisationForm.BestOfN ? row.MaxBestOfND : row.MaxRlD;
                    if (fit is not null && maxD > 0)
                        series.Add(new ChartSeries($"fit, {row.Comparisons}", [.. Enumerable.Range(0, 61).Select(k => new ChartPoint(maxD * k / 60, fit.Predict(maxD * k / 60)))], Color: i));
                }
                string title = form == OverOptimisationForm.BestOfN ? $"Best-of-n, RM {size}" : $"PPO (RL), RM {size}";
                return SvgChart.Line(new ChartFrame(title, "d = √KL to SFT (√nats per response)", "gold gain over SFT (scorer units)", ReferenceY: 0), series);
            }
            report.Section("curves-" + size, $"Gold gain vs √KL, RM {size}")
                .Text("Points: every measured n (best-of-n) or PPO snapshot of every seed; lines: the fitted forms, in the colour of their comparison count.")
                .Charts(Chart(OverOptimisationForm.BestOfN), Chart(OverOptimisationForm.Rl));
        }
        var cellRows = result.Cells.Select(c => (IReadOnlyList<string>)[c.Cell.Name, F(c.RmHeldOutAccuracy),
            string.Join(" ", c.BestOfN.Select(p => $"n{p.N}:{F(p.GoldGain)}")), string.Join(" ", c.Rl.Select(p => $"KL {F(p.Kl)}:{F(p.GoldGain)}"))]).ToList();
        report.Section("cells", "Every cell")
            .Table(new ReportTable(["cell", "RM accuracy", "best-of-n gold gain by n", "PPO gold gain by KL (nats)"], cellRows));
        report.Write(path);
    }

    private static string F(double v) => double.IsNaN(v) ? "—" : v.ToString("0.###", CultureInfo.InvariantCulture);
}
