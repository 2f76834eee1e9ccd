// The over-optimisation monitor's record in a run folder: monitor.jsonl, one line per rule that fired (what it saw and
// what it did: warned or stopped the run), and best/best.json beside best/'s weights, the kept checkpoint chosen by the
// monitored quantity. Written by the monitor (Alignment), read by `rlhf report` (RunReport) for any run.
using System.Text.Encodings.Web;
using System.Text.Json;

namespace RlhfSharp.Runs;

/// <summary>One rule firing.</summary>
/// <param name="Step">Training step at which it fired.</param>
/// <param name="Rule">gold_fall, kl_spike or length_collapse.</param>
/// <param name="Action">"warn" or "stop".</param>
/// <param name="Message">What the monitor saw, in words and numbers.</param>
public sealed record MonitorEvent(long Step, string Rule, string Action, string Message);

/// <summary>The kept (best) checkpoint: its step and the value of the quantity it was kept by.</summary>
public sealed record BestCheckpoint(long Step, string Metric, double Value);

public static class MonitorEvents
{
    public const string FileName = "monitor.jsonl";
    public const string BestFolderName = "best";
    public const string BestFileName = "best.json";

    // Messages hold → and ×: written as they are (UTF-8), not as \u escapes, so the file reads as plain text.
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Appends one event line to RUN/monitor.jsonl.</summary>
    public static void Append(string runPath, MonitorEvent e) =>
        File.AppendAllText(Path.Combine(runPath, FileName), JsonSerializer.Serialize(e, Json) + "\n");

    /// <summary>Every event of the run (empty when no rule fired or no monitor ran). A bad line throws naming file:line.</summary>
    public static IReadOnlyList<MonitorEvent> Read(string runPath)
    {
        string file = Path.Combine(runPath, FileName);
        if (!File.Exists(file)) return [];
        var events = new List<MonitorEvent>();
        int n = 0;
        foreach (string line in File.ReadLines(file))
        {
            n++;
            if (line.Trim().Length == 0) continue;
            try
            {
                events.Add(JsonSerializer.Deserialize<MonitorEvent>(line, Json) ?? throw new FormatException("null"));
            }
            catch (JsonException ex)
            {
                throw new FormatException($"{file}:{n}: {ex.Message}", ex);
            }
        }
        return events;
    }

    public static string BestFile(string runPath) => Path.Combine(runPath, BestFolderName, BestFileName);

    public static string WriteBest(BestCheckpoint best) => JsonSerializer.Serialize(best, Json) + "\n";

    /// <summary>RUN/best/best.json, or null when the run kept no best checkpoint.</summary>
    public static BestCheckpoint? ReadBest(string runPath)
    {
        string file = BestFile(runPath);
        if (!File.Exists(file)) return null;
        try
        {
            return JsonSerializer.Deserialize<BestCheckpoint>(File.ReadAllText(file), Json);
        }
        catch (JsonException ex)
        {
            throw new FormatException($"{file}: {ex.Message}", ex);
        }
    }
}
