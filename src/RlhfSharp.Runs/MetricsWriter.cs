// metrics.jsonl: one JSON object per logged step, {"step":N,"wall_time":unix seconds,"name":value,...}, written
// with the invariant number format and flushed line by line, so a crash loses at most the line being written.
using System.Text;
using System.Text.Json;

namespace RlhfSharp.Runs;

/// <summary>One line of metrics.jsonl. Non-finite values are stored as the strings "NaN", "Infinity", "-Infinity".</summary>
public sealed record MetricsRecord(long Step, double WallTime, IReadOnlyDictionary<string, double> Values);

public sealed class MetricsWriter : IDisposable
{
    private static readonly JsonWriterOptions WriterOptions = new() { Indented = false };
    private readonly FileStream _stream;
    private readonly MemoryStream _line = new();

    /// <summary>The file being appended to.</summary>
    public string Path { get; }

    /// <summary>Lines dropped on opening: a torn trailing line, and lines past <c>resumeAfterStep</c>.</summary>
    public int DroppedLines { get; }

    /// <summary>
    /// Opens (or creates) a metrics file for appending. A trailing line without its newline (a crash mid-write) is
    /// cut off; with <paramref name="resumeAfterStep"/>, lines whose step is larger are cut too, so a run resumed from
    /// that checkpoint does not log the same steps twice.
    /// </summary>
    public MetricsWriter(string path, long? resumeAfterStep = null)
    {
        Path = System.IO.Path.GetFullPath(path);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(Path)!);
        _stream = new FileStream(Path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.Read);
        DroppedLines = TruncateToKeptLines(resumeAfterStep);
        _stream.Seek(0, SeekOrigin.End);
    }

    private int TruncateToKeptLines(long? resumeAfterStep)
    {
        if (_stream.Length == 0) return 0;
        var bytes = new byte[_stream.Length];
        _stream.Seek(0, SeekOrigin.Begin);
        _stream.ReadExactly(bytes);
        int lastNewline = Array.LastIndexOf(bytes, (byte)'\n');
        long keep = lastNewline + 1;
        int dropped = keep < bytes.Length ? 1 : 0;
        if (resumeAfterStep is long limit)
        {
            // Keep complete lines up to the first one past the resume step.
            long offset = 0;
            int lineNo = 0;
            while (offset < keep)
            {
                int end = Array.IndexOf(bytes, (byte)'\n', (int)offset);
                lineNo++;
                long step = ReadStep(bytes.AsSpan((int)offset, end - (int)offset), lineNo);
                if (step > limit)
                {
                    for (long o = offset; o < keep; o++) if (bytes[o] == (byte)'\n') dropped++;
                    keep = offset;
                    break;
                }
                offset = end + 1;
            }
        }
        if (keep < bytes.Length) _stream.SetLength(keep);
        return dropped;
    }

    private long ReadStep(ReadOnlySpan<byte> line, int lineNo)
    {
        try
        {
            using var doc = JsonDocument.Parse(line.ToArray());
            return doc.RootElement.GetProperty("step").GetInt64();
        }
        catch (Exception ex) when (ex is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new FormatException($"{Path} line {lineNo}: not a metrics object with an integer \"step\" ({ex.Message}).", ex);
        }
    }

    /// <summary>Appends one line for <paramref name="step"/> and flushes it.</summary>
    public void Write(long step, IReadOnlyDictionary<string, double> values, DateTimeOffset? time = null)
    {
        ArgumentNullException.ThrowIfNull(values);
        double wall = (time ?? DateTimeOffset.UtcNow).ToUnixTimeMilliseconds() / 1000.0;
        // The line is built whole, then written with one call.
        _line.SetLength(0);
        using (var writer = new Utf8JsonWriter(_line, WriterOptions))
        {
            writer.WriteStartObject();
            writer.WriteNumber("step", step);
            writer.WriteNumber("wall_time", wall);
            foreach (var (name, value) in values)
            {
                if (name is "step" or "wall_time")
                    throw new ArgumentException($"Metric name \"{name}\" is reserved in metrics.jsonl.", nameof(values));
                if (double.IsFinite(value)) writer.WriteNumber(name, value);
                else writer.WriteString(name, double.IsNaN(value) ? "NaN" : value > 0 ? "Infinity" : "-Infinity");
            }
            writer.WriteEndObject();
        }
        _line.WriteByte((byte)'\n');
        _stream.Write(_line.GetBuffer(), 0, (int)_line.Length);
        _stream.Flush();
    }

    /// <summary>Reads every complete line of a metrics file (a torn trailing line is ignored).</summary>
    public static List<MetricsRecord> ReadAll(string path)
    {
        var result = new List<MetricsRecord>();
        string text = File.ReadAllText(path, Encoding.UTF8);
        int lastNewline = text.LastIndexOf('\n');
        string[] lines = lastNewline < 0 ? [] : text[..lastNewline].Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            if (lines[i].Length == 0) continue;
            try
            {
                using var doc = JsonDocument.Parse(lines[i]);
                var values = new Dictionary<string, double>(StringComparer.Ordinal);
                long step = 0;
                double wall = 0;
                foreach (var p in doc.RootElement.EnumerateObject())
                {
                    if (p.Name == "step") step = p.Value.GetInt64();
                    else if (p.Name == "wall_time") wall = p.Value.GetDouble();
                    else if (p.Value.ValueKind == JsonValueKind.String) values[p.Name] = p.Value.GetString() switch
                    {
                        "NaN" => double.NaN,
                        "Infinity" => double.PositiveInfinity,
                        "-Infinity" => double.NegativeInfinity,
                        var s => throw new FormatException($"value \"{s}\" of \"{p.Name}\" is not a number"),
                    };
                    else values[p.Name] = p.Value.GetDouble();
                }
                result.Add(new MetricsRecord(step, wall, values));
            }
            catch (Exception ex) when (ex is JsonException or InvalidOperationException or FormatException)
            {
                throw new FormatException($"{path} line {i + 1}: {ex.Message}", ex);
            }
        }
        return result;
    }

    public void Dispose() => _stream.Dispose();
}
