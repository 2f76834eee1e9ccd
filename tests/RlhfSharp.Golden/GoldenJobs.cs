// The golden jobs (issue 15): short seeded runs of the real `rlhf` commands, each pinned by the SHA-256 of its final
// weights and of its metrics.jsonl without timing fields. GoldenTests compares them with the values written there;
// `rlhf-golden` (Program.cs) prints them. The jobs form one chain in one work folder: pretrain → SFT → reward → PPO,
// RLOO and DPO; control PPO and the Christiano loop stand alone.
using System.Diagnostics;
using System.Runtime.Intrinsics.X86;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using RlhfSharp.Text.StoryWorld;

namespace RlhfSharp.Golden;

/// <summary>One `rlhf` invocation and the two files it is judged by, all relative to the work folder.</summary>
/// <param name="Name">Short name used in reports and in the expected-hash table.</param>
/// <param name="Args">Arguments after `rlhf`.</param>
/// <param name="Outputs">Folders the job writes; deleted before it runs, so a rerun in a kept folder starts clean.</param>
/// <param name="Weights">The final weights file.</param>
/// <param name="Metrics">The run's metrics.jsonl.</param>
public sealed record GoldenJob(string Name, string[] Args, string[] Outputs, string Weights, string Metrics);

/// <summary>SHA-256 (lower-case hex) of a job's final weights and of its metrics without timing fields.</summary>
public sealed record GoldenHashes(string Weights, string Metrics);

/// <summary>What one job gave on one path, and how long its process took.</summary>
public sealed record GoldenResult(string Job, GoldenHashes Hashes, double Seconds);

/// <summary>
/// A way of running the child: its name in reports and the environment variables set (a null value removes one).
/// </summary>
public sealed record GoldenPath(string Name, IReadOnlyDictionary<string, string?> Environment);

public static class GoldenJobs
{
    /// <summary>Preference pairs the reward and DPO jobs train on (written by <see cref="WritePreferences"/>).</summary>
    public const string PreferencesFile = "preferences.jsonl";

    /// <summary>Pairs in <see cref="PreferencesFile"/> before ties are dropped.</summary>
    private const int PreferencePairs = 100;

    /// <summary>The jobs in the order they must run: later ones read earlier ones' model folders.</summary>
    public static IReadOnlyList<GoldenJob> All { get; } =
    [
        // A tiny GPT (2 layers, 64 wide) on 300 generated stories with a 512-token BPE learned on them.
        new("pretrain", ["pretrain", "--stories", "300", "--vocab-size", "512", "--steps", "30", "--batch-size", "8", "--eval-interval", "15",
                "--checkpoint-interval", "0", "--seed", "3", "--out", "pretrain", "--run", "runs/pretrain"],
            ["pretrain", "runs/pretrain"], "pretrain/model.safetensors", "runs/pretrain/metrics.jsonl"),
        new("sft", ["sft", "--model", "pretrain", "--demos", "200", "--steps", "20", "--batch-size", "8", "--eval-interval", "20",
                "--checkpoint-interval", "0", "--seed", "3", "--out", "sft", "--run", "runs/sft"],
            ["sft", "runs/sft"], "sft/model.safetensors", "runs/sft/metrics.jsonl"),
        new("reward", ["reward", "train", "--model", "sft", "--data", PreferencesFile, "--batch-size", "8", "--normalization-samples", "16",
                "--seed", "3", "--out", "reward", "--run", "runs/reward"],
            ["reward", "runs/reward"], "reward/model.safetensors", "runs/reward/metrics.jsonl"),
        new("ppo", ["ppo", "--policy", "sft", "--reward", "reward", "--steps", "3", "--batch-size", "8", "--minibatch-size", "4", "--ppo-epochs", "2",
                "--max-new-tokens", "16", "--checkpoint-interval", "0", "--seed", "3", "--out", "ppo", "--run", "runs/ppo"],
            ["ppo", "runs/ppo"], "ppo/model.safetensors", "runs/ppo/metrics.jsonl"),
        new("rloo", ["ppo", "--rloo", "--rloo-k", "2", "--policy", "sft", "--reward", "reward", "--steps", "3", "--batch-size", "8", "--minibatch-size", "4",
                "--ppo-epochs", "2", "--max-new-tokens", "16", "--checkpoint-interval", "0", "--seed", "3", "--out", "rloo", "--run", "runs/rloo"],
            ["rloo", "runs/rloo"], "rloo/model.safetensors", "runs/rloo/metrics.jsonl"),
        new("dpo", ["dpo", "--model", "sft", "--data", PreferencesFile, "--batch-size", "8", "--seed", "3", "--out", "dpo", "--run", "runs/dpo"],
            ["dpo", "runs/dpo"], "dpo/model.safetensors", "runs/dpo/metrics.jsonl"),
        new("control-ppo", ["rl", "--env", "CartPole-v1", "--algo", "ppo", "--steps", "4096", "--seed", "3", "--out", "control-ppo"],
            ["control-ppo"], "control-ppo/policy/model.safetensors", "control-ppo/metrics.jsonl"),
        new("prefrl", ["prefrl", "--env", "CartPole-v1", "--labels", "20", "--steps", "4096", "--seed", "3", "--out", "prefrl"],
            ["prefrl"], "prefrl/policy/model.safetensors", "prefrl/metrics.jsonl"),
    ];

    /// <summary>
    /// The paths this CPU can run: the runtime's default and, where the CPU has AVX-512, the same with the runtime's
    /// AVX-512 switched off (.NET 10 reads DOTNET_EnableAVX512; the older DOTNET_EnableAVX512F is ignored).
    /// </summary>
    public static IReadOnlyList<GoldenPath> PathsOfThisCpu()
    {
        var paths = new List<GoldenPath> { new(Avx512F.IsSupported ? "avx512" : Avx2.IsSupported ? "avx2" : "default", new Dictionary<string, string?>()) };
        if (Avx512F.IsSupported) paths.Add(Avx2Path);
        return paths;
    }

    /// <summary>The AVX2 path on an AVX-512 machine.</summary>
    public static GoldenPath Avx2Path { get; } = new("avx2", new Dictionary<string, string?> { ["DOTNET_EnableAVX512"] = "0" });

    /// <summary>
    /// Runs <paramref name="jobs"/> (default: all) in <paramref name="workDir"/> on <paramref name="path"/>, writing the
    /// preference pairs first if the folder lacks them. A job that fails stops the chain with its exit code and stderr.
    /// </summary>
    public static IReadOnlyList<GoldenResult> Run(string rlhfDll, string workDir, GoldenPath path, IEnumerable<GoldenJob>? jobs = null, Action<string>? log = null)
    {
        Directory.CreateDirectory(workDir);
        if (!File.Exists(Path.Combine(workDir, PreferencesFile))) WritePreferences(Path.Combine(workDir, PreferencesFile));
        var results = new List<GoldenResult>();
        foreach (var job in jobs ?? All)
        {
            foreach (var o in job.Outputs)
            {
                string full = Path.Combine(workDir, o);
                if (Directory.Exists(full)) Directory.Delete(full, recursive: true);
            }
            var clock = Stopwatch.StartNew();
            RunRlhf(rlhfDll, workDir, path, job);
            double seconds = clock.Elapsed.TotalSeconds;
            var hashes = new GoldenHashes(HashFile(Path.Combine(workDir, job.Weights)), HashMetrics(Path.Combine(workDir, job.Metrics)));
            results.Add(new GoldenResult(job.Name, hashes, seconds));
            log?.Invoke(FormattableString.Invariant($"{path.Name,-7} {job.Name,-12} {seconds,6:F1} s  weights {hashes.Weights}  metrics {hashes.Metrics}"));
        }
        return results;
    }

    /// <summary>
    /// Preference pairs made from the story world alone (no model): two demonstrations' completions under the first one's
    /// prompt, the one the gold scorer rates higher chosen; equal scores are left out. Same bits on every machine.
    /// </summary>
    public static void WritePreferences(string file)
    {
        var demos = Stories.Demonstrations(7, 2 * PreferencePairs);
        var lines = new List<string>();
        for (int i = 0; i + 1 < demos.Count; i += 2)
        {
            string prompt = demos[i].Prompt, a = demos[i].Completion, b = demos[i + 1].Completion;
            double ga = Stories.GoldReward(a, prompt), gb = Stories.GoldReward(b, prompt);
            if (ga == gb) continue;
            var (chosen, rejected) = ga > gb ? (a, b) : (b, a);
            lines.Add(JsonSerializer.Serialize(new Dictionary<string, string> { ["prompt"] = prompt, ["chosen"] = chosen, ["rejected"] = rejected }));
        }
        File.WriteAllLines(file, lines, new UTF8Encoding(false));
    }

    /// <summary>Lower-case hex SHA-256 of a file's bytes.</summary>
    public static string HashFile(string file)
    {
        if (!File.Exists(file)) throw new FileNotFoundException($"golden: {file} was not written.", file);
        return Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(file)));
    }

    /// <summary>
    /// Whether a metrics.jsonl field measures time or speed rather than the computation, and so differs from run to run.
    /// These are exactly what the trainers write: "wall_time" (MetricsWriter, every line), "charts/SPS" (control PPO and
    /// the Christiano loop), "perf/…" (tokens_per_s of pretrain/SFT/PPO, rollout/update seconds of control PPO,
    /// ask/fit/reward/renormalise seconds of prefrl) and "time/…" (PPO's generation/scoring/training/step seconds).
    /// </summary>
    public static bool IsTimingField(string name) =>
        name is "wall_time" or "charts/SPS" || name.StartsWith("perf/", StringComparison.Ordinal) || name.StartsWith("time/", StringComparison.Ordinal);

    /// <summary>
    /// Lower-case hex SHA-256 of metrics.jsonl with the timing fields removed: each line rewritten as its remaining fields,
    /// in file order, with the numbers' text exactly as written, lines joined by '\n'. A field left in that still looks
    /// like a clock (a trainer added one) is refused, so the list above is kept up to date instead of the hash flickering.
    /// </summary>
    public static string HashMetrics(string file)
    {
        if (!File.Exists(file)) throw new FileNotFoundException($"golden: {file} was not written.", file);
        var canonical = new StringBuilder();
        int lineNumber = 0;
        foreach (var line in File.ReadLines(file))
        {
            lineNumber++;
            if (line.Trim().Length == 0) continue;
            using var doc = JsonDocument.Parse(line);
            canonical.Append('{');
            bool first = true;
            foreach (var field in doc.RootElement.EnumerateObject())
            {
                if (IsTimingField(field.Name)) continue;
                if (LooksLikeTiming(field.Name))
                    throw new InvalidDataException($"golden: {file}:{lineNumber}: field \"{field.Name}\" looks like a time or a speed; add it to GoldenJobs.IsTimingField or rename it.");
                if (!first) canonical.Append(',');
                canonical.Append(JsonSerializer.Serialize(field.Name)).Append(':').Append(field.Value.GetRawText());
                first = false;
            }
            canonical.Append("}\n");
        }
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(canonical.ToString())));
    }

    private static bool LooksLikeTiming(string name)
    {
        string n = name.ToLowerInvariant();
        return n.Contains("time", StringComparison.Ordinal) || n.Contains("second", StringComparison.Ordinal) || n.Contains("elapsed", StringComparison.Ordinal)
            || n.Contains("sps", StringComparison.Ordinal) || n.Contains("per_s", StringComparison.Ordinal) || n.EndsWith("_s", StringComparison.Ordinal)
            || n.EndsWith("_ms", StringComparison.Ordinal);
    }

    /// <summary>The built rlhf.dll: the copy the project reference put beside this assembly, with its runtimeconfig.json.</summary>
    public static string FindRlhf() => Beside("rlhf.dll");

    /// <summary>This tool's own rlhf-golden.dll (its --probe mode reports what a child on a path sees).</summary>
    public static string FindTool() => Beside("rlhf-golden.dll");

    /// <summary>
    /// What the runtime of a child on <paramref name="path"/> reports, e.g. "Avx512F=True Vector512=True Avx2=True Fma=True
    /// Processors=2": proof that the path's switches took effect (a renamed switch would otherwise test one path twice).
    /// </summary>
    public static string ProbeRuntime(GoldenPath path) =>
        RunChild(FindTool(), ["--probe"], AppContext.BaseDirectory, path, TimeSpan.FromMinutes(1)).Trim();

    /// <summary>The line <see cref="ProbeRuntime"/> prints, for this process: instruction sets and processor count.</summary>
    public static string RuntimeLine() =>
        $"Avx512F={Avx512F.IsSupported} Vector512={System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated} Avx2={Avx2.IsSupported} Fma={Fma.IsSupported} Processors={Environment.ProcessorCount}";

    private static string Beside(string file)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, file);
        if (!File.Exists(dll) || !File.Exists(Path.ChangeExtension(dll, ".runtimeconfig.json")))
            throw new FileNotFoundException($"golden: {file} with its runtimeconfig.json is not in {AppContext.BaseDirectory}; build the solution first.", dll);
        return dll;
    }

    /// <summary>The `dotnet` host this process runs under (children use the same runtime), else the one on PATH.</summary>
    public static string DotnetHost()
    {
        if (Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host)) return host;
        if (Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet") return self;
        return "dotnet";
    }

    /// <summary>Runs `dotnet <paramref name="dll"/> args` in <paramref name="workDir"/> on <paramref name="path"/>; returns its standard output.</summary>
    public static string RunChild(string dll, string[] args, string workDir, GoldenPath path, TimeSpan timeout)
    {
        var start = new ProcessStartInfo(DotnetHost())
        {
            WorkingDirectory = workDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(dll);
        foreach (var a in args) start.ArgumentList.Add(a);
        foreach (var (name, value) in path.Environment)
        {
            if (value is null) start.Environment.Remove(name);
            else start.Environment[name] = value;
        }
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"golden: could not start {start.FileName}.");
        // Both pipes drain concurrently, so a child that fills one cannot block on it.
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            throw new TimeoutException($"golden: `{Describe(dll, args)}` on {path.Name} did not finish in {timeout.TotalSeconds:F0} s.");
        }
        if (process.ExitCode != 0)
        {
            var tail = stderr.Result.Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Trim().Length > 0).TakeLast(5);
            throw new InvalidOperationException($"golden: `{Describe(dll, args)}` on {path.Name} exited with {process.ExitCode}: {string.Join(" | ", tail)}");
        }
        return stdout.Result;
    }

    private static void RunRlhf(string rlhfDll, string workDir, GoldenPath path, GoldenJob job) =>
        RunChild(rlhfDll, job.Args, workDir, path, TimeSpan.FromMinutes(5));

    private static string Describe(string dll, string[] args) => $"dotnet {Path.GetFileName(dll)} {string.Join(' ', args)}";
}
