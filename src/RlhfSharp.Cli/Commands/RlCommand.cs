// `rlhf rl`: train PPO, PPO-penalty or REINFORCE on a classic-control task; `rlhf rl eval` and `rlhf rl record` run a saved
// policy. The options come from PpoConfig and ReinforceConfig (CleanRL's names; --algo picks the record), with the
// environment's preset (PpoConfig.ForEnv) as PPO's defaults; the trainers keep the run contract in the run folder (--run,
// also spelt --out): config.json, metrics.jsonl, TensorBoard events, checkpoints/, policy/, report.html; `--resume --run RUN`
// continues a stopped run. Progress goes to standard error; the last line of standard output is one JSON object, for scripts.
using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using RlhfSharp.Alignment;
using RlhfSharp.Control;
using RlhfSharp.Control.Clips;
using RlhfSharp.Control.Rl;
using RlhfSharp.Runs;

namespace RlhfSharp.Cli.Commands;

internal static class RlCommand
{
    private static readonly string[] Algorithms = ["ppo", "ppo-penalty", "reinforce"];

    /// <summary>Episodes of the final deterministic evaluation, each with a fresh seed.</summary>
    private const int EvalEpisodes = 20;

    public static Command Create()
    {
        var algo = new Option<string>("--algo") { Description = $"Algorithm: {string.Join(", ", Algorithms)}.", DefaultValueFactory = _ => "ppo" };
        var run = new Option<string?>("--run", "--out") { Description = "Run folder (default runs/rl-ENV-ALGO-sSEED): config.json, metrics.jsonl, TensorBoard events, checkpoints/, policy/, report.html." };
        var resume = new Option<bool>("--resume") { Description = "Continue the run in --run from its latest checkpoint, with the settings it was started with." };
        var command = new Command("rl",
            "Reinforcement learning on classic control (Gymnasium's CartPole, Acrobot, MountainCar, Pendulum). PPO's defaults are the " +
            "environment's preset (PpoConfig.ForEnv; shown: CartPole-v1's); --algo reinforce uses ReinforceConfig's.");
        command.Options.Add(algo);
        var (ppo, reinforce) = AddSettings(command);
        command.Options.Add(run);
        command.Options.Add(resume);
        command.SetAction(p =>
        {
            string algorithm = p.GetValue(algo)!;
            if (!Algorithms.Contains(algorithm)) throw new ArgumentException($"Unknown algorithm '{algorithm}'. Valid algorithms: {string.Join(", ", Algorithms)}.");
            bool isReinforce = algorithm == "reinforce";
            // An option only the other algorithm has would be silently ignored: refuse it.
            foreach (var given in p.CommandResult.Children.OfType<System.CommandLine.Parsing.OptionResult>())
            {
                if (given.Implicit) continue;
                if (isReinforce ? ppo.Has(given.Option) && !reinforce.Has(given.Option) : reinforce.Has(given.Option) && !ppo.Has(given.Option))
                    throw new ArgumentException($"{given.Option.Name} is a {(isReinforce ? "PPO" : "REINFORCE")} setting; --algo {algorithm} does not use it.");
            }
            object config = isReinforce ? reinforce.Build(p) : BuildPpo(ppo, p, algorithm);
            var (envId, seed, total) = config switch
            {
                ReinforceConfig r => (r.EnvId, r.Seed, r.TotalSteps),
                PpoConfig c => (c.EnvId, c.Seed, c.TotalSteps),
                _ => throw new InvalidOperationException(),
            };
            // Refused before a run folder is made: an unknown id (with the list of valid ones) and settings the trainer cannot run.
            EnvRegistry.Make(envId);
            if (config is ReinforceConfig rv) rv.Validate();
            else ((PpoConfig)config).Validate();

            var cpuAtStart = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime;
            using var runDir = RunContract.Open(p, p.GetValue(run) ?? Path.Combine("runs", $"rl-{envId}-{algorithm}-s{seed}"), p.GetValue(resume));
            string stage = $"{algorithm} {envId}";
            var result = AlignCommandSupport.WithProgress(stage, total, (progress, ct) =>
            {
                var options = new TrainOptions(runDir, new ReturnProgress(progress, stage));
                return config is ReinforceConfig rcfg ? ReinforceTrainer.Train(rcfg, options, ct) : PpoTrainer.Train((PpoConfig)config, options, ct);
            });
            if (result.Cancelled) return AlignCommandSupport.Stopped("rl", runDir.Path, result.Steps);
            string policy = Path.Combine(runDir.Path, "policy");
            // Fresh evaluation seeds, disjoint from the training copies' seed, seed+1, ...
            double eval = result.Policy.EvaluateMeanReturn(EvalEpisodes, seed + 1_000_000, deterministic: true);
            RunContract.Finish(runDir, result.Steps, policy);
            Console.Error.WriteLine($"rl: run saved to {runDir.Path} (policy/, report.html)");
            Console.Out.WriteLine(new JsonObject
            {
                ["env"] = envId, ["algo"] = algorithm, ["steps"] = result.Steps, ["seed"] = seed,
                ["eval_mean_return"] = Math.Round(eval, 3), ["eval_episodes"] = EvalEpisodes,
                ["wall_s"] = Math.Round(result.WallSeconds, 3), ["sps"] = Math.Round(result.StepsPerSecond, 1),
                // CPU seconds of this process (training and evaluation): comparable across runs on a loaded, shared machine.
                ["cpu_s"] = Math.Round((System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime - cpuAtStart).TotalSeconds, 3),
            }.ToJsonString());
            return 0;
        });
        command.Subcommands.Add(CreateEval());
        command.Subcommands.Add(CreateRecord());
        return command;
    }

    /// <summary>
    /// The options of both records: PPO's, with the default environment's preset as their help defaults (--algo sets
    /// kl_penalty), and REINFORCE's, sharing those it also has.
    /// </summary>
    internal static (ConfigOptions<PpoConfig> Ppo, ConfigOptions<ReinforceConfig> Reinforce) AddSettings(Command command) =>
        (new ConfigOptions<PpoConfig>(command, PpoConfig.ForEnv(new PpoConfig().EnvId), skip: [nameof(PpoConfig.KlPenalty)]),
            new ConfigOptions<ReinforceConfig>(command, label: "reinforce"));

    /// <summary>
    /// PPO's settings: the environment's preset (PpoConfig.ForEnv) under --config FILE and the options given; --algo decides
    /// the clip or the KL penalty (a file's kl_penalty must agree with it).
    /// </summary>
    internal static PpoConfig BuildPpo(ConfigOptions<PpoConfig> settings, ParseResult p, string algorithm) =>
        settings.Build(p, presets: c => PpoConfig.ForEnv(c.EnvId), adjust: c =>
        {
            bool penalty = algorithm == "ppo-penalty";
            if (c.KlPenalty && !penalty) throw new ArgumentException($"--config {p.GetValue(settings.ConfigFile)}: kl_penalty true needs --algo ppo-penalty (got --algo {algorithm}).");
            return c with { KlPenalty = penalty };
        });

    /// <summary>The trainers' progress as the progress bar's: the mean of the last episode returns beside the stage.</summary>
    private sealed class ReturnProgress(IProgress<AlignmentProgress> bar, string stage) : IProgress<TrainProgress>
    {
        public void Report(TrainProgress value) => bar.Report(new AlignmentProgress(stage, value.GlobalStep, value.TotalSteps,
            value.RecentReturn is double r ? new Dictionary<string, double> { [MetricKeys.EpisodicReturn] = r } : []));
    }

    private static Command CreateEval()
    {
        var policy = new Option<string>("--policy") { Description = "Policy folder (config.json + model.safetensors), e.g. runs/NAME/policy.", Required = true };
        var episodes = new Option<int>("--episodes") { Description = "Episodes to run, each with a fresh seed.", DefaultValueFactory = _ => 20 }.InRange(new(1));
        var env = new Option<string?>("--env") { Description = "Expected environment; a policy trained on another one is refused." };
        var seed = new Option<ulong>("--seed") { Description = "First evaluation seed.", DefaultValueFactory = _ => 1_000_000UL }.InRange(NumericRange.NonNegative);
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
        var episodes = new Option<int>("--episodes") { Description = "Episodes to record, each with a fresh seed.", DefaultValueFactory = _ => 5 }.InRange(new(1));
        var outDir = new Option<string>("--out") { Description = "Folder for trajectories.jsonl and one animated SVG clip per episode.", Required = true };
        var env = new Option<string?>("--env") { Description = "Expected environment; a policy trained on another one is refused." };
        var seed = new Option<ulong>("--seed") { Description = "First episode seed.", DefaultValueFactory = _ => 2_000_000UL }.InRange(NumericRange.NonNegative);
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
