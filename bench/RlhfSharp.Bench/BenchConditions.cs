// What the `rlhf bench` GPT commands report beside their timings: the machine's load average when they ran and, with
// --profile, where a GPT's time went per phase (see GptProfile).
using System.Globalization;
using RlhfSharp.Models;

namespace RlhfSharp.Bench;

public static class BenchConditions
{
    /// <summary>The 1-minute load average from /proc/loadavg, or −1 where the system has no such file.</summary>
    public static double LoadAverage()
    {
        try
        {
            string text = File.ReadAllText("/proc/loadavg");
            return double.Parse(text.Split(' ')[0], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return -1;
        }
        catch (UnauthorizedAccessException)
        {
            return -1;
        }
    }

    /// <summary>Per-phase milliseconds per unit of work (a step or a token), wall and CPU, largest CPU share first.</summary>
    public static Dictionary<string, object> Phases(GptProfile profile, int units)
    {
        var phases = new Dictionary<string, object>();
        double totalCpu = profile.Phases.Sum(p => p.CpuSeconds);
        foreach (var p in profile.Phases.OrderByDescending(p => p.CpuSeconds))
        {
            phases[p.Phase] = new Dictionary<string, object>
            {
                ["wall_ms"] = Math.Round(1000 * p.WallSeconds / units, 3),
                ["cpu_ms"] = Math.Round(1000 * p.CpuSeconds / units, 3),
                ["cpu_share"] = Math.Round(totalCpu > 0 ? p.CpuSeconds / totalCpu : 0, 3),
            };
        }
        return phases;
    }
}
