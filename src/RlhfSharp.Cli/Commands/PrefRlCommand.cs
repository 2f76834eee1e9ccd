// `rlhf prefrl`: deep RL from human preferences (Christiano et al. 2017) on a classic-control task, with the oracle or
// with people in the labelling app. Progress goes to standard error; the last line of standard output is one JSON object.
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using RlhfSharp.Control;
using RlhfSharp.Control.Preferences;
using RlhfSharp.Control.Rl;
using RlhfSharp.Feedback;
using RlhfSharp.Feedback.Labelers;
using RlhfSharp.Feedback.Stores;
using RlhfSharp.Alignment;
using RlhfSharp.Runs;
using RlhfSharp.Web;
using Spectre.Console;

namespace RlhfSharp.Cli.Commands;

internal static class PrefRlCommand
{
    private const int EvalEpisodes = 20;

    public static Command Create()
    {
        var labels = new Option<int>("--labels") { Description = "Total label budget (comparisons asked).", DefaultValueFactory = _ => 700 }.InRange(new(1));
        var preRl = new Option<int?>("--pre-rl-labels") { Description = "Labels collected before RL starts (default: a quarter of the budget)." }.InRange(NumericRange.NonNegative);
        var labeler = new Option<string>("--labeler") { Description = "oracle (true segment return, Bradley–Terry, 10% random) or app (people in the labelling app).", DefaultValueFactory = _ => "oracle" };
        var selection = new Option<string>("--selection") { Description = "disagreement (ensemble variance of P̂) or random.", DefaultValueFactory = _ => "disagreement" };
        var frozen = new Option<bool>("--frozen") { Description = "Fit the predictor once before RL and never again (the reward-hacking ablation)." };
        var port = new Option<int>("--port") { Description = "With --labeler app: the port of the labelling app on 127.0.0.1.", DefaultValueFactory = _ => 5080 }.InRange(new(0, 65535));
        var pg = new Option<string?>("--pg")
        {
            Description = "With --labeler app: a PostgreSQL connection string (Npgsql form). The queries go to that shared store and people label them " +
                "through any number of `rlhf label serve --pg ... --campaign prefrl` instances; no app is started here (docs/distributed.md).",
        };
        var withFrozen = new Option<bool>("--with-frozen")
        {
            Description = "Also run the frozen-predictor ablation (same seed, oracle only) and chart both in report.html (reward hacking made visible).",
        };
        var run = new Option<string?>("--run", "--out")
        {
            Description = "Run folder (default runs/prefrl-ENV-LABELS-sSEED): config.json, metrics.jsonl, TensorBoard events, checkpoints/, policy/, report.html.",
        };
        var resume = new Option<bool>("--resume") { Description = "Continue the run in --run from its latest checkpoint, with the settings it was started with." };
        var command = new Command("prefrl",
            "Deep RL from human preferences on control: clips, comparisons, a learned reward, PPO. PPO's settings are `rlhf rl`'s (the " +
            "environment's preset, shown: CartPole-v1's), with 150,000 steps; --seed also seeds the selection and the oracle.");
        foreach (var o in new Option[] { labels, preRl, labeler, selection, frozen, withFrozen, port, pg }) command.Options.Add(o);
        var ppo = new ConfigOptions<PpoConfig>(command, Preset(new PpoConfig().EnvId), skip: [nameof(PpoConfig.KlPenalty)]);
        command.Options.Add(run);
        command.Options.Add(resume);
        command.Subcommands.Add(PrefRlBenchCommand.Create());
        command.SetAction(p => Run(p, ppo.Build(p, presets: c => Preset(c.EnvId)), p.GetValue(labels), p.GetValue(preRl), p.GetValue(labeler)!, p.GetValue(selection)!,
            p.GetValue(frozen), p.GetValue(withFrozen), p.GetValue(port), p.GetValue(pg), p.GetValue(run), p.GetValue(resume)));
        return command;
    }

    /// <summary>
    /// PPO's defaults for the loop: the environment's preset with 150,000 steps, and the newest three checkpoints kept (each
    /// holds the segment pool and the predictor besides PPO's state, a few MB).
    /// </summary>
    private static PpoConfig Preset(string envId) => PpoConfig.ForEnv(envId) with { TotalSteps = 150_000, KeepCheckpoints = 3 };

    private static int Run(ParseResult p, PpoConfig ppo, int budget, int? preRl, string labelerName, string selectionName, bool frozen,
        bool withFrozen, int port, string? pg, string? runPath, bool resume)
    {
        var (envId, steps, seed) = (ppo.EnvId, ppo.TotalSteps, ppo.Seed);
        EnvRegistry.Make(envId); // refuses an unknown id with the list of valid ones
        var rule = selectionName switch
        {
            "disagreement" => SelectionRule.Disagreement,
            "random" => SelectionRule.Random,
            _ => throw new ArgumentException($"--selection must be disagreement or random (got '{selectionName}')."),
        };
        if (labelerName is not ("oracle" or "app")) throw new ArgumentException($"--labeler must be oracle or app (got '{labelerName}').");
        if (pg is not null && labelerName != "app") throw new ArgumentException("--pg is where people's judgments come from: it goes with --labeler app.");
        if (withFrozen && (frozen || labelerName != "oracle"))
            throw new ArgumentException($"--with-frozen adds a frozen run beside an online oracle run; it cannot go with --frozen or --labeler {labelerName}.");
        var schedule = new LabelSchedule(budget, preRl ?? Math.Max(1, budget / 4));
        var cfg = new PreferenceConfig
        {
            EnvId = envId,
            Ppo = ppo,
            Schedule = schedule,
            Selection = rule,
            FreezeAfterFirstFit = frozen,
            RenderClips = labelerName == "app",
        };
        cfg.Validate(); // --labeler app on an env without clips, a budget below the pre-RL share: refused before any work
        using var runDir = RunContract.Open(p, runPath ?? Path.Combine("runs", $"prefrl-{envId}-{budget}-s{seed}"), resume);
        string dir = runDir.Path;
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        ILabeler labeler;
        Microsoft.AspNetCore.Builder.WebApplication? app = null;
        SqlPreferenceStore? store = null;
        if (labelerName == "app" && pg is not null)
        {
            // Many labellers: the shared store that every `rlhf label serve --pg` instance serves; judgments from any of them count.
            store = new PostgresPreferenceStore(pg);
            Blocking.Run(() => store.MigrateAsync());
            console.MarkupLine($"queries go to PostgreSQL (campaign [bold]{Markup.Escape(cfg.Campaign)}[/]): label them through `rlhf label serve --pg ... --campaign {Markup.Escape(cfg.Campaign)}` (any number of instances)");
            labeler = new StoreLabeler(store, TimeSpan.FromMilliseconds(500)) { OnWaiting = id => console.MarkupLine($"[grey]query {id} waiting for a judgment[/]") };
        }
        else if (labelerName == "app")
        {
            var sqlite = Blocking.Run(() => SqlitePreferenceStore.OpenAsync(Path.Combine(dir, "feedback.db")));
            store = sqlite;
            // A resumed run's store already has its first labeller (whose token was printed then): a new one joins.
            string name = runDir.Resumed ? $"labeller-{DateTime.UtcNow:yyyyMMddHHmmss}" : "labeller";
            var (_, token) = Blocking.Run(() => sqlite.AddLabelerAsync(name, LabelerRole.Labeler));
            app = LabelingApp.Build(sqlite, new LabelingAppOptions(Port: port, Campaign: "prefrl"));
            Blocking.Run(() => app.StartAsync());
            console.MarkupLine($"labelling app: [bold]{Markup.Escape(LabelingApp.BoundAddress(app).ToString())}[/]  labeller token: [bold]{Markup.Escape(token)}[/]");
            labeler = new StoreLabeler(sqlite, TimeSpan.FromMilliseconds(500)) { OnWaiting = id => console.MarkupLine($"[grey]query {id} waiting for a judgment[/]") };
        }
        else labeler = SegmentQueries.Oracle(epsilon: 0.1, seed: (int)(seed % int.MaxValue));

        PreferenceResult result;
        try
        {
            string stage = $"prefrl {envId}";
            result = AlignCommandSupport.WithProgress(stage, steps, (progress, ct) =>
                PreferenceLoop.Run(cfg, labeler, seed, new TrainOptions(runDir, new LoopProgress(progress, stage)), ct));
        }
        finally
        {
            if (app is not null) Blocking.Run(() => app.StopAsync());
            if (store is not null) Blocking.Run(() => store.DisposeAsync().AsTask());
        }
        long stepsDone = result.Metrics.Count > 0 ? result.Metrics[^1].GlobalStep : ReadRows(dir).LastOrDefault()?.GlobalStep ?? 0;
        if (result.Cancelled) return AlignCommandSupport.Stopped("prefrl", dir, stepsDone);
        var eval = PreferenceLoop.Evaluate(result.Policy, result.Predictor, EvalEpisodes, seed + 1_000_000);
        double acc = result.Predictor.OutOfBagAccuracy();
        var entries = new List<PrefRlReport.Entry> { new(frozen ? "frozen" : "online", ReadRows(dir), eval) };
        if (withFrozen)
        {
            // The ablation is a run of its own in RUN/frozen (checkpointed and resumed like the main one).
            console.MarkupLine("[grey]frozen-predictor ablation: same seed, predictor fitted once before RL[/]");
            string frozenDir = Path.Combine(dir, "frozen");
            bool frozenStarted = Directory.Exists(Path.Combine(frozenDir, RunDirectory.CheckpointsFolderName));
            using var frozenRunDir = RunDirectory.Open(frozenDir, resume: frozenStarted);
            var frozenRun = AlignCommandSupport.WithProgress("prefrl frozen ablation", steps, (progress, ct) =>
                PreferenceLoop.Run(cfg with { FreezeAfterFirstFit = true }, SegmentQueries.Oracle(epsilon: 0.1, seed: (int)(seed % int.MaxValue)), seed,
                    new TrainOptions(frozenRunDir, new LoopProgress(progress, "prefrl frozen ablation")), ct));
            if (frozenRun.Cancelled) return AlignCommandSupport.Stopped("prefrl", dir, stepsDone);
            entries.Add(new("frozen", ReadRows(frozenDir), PreferenceLoop.Evaluate(frozenRun.Policy, frozenRun.Predictor, EvalEpisodes, seed + 1_000_000)));
        }
        string policy = Path.Combine(dir, "policy");
        RunContract.Finish(runDir, stepsDone, policy);
        PrefRlReport.Build(envId, budget, entries).Write(Path.Combine(dir, "report.html")); // the loop's own report in place of the generic one
        console.MarkupLine($"[grey]run saved to {Markup.Escape(dir)} (report.html)[/]");
        static JsonNode? Num(double v) => double.IsFinite(v) ? Math.Round(v, 4) : null;
        var line = new JsonObject
        {
            ["env"] = envId, ["labels"] = result.LabelsUsed, ["steps"] = stepsDone, ["seed"] = seed,
            ["selection"] = selectionName, ["frozen"] = frozen,
            ["eval_true_return"] = Num(eval.MeanTrueReturn), ["rm_heldout_accuracy"] = Num(acc), ["reward_correlation"] = Num(eval.RewardCorrelation),
            ["wall_s"] = Math.Round(result.WallSeconds, 3),
        };
        if (withFrozen) line["frozen_eval_true_return"] = Num(entries[1].Eval.MeanTrueReturn);
        Console.Out.WriteLine(line.ToJsonString());
        return 0;
    }

    /// <summary>Every metrics row of a run folder (a resumed run's result holds only the rows since the resume).</summary>
    private static List<MetricsRow> ReadRows(string runPath)
    {
        string file = Path.Combine(runPath, RunDirectory.MetricsFileName);
        return File.Exists(file) ? [.. MetricsWriter.ReadAll(file).Select(r => new MetricsRow(r.Step, r.Values))] : [];
    }

    /// <summary>The loop's progress on the bar: labels, the predictor's held-out accuracy and the true return beside the stage.</summary>
    private sealed class LoopProgress(IProgress<AlignmentProgress> bar, string stage) : IProgress<TrainProgress>
    {
        public void Report(TrainProgress value) => bar.Report(new AlignmentProgress(stage, value.GlobalStep, value.TotalSteps,
            value.RecentReturn is double r ? new Dictionary<string, double> { [MetricKeys.EpisodicReturn] = r } : []));
    }
}
