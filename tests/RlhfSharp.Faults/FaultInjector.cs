// The fault-injection suite (issue 17): a trainer is started, then killed with SIGKILL or stopped with SIGTERM at a
// random moment within the first 70% of an uninterrupted run's time (during start-up, mid-step, mid-checkpoint, while writing
// its outputs — wherever the moment falls), resumed with `--resume --run RUN` alone, interrupted again, and finally
// resumed to the end; its weights and metrics (timing fields aside) must equal the uninterrupted run's bit for bit.
// A run interrupted before it recorded its command line (no config.json yet) is started again as a user would.
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json.Nodes;

namespace RlhfSharp.Faults;

/// <summary>What one trainer went through and whether it ended with the uninterrupted run's bits.</summary>
/// <param name="Kills">SIGKILLs that hit a running process.</param>
/// <param name="Terms">SIGTERMs that hit a running process.</param>
/// <param name="Resumes">Processes started with --resume (the last one runs to the end).</param>
/// <param name="Restarts">Processes started afresh because the run had not recorded its command line yet.</param>
/// <param name="Mismatch">Null when the bits matched; else what differed or failed.</param>
public sealed record FaultOutcome(string Trainer, int Kills, int Terms, int Resumes, int Restarts, string? Mismatch, double Seconds)
{
    public bool Matched => Mismatch is null;
}

public static partial class FaultInjector
{
    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int signal);

    private const int SigTerm = 15;

    /// <summary>
    /// Runs <paramref name="trainer"/> uninterrupted, then again with <paramref name="faults"/> interruptions at random
    /// moments (each a SIGKILL or a SIGTERM, chosen by <paramref name="random"/>), and compares the two.
    /// </summary>
    public static FaultOutcome Run(string dir, string trainer, int faults, Random random, string tag, Action<string>? log = null)
    {
        var clock = Stopwatch.StartNew();
        string straight = $"{trainer}-straight-{tag}", faulty = $"{trainer}-faulty-{tag}";
        string straightRun = $"runs/{straight}", run = $"runs/{faulty}";
        var timer = Stopwatch.StartNew();
        ResumeJobs.Run(dir, ResumeJobs.Command(trainer, straight, straightRun));
        double uninterrupted = timer.Elapsed.TotalSeconds;
        var expected = ResumeJobs.Hashes(dir, trainer, straight, straightRun);

        int kills = 0, terms = 0, resumes = 0, restarts = 0;
        string[] Next()
        {
            // A run folder whose config.json records the command line can be resumed; otherwise the run never really started.
            string config = Path.Combine(dir, run, "config.json");
            bool recorded = File.Exists(config) && JsonNode.Parse(File.ReadAllText(config)) is JsonObject o && o["args"] is not null;
            if (!recorded && (kills + terms) > 0) restarts++;
            if (recorded) resumes++;
            return recorded ? [.. ResumeJobs.ResumeArgs(trainer), "--resume", "--run", run] : ResumeJobs.Command(trainer, faulty, run);
        }
        for (int f = 0; f < faults; f++)
        {
            var args = Next();
            using var process = ResumeJobs.Start(dir, args);
            var stderr = process.StandardError.ReadToEndAsync();
            _ = process.StandardOutput.ReadToEndAsync();
            // Within the first 70% of an uninterrupted run's time: a resumed process has less left to do, and a moment
            // past its end would hit nothing.
            int delay = (int)(random.NextDouble() * 0.7 * uninterrupted * 1000);
            bool sigterm = random.Next(2) == 0;
            if (process.WaitForExit(delay))
            {
                // It finished before the fault was due: the rest of the faults have nothing left to hit.
                if (process.ExitCode != 0) return Failed($"`rlhf {string.Join(' ', args)}` exited {process.ExitCode}: {Last(stderr.Result)}");
                log?.Invoke($"{trainer}: finished before fault {f + 1} (after {delay} ms)");
                return Compare();
            }
            if (sigterm)
            {
                if (kill(process.Id, SigTerm) != 0) return Failed($"kill(SIGTERM) failed: errno {Marshal.GetLastPInvokeError()}");
            }
            else process.Kill();
            if (!process.WaitForExit(TimeSpan.FromMinutes(3))) return Failed($"{trainer} did not exit within 3 minutes of {(sigterm ? "SIGTERM" : "SIGKILL")}");
            // 0: it finished just as the signal came; 130/143: stopped at a checkpoint; 137: killed. Anything else is a failure.
            int exit = process.ExitCode;
            if (exit is not (0 or 130 or 137 or 143)) return Failed($"`rlhf {string.Join(' ', args)}` exited {exit} after {(sigterm ? "SIGTERM" : "SIGKILL")}: {Last(stderr.Result)}");
            if (exit != 0 && sigterm) terms++;
            else if (exit != 0) kills++;
            log?.Invoke($"{trainer}: {(sigterm ? "SIGTERM" : "SIGKILL")} after {delay} ms (exit {exit})");
        }
        var last = Next();
        var (code, err) = ResumeJobs.RunProcess(dir, last);
        if (code != 0) return Failed($"`rlhf {string.Join(' ', last)}` exited {code}: {Last(err)}");
        return Compare();

        FaultOutcome Compare()
        {
            string[] actual;
            try
            {
                actual = ResumeJobs.Hashes(dir, trainer, faulty, run);
            }
            catch (IOException ex)
            {
                return Failed(ex.Message);
            }
            string? mismatch = expected.SequenceEqual(actual) ? null
                : $"hashes differ: uninterrupted {string.Join(' ', expected.Select(h => h[..12]))}, interrupted {string.Join(' ', actual.Select(h => h[..12]))}";
            return new FaultOutcome(trainer, kills, terms, resumes, restarts, mismatch, clock.Elapsed.TotalSeconds);
        }
        FaultOutcome Failed(string why) => new(trainer, kills, terms, resumes, restarts, why, clock.Elapsed.TotalSeconds);
    }

    private static string Last(string stderr) =>
        stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault() ?? "(no output)";
}
