// Where a GPT's time goes: wall-clock and process CPU seconds per named phase (embeddings, layer norm, each matmul,
// attention, LM head, ...), summed over every layer and call while attached to a model. Used by `rlhf bench --profile`.
using System.Diagnostics;

namespace RlhfSharp.Models;

/// <summary>
/// Accumulates time per phase. Attach with <c>gpt.Profile = new GptProfile()</c>; Forward, Backward and KV-cached
/// steps then call <see cref="Lap"/> after each phase. CPU time is the whole process's (all kernel threads), so on a
/// shared machine it measures work done where wall time also counts waiting for a core.
/// </summary>
public sealed class GptProfile
{
    private readonly Dictionary<string, (double Wall, double Cpu, int Calls)> _phases = new(StringComparer.Ordinal);
    private long _lastTicks;
    private TimeSpan _lastCpu;

    /// <summary>Starts the clock for the next phase without charging the time since the last lap to anything.</summary>
    public void Restart()
    {
        _lastTicks = Stopwatch.GetTimestamp();
        _lastCpu = Environment.CpuUsage.TotalTime;
    }

    /// <summary>Charges the time since the previous lap (or restart) to <paramref name="phase"/>.</summary>
    public void Lap(string phase)
    {
        long now = Stopwatch.GetTimestamp();
        var cpu = Environment.CpuUsage.TotalTime;
        double wall = Stopwatch.GetElapsedTime(_lastTicks, now).TotalSeconds;
        double cpuSeconds = (cpu - _lastCpu).TotalSeconds;
        _phases[phase] = _phases.TryGetValue(phase, out var sum) ? (sum.Wall + wall, sum.Cpu + cpuSeconds, sum.Calls + 1) : (wall, cpuSeconds, 1);
        _lastTicks = now;
        _lastCpu = cpu;
    }

    /// <summary>Phases in first-seen order with total wall seconds, process CPU seconds and the number of laps.</summary>
    public IReadOnlyList<(string Phase, double WallSeconds, double CpuSeconds, int Calls)> Phases =>
        [.. _phases.Select(p => (p.Key, p.Value.Wall, p.Value.Cpu, p.Value.Calls))];

    public void Clear() => _phases.Clear();
}
