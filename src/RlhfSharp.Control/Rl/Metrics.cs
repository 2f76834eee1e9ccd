// A metrics.jsonl writer: one JSON object per update with CleanRL's keys (charts/episodic_return, losses/policy, ...),
// numbers in the invariant culture, NaN written as null so every line stays valid JSON.
using System.Globalization;
using System.Text;

namespace RlhfSharp.Control.Rl;

/// <summary>One logged row: the global step and named scalars.</summary>
public sealed record MetricsRow(long GlobalStep, IReadOnlyDictionary<string, double> Values)
{
    public string ToJson()
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"{{\"global_step\":{GlobalStep}");
        foreach (var (k, v) in Values)
        {
            sb.Append(",\"").Append(k).Append("\":");
            sb.Append(double.IsFinite(v) ? v.ToString("R", CultureInfo.InvariantCulture) : "null");
        }
        return sb.Append('}').ToString();
    }
}

/// <summary>Appends rows to a metrics.jsonl file (flushed per row, so a crash keeps what was logged).</summary>
public sealed class MetricsWriter : IDisposable
{
    private readonly StreamWriter _writer;

    public MetricsWriter(string path)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        _writer = new StreamWriter(path, append: false, new UTF8Encoding(false)) { AutoFlush = true };
    }

    public void Write(MetricsRow row) => _writer.WriteLine(row.ToJson());

    public void Dispose() => _writer.Dispose();
}
