// A small, dependency-free SVG chart writer for run reports: line charts with several series, scatter plots,
// reliability diagrams and bars with error bars. Output is a standalone <svg> element meant to be inlined in HTML.
using System.Globalization;
using System.Text;

namespace RlhfSharp.Runs.Reports;

/// <summary>One point of a series.</summary>
public readonly record struct ChartPoint(double X, double Y);

/// <summary>
/// A named series of points; <paramref name="Dashed"/> draws it dashed (e.g. a reference line); <paramref name="PointsOnly"/>
/// draws its markers without a line even in a line chart (measured points under a fitted curve); <paramref name="Color"/>
/// picks its palette index, so a curve can share its points' colour (null: the next colour in order).
/// </summary>
public sealed record ChartSeries(string Name, IReadOnlyList<ChartPoint> Points, bool Dashed = false, bool PointsOnly = false, int? Color = null);

/// <summary>One bar: its label, height and the half-widths of its error bar below and above (0 for none).</summary>
public sealed record ChartBar(string Label, double Value, double ErrorLow = 0, double ErrorHigh = 0);

/// <summary>What every chart carries: a title and axis labels, which should name their units ("KL (nats)").</summary>
/// <param name="Title">Shown above the plot area.</param>
/// <param name="XLabel">Horizontal axis label with its unit.</param>
/// <param name="YLabel">Vertical axis label with its unit.</param>
/// <param name="ReferenceY">Optional horizontal reference line (e.g. 0.5 for a win rate), drawn grey and dashed.</param>
public sealed record ChartFrame(string Title, string XLabel, string YLabel, double? ReferenceY = null);

public static class SvgChart
{
    // Okabe & Ito (2008), "Color Universal Design": a palette distinguishable under the common colour-vision deficiencies.
    private static readonly string[] Palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"];

    // The drawing is 600×360 user units; the HTML scales it to its column width, so ~1200 px shows two side by side.
    private const double Width = 600, Height = 360;
    private const double Left = 72, Right = 20, Top = 40, Bottom = 58;
    private const double PlotW = Width - Left - Right, PlotH = Height - Top - Bottom;

    /// <summary>The colour series <paramref name="index"/> gets, so tables and text can match a chart.</summary>
    public static string ColorOf(int index) => Palette[((index % Palette.Length) + Palette.Length) % Palette.Length];

    /// <summary>Lines through each series' points in order of X, with a legend when there is more than one series.</summary>
    public static string Line(ChartFrame frame, IReadOnlyList<ChartSeries> series) => Draw(frame, series, lines: true, markers: false, equalAxes: false);

    /// <summary>Lines with a marker at every point: for few, measured points (checkpoints) whose positions matter.</summary>
    public static string LineWithMarkers(ChartFrame frame, IReadOnlyList<ChartSeries> series) => Draw(frame, series, lines: true, markers: true, equalAxes: false);

    /// <summary>Points only, one marker colour per series.</summary>
    public static string Scatter(ChartFrame frame, IReadOnlyList<ChartSeries> series) => Draw(frame, series, lines: false, markers: true, equalAxes: false);

    /// <summary>
    /// A reliability diagram: predicted probability (x) against observed frequency (y) per bin, with the diagonal
    /// of perfect calibration. Each bin is (mean predicted, observed fraction).
    /// </summary>
    public static string Reliability(ChartFrame frame, IReadOnlyList<ChartPoint> bins)
    {
        ArgumentNullException.ThrowIfNull(bins);
        var series = new List<ChartSeries>
        {
            new("perfect calibration", [new ChartPoint(0, 0), new ChartPoint(1, 1)], Dashed: true),
            new("model", bins.OrderBy(b => b.X).ToList()),
        };
        return Draw(frame, series, lines: true, markers: true, equalAxes: true);
    }

    /// <summary>Vertical bars with optional asymmetric error bars; the y range always includes 0.</summary>
    public static string Bars(ChartFrame frame, IReadOnlyList<ChartBar> bars)
    {
        ArgumentNullException.ThrowIfNull(frame);
        ArgumentNullException.ThrowIfNull(bars);
        if (bars.Count == 0) return Empty(frame);
        foreach (var b in bars)
            if (!double.IsFinite(b.Value) || !double.IsFinite(b.ErrorLow) || !double.IsFinite(b.ErrorHigh) || b.ErrorLow < 0 || b.ErrorHigh < 0)
                throw new ArgumentException($"bar '{b.Label}': value {b.Value} and error bars ({b.ErrorLow}, {b.ErrorHigh}) must be finite and the errors non-negative", nameof(bars));
        double lo = Math.Min(0, bars.Min(b => b.Value - b.ErrorLow));
        double hi = Math.Max(0, bars.Max(b => b.Value + b.ErrorHigh));
        if (frame.ReferenceY is double r) { lo = Math.Min(lo, r); hi = Math.Max(hi, r); }
        var yAxis = Axis.Nice(lo, hi);
        var sb = Begin(frame);
        GridAndYTicks(sb, yAxis);
        double slot = PlotW / bars.Count, barW = Math.Min(slot * 0.6, 90);
        for (int i = 0; i < bars.Count; i++)
        {
            var b = bars[i];
            double cx = Left + slot * (i + 0.5);
            double y0 = MapY(yAxis, 0), y1 = MapY(yAxis, b.Value);
            sb.Append(Inv($"<rect x=\"{cx - barW / 2:0.##}\" y=\"{Math.Min(y0, y1):0.##}\" width=\"{barW:0.##}\" height=\"{Math.Abs(y1 - y0):0.##}\" fill=\"{ColorOf(i)}\" opacity=\"0.85\"><title>{Esc(b.Label)}: {Fmt(b.Value)} [{Fmt(b.Value - b.ErrorLow)}, {Fmt(b.Value + b.ErrorHigh)}]</title></rect>"));
            if (b.ErrorLow > 0 || b.ErrorHigh > 0)
            {
                double ylo = MapY(yAxis, b.Value - b.ErrorLow), yhi = MapY(yAxis, b.Value + b.ErrorHigh);
                sb.Append(Inv($"<path d=\"M{cx:0.##},{ylo:0.##}V{yhi:0.##}M{cx - 8:0.##},{ylo:0.##}h16M{cx - 8:0.##},{yhi:0.##}h16\" stroke=\"#222\" stroke-width=\"1.6\" fill=\"none\"/>"));
            }
            sb.Append(Inv($"<text x=\"{cx:0.##}\" y=\"{Top + PlotH + 18:0.##}\" text-anchor=\"middle\" class=\"tick\">{Esc(b.Label)}</text>"));
            sb.Append(Inv($"<text x=\"{cx + barW / 2 + 4:0.##}\" y=\"{y1 - 4:0.##}\" class=\"val\">{Fmt(b.Value)}</text>"));
        }
        Reference(sb, frame, yAxis);
        AxesAndLabels(sb, frame);
        return sb.Append("</svg>").ToString();
    }

    private static string Draw(ChartFrame frame, IReadOnlyList<ChartSeries> series, bool lines, bool markers, bool equalAxes)
    {
        ArgumentNullException.ThrowIfNull(frame);
        ArgumentNullException.ThrowIfNull(series);
        foreach (var s in series)
            foreach (var p in s.Points)
                if (double.IsNaN(p.X) || double.IsInfinity(p.X))
                    throw new ArgumentException($"series '{s.Name}' has a non-finite x value {p.X}", nameof(series));
        // Non-finite y (a diverged loss) is skipped rather than drawn off the chart; the line breaks there.
        var finite = series.SelectMany(s => s.Points).Where(p => double.IsFinite(p.Y)).ToList();
        if (finite.Count == 0) return Empty(frame);
        double xlo = finite.Min(p => p.X), xhi = finite.Max(p => p.X);
        double ylo = finite.Min(p => p.Y), yhi = finite.Max(p => p.Y);
        if (frame.ReferenceY is double r) { ylo = Math.Min(ylo, r); yhi = Math.Max(yhi, r); }
        Axis xAxis, yAxis;
        if (equalAxes) { xAxis = yAxis = Axis.Nice(Math.Min(0, Math.Min(xlo, ylo)), Math.Max(1, Math.Max(xhi, yhi))); }
        else if (markers)
        {
            // Markers on the very edge of the plot read as clipped: leave 5% of the range around the points.
            double px = 0.05 * (xhi - xlo), py = 0.05 * (yhi - ylo);
            xAxis = Axis.Nice(xlo - px, xhi + px);
            yAxis = Axis.Nice(ylo - py, yhi + py);
            // A legend card over markers hides measured points: when it would cover some in both top corners, raise the
            // top of the axis by the legend's share of the plot height so every point lies below the card.
            if (series.Count > 1 && UnderLegend(finite, series, xAxis, yAxis, rightSide: true) > 0 && UnderLegend(finite, series, xAxis, yAxis, rightSide: false) > 0)
            {
                double share = LegendSize(series).H / (PlotH - LegendSize(series).H - 6);
                yAxis = Axis.Nice(ylo - py, yhi + py + share * (yhi - ylo + 2 * py));
            }
        }
        else { xAxis = Axis.Nice(xlo, xhi); yAxis = Axis.Nice(ylo, yhi); }

        var sb = Begin(frame);
        GridAndYTicks(sb, yAxis);
        foreach (double t in xAxis.Ticks)
        {
            double x = MapX(xAxis, t);
            sb.Append(Inv($"<line x1=\"{x:0.##}\" y1=\"{Top:0.##}\" x2=\"{x:0.##}\" y2=\"{Top + PlotH:0.##}\" class=\"grid\"/>"));
            sb.Append(Inv($"<text x=\"{x:0.##}\" y=\"{Top + PlotH + 18:0.##}\" text-anchor=\"middle\" class=\"tick\">{Fmt(t)}</text>"));
        }
        Reference(sb, frame, yAxis);
        for (int i = 0; i < series.Count; i++)
        {
            var s = series[i];
            string color = s.Dashed ? "#888" : s.Color is int c ? ColorOf(c) : ColorOf(i - series.Take(i).Count(q => q.Dashed));
            if (lines && !s.PointsOnly)
            {
                var path = new StringBuilder();
                bool pen = false;
                foreach (var p in s.Points.OrderBy(p => p.X))
                {
                    if (!double.IsFinite(p.Y)) { pen = false; continue; }
                    path.Append(Inv($"{(pen ? 'L' : 'M')}{MapX(xAxis, p.X):0.##},{MapY(yAxis, p.Y):0.##}"));
                    pen = true;
                }
                sb.Append(Inv($"<path d=\"{path}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2.2\"{(s.Dashed ? " stroke-dasharray=\"6 4\"" : "")}><title>{Esc(s.Name)}</title></path>"));
            }
            bool dots = markers || s.PointsOnly || s.Points.Count == 1;
            if (dots && !s.Dashed)
                foreach (var p in s.Points.Where(p => double.IsFinite(p.Y)))
                    sb.Append(Inv($"<circle cx=\"{MapX(xAxis, p.X):0.##}\" cy=\"{MapY(yAxis, p.Y):0.##}\" r=\"4\" fill=\"{color}\" opacity=\"0.8\"><title>{Esc(s.Name)}: ({Fmt(p.X)}, {Fmt(p.Y)})</title></circle>"));
        }
        AxesAndLabels(sb, frame);
        if (series.Count > 1)
        {
            // The legend goes in whichever top corner covers fewer points.
            int upperRight = finite.Count(p => MapX(xAxis, p.X) > Left + PlotW / 2 && MapY(yAxis, p.Y) < Top + PlotH / 3);
            int upperLeft = finite.Count(p => MapX(xAxis, p.X) <= Left + PlotW / 2 && MapY(yAxis, p.Y) < Top + PlotH / 3);
            Legend(sb, series, rightSide: upperRight <= upperLeft);
        }
        return sb.Append("</svg>").ToString();
    }

    private static StringBuilder Begin(ChartFrame frame)
    {
        var sb = new StringBuilder();
        sb.Append(Inv($"<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {Width} {Height}\" class=\"chart\" role=\"img\" aria-label=\"{Esc(frame.Title)}\">"));
        sb.Append(Inv($"<text x=\"{Width / 2}\" y=\"22\" text-anchor=\"middle\" class=\"title\">{Esc(frame.Title)}</text>"));
        return sb;
    }

    private static string Empty(ChartFrame frame)
    {
        var sb = Begin(frame);
        sb.Append(Inv($"<text x=\"{Width / 2}\" y=\"{Height / 2}\" text-anchor=\"middle\" class=\"tick\">no data</text>"));
        AxesAndLabels(sb, frame);
        return sb.Append("</svg>").ToString();
    }

    private static void GridAndYTicks(StringBuilder sb, Axis y)
    {
        foreach (double t in y.Ticks)
        {
            double py = MapY(y, t);
            sb.Append(Inv($"<line x1=\"{Left}\" y1=\"{py:0.##}\" x2=\"{Left + PlotW}\" y2=\"{py:0.##}\" class=\"grid\"/>"));
            sb.Append(Inv($"<text x=\"{Left - 6}\" y=\"{py + 4:0.##}\" text-anchor=\"end\" class=\"tick\">{Fmt(t)}</text>"));
        }
    }

    private static void Reference(StringBuilder sb, ChartFrame frame, Axis y)
    {
        if (frame.ReferenceY is not double r) return;
        double py = MapY(y, r);
        sb.Append(Inv($"<line x1=\"{Left}\" y1=\"{py:0.##}\" x2=\"{Left + PlotW}\" y2=\"{py:0.##}\" stroke=\"#777\" stroke-width=\"1.2\" stroke-dasharray=\"4 4\"/>"));
    }

    private static void AxesAndLabels(StringBuilder sb, ChartFrame frame)
    {
        sb.Append(Inv($"<path d=\"M{Left},{Top}V{Top + PlotH}H{Left + PlotW}\" stroke=\"#333\" stroke-width=\"1.2\" fill=\"none\"/>"));
        sb.Append(Inv($"<text x=\"{Left + PlotW / 2}\" y=\"{Height - 12}\" text-anchor=\"middle\" class=\"label\">{Esc(frame.XLabel)}</text>"));
        sb.Append(Inv($"<text transform=\"translate(18,{Top + PlotH / 2}) rotate(-90)\" text-anchor=\"middle\" class=\"label\">{Esc(frame.YLabel)}</text>"));
    }

    private const double LegendRowH = 17;

    private static (double W, double H) LegendSize(IReadOnlyList<ChartSeries> series) =>
        (12 + 7.2 * series.Max(s => Math.Min(s.Name.Length, 40)) + 30, LegendRowH * series.Count + 8);

    /// <summary>How many points the legend card would cover in the given top corner.</summary>
    private static int UnderLegend(IReadOnlyList<ChartPoint> points, IReadOnlyList<ChartSeries> series, Axis xAxis, Axis yAxis, bool rightSide)
    {
        var (w, h) = LegendSize(series);
        double x0 = rightSide ? Left + PlotW - w - 6 : Left + 6, y0 = Top + 6;
        return points.Count(p => MapX(xAxis, p.X) is var x && x >= x0 - 4 && x <= x0 + w + 4 && MapY(yAxis, p.Y) <= y0 + h + 4);
    }

    private static void Legend(StringBuilder sb, IReadOnlyList<ChartSeries> series, bool rightSide)
    {
        // Inside the plot at the top, on a translucent card so lines behind it stay visible.
        double rowH = LegendRowH;
        var (w, h) = LegendSize(series);
        double x0 = rightSide ? Left + PlotW - w - 6 : Left + 6, y0 = Top + 6;
        sb.Append(Inv($"<g class=\"legend\"><rect x=\"{x0:0.##}\" y=\"{y0:0.##}\" width=\"{w:0.##}\" height=\"{h:0.##}\" fill=\"#fff\" opacity=\"0.85\" stroke=\"#ccc\"/>"));
        int color = 0;
        for (int i = 0; i < series.Count; i++)
        {
            var s = series[i];
            string c = s.Dashed ? "#888" : s.Color is int fixedColor ? ColorOf(fixedColor) : ColorOf(color);
            if (!s.Dashed) color++;
            double y = y0 + 4 + rowH * i + rowH / 2;
            if (s.PointsOnly) sb.Append(Inv($"<circle cx=\"{x0 + 19:0.##}\" cy=\"{y:0.##}\" r=\"4\" fill=\"{c}\"/>"));
            else sb.Append(Inv($"<line x1=\"{x0 + 8:0.##}\" y1=\"{y:0.##}\" x2=\"{x0 + 30:0.##}\" y2=\"{y:0.##}\" stroke=\"{c}\" stroke-width=\"3\"{(s.Dashed ? " stroke-dasharray=\"6 4\"" : "")}/>"));
            string name = s.Name.Length > 40 ? s.Name[..39] + "…" : s.Name;
            sb.Append(Inv($"<text x=\"{x0 + 36:0.##}\" y=\"{y + 4:0.##}\" class=\"tick\">{Esc(name)}</text>"));
        }
        sb.Append("</g>");
    }

    private static double MapX(Axis a, double v) => Left + (v - a.Min) / (a.Max - a.Min) * PlotW;
    private static double MapY(Axis a, double v) => Top + PlotH - (v - a.Min) / (a.Max - a.Min) * PlotH;

    /// <summary>A number as a tick label: short, invariant culture, no "-0".</summary>
    internal static string Fmt(double v)
    {
        if (v == 0) return "0";
        double a = Math.Abs(v);
        if (a >= 1e5 || a < 1e-3) return v.ToString("0.##e0", CultureInfo.InvariantCulture);
        return v.ToString(a >= 100 ? "0" : a >= 10 ? "0.#" : a >= 1 ? "0.##" : "0.###", CultureInfo.InvariantCulture);
    }

    internal static string Esc(string s) => System.Net.WebUtility.HtmlEncode(s);

    private static string Inv(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}

/// <summary>An axis range widened to "nice" round ends with 4–8 ticks (Heckbert, "Nice numbers for graph labels", Graphics Gems 1990).</summary>
internal sealed record Axis(double Min, double Max, IReadOnlyList<double> Ticks)
{
    public static Axis Nice(double lo, double hi)
    {
        if (hi < lo) (lo, hi) = (hi, lo);
        if (hi - lo < 1e-12 * Math.Max(1, Math.Abs(hi)))
        {
            // A flat series still needs a visible range around its value.
            double pad = Math.Abs(hi) > 0 ? Math.Abs(hi) * 0.1 : 1;
            lo -= pad; hi += pad;
        }
        double step = NiceNumber((hi - lo) / 5, round: true);
        double min = Math.Floor(lo / step) * step, max = Math.Ceiling(hi / step) * step;
        var ticks = new List<double>();
        for (double t = min; t <= max + step * 0.5; t += step)
            ticks.Add(Math.Abs(t) < step * 1e-9 ? 0 : Math.Round(t / step) * step);
        return new Axis(min, max, ticks);
    }

    private static double NiceNumber(double range, bool round)
    {
        double exp = Math.Floor(Math.Log10(range));
        double f = range / Math.Pow(10, exp);
        double nice = round
            ? f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10
            : f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10;
        return nice * Math.Pow(10, exp);
    }
}
