// `rlhf prefrl bench`: the issue's benchmark grid — preference RL with N oracle labels against PPO on the true reward with
// the same env steps and a uniform random policy — one JSON line per finished (cell, seed), resumable, and a table at the end.
using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using RlhfSharp.Control;
using RlhfSharp.Control.Preferences;
using RlhfSharp.Control.Rl;
using RlhfSharp.Tensors;

namespace RlhfSharp.Cli.Commands;

internal static class PrefRlBenchCommand
{
    private const int EvalEpisodes = 20;

    /// <summary>Env steps per task: what PPO on the true reward needs with the ForEnv presets.</summary>
    private static readonly Dictionary<string, long> StepsFor = new()
    {
        ["CartPole-v1"] = 100_000, ["Pendulum-v1"] = 300_000, ["Acrobot-v1"] = 300_000, ["MountainCarContinuous-v0"] = 300_000,
    };

    /// <summary>One grid cell: Kind is prefrl, ppo (true reward) or random (uniform random actions).</summary>
    private sealed record Cell(string Env, string Kind, int Labels, string Selection)
    {
        public string Key => Kind == "prefrl" ? $"{Env}:{Labels}:{Selection}" : $"{Env}:{Kind}";

        public static Cell Parse(string text)
        {
            var p = text.Split(':');
            string env = p[0];
            if (!StepsFor.ContainsKey(env))
                throw new ArgumentException($"--cells: '{text}' names env '{env}'; the bench knows {string.Join(", ", StepsFor.Keys)}.");
            if (p.Length == 2 && p[1] is "ppo" or "random") return new Cell(env, p[1], 0, "");
            if (p.Length is 2 or 3 && int.TryParse(p[1], NumberStyles.None, CultureInfo.InvariantCulture, out int labels) && labels >= 4)
            {
                string sel = p.Length == 3 ? p[2] : "disagreement";
                if (sel is not ("disagreement" or "random")) throw new ArgumentException($"--cells: '{text}': selection must be disagreement or random (got '{sel}').");
                return new Cell(env, "prefrl", labels, sel);
            }
            throw new ArgumentException($"--cells: '{text}' is not ENV:LABELS[:disagreement|random], ENV:ppo or ENV:random (labels ≥ 4).");
        }
    }

    public static Command Create()
    {
        var cells = new Option<string>("--cells")
        {
            Description = "Comma-separated cells in run order: ENV:LABELS[:disagreement|random], ENV:ppo (true reward), ENV:random (random policy).",
            DefaultValueFactory = _ => "CartPole-v1:700,Pendulum-v1:700,Acrobot-v1:700,CartPole-v1:ppo,Pendulum-v1:ppo,Acrobot-v1:ppo,"
                + "CartPole-v1:random,Pendulum-v1:random,Acrobot-v1:random,CartPole-v1:175,CartPole-v1:1400,Pendulum-v1:175,Pendulum-v1:1400,"
                + "Acrobot-v1:175,Acrobot-v1:1400,CartPole-v1:350,Pendulum-v1:350,Acrobot-v1:350,"
                + "CartPole-v1:350:random,Pendulum-v1:350:random,Acrobot-v1:350:random",
        };
        var seeds = new Option<string>("--seeds") { Description = "Comma-separated seeds.", DefaultValueFactory = _ => "1,2,3" };
        var output = new Option<string>("--out") { Description = "JSON-lines file results are appended to (cells already in it are skipped).", DefaultValueFactory = _ => "runs/prefrl-bench.jsonl" };
        var tableOnly = new Option<bool>("--table") { Description = "Only print the table of what the file holds." };
        var command = new Command("bench", "The prefrl benchmark grid against true-reward PPO and a random policy; appends JSON lines, prints a table.");
        foreach (var o in new Option[] { cells, seeds, output, tableOnly }) command.Options.Add(o);
        command.SetAction(p =>
        {
            try
            {
                var grid = p.GetValue(cells)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(Cell.Parse).ToList();
                var seedList = p.GetValue(seeds)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                    .Select(s => ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : throw new ArgumentException($"--seeds: '{s}' is not a seed.")).ToList();
                string file = p.GetValue(output)!;
                if (!p.GetValue(tableOnly)) RunGrid(grid, seedList, file);
                Console.Out.Write(Table(File.Exists(file) ? File.ReadAllLines(file) : []));
                return 0;
            }
            catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or FormatException)
            {
                Console.Error.WriteLine($"rlhf: error: {ex.Message}");
                return 1;
            }
        });
        return command;
    }

    private static void RunGrid(List<Cell> grid, List<ulong> seeds, string file)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(file))!);
        var done = File.Exists(file)
            ? File.ReadAllLines(file).Where(l => l.Length > 0).Select(l => JsonNode.Parse(l)!).Select(j => ((string)j["cell"]!, (ulong)j["seed"]!)).ToHashSet()
            : [];
        // Seeds inner: each cell's three seeds finish together, so the most informative cells are complete first.
        foreach (var cell in grid)
            foreach (var seed in seeds)
            {
                if (done.Contains((cell.Key, seed))) continue;
                var line = RunCell(cell, seed, file);
                File.AppendAllText(file, line.ToJsonString() + "\n");
                Console.Error.WriteLine(line.ToJsonString());
            }
    }

    /// <summary>Per-update series a failed run can be read from later: true and predicted episode returns, labels, accuracy.</summary>
    private static readonly string[] CurveKeys =
    [
        "charts/episodic_return", "prefrl/predicted_episodic_return", "prefrl/labels", "prefrl/rm_oob_accuracy", "losses/entropy",
        "losses/approx_kl", "losses/explained_variance", "prefrl/reward_zero", "prefrl/reward_scale", "prefrl/rm_oob_evidence",
    ];

    /// <summary>Writes a run's curve as JSON lines beside the results file (FILE-curves/CELL-sSEED.jsonl); returns its path.</summary>
    private static string WriteCurve(string file, Cell cell, ulong seed, IReadOnlyList<MetricsRow> rows)
    {
        string dir = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(file))!, Path.GetFileNameWithoutExtension(file) + "-curves");
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, $"{cell.Key.Replace(':', '_')}-s{seed}.jsonl");
        var sb = new StringBuilder();
        foreach (var row in rows)
        {
            var o = new JsonObject { ["step"] = row.GlobalStep };
            foreach (var k in CurveKeys)
                if (row.Values.TryGetValue(k, out double v)) o[k] = Num(v);
            sb.Append(o.ToJsonString()).Append('\n');
        }
        File.WriteAllText(path, sb.ToString());
        return path;
    }

    private static JsonObject RunCell(Cell cell, ulong seed, string file)
    {
        var watch = System.Diagnostics.Stopwatch.StartNew();
        long steps = StepsFor[cell.Env];
        var line = new JsonObject { ["cell"] = cell.Key, ["env"] = cell.Env, ["kind"] = cell.Kind, ["seed"] = seed, ["steps"] = cell.Kind == "random" ? 0 : steps };
        switch (cell.Kind)
        {
            case "random":
                line["eval_true_return"] = Math.Round(RandomPolicyReturn(cell.Env, EvalEpisodes, seed + 1_000_000), 3);
                break;
            case "ppo":
            {
                var result = PpoTrainer.Train(cell.Env, PpoConfig.ForEnv(cell.Env) with { TotalSteps = steps }, seed);
                line["eval_true_return"] = Math.Round(result.Policy.EvaluateMeanReturn(EvalEpisodes, seed + 1_000_000), 3);
                line["curve"] = WriteCurve(file, cell, seed, result.Metrics);
                break;
            }
            default:
            {
                var cfg = new PreferenceConfig
                {
                    EnvId = cell.Env,
                    Ppo = PpoConfig.ForEnv(cell.Env) with { TotalSteps = steps },
                    Schedule = new LabelSchedule(cell.Labels, Math.Max(1, cell.Labels / 4)),
                    Selection = cell.Selection == "random" ? SelectionRule.Random : SelectionRule.Disagreement,
                };
                var run = PreferenceLoop.Run(cfg, SegmentQueries.Oracle(epsilon: 0.1, seed: (int)(seed % int.MaxValue)), seed);
                var eval = PreferenceLoop.Evaluate(run.Policy, run.Predictor, EvalEpisodes, seed + 1_000_000);
                line["labels"] = run.LabelsUsed;
                line["selection"] = cell.Selection;
                line["eval_true_return"] = Math.Round(eval.MeanTrueReturn, 3);
                line["rm_heldout_accuracy"] = Num(run.Predictor.OutOfBagAccuracy());
                line["reward_correlation"] = Num(eval.RewardCorrelation);
                line["curve"] = WriteCurve(file, cell, seed, run.Metrics);
                break;
            }
        }
        line["wall_s"] = Math.Round(watch.Elapsed.TotalSeconds, 1);
        return line;
    }

    private static JsonValue? Num(double v) => double.IsFinite(v) ? JsonValue.Create(Math.Round(v, 4)) : null;

    /// <summary>Mean return of uniformly random actions over fresh-seeded episodes (the 0 of the normalised score).</summary>
    internal static double RandomPolicyReturn(string envId, int episodes, ulong seed)
    {
        var rng = new Rng(seed);
        double total = 0;
        for (int e = 0; e < episodes; e++)
        {
            var env = EnvRegistry.Make(envId);
            env.Reset(seed + (ulong)e);
            while (true)
            {
                var step = env.Step(env.ActionSpace.Sample(rng));
                total += step.Reward;
                if (step.Terminated || step.Truncated) break;
            }
        }
        return total / episodes;
    }

    /// <summary>
    /// Mean ± spread per cell over its seeds, and each prefrl cell normalised as (prefrl − random)/(ppo − random) with the
    /// env's random-policy and true-reward-PPO means (seed-matched would need both on every seed; the means are what exist).
    /// </summary>
    internal static string Table(IEnumerable<string> lines)
    {
        var rows = lines.Where(l => l.Length > 0).Select(l => JsonNode.Parse(l)!).ToList();
        var byCell = rows.GroupBy(r => (string)r["cell"]!).ToList();
        double? MeanOf(string key) => byCell.FirstOrDefault(g => g.Key == key) is { } g ? g.Average(r => (double)r["eval_true_return"]!) : null;
        var sb = new StringBuilder();
        sb.AppendLine("| cell | seeds | true return (mean ± sd) | normalised | RM held-out acc | wall s (mean) |");
        sb.AppendLine("| --- | --- | --- | --- | --- | --- |");
        foreach (var g in byCell)
        {
            var ret = g.Select(r => (double)r["eval_true_return"]!).ToArray();
            double m = ret.Average(), sd = Math.Sqrt(ret.Average(v => (v - m) * (v - m)));
            string env = (string)g.First()["env"]!;
            string norm = "";
            if ((string)g.First()["kind"]! == "prefrl" && MeanOf($"{env}:ppo") is double ppo && MeanOf($"{env}:random") is double rnd && Math.Abs(ppo - rnd) > 1e-9)
                norm = ((m - rnd) / (ppo - rnd)).ToString("P0", CultureInfo.InvariantCulture);
            var accs = g.Select(r => r["rm_heldout_accuracy"]).OfType<JsonNode>().Select(n => (double)n).ToArray();
            sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {g.Key} | {string.Join(" ", g.Select(r => (ulong)r["seed"]!))} | {m:F1} ± {sd:F1} | {norm} | {(accs.Length > 0 ? accs.Average().ToString("F2", CultureInfo.InvariantCulture) : "")} | {g.Average(r => (double)r["wall_s"]!):F0} |"));
        }
        return sb.ToString();
    }
}
