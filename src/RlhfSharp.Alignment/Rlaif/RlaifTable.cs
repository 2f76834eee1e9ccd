// The RLAIF table: one row per condition over its seeds — labels the reward model learned from, its accuracy on held-out
// gold-ordered pairs, gold and KL against the SFT model (mean ± sample std over seeds), and the win rate over SFT pooled over
// every seed's judged prompts with Wilson's 95% interval (ties ½) — and the judge's line: agreement with the oracle on the
// N pairs, position flips, ties and skips (mean ± std over seeds). Written as markdown, JSON and an HTML report.
using System.Globalization;
using System.Text;
using System.Text.Json.Serialization;
using RlhfSharp.Alignment.Comparison;
using RlhfSharp.Runs.Reports;

namespace RlhfSharp.Alignment.Rlaif;

/// <summary>One condition over its seeds.</summary>
public sealed record RlaifRow(
    [property: JsonPropertyName("condition")] string Condition,
    [property: JsonPropertyName("seeds")] int Seeds,
    [property: JsonPropertyName("labels")] double Labels,
    [property: JsonPropertyName("reward_accuracy")] double RewardAccuracy,
    [property: JsonPropertyName("reward_accuracy_std")] double RewardAccuracyStd,
    [property: JsonPropertyName("gold")] double Gold,
    [property: JsonPropertyName("sft_gold")] double SftGold,
    [property: JsonPropertyName("gold_delta")] double GoldDelta,
    [property: JsonPropertyName("gold_delta_std")] double GoldDeltaStd,
    [property: JsonPropertyName("kl")] double Kl,
    [property: JsonPropertyName("kl_std")] double KlStd,
    [property: JsonPropertyName("win_rate")] double WinRate,
    [property: JsonPropertyName("win_low")] double WinLow,
    [property: JsonPropertyName("win_high")] double WinHigh,
    [property: JsonPropertyName("win_rate_std")] double WinRateStd,
    [property: JsonPropertyName("not_applicable")] string? NotApplicable = null);

/// <summary>The judge over its seeds (mean and sample std of each seed's share).</summary>
public sealed record RlaifJudgeRow(
    [property: JsonPropertyName("seeds")] int Seeds,
    [property: JsonPropertyName("pairs")] int Pairs,
    [property: JsonPropertyName("oracle_agreement")] double OracleAgreement,
    [property: JsonPropertyName("oracle_agreement_std")] double OracleAgreementStd,
    [property: JsonPropertyName("decided_agreement")] double DecidedAgreement,
    [property: JsonPropertyName("gold_agreement")] double GoldAgreement,
    [property: JsonPropertyName("position_flips")] double PositionFlips,
    [property: JsonPropertyName("position_flips_std")] double PositionFlipsStd,
    [property: JsonPropertyName("labelled")] double Labelled,
    [property: JsonPropertyName("ties")] double Ties,
    [property: JsonPropertyName("skips")] double Skips,
    [property: JsonPropertyName("judge_seconds")] double JudgeSeconds);

public static class RlaifTable
{
    /// <summary>What each condition is, for the table.</summary>
    public static string Display(string condition, RlaifConfig c) => condition switch
    {
        "judge" => $"(a) PPO on N = {c.Pairs} judge labels",
        "oracle" => $"(b) PPO on N = {c.Pairs} oracle labels",
        "oracle-n" => $"(c) PPO on the judge's n = {c.JudgePairs} oracle labels",
        _ => condition,
    };

    public static List<RlaifRow> Rows(IReadOnlyList<RlaifSeedResult> seeds) =>
        [.. RlaifExperiment.Conditions.Select(condition =>
        {
            var all = seeds.SelectMany(s => s.Cells).Where(c => c.Condition == condition).OrderBy(c => c.Seed).ToList();
            // Seeds whose condition had too few labels are left out of the means and named; none left: the row says why.
            var cells = all.Where(c => c.NotApplicable is null).ToList();
            string? na = all.Count > cells.Count ? string.Join("; ", all.Where(c => c.NotApplicable is not null).Select(c => $"seed {c.Seed}: {c.NotApplicable}")) : null;
            if (cells.Count == 0)
                return new RlaifRow(condition, 0, all.Average(c => c.Labels), double.NaN, double.NaN, double.NaN, double.NaN, double.NaN, double.NaN, double.NaN, double.NaN,
                    double.NaN, double.NaN, double.NaN, double.NaN, na);
            var w = Evaluation.WinRate.FromCounts(cells.Sum(c => c.Wins), cells.Sum(c => c.Losses), cells.Sum(c => c.Ties));
            return new RlaifRow(condition, cells.Count, cells.Average(c => c.Labels), cells.Average(c => c.RewardAccuracy), ComparisonTable.Std(cells.Select(c => c.RewardAccuracy)),
                cells.Average(c => c.Gold), cells.Average(c => c.SftGold), cells.Average(c => c.GoldDelta), ComparisonTable.Std(cells.Select(c => c.GoldDelta)),
                cells.Average(c => c.Kl), ComparisonTable.Std(cells.Select(c => c.Kl)), w.Rate, w.Low, w.High, ComparisonTable.Std(cells.Select(c => c.WinRate.Rate)), na);
        })];

    public static RlaifJudgeRow Judge(IReadOnlyList<RlaifSeedResult> seeds)
    {
        var j = seeds.Select(s => s.Judge).ToList();
        return new RlaifJudgeRow(seeds.Count, j[0].Pairs, j.Average(x => x.OracleAgreement), ComparisonTable.Std(j.Select(x => x.OracleAgreement)),
            j.Average(x => x.DecidedAgreement), j.Average(x => x.GoldAgreement), j.Average(x => x.PositionFlips), ComparisonTable.Std(j.Select(x => x.PositionFlips)),
            j.Average(x => (double)x.Labelled), j.Average(x => (double)x.Ties), j.Average(x => (double)x.Skips), seeds.Average(s => s.JudgeSeconds));
    }

    /// <summary>The markdown: the condition table, then the judge's line, headed by the command.</summary>
    public static string Markdown(IReadOnlyList<RlaifRow> rows, RlaifJudgeRow judge, RlaifConfig c, string task, string command)
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"RLAIF on the {task} task, {rows[0].Seeds} seed(s) from seed {c.Seed}: reward model ({c.RewardEpochs} epochs) then PPO ({c.PpoSteps} × {c.PpoBatchSize} episodes, adaptive β from {F(c.InitialKlCoef, "0.###")} to KL {F(c.TargetKl, "0.##")}) per condition, the same settings for all three. ");
        sb.Append(CultureInfo.InvariantCulture, $"Gold and KL (k1) against the SFT model on {c.EvalPrompts} held-out prompts; ± is the std over seeds; the win rate pools every seed's prompts (95% Wilson interval, ties ½: it counts prompts, not seeds, so the spread between seeds is given beside it); RM accuracy is on {c.RewardEvalPairs} held-out SFT pairs ordered by gold (equal scores left out).\n\n");
        sb.Append("Command: `").Append(command).Append("`\n\n");
        double sftGold = rows.FirstOrDefault(r => r.Seeds > 0)?.SftGold ?? double.NaN;
        sb.Append(CultureInfo.InvariantCulture, $"| condition | labels | RM accuracy on gold | gold (SFT {F(sftGold, "0.000")}) | Δgold vs SFT | KL to SFT (nats) | win rate over SFT [95% CI] | win rate std over seeds | seeds |\n");
        sb.Append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n");
        foreach (var r in rows)
            sb.Append(CultureInfo.InvariantCulture,
                $"| {Display(r.Condition, c)} | {F(r.Labels, "0")} | {F(r.RewardAccuracy, "0.000")} ± {F(r.RewardAccuracyStd, "0.000")} | {F(r.Gold, "0.000")} | {Signed(r.GoldDelta)} ± {F(r.GoldDeltaStd, "0.000")} | {F(r.Kl, "0.00")} ± {F(r.KlStd, "0.00")} | {F(r.WinRate, "0.000")} [{F(r.WinLow, "0.000")}, {F(r.WinHigh, "0.000")}] | {F(r.WinRateStd, "0.000")} | {r.Seeds} |\n");
        foreach (var r in rows.Where(r => r.NotApplicable is not null))
            sb.Append(CultureInfo.InvariantCulture, $"\nn/a in {Display(r.Condition, c)}: {r.NotApplicable}.\n");
        sb.Append(CultureInfo.InvariantCulture,
            $"\nJudge (trained on n = {c.JudgePairs} oracle labels, {c.JudgeSteps} steps; asked about the N = {judge.Pairs} pairs in both orders, `label judge`'s question and rule): " +
            $"agreement with the oracle {P(judge.OracleAgreement)} ± {P(judge.OracleAgreementStd)} (ties and skips count against; {P(judge.DecidedAgreement)} of the pairs it decided), " +
            $"with gold {P(judge.GoldAgreement)}; position flips {P(judge.PositionFlips)} ± {P(judge.PositionFlipsStd)}; per seed {F(judge.Labelled, "0")} labels, {F(judge.Ties, "0")} ties, {F(judge.Skips, "0")} skips; " +
            $"training {F(judge.JudgeSeconds, "0")} s per seed.\n");
        return sb.ToString();
    }

    /// <summary>The HTML report: settings, the win-rate and RM-accuracy charts, the table, the judge's figures.</summary>
    public static HtmlReport Report(IReadOnlyList<RlaifRow> rows, RlaifJudgeRow judge, RlaifConfig c, string task, string command, string subtitle)
    {
        var report = new HtmlReport("rlhf rlaif", subtitle);
        report.Section("setup", "Setup")
            .Text($"Command: {command}")
            .Text($"Task: {task}. Per seed, {c.JudgePairs + c.Pairs} pairs of SFT samples labelled by the oracle; the SFT model fine-tuned into a judge on the first n = {c.JudgePairs}; " +
                  $"the judge labels the other N = {c.Pairs} in both orders (a tie when the orders disagree). Conditions: (a) the N judge labels, (b) the same N pairs' oracle labels, " +
                  "(c) the n oracle labels the judge learned from; each trains a reward model and PPO with the same settings, then is judged by gold against SFT.");
        var bars = rows.Select(r => new ChartBar(Display(r.Condition, c), Finite(r.WinRate), Math.Max(0, Finite(r.WinRate - r.WinLow)), Math.Max(0, Finite(r.WinHigh - r.WinRate)))).ToList();
        var acc = rows.Select(r => new ChartBar(Display(r.Condition, c), Finite(r.RewardAccuracy), Finite(r.RewardAccuracyStd), Finite(r.RewardAccuracyStd))).ToList();
        report.Section("table", "Conditions")
            .Charts(
                SvgChart.Bars(new ChartFrame("Win rate over SFT by gold (95% Wilson interval)", "condition", "win rate", ReferenceY: 0.5), bars),
                SvgChart.Bars(new ChartFrame("Reward-model accuracy on gold-ordered held-out pairs (± std over seeds)", "condition", "accuracy", ReferenceY: 0.5), acc))
            .Table(new ReportTable(["condition", "labels", "RM accuracy", "gold", "Δgold ± std", "KL ± std", "win rate [95% CI]", "win rate std over seeds", "seeds"],
                rows.Select(r => (IReadOnlyList<string>)[Display(r.Condition, c), F(r.Labels, "0"), $"{F(r.RewardAccuracy, "0.000")} ± {F(r.RewardAccuracyStd, "0.000")}", F(r.Gold, "0.000"),
                    $"{Signed(r.GoldDelta)} ± {F(r.GoldDeltaStd, "0.000")}", $"{F(r.Kl, "0.00")} ± {F(r.KlStd, "0.00")}",
                    $"{F(r.WinRate, "0.000")} [{F(r.WinLow, "0.000")}, {F(r.WinHigh, "0.000")}]", F(r.WinRateStd, "0.000"), r.Seeds.ToString(CultureInfo.InvariantCulture)]).ToList(),
                $"SFT gold {F(rows.FirstOrDefault(r => r.Seeds > 0)?.SftGold ?? double.NaN, "0.000")}" + string.Concat(rows.Where(r => r.NotApplicable is not null).Select(r => $"; n/a in {r.Condition}: {r.NotApplicable}"))));
        report.Section("judge", "The judge")
            .Table(new ReportTable(["pairs", "agreement with oracle", "agreement (decided pairs)", "agreement with gold", "position flips", "labels", "ties", "skips", "training s"],
                [[judge.Pairs.ToString(CultureInfo.InvariantCulture), $"{P(judge.OracleAgreement)} ± {P(judge.OracleAgreementStd)}", P(judge.DecidedAgreement), P(judge.GoldAgreement),
                  $"{P(judge.PositionFlips)} ± {P(judge.PositionFlipsStd)}", F(judge.Labelled, "0"), F(judge.Ties, "0"), F(judge.Skips, "0"), F(judge.JudgeSeconds, "0")]],
                "Means over seeds (± std). A position flip: the judge named the same position in both orders, so its choice changed with the order."));
        return report;
    }

    private static double Finite(double v) => double.IsFinite(v) ? v : 0;
    private static string F(double v, string format) => double.IsNaN(v) ? "—" : v.ToString(format, CultureInfo.InvariantCulture);
    private static string P(double v) => double.IsNaN(v) ? "—" : v.ToString("P1", CultureInfo.InvariantCulture);
    private static string Signed(double v) => double.IsNaN(v) ? "—" : (v >= 0 ? "+" : "") + v.ToString("0.000", CultureInfo.InvariantCulture);
}
