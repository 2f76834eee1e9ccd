// The RLHF report sections: every section present in report.html, charts built from the inputs (a series per run,
// the non-empty calibration bins, one bar per policy), and metrics no run logged left out.
using System.Xml.Linq;
using RlhfSharp.Alignment.Evaluation;
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Alignment.Sampling;
using RlhfSharp.Runs.Reports;

namespace RlhfSharp.Alignment.Tests;

public sealed class RlhfReportTests
{
    private static IReadOnlyList<IReadOnlyDictionary<string, double>> History(double beta, int n) =>
        Enumerable.Range(0, n).Select(i => (IReadOnlyDictionary<string, double>)new Dictionary<string, double>
        {
            ["objective/rlhf_reward"] = i * 0.1, ["objective/kl"] = i * (beta == 0 ? 1.0 : 0.3), ["objective/beta"] = beta, ["policy/clipfrac_avg"] = 0.1,
        }).ToList();

    private static List<XElement> Svgs(string html, string sectionId)
    {
        int start = html.IndexOf($"<section id=\"{sectionId}\"", StringComparison.Ordinal);
        Assert.True(start >= 0, $"section {sectionId} is missing");
        int end = html.IndexOf("</section>", start, StringComparison.Ordinal);
        var body = html[start..(end + "</section>".Length)];
        return XElement.Parse(body).Descendants().Where(e => e.Name.LocalName == "svg").ToList();
    }

    [Fact]
    public void Given_runs_an_RM_evaluation_and_win_rates_When_the_report_is_built_Then_every_section_is_present_with_charts_from_the_inputs()
    {
        var report = new HtmlReport("RLHF demo");
        RlhfReportSections.LearningCurves(report, new Dictionary<string, IReadOnlyList<IReadOnlyDictionary<string, double>>> { ["adaptive β"] = History(0.1, 10), ["β = 0"] = History(0, 10) });
        var calibration = new List<CalibrationBin> { new(0.5, 0.6, 10, 0.55, 0.5), new(0.6, 0.7, 0, double.NaN, double.NaN), new(0.7, 0.8, 5, 0.74, 0.8) };
        RlhfReportSections.RewardModel(report, new RewardEvaluation(0.8, 0.45, 1.2, 40, 0.04, calibration));
        RlhfReportSections.ProxyVsGold(report, [new("β = 0", 0, 0, 0.3, 0, 0, 20), new("β = 0", 6, 1.0, 0.2, 16, 15, 18), new("adaptive β", 0, 0, 0.3, 0, 0, 20), new("adaptive β", 6, 0.4, 0.35, 4, 3.8, 19)],
            [new(1, 0, 0, 0.3), new(4, BestOfNSample.AnalyticKl(4), 0.5, 0.4)]);
        RlhfReportSections.BestOfN(report, [new(1, 0, 0, 0.3), new(4, BestOfNSample.AnalyticKl(4), 0.5, 0.4)], 16);
        RlhfReportSections.KlControl(report, History(0.1, 10), 4, "The controller's note.");
        RlhfReportSections.Frontier(report, [new("β = 0.05", 6, 0.6, "fixed β"), new("β = 0.2", 2, 0.4, "fixed β"), new("adaptive β", 4, 0.5)]);
        var eval = new EvaluationResult(20, "gold", WinRate.FromCounts(14, 5, 1), new ResponseStats(0.6, 1.1, 4, 3.5, 20, 0.5, 0.8), new ResponseStats(0.3, 0.1, 0, 0, 18, 0.6, 0.9),
            [new EvaluatedSample("Once", "<a happy end>", "a sad end", "win")]);
        RlhfReportSections.WinRates(report, [("PPO", eval), ("PPO β = 0", eval with { WinRate = WinRate.FromCounts(5, 14, 1) })], "SFT");
        RlhfReportSections.Samples(report, eval.Samples, "SFT", "PPO");
        string html = report.ToHtml();
        // Left beside the test assembly for a look in a browser.
        report.Write(Path.Combine(AppContext.BaseDirectory, "rlhf-report-sample.html"));

        var curves = Svgs(html, "learning-curves");
        // rlhf_reward, kl, beta and clipfrac were logged; scores, gold and policy loss were not.
        Assert.Equal(4, curves.Count);
        Assert.All(curves, svg => Assert.Equal(2, svg.Descendants().Count(e => e.Name.LocalName == "path" && (string?)e.Attribute("stroke-width") == "2.2")));
        var reliability = Assert.Single(Svgs(html, "reward-model"));
        Assert.Equal(2, reliability.Descendants().Count(e => e.Name.LocalName == "circle"));
        Assert.Contains("80.0%", html);
        // Two charts (proxy, gold), each with a line per PPO run and one for best-of-N, and a marker at every point.
        var overopt = Svgs(html, "proxy-vs-gold");
        Assert.Equal(2, overopt.Count);
        Assert.All(overopt, svg => Assert.Equal(3, svg.Descendants().Count(e => e.Name.LocalName == "path" && (string?)e.Attribute("stroke-width") == "2.2")));
        Assert.All(overopt, svg => Assert.Equal(6, svg.Descendants().Count(e => e.Name.LocalName == "circle")));
        Assert.Contains("0.636", html); // log 4 − 3/4 in the best-of-N table
        Assert.Equal(2, Svgs(html, "kl-control").Count);
        // KL of History(0.1, 10) is 0.3·i for i = 0..9: the mean of the last 10 updates is 0.3·4.5.
        Assert.Contains("mean KL, last 10 updates", html);
        Assert.Contains(">1.35<", html);
        // The fixed-β points are one line; the adaptive run is a lone marker (its path is a single move, drawing nothing).
        var frontier = Assert.Single(Svgs(html, "frontier"));
        Assert.Equal(2, frontier.Descendants().Count(e => e.Name.LocalName == "path" && (string?)e.Attribute("stroke-width") == "2.2"));
        Assert.Equal(3, frontier.Descendants().Count(e => e.Name.LocalName == "circle"));
        var bars = Assert.Single(Svgs(html, "win-rate"));
        Assert.Equal(2, bars.Descendants().Count(e => e.Name.LocalName == "rect" && e.Parent == bars));
        Assert.Contains($"{WinRate.FromCounts(14, 5, 1).Low:0.0%}".Replace(" ", ""), html.Replace(" ", ""));
        Assert.Contains("&lt;a happy end&gt;", html);
        Assert.Contains("SFT (baseline)", html);
    }
}
