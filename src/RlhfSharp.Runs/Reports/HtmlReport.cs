// Builds one self-contained report.html from sections of headline figures, inline SVG charts, tables and notes:
// inline CSS, no scripts, nothing fetched from elsewhere, so the file can be mailed or opened offline.
using System.Text;

namespace RlhfSharp.Runs.Reports;

/// <summary>A headline number shown as a card at the top of a section ("win rate 0.71 [0.62, 0.79]").</summary>
public sealed record ReportFigure(string Label, string Value, string? Note = null);

/// <summary>A table: header cells and rows of plain text (escaped when written).</summary>
public sealed record ReportTable(IReadOnlyList<string> Header, IReadOnlyList<IReadOnlyList<string>> Rows, string? Caption = null);

/// <summary>One section of the report, in the order it was added; its id is its anchor and the test's handle.</summary>
public sealed class ReportSection
{
    private readonly StringBuilder _body = new();

    internal ReportSection(string id, string title)
    {
        Id = id;
        Title = title;
    }

    /// <summary>The HTML id of the section element (letters, digits, '-' and '_').</summary>
    public string Id { get; }

    /// <summary>The heading shown for the section.</summary>
    public string Title { get; }

    internal string Body => _body.ToString();

    /// <summary>A paragraph of plain text (escaped).</summary>
    public ReportSection Text(string text)
    {
        _body.Append("<p>").Append(SvgChart.Esc(text)).Append("</p>\n");
        return this;
    }

    /// <summary>A row of headline figures.</summary>
    public ReportSection Figures(params IReadOnlyList<ReportFigure> figures)
    {
        _body.Append("<div class=\"figures\">");
        foreach (var f in figures)
        {
            _body.Append("<div class=\"figure\"><div class=\"flabel\">").Append(SvgChart.Esc(f.Label)).Append("</div><div class=\"fvalue\">")
                .Append(SvgChart.Esc(f.Value)).Append("</div>");
            if (f.Note is not null) _body.Append("<div class=\"fnote\">").Append(SvgChart.Esc(f.Note)).Append("</div>");
            _body.Append("</div>");
        }
        _body.Append("</div>\n");
        return this;
    }

    /// <summary>Charts made by <see cref="SvgChart"/>, laid out in a grid (two per row on a laptop, one on a phone).</summary>
    public ReportSection Charts(params IReadOnlyList<string> svgs)
    {
        _body.Append("<div class=\"charts\">");
        foreach (var svg in svgs)
        {
            if (!svg.StartsWith("<svg", StringComparison.Ordinal))
                throw new ArgumentException($"section '{Id}': a chart must be an <svg> element, got '{svg[..Math.Min(svg.Length, 30)]}'", nameof(svgs));
            _body.Append("<figure>").Append(svg).Append("</figure>");
        }
        _body.Append("</div>\n");
        return this;
    }

    /// <summary>A table of text cells; every row must have as many cells as the header.</summary>
    public ReportSection Table(ReportTable table)
    {
        ArgumentNullException.ThrowIfNull(table);
        _body.Append("<div class=\"tablewrap\"><table>");
        if (table.Caption is not null) _body.Append("<caption>").Append(SvgChart.Esc(table.Caption)).Append("</caption>");
        _body.Append("<thead><tr>");
        foreach (var h in table.Header) _body.Append("<th>").Append(SvgChart.Esc(h)).Append("</th>");
        _body.Append("</tr></thead><tbody>");
        for (int r = 0; r < table.Rows.Count; r++)
        {
            var row = table.Rows[r];
            if (row.Count != table.Header.Count)
                throw new ArgumentException($"section '{Id}': table row {r} has {row.Count} cells but the header has {table.Header.Count}", nameof(table));
            _body.Append("<tr>");
            foreach (var c in row) _body.Append("<td>").Append(SvgChart.Esc(c)).Append("</td>");
            _body.Append("</tr>");
        }
        _body.Append("</tbody></table></div>\n");
        return this;
    }
}

/// <summary>Collects sections and writes the report. Not thread-safe; build it on one thread, then write.</summary>
public sealed class HtmlReport(string title, string? subtitle = null)
{
    private readonly List<ReportSection> _sections = [];

    /// <summary>The sections in order.</summary>
    public IReadOnlyList<ReportSection> Sections => _sections;

    /// <summary>Adds a section; ids must be unique and safe in HTML.</summary>
    public ReportSection Section(string id, string title)
    {
        if (string.IsNullOrEmpty(id) || !id.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_'))
            throw new ArgumentException($"section id '{id}' must be non-empty ASCII letters, digits, '-' or '_'", nameof(id));
        if (_sections.Any(s => s.Id == id))
            throw new ArgumentException($"section id '{id}' is already used in this report", nameof(id));
        var section = new ReportSection(id, title);
        _sections.Add(section);
        return section;
    }

    /// <summary>The whole document as a string.</summary>
    public string ToHtml()
    {
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
          .Append("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
          .Append("<title>").Append(SvgChart.Esc(title)).Append("</title><style>").Append(Css).Append("</style></head><body>\n")
          .Append("<header><h1>").Append(SvgChart.Esc(title)).Append("</h1>");
        if (subtitle is not null) sb.Append("<p class=\"sub\">").Append(SvgChart.Esc(subtitle)).Append("</p>");
        if (_sections.Count > 1)
        {
            sb.Append("<nav>");
            foreach (var s in _sections) sb.Append("<a href=\"#").Append(s.Id).Append("\">").Append(SvgChart.Esc(s.Title)).Append("</a>");
            sb.Append("</nav>");
        }
        sb.Append("</header>\n<main>\n");
        foreach (var s in _sections)
            sb.Append("<section id=\"").Append(s.Id).Append("\"><h2>").Append(SvgChart.Esc(s.Title)).Append("</h2>\n").Append(s.Body).Append("</section>\n");
        sb.Append("</main></body></html>\n");
        return sb.ToString();
    }

    /// <summary>Writes the report atomically, so a reader never sees half a file.</summary>
    public void Write(string path) => AtomicFile.WriteAllText(path, ToHtml());

    private const string Css = """
        :root{--fg:#1d2330;--muted:#5b6475;--line:#dde2ea;--card:#f6f8fb}
        *{box-sizing:border-box}
        body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:var(--fg);background:#fff}
        header{padding:24px 32px 12px;border-bottom:1px solid var(--line)}
        h1{margin:0 0 4px;font-size:26px}
        .sub{margin:0 0 10px;color:var(--muted)}
        nav{display:flex;flex-wrap:wrap;gap:6px 16px;font-size:14px}
        nav a{color:#0b5cad;text-decoration:none}
        main{max-width:1280px;margin:0 auto;padding:8px 32px 40px}
        section{margin-top:28px}
        h2{font-size:20px;margin:0 0 10px;padding-bottom:4px;border-bottom:2px solid var(--line)}
        .figures{display:flex;flex-wrap:wrap;gap:12px;margin:10px 0}
        .figure{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:10px 14px;min-width:170px}
        .flabel{font-size:13px;color:var(--muted)}
        .fvalue{font-size:22px;font-weight:600}
        .fnote{font-size:12px;color:var(--muted)}
        .charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(480px,1fr));gap:14px}
        figure{margin:0;border:1px solid var(--line);border-radius:8px;padding:6px}
        svg.chart{width:100%;height:auto;display:block}
        svg .title{font-size:15px;font-weight:600;fill:#1d2330}
        svg .label{font-size:13px;fill:#1d2330}
        svg .tick{font-size:11.5px;fill:#444}
        svg .val{font-size:11px;fill:#222}
        svg .grid{stroke:#e8ebf0;stroke-width:1}
        .tablewrap{overflow-x:auto}
        table{border-collapse:collapse;width:100%;font-size:14px}
        caption{text-align:left;color:var(--muted);padding:4px 0}
        th,td{border:1px solid var(--line);padding:6px 8px;vertical-align:top;text-align:left;white-space:pre-wrap}
        th{background:var(--card)}
        @media (max-width:700px){.charts{grid-template-columns:1fr}main,header{padding-left:14px;padding-right:14px}}
        """;
}
