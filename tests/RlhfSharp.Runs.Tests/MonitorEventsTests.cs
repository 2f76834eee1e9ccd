// monitor.jsonl and best/best.json (MonitorEvents): what is appended reads back as it was written, with the arrows and
// multiplication signs of the messages as plain UTF-8, and a broken line is refused naming file:line.
namespace RlhfSharp.Runs.Tests;

public sealed class MonitorEventsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("monitor-events-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void AppendedEventsReadBack_AndABrokenLineNamesFileAndLine()
    {
        Assert.Empty(MonitorEvents.Read(_dir));
        Assert.Null(MonitorEvents.ReadBest(_dir));
        var a = new MonitorEvent(4, "gold_fall", "stop", "gold fell (−0.127 → −0.156) while the proxy rose");
        var b = new MonitorEvent(6, "kl_spike", "warn", "KL 7.5 > 3 × 1.7");
        MonitorEvents.Append(_dir, a);
        MonitorEvents.Append(_dir, b);
        Assert.Equal([a, b], MonitorEvents.Read(_dir));
        string text = File.ReadAllText(Path.Combine(_dir, MonitorEvents.FileName));
        Assert.Contains("→", text);
        Assert.Contains("\"rule\":\"gold_fall\"", text);

        Directory.CreateDirectory(Path.Combine(_dir, MonitorEvents.BestFolderName));
        File.WriteAllText(MonitorEvents.BestFile(_dir), MonitorEvents.WriteBest(new BestCheckpoint(2, "monitor/gold", -0.127)));
        Assert.Equal(new BestCheckpoint(2, "monitor/gold", -0.127), MonitorEvents.ReadBest(_dir));

        File.AppendAllText(Path.Combine(_dir, MonitorEvents.FileName), "{\"step\": 7, \"rule\": \n");
        var ex = Assert.Throws<FormatException>(() => MonitorEvents.Read(_dir));
        Assert.Contains($"{MonitorEvents.FileName}:3", ex.Message);
    }
}
