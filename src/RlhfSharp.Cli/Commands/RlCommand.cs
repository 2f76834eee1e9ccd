// `rlhf rl`: train PPO, PPO-penalty or REINFORCE on a classic-control task; `rlhf rl eval` and `rlhf rl record` run a saved
// policy. Progress goes to standard error; the last line of standard output is one JSON object, for scripts.
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using RlhfSharp.Control;
using RlhfSharp.Control.Clips;
using RlhfSharp.Control.Rl;
using Spectre.Console;

namespace RlhfSharp.Cli.Commands;

internal static class RlCommand
{
    private static readonly string[] Algorithms = ["ppo", "ppo-penalty", "reinforce"];

    /// <summary>Episodes of the final deterministic evaluation, each with a fresh seed.</summary>
    private const int EvalEpisodes = 20;

    public static Command Create()
    {
        var env = new Option<string>("--env") { Description = $"Environment id: {string.Join(", ", EnvRegistry.Ids)}.", Required = true };
        var algo = new Option<string>("--algo") { Description = $"Algorithm: {string.Join(", ", Algorithms)}.", DefaultValueFactory = _ => "ppo" };
        var steps = new Option<long?>("--steps") { Description = "Environment steps to train for (default: 100000 for PPO, 200000 for REINFORCE)." };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the environments, initialisation and sampling.", DefaultValueFactory = _ => 1UL };
        var outDir = new Option<string?>("--out") { Description = "Run folder (default runs/rl-ENV-ALGO-sSEED): config.json, metrics.jsonl, TensorBoard events, policy/." };
        var command = new Command("rl", "Reinforcement learning on classic control (Gymnasium's CartPole, Acrobot, MountainCar, Pendulum).");
        command.Options.Add(env);
        command.Options.Add(algo);
        command.Options.Add(steps);
        command.Options.Add(seed);
        command.Options.Add(outDir);
        command.SetAction(p => Train(p.GetValue(env)!, p.GetValue(algo)!, p.GetValue(steps), p.GetValue(seed), p.GetValue(outDir)));
        command.Subcommands.Add(CreateEval());
        command.Subcommands.Add(CreateRecord());
        return command;
    }

    private static int Train(string envId, string algo, long? steps, ulong seed, string? outDir)
    {
        EnvRegistry.Make(envId); // refuses an unknown id with the list of valid ones
        if (!Algorithms.Contains(algo)) throw new ArgumentException($"Unknown algorithm '{algo}'. Valid algorithms: {string.Join(", ", Algorithms)}.");
        long total = steps ?? (algo == "reinforce" ? 200_000 : 100_000);
        if (total < 1) throw new ArgumentException($"--steps must be positive (got {total}).");
        string dir = outDir ?? Path.Combine("runs", $"rl-{envId}-{algo}-s{seed}");
        Directory.CreateDirectory(dir);

        object config = algo == "reinforce"
            ? new ReinforceConfig { TotalSteps = total }
            : PpoConfig.ForEnv(envId) with { TotalSteps = total, KlPenalty = algo == "ppo-penalty" };
        var runConfig = new JsonObject
        {
            ["env"] = envId, ["algo"] = algo, ["steps"] = total, ["seed"] = seed,
            ["config"] = JsonSerializer.SerializeToNode(config, config.GetType()),
        };
        File.WriteAllText(Path.Combine(dir, "config.json"), runConfig.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));

        var cpuAtStart = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime;
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        TrainResult result = null!;
        using (var metrics = new RlhfSharp.Runs.MetricsWriter(Path.Combine(dir, "metrics.jsonl")))
        using (var tb = new RlhfSharp.Runs.TensorBoardWriter(dir))
        {
            void Log(MetricsRow row) { metrics.Write(row.GlobalStep, row.Values); tb.AddScalars(row.GlobalStep, row.Values); }
            console.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask($"{algo} {envId}", maxValue: total);
                    void Progress(TrainProgress pr)
                    {
                        task.Value = Math.Min(pr.GlobalStep, total);
                        task.Description = pr.RecentReturn is double r
                            ? $"{algo} {envId} return {r.ToString("F1", CultureInfo.InvariantCulture)}"
                            : $"{algo} {envId}";
                    }
                    result = config is ReinforceConfig rc
                        ? ReinforceTrainer.Train(envId, rc, seed, Log, Progress)
                        : PpoTrainer.Train(envId, (PpoConfig)config, seed, Log, Progress);
                    task.Value = total;
                });
        }
        result.Policy.Save(Path.Combine(dir, "policy"));
        // Fresh evaluation seeds, disjoint from the training copies' seed, seed+1, ...
        double eval = result.Policy.EvaluateMeanReturn(EvalEpisodes, seed + 1_000_000, deterministic: true);
        console.MarkupLine($"[grey]run saved to {Markup.Escape(dir)}[/]");
        Console.Out.WriteLine(new JsonObject
        {
            ["env"] = envId, ["algo"] = algo, ["steps"] = result.Metrics.Count > 0 ? result.Metrics[^1].GlobalStep : 0, ["seed"] = seed,
            ["eval_mean_return"] = Math.Round(eval, 3), ["eval_episodes"] = EvalEpisodes,
            ["wall_s"] = Math.Round(result.WallSeconds, 3), ["sps"] = Math.Round(result.StepsPerSecond, 1),
            // CPU seconds of this process (training and evaluation): comparable across runs on a loaded, shared machine.
            ["cpu_s"] = Math.Round((System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime - cpuAtStart).TotalSeconds, 3),
        }.ToJsonString());
        return 0;
    }

    private static Command CreateEval()
    {
        var policy = new Option<string>("--policy") { Description = "Policy folder (config.json + model.safetensors), e.g. runs/NAME/policy.", Required = true };
        var episodes = new Option<int>("--episodes") { Description = "Episodes to run, each with a fresh seed.", DefaultValueFactory = _ => 20 };
        var env = new Option<string?>("--env") { Description = "Expected environment; a policy trained on another one is refused." };
        var seed = new Option<ulong>("--seed") { Description = "First evaluation seed.", DefaultValueFactory = _ => 1_000_000UL };
        var stochastic = new Option<bool>("--stochastic") { Description = "Sample actions instead of taking the mode." };
        var command = new Command("eval", "Run a saved policy and report its mean return (last stdout line: JSON).");
        command.Options.Add(policy);
        command.Options.Add(episodes);
        command.Options.Add(env);
        command.Options.Add(seed);
        command.Options.Add(stochastic);
        command.SetAction(p =>
        {
            int n = p.GetValue(episodes);
            if (n < 1) throw new ArgumentException($"--episodes must be at least 1 (got {n}).");
            var pol = ControlPolicy.Load(p.GetValue(policy)!, p.GetValue(env));
            var runs = pol.Rollouts(n, p.GetValue(seed), deterministic: !p.GetValue(stochastic));
            var returns = runs.Select(t => t.Return).ToArray();
            double mean = returns.Average();
            double std = Math.Sqrt(returns.Select(r => (r - mean) * (r - mean)).Average());
            Console.Out.WriteLine(new JsonObject
            {
                ["env"] = pol.EnvId, ["algo"] = pol.Algorithm, ["episodes"] = n, ["mean_return"] = Math.Round(mean, 3),
                ["std_return"] = Math.Round(std, 3), ["min_return"] = returns.Min(), ["max_return"] = returns.Max(),
                ["mean_length"] = runs.Average(t => t.Length),
            }.ToJsonString());
            return 0;
        });
        return command;
    }

    private static Command CreateRecord()
    {
        var policy = new Option<string>("--policy") { Description = "Policy folder (config.json + model.safetensors).", Required = true };
        var episodes = new Option<int>("--episodes") { Description = "Episodes to record, each with a fresh seed.", DefaultValueFactory = _ => 5 };
        var outDir = new Option<string>("--out") { Description = "Folder for trajectories.jsonl and one animated SVG clip per episode.", Required = true };
        var env = new Option<string?>("--env") { Description = "Expected environment; a policy trained on another one is refused." };
        var seed = new Option<ulong>("--seed") { Description = "First episode seed.", DefaultValueFactory = _ => 2_000_000UL };
        var stochastic = new Option<bool>("--stochastic") { Description = "Sample actions instead of taking the mode." };
        var command = new Command("record", "Record a saved policy's episodes as JSONL (obs, action, reward per step) and SVG clips.");
        command.Options.Add(policy);
        command.Options.Add(episodes);
        command.Options.Add(outDir);
        command.Options.Add(env);
        command.Options.Add(seed);
        command.Options.Add(stochastic);
        command.SetAction(p =>
        {
            int n = p.GetValue(episodes);
            if (n < 1) throw new ArgumentException($"--episodes must be at least 1 (got {n}).");
            var pol = ControlPolicy.Load(p.GetValue(policy)!, p.GetValue(env));
            string dir = p.GetValue(outDir)!;
            Directory.CreateDirectory(dir);
            var runs = pol.Rollouts(n, p.GetValue(seed), deterministic: !p.GetValue(stochastic));
            string path = Path.Combine(dir, "trajectories.jsonl");
            using (var w = new StreamWriter(path))
                for (int e = 0; e < runs.Count; e++) TrajectoryJsonl.Write(w, e, runs[e]);
            var renderer = ClipRenderers.For(pol.EnvId);
            for (int e = 0; e < runs.Count; e++)
                File.WriteAllText(Path.Combine(dir, $"episode-{e}.svg"),
                    renderer.RenderAnimated(runs[e], caption: $"{pol.EnvId} episode {e}: return {runs[e].Return.ToString("F1", CultureInfo.InvariantCulture)}"));
            Console.Out.WriteLine(new JsonObject
            {
                ["env"] = pol.EnvId, ["episodes"] = n, ["steps"] = runs.Sum(t => t.Length),
                ["mean_return"] = Math.Round(runs.Average(t => t.Return), 3), ["trajectories"] = path, ["clips"] = n,
            }.ToJsonString());
            return 0;
        });
        return command;
    }
}
