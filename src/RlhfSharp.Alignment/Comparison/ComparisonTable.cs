// The comparison table: one row per method × task over its seeds — gold (or pass@1) gained over the SFT model (mean and
// sample std over seeds), KL to the SFT model (mean ± std), win rate over it from the pooled comparisons of all seeds with
// Wilson's 95% interval, planned steps and mean wall time — written as markdown, JSON and an HTML report with one
// gold-vs-KL chart and one win-rate chart per task.
using System.Globalization;
using System.Text;
using System.Text.Json.Serialization;
using RlhfSharp.Runs.Reports;

namespace RlhfSharp.Alignment.Comparison;

/// <summary>One method on one task over its seeds.</summary>
public sealed record ComparisonRow(
    [property: JsonPropertyName("task")] string Task,
    [property: JsonPropertyName("method")] string Method,
    [property: JsonPropertyName("steps")] int Steps,
    [property: JsonPropertyName("seeds")] int Seeds,
    [property: JsonPropertyName("gold_name")] string GoldName,
    [property: JsonPropertyName("gold")] double Gold,
    [property: JsonPropertyName("sft_gold")] double SftGold,
    [property: JsonPropertyName("gold_delta")] double GoldDelta,
    [property: JsonPropertyName("gold_delta_std")] double GoldDeltaStd,
    [property: JsonPropertyName("kl")] double Kl,
    [property: JsonPropertyName("kl_std")] double KlStd,
    [property: JsonPropertyName("win_rate")] double WinRate,
    [property: JsonPropertyName("win_low")] double WinLow,
    [property: JsonPropertyName("win_high")] double WinHigh,
    [property: JsonPropertyName("wall_seconds")] double WallSeconds,
    [property: JsonPropertyName("not_applicable")] string? NotApplicable = null);

public static class ComparisonTable
{
    /// <summary>Rows in the order of <paramref name="tasks"/> then <paramref name="methods"/>, for the pairs that have cells.</summary>
    public static List<ComparisonRow> Rows(IReadOnlyList<CellResult> cells, IReadOnlyList<string> tasks, IReadOnlyList<string> methods, Func<string, bool> verifiable)
    {
        var rows = new List<ComparisonRow>();
        foreach (string task in tasks)
            foreach (string method in methods)
            {
                var mine = cells.Where(c => c.Task == task && c.Method == method).OrderBy(c => c.Seed).ToList();
                if (mine.Count == 0) continue;
                if (mine.FirstOrDefault(c => c.NotApplicable is not null) is { } na)
                {
                    rows.Add(new ComparisonRow(task, method, na.Steps, mine.Count, verifiable(task) ? "pass@1" : "gold", double.NaN, double.NaN, double.NaN, double.NaN,
                        double.NaN, double.NaN, double.NaN, double.NaN, double.NaN, double.NaN, na.NotApplicable));
                    continue;
                }
                var w = Evaluation.WinRate.FromCounts(mine.Sum(c => c.Wins), mine.Sum(c => c.Losses), mine.Sum(c => c.Ties));
                rows.Add(new ComparisonRow(task, method, mine[0].Steps, mine.Count, verifiable(task) ? "pass@1" : "gold",
                    mine.Average(c => c.Gold), mine.Average(c => c.SftGold), mine.Average(c => c.GoldDelta), Std(mine.Select(c => c.GoldDelta)),
                    mine.Average(c => c.Kl), Std(mine.Select(c => c.Kl)), w.Rate, w.Low, w.High, mine.Average(c => c.TrainSeconds)));
            }
        return rows;
    }

    /// <summary>Sample standard deviation (n − 1); 0 for a single value.</summary>
    public static double Std(IEnumerable<double> values)
    {
        var v = values.ToList();
        if (v.Count < 2) return 0;
        double mean = v.Average();
        return Math.Sqrt(v.Sum(x => (x - mean) * (x - mean)) / (v.Count - 1));
    }

    /// <summary>The markdown table (one per task), headed by the budget and the command.</summary>
    public static string Markdown(IReadOnlyList<ComparisonRow> rows, ComparisonPlan plan, string command)
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"Budget: {(plan.BudgetSeconds > 0 ? $"{F(plan.BudgetSeconds, "0.#")} s per method × task × seed, calibrated into the steps below" : "none (steps given)")}. ");
        sb.Append("Gold (pass@1 on arithmetic) and KL are against the SFT model on held-out prompts; ± is the std over seeds; the win rate pools every seed's comparisons (95% Wilson interval, ties ½).\n\n");
        sb.Append("Command: `").Append(command).Append("`\n");
        foreach (var group in rows.GroupBy(r => r.Task))
        {
            var first = group.FirstOrDefault(r => r.NotApplicable is null) ?? group.First();
            sb.Append(CultureInfo.InvariantCulture, $"\n**{group.Key}** (SFT {first.GoldName} {F(first.SftGold, "0.000")})\n\n");
            sb.Append($"| method | steps | Δ{first.GoldName} vs SFT | KL to SFT (nats) | win rate over SFT [95% CI] | wall s | seeds |\n");
            sb.Append("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
            foreach (var r in group)
                if (r.NotApplicable is not null) sb.Append($"| {ComparisonMethods.Display(r.Method)} | {r.Steps} | n/a: {r.NotApplicable} | | | | {r.Seeds} |\n");
                else sb.Append(CultureInfo.InvariantCulture,
                    $"| {ComparisonMethods.Display(r.Method)} | {r.Steps} | {Signed(r.GoldDelta)} ± {F(r.GoldDeltaStd, "0.000")} | {F(r.Kl, "0.00")} ± {F(r.KlStd, "0.00")} | {F(r.WinRate, "0.000")} [{F(r.WinLow, "0.000")}, {F(r.WinHigh, "0.000")}] | {F(r.WallSeconds, "0.0")} | {r.Seeds} |\n");
        }
        return sb.ToString();
    }

    /// <summary>The HTML report: the settings, then per task a gold-vs-KL chart, a win-rate chart and the table.</summary>
    public static HtmlReport Report(IReadOnlyList<ComparisonRow> rows, ComparisonPlan plan, string command, string subtitle)
    {
        var report = new HtmlReport("rlhf compare", subtitle);
        report.Section("setup", "Setup")
            .Text($"Command: {command}")
            .Text("Every method starts from the task's SFT model, is rewarded by the task's own scorer (preference methods: pairs labelled by it), " +
                  "and runs the steps the plan gives it. Gold is measured on held-out prompts; pass@1 on the verifiable task; KL is k1 against the SFT model; " +
                  "the win rate pools every seed's judged pairs (95% Wilson interval, ties ½).")
            .Table(new ReportTable(["task", "method", "steps", "s per step (calibrated)", "overhead s"],
                plan.Entries.Select(e => (IReadOnlyList<string>)[e.Task, ComparisonMethods.Display(e.Method), e.Steps.ToString(CultureInfo.InvariantCulture),
                    e.SecondsPerStep is double s ? F(s, "0.###") : "—", e.OverheadSeconds is double o ? F(o, "0.##") : "—"]).ToList(),
                plan.BudgetSeconds > 0 ? $"Budget {F(plan.BudgetSeconds, "0.#")} s per cell, calibrated on this machine." : "Steps given, no budget."));
        foreach (var group in rows.GroupBy(r => r.Task))
        {
            var na = group.Where(r => r.NotApplicable is not null).ToList();
            var list = group.Where(r => r.NotApplicable is null).ToList();
            if (list.Count == 0) list = na;
            string gold = list[0].GoldName;
            var points = list.Select((r, i) => new ChartSeries(ComparisonMethods.Display(r.Method), [new ChartPoint(Math.Sqrt(Math.Max(0, r.Kl)), r.GoldDelta)])).ToList();
            var bars = list.Select(r => new ChartBar(ComparisonMethods.Display(r.Method), Finite(r.WinRate), Math.Max(0, Finite(r.WinRate) - r.WinLow), Math.Max(0, r.WinHigh - Finite(r.WinRate)))).ToList();
            report.Section("task-" + group.Key, $"Task: {group.Key}")
                .Charts(
                    SvgChart.Scatter(new ChartFrame($"Δ{gold} over SFT vs √KL ({group.Key})", "√KL to SFT (√nats)", $"Δ{gold}", ReferenceY: 0), points),
                    SvgChart.Bars(new ChartFrame($"Win rate over SFT ({group.Key}; 95% Wilson interval)", "method", "win rate", ReferenceY: 0.5), bars))
                .Table(new ReportTable(["method", "steps", $"{gold}", $"Δ{gold} ± std", "KL ± std", "win rate [95% CI]", "wall s", "seeds"],
                    list.Select(r => (IReadOnlyList<string>)[ComparisonMethods.Display(r.Method), r.Steps.ToString(CultureInfo.InvariantCulture), F(r.Gold, "0.000"),
                        $"{Signed(r.GoldDelta)} ± {F(r.GoldDeltaStd, "0.000")}", $"{F(r.Kl, "0.00")} ± {F(r.KlStd, "0.00")}",
                        $"{F(r.WinRate, "0.000")} [{F(r.WinLow, "0.000")}, {F(r.WinHigh, "0.000")}]", F(r.WallSeconds, "0.0"), r.Seeds.ToString(CultureInfo.InvariantCulture)]).ToList(),
                    $"SFT {gold}: {F(list[0].SftGold, "0.000")}" + string.Concat(na.Select(r => $"; {ComparisonMethods.Display(r.Method)} n/a: {r.NotApplicable}"))));
        }
        return report;
    }

    private static double Finite(double v) => double.IsFinite(v) ? v : 0;
    private static string F(double v, string format) => double.IsNaN(v) ? "—" : v.ToString(format, CultureInfo.InvariantCulture);
    private static string Signed(double v) => double.IsNaN(v) ? "—" : (v >= 0 ? "+" : "") + v.ToString("0.000", CultureInfo.InvariantCulture);
}
