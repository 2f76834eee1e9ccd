// `rlhf-golden`: runs the golden jobs and prints their hashes, for someone updating GoldenTests' expected values on
// purpose (after a change meant to alter results) or looking for where two paths or two runs part.
//   dotnet tests/RlhfSharp.Golden/bin/Release/net10.0/rlhf-golden.dll [--path avx512|avx2]... [--env NAME=VALUE]...
//       [--jobs pretrain,sft,...] [--repeat N] [--work DIR]
//   --path    run on this path (default: every path of this CPU); --env sets a variable in every child (a path label
//             shows it); --repeat runs each path N times; --work keeps the work folders under DIR (DIR itself for one
//             run, so later jobs can be rerun there on another path: --work DIR --path avx2 --jobs ppo).
//   --probe   prints what this runtime reports about AVX-512/AVX2 (the tests use it to check a path's switch took effect).
using System.Globalization;
using RlhfSharp.Golden;

if (args is ["--probe"])
{
    Console.WriteLine(GoldenJobs.RuntimeLine());
    return 0;
}

var paths = new List<GoldenPath>();
var env = new Dictionary<string, string?>();
var jobNames = new List<string>();
int repeat = 1;
string? work = null;
for (int i = 0; i < args.Length; i++)
{
    string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
    switch (args[i])
    {
        case "--path":
            string p = Value();
            paths.Add(p == "avx2" ? GoldenJobs.Avx2Path : GoldenJobs.PathsOfThisCpu().FirstOrDefault(x => x.Name == p)
                ?? throw new ArgumentException($"--path {p}: this CPU offers {string.Join(", ", GoldenJobs.PathsOfThisCpu().Select(x => x.Name))}."));
            break;
        case "--env":
            string kv = Value();
            int eq = kv.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0) throw new ArgumentException($"--env {kv}: expected NAME=VALUE.");
            env[kv[..eq]] = kv[(eq + 1)..];
            break;
        case "--jobs":
            jobNames.AddRange(Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
            break;
        case "--repeat":
            repeat = int.Parse(Value(), CultureInfo.InvariantCulture);
            break;
        case "--work":
            work = Path.GetFullPath(Value());
            break;
        default:
            Console.Error.WriteLine($"rlhf-golden: unknown argument {args[i]} (see the header of tests/RlhfSharp.Golden/Program.cs).");
            return 1;
    }
}
if (paths.Count == 0) paths.AddRange(GoldenJobs.PathsOfThisCpu());
var unknown = jobNames.Where(n => GoldenJobs.All.All(j => j.Name != n)).ToList();
if (unknown.Count > 0)
{
    Console.Error.WriteLine($"rlhf-golden: unknown job {string.Join(", ", unknown)}; jobs: {string.Join(", ", GoldenJobs.All.Select(j => j.Name))}.");
    return 1;
}
var jobs = jobNames.Count == 0 ? GoldenJobs.All : GoldenJobs.All.Where(j => jobNames.Contains(j.Name)).ToList();

string rlhf = GoldenJobs.FindRlhf();
Console.WriteLine($"rlhf: {rlhf}; this process: {GoldenJobs.RuntimeLine()}");
var runs = new List<(string Label, IReadOnlyList<GoldenResult> Results)>();
foreach (var basePath in paths)
{
    var merged = new Dictionary<string, string?>(basePath.Environment);
    foreach (var (k, v) in env) merged[k] = v;
    string label = basePath.Name + string.Concat(env.Select(kv => $"+{kv.Key}={kv.Value}"));
    var path = new GoldenPath(label, merged);
    Console.WriteLine($"{label}: child reports {GoldenJobs.ProbeRuntime(path)}");
    for (int r = 1; r <= repeat; r++)
    {
        string runLabel = repeat > 1 ? $"{label} #{r}" : label;
        bool single = paths.Count == 1 && repeat == 1;
        string dir = work is null ? Path.Combine(Path.GetTempPath(), "rlhf-golden-" + Guid.NewGuid().ToString("N"))
            : single ? work : Path.Combine(work, $"{basePath.Name}-{r}");
        try
        {
            runs.Add((runLabel, GoldenJobs.Run(rlhf, dir, path, jobs, Console.WriteLine)));
        }
        finally
        {
            if (work is null && Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }
}

// Side by side: does every run give the first run's hashes?
Console.WriteLine();
Console.WriteLine($"{"job",-12} {"seconds (per run)",-28} weights  metrics   (same as {runs[0].Label}?)");
foreach (var job in jobs)
{
    var row = runs.Select(r => r.Results.Single(x => x.Job == job.Name)).ToList();
    string seconds = string.Join(" ", row.Select(x => x.Seconds.ToString("F1", CultureInfo.InvariantCulture)));
    string weights = string.Join("/", row.Skip(1).Select(x => x.Hashes.Weights == row[0].Hashes.Weights ? "same" : "DIFF"));
    string metrics = string.Join("/", row.Skip(1).Select(x => x.Hashes.Metrics == row[0].Hashes.Metrics ? "same" : "DIFF"));
    Console.WriteLine($"{job.Name,-12} {seconds,-28} {(runs.Count > 1 ? weights : "-"),-8} {(runs.Count > 1 ? metrics : "-")}");
}

// The first run's values in the form GoldenTests' table takes.
Console.WriteLine();
Console.WriteLine($"// {runs[0].Label}");
foreach (var r in runs[0].Results)
    Console.WriteLine($"[\"{r.Job}\"] = new(\"{r.Hashes.Weights}\", \"{r.Hashes.Metrics}\"),");
return 0;
