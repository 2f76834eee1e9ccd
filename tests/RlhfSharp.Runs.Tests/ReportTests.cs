// The SVG chart writer and the HTML report: well-formed XML, escaped text, nice axis ticks, and a real browser render.
using System.Globalization;
using System.Xml.Linq;
using Microsoft.Playwright;
using RlhfSharp.Runs.Reports;
using Xunit.Abstractions;

namespace RlhfSharp.Runs.Tests;

public sealed class ReportTests(ITestOutputHelper output)
{
    private static readonly ChartFrame Frame = new("PPO reward", "step (PPO updates)", "reward (RM units)");

    private static ChartSeries Curve(string name, Func<double, double> f, int n = 50) =>
        new(name, Enumerable.Range(0, n).Select(i => new ChartPoint(i, f(i))).ToList());

    [Fact]
    public void Given_two_series_When_drawn_as_lines_Then_the_svg_is_well_formed_with_one_path_each_and_a_legend()
    {
        string svg = SvgChart.Line(Frame, [Curve("adaptive β", i => Math.Log(1 + i)), Curve("β = 0", i => Math.Sqrt(i))]);
        var doc = XElement.Parse(svg);
        XNamespace ns = "http://www.w3.org/2000/svg";
        Assert.Equal(2, doc.Descendants(ns + "path").Count(p => (string?)p.Attribute("stroke-width") == "2.2"));
        Assert.Contains("adaptive β", doc.Descendants(ns + "g").Single(g => (string?)g.Attribute("class") == "legend").Value);
        Assert.Contains("reward (RM units)", svg);
        Assert.Contains("step (PPO updates)", svg);
    }

    [Fact]
    public void Given_points_and_a_fitted_curve_in_one_colour_When_drawn_as_lines_Then_the_points_get_markers_only_and_the_curve_a_line_of_that_colour()
    {
        var points = new ChartSeries("measured", [new ChartPoint(0, 0), new ChartPoint(1, 0.4), new ChartPoint(2, 0.3)], PointsOnly: true, Color: 2);
        var fit = new ChartSeries("fit", [.. Enumerable.Range(0, 21).Select(k => new ChartPoint(k / 10.0, k / 10.0 * (0.6 - 0.2 * k / 10.0)))], Color: 2);
        var doc = XElement.Parse(SvgChart.Line(Frame, [points, fit]));
        XNamespace ns = "http://www.w3.org/2000/svg";
        var lines = doc.Descendants(ns + "path").Where(p => (string?)p.Attribute("stroke-width") == "2.2").ToList();
        Assert.Equal("fit", Assert.Single(lines).Value);
        Assert.Equal(SvgChart.ColorOf(2), (string?)lines[0].Attribute("stroke"));
        var markers = doc.Descendants(ns + "circle").Where(c => c.Parent?.Name == ns + "svg").ToList();
        Assert.Equal(3, markers.Count);
        Assert.All(markers, c => Assert.Equal(SvgChart.ColorOf(2), (string?)c.Attribute("fill")));
        // The legend shows the points as a dot and the curve as a line, both in colour 2.
        var legend = doc.Descendants(ns + "g").Single(g => (string?)g.Attribute("class") == "legend");
        Assert.Equal(SvgChart.ColorOf(2), (string?)legend.Element(ns + "circle")!.Attribute("fill"));
        Assert.Equal(SvgChart.ColorOf(2), (string?)legend.Element(ns + "line")!.Attribute("stroke"));
    }

    [Fact]
    public void Given_markup_in_names_When_drawn_and_reported_Then_it_is_escaped()
    {
        var report = new HtmlReport("<script>alert(1)</script>");
        report.Section("s", "a & b").Text("<b>x</b>").Table(new ReportTable(["<i>h</i>"], [["<img src=x>"]]))
            .Charts(SvgChart.Scatter(new ChartFrame("<t>", "x", "y"), [new ChartSeries("<s>", [new ChartPoint(1, 2)])]));
        string html = report.ToHtml();
        Assert.DoesNotContain("<script>", html);
        Assert.DoesNotContain("<img", html);
        Assert.DoesNotContain("<b>x", html);
        Assert.Contains("&lt;img src=x&gt;", html);
    }

    [Theory]
    [InlineData(0, 1, 0, 1)]
    [InlineData(0.13, 9.7, 0, 10)]
    [InlineData(-3.2, 47, -10, 50)]
    [InlineData(5, 5, 4.4, 5.6)]
    public void Given_a_data_range_When_an_axis_is_made_Then_it_covers_the_range_with_round_ends_and_4_to_11_even_ticks(double lo, double hi, double min, double max)
    {
        var a = Axis.Nice(lo, hi);
        Assert.Equal(min, a.Min, 9);
        Assert.Equal(max, a.Max, 9);
        Assert.InRange(a.Ticks.Count, 4, 11);
        Assert.True(a.Min <= lo && a.Max >= hi);
        var steps = a.Ticks.Zip(a.Ticks.Skip(1), (p, q) => q - p).ToList();
        Assert.All(steps, s => Assert.Equal(steps[0], s, 9));
    }

    [Fact]
    public void Given_a_nan_in_a_series_When_drawn_Then_the_line_breaks_there_instead_of_failing()
    {
        string svg = SvgChart.Line(Frame, [new ChartSeries("loss", [new(0, 1), new(1, double.NaN), new(2, 0.5), new(3, 0.4)])]);
        var path = XElement.Parse(svg).Descendants().First(e => e.Name.LocalName == "path" && (string?)e.Attribute("stroke-width") == "2.2");
        string d = (string)path.Attribute("d")!;
        Assert.Equal(2, d.Count(c => c == 'M'));
        Assert.DoesNotContain("NaN", svg);
    }

    [Fact]
    public void Given_bad_input_When_building_Then_the_error_names_the_section_row_or_bar()
    {
        var report = new HtmlReport("r");
        var s = report.Section("win-rate", "Win rate");
        var ex = Assert.Throws<ArgumentException>(() => s.Table(new ReportTable(["a", "b"], [["1", "2"], ["3"]])));
        Assert.Contains("row 1", ex.Message);
        Assert.Contains("win-rate", Assert.Throws<ArgumentException>(() => report.Section("win-rate", "again")).Message);
        Assert.Contains("'bad id'", Assert.Throws<ArgumentException>(() => report.Section("bad id", "x")).Message);
        Assert.Contains("'ppo'", Assert.Throws<ArgumentException>(() => SvgChart.Bars(Frame, [new ChartBar("ppo", 0.6, -0.1, 0.1)])).Message);
    }

    internal static HtmlReport SampleReport()
    {
        var report = new HtmlReport("RLHF demo — story world", "a report with every chart kind, made by the test");
        report.Section("curves", "Learning curves")
            .Figures(new ReportFigure("final reward", "1.23", "RM units"), new ReportFigure("final KL", "4.1 nats"))
            .Charts(
                SvgChart.Line(new ChartFrame("Reward", "PPO step", "reward (RM units)"), [Curve("adaptive β", i => 1 - Math.Exp(-i / 10.0)), Curve("β = 0", i => 1.5 * (1 - Math.Exp(-i / 6.0)))]),
                SvgChart.Line(new ChartFrame("KL to reference", "PPO step", "KL (nats)", ReferenceY: 6), [Curve("adaptive β", i => 6 * (1 - Math.Exp(-i / 8.0))), Curve("β = 0", i => 0.4 * i)]));
        report.Section("calibration", "Reward model")
            .Charts(
                SvgChart.Reliability(new ChartFrame("Calibration (held-out pairs)", "predicted P(chosen ≻ rejected)", "observed frequency"),
                    [new(0.55, 0.52), new(0.65, 0.6), new(0.75, 0.71), new(0.85, 0.8), new(0.95, 0.9)]),
                SvgChart.Scatter(new ChartFrame("Proxy vs gold", "√KL (√nats)", "reward"), [Curve("proxy (RM)", i => i / 10.0, 20), Curve("gold", i => i / 10.0 - i * i / 200.0, 20)]));
        report.Section("win-rate", "Win rate")
            .Charts(SvgChart.Bars(new ChartFrame("Win rate over SFT (gold judge, 95% Wilson CI)", "policy", "win rate", ReferenceY: 0.5),
                [new ChartBar("PPO adaptive β", 0.71, 0.08, 0.07), new ChartBar("PPO β = 0", 0.42, 0.09, 0.09), new ChartBar("SFT", 0.5)]));
        report.Section("samples", "Samples").Table(new ReportTable(["prompt", "SFT", "PPO"],
            [["Once upon a time", "the cat sat on the mat and", "the happy cat found a friend and they"], ["Tom had a", "dog. The dog ran away.", "kind dog who loved him very much."]], "same prompts, before and after"));
        return report;
    }

    [ChromiumFact]
    public async Task Given_a_report_with_every_chart_kind_When_opened_in_chromium_at_1200px_Then_charts_render_two_per_row_and_a_screenshot_is_saved()
    {
        string dir = Path.Combine(AppContext.BaseDirectory, "screenshots");
        Directory.CreateDirectory(dir);
        string htmlPath = Path.Combine(dir, "report-sample.html");
        SampleReport().Write(htmlPath);
        using var pw = await Playwright.CreateAsync();
        await using var browser = await Chromium.LaunchAsync(pw);
        var page = await browser.NewPageAsync(new() { ViewportSize = new() { Width = 1200, Height = 900 } });
        var requests = new List<string>();
        page.Request += (_, r) => requests.Add(r.Url);
        await page.GotoAsync(new Uri(htmlPath).AbsoluteUri);
        Assert.Equal(5, await page.Locator("svg.chart").CountAsync());
        foreach (var id in new[] { "curves", "calibration", "win-rate", "samples" })
            Assert.Equal(1, await page.Locator($"section#{id}").CountAsync());
        var first = await page.Locator("#curves figure").Nth(0).BoundingBoxAsync();
        var second = await page.Locator("#curves figure").Nth(1).BoundingBoxAsync();
        Assert.Equal(first!.Y, second!.Y, 1);
        Assert.InRange(first.Width, 450, 650);
        // Nothing but the file itself is loaded: no fonts, scripts or images from elsewhere.
        Assert.All(requests, u => Assert.StartsWith("file:", u));
        string shot = Path.Combine(dir, "report-sample.png");
        await page.ScreenshotAsync(new() { Path = shot, FullPage = true });
        output.WriteLine($"screenshot: {shot}");
    }

    [Fact]
    public void Given_markers_in_both_top_corners_When_drawn_Then_the_axis_rises_so_the_legend_covers_none()
    {
        // Points at the top left and top right: wherever the legend card goes, it would hide one unless the axis makes room.
        var series = new List<ChartSeries>
        {
            new("proxy of the unleashed run", [new(0, 0), new(5, 1), new(10, 2)]),
            new("proxy of best-of-N", [new(0, 0.1), new(1, 2), new(2, 2.1)]),
        };
        var doc = XElement.Parse(SvgChart.LineWithMarkers(Frame, series));
        XNamespace ns = "http://www.w3.org/2000/svg";
        var card = doc.Descendants(ns + "g").Single(g => (string?)g.Attribute("class") == "legend").Element(ns + "rect")!;
        double bottom = double.Parse((string)card.Attribute("y")!, CultureInfo.InvariantCulture) + double.Parse((string)card.Attribute("height")!, CultureInfo.InvariantCulture);
        var cys = doc.Descendants(ns + "circle").Select(c => double.Parse((string)c.Attribute("cy")!, CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(6, cys.Count);
        Assert.All(cys, cy => Assert.True(cy > bottom, $"marker at y {cy} lies under the legend card ending at y {bottom}"));
    }
}
