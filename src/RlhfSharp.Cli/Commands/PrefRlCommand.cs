// `rlhf prefrl`: deep RL from human preferences (Christiano et al. 2017) on a classic-control task, with the oracle or
// with people in the labelling app. Progress goes to standard error; the last line of standard output is one JSON object.
using System.CommandLine;
using RlhfSharp.Runs;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using RlhfSharp.Control;
using RlhfSharp.Control.Preferences;
using RlhfSharp.Control.Rl;
using RlhfSharp.Feedback;
using RlhfSharp.Feedback.Labelers;
using RlhfSharp.Feedback.Stores;
using RlhfSharp.Web;
using Spectre.Console;

namespace RlhfSharp.Cli.Commands;

internal static class PrefRlCommand
{
    private const int EvalEpisodes = 20;

    public static Command Create()
    {
        var env = new Option<string>("--env") { Description = $"Environment id: {string.Join(", ", EnvRegistry.Ids)}.", Required = true };
        var labels = new Option<int>("--labels") { Description = "Total label budget (comparisons asked).", DefaultValueFactory = _ => 700 }.InRange(new(1));
        var preRl = new Option<int?>("--pre-rl-labels") { Description = "Labels collected before RL starts (default: a quarter of the budget)." }.InRange(NumericRange.NonNegative);
        var labeler = new Option<string>("--labeler") { Description = "oracle (true segment return, Bradley–Terry, 10% random) or app (people in the labelling app).", DefaultValueFactory = _ => "oracle" };
        var selection = new Option<string>("--selection") { Description = "disagreement (ensemble variance of P̂) or random.", DefaultValueFactory = _ => "disagreement" };
        var steps = new Option<long>("--steps") { Description = "PPO environment steps.", DefaultValueFactory = _ => 150_000 }.InRange(new(1));
        var seed = new Option<ulong>("--seed") { Description = "Seed of environments, networks, selection and the oracle.", DefaultValueFactory = _ => 1UL }.InRange(NumericRange.NonNegative);
        var frozen = new Option<bool>("--frozen") { Description = "Fit the predictor once before RL and never again (the reward-hacking ablation)." };
        var port = new Option<int>("--port") { Description = "With --labeler app: the port of the labelling app on 127.0.0.1.", DefaultValueFactory = _ => 5080 }.InRange(new(0, 65535));
        var withFrozen = new Option<bool>("--with-frozen")
        {
            Description = "Also run the frozen-predictor ablation (same seed, oracle only) and chart both in report.html (reward hacking made visible).",
        };
        var outDir = new Option<string?>("--out") { Description = "Run folder (default runs/prefrl-ENV-LABELS-sSEED)." };
        var command = new Command("prefrl", "Deep RL from human preferences on control: clips, comparisons, a learned reward, PPO.");
        foreach (var o in new Option[] { env, labels, preRl, labeler, selection, steps, seed, frozen, withFrozen, port, outDir }) command.Options.Add(o);
        command.Subcommands.Add(PrefRlBenchCommand.Create());
        command.SetAction(p =>
        {
            try
            {
                return Run(p.GetValue(env)!, p.GetValue(labels), p.GetValue(preRl), p.GetValue(labeler)!, p.GetValue(selection)!, p.GetValue(steps),
                    p.GetValue(seed), p.GetValue(frozen), p.GetValue(withFrozen), p.GetValue(port), p.GetValue(outDir));
            }
            catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or FormatException)
            {
                Console.Error.WriteLine($"rlhf: error: {ex.Message.ReplaceLineEndings(" ")}");
                return 1;
            }
        });
        return command;
    }

    private static int Run(string envId, int budget, int? preRl, string labelerName, string selectionName, long steps, ulong seed, bool frozen, bool withFrozen, int port, string? outDir)
    {
        EnvRegistry.Make(envId); // refuses an unknown id with the list of valid ones
        var rule = selectionName switch
        {
            "disagreement" => SelectionRule.Disagreement,
            "random" => SelectionRule.Random,
            _ => throw new ArgumentException($"--selection must be disagreement or random (got '{selectionName}')."),
        };
        if (labelerName is not ("oracle" or "app")) throw new ArgumentException($"--labeler must be oracle or app (got '{labelerName}').");
        if (withFrozen && (frozen || labelerName != "oracle"))
            throw new ArgumentException($"--with-frozen adds a frozen run beside an online oracle run; it cannot go with --frozen or --labeler {labelerName}.");
        var schedule = new LabelSchedule(budget, preRl ?? Math.Max(1, budget / 4));
        var cfg = new PreferenceConfig
        {
            EnvId = envId,
            Ppo = PpoConfig.ForEnv(envId) with { TotalSteps = steps },
            Schedule = schedule,
            Selection = rule,
            FreezeAfterFirstFit = frozen,
            RenderClips = labelerName == "app",
        };
        cfg.Validate(); // --labeler app on an env without clips, a budget below the pre-RL share: refused before any work
        string dir = outDir ?? Path.Combine("runs", $"prefrl-{envId}-{budget}-s{seed}");
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "config.json"), new JsonObject
        {
            ["env"] = envId, ["labels"] = budget, ["pre_rl_labels"] = schedule.PreRl, ["labeler"] = labelerName, ["selection"] = selectionName,
            ["steps"] = steps, ["seed"] = seed, ["frozen"] = frozen,
            ["ppo"] = JsonSerializer.SerializeToNode(cfg.Ppo), ["predictor"] = JsonSerializer.SerializeToNode(cfg.Predictor),
            ["segment_seconds"] = cfg.SegmentSeconds,
        }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));

        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        ILabeler labeler;
        Microsoft.AspNetCore.Builder.WebApplication? app = null;
        SqlitePreferenceStore? store = null;
        if (labelerName == "app")
        {
            store = SqlitePreferenceStore.OpenAsync(Path.Combine(dir, "feedback.db")).GetAwaiter().GetResult();
            var (_, token) = store.AddLabelerAsync("labeller", LabelerRole.Labeler).GetAwaiter().GetResult();
            app = LabelingApp.Build(store, new LabelingAppOptions(Port: port, Campaign: "prefrl"));
            app.StartAsync().GetAwaiter().GetResult();
            console.MarkupLine($"labelling app: [bold]{Markup.Escape(LabelingApp.BoundAddress(app).ToString())}[/]  labeller token: [bold]{Markup.Escape(token)}[/]");
            labeler = new StoreLabeler(store, TimeSpan.FromMilliseconds(500)) { OnWaiting = id => console.MarkupLine($"[grey]query {id} waiting for a judgment[/]") };
        }
        else labeler = SegmentQueries.Oracle(epsilon: 0.1, seed: (int)(seed % int.MaxValue));

        PreferenceResult result = null!;
        try
        {
            using var metrics = new RlhfSharp.Runs.MetricsWriter(Path.Combine(dir, "metrics.jsonl"));
            using var tb = new RlhfSharp.Runs.TensorBoardWriter(dir);
            console.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask($"prefrl {envId}", maxValue: steps);
                    string last = "";
                    void Log(MetricsRow row)
                    {
                        metrics.Write(row.GlobalStep, row.Values);
                        tb.AddScalars(row.GlobalStep, row.Values);
                        var v = row.Values;
                        last = string.Create(CultureInfo.InvariantCulture,
                            $"labels {v["prefrl/labels"]:F0}/{budget} rm acc {v["prefrl/rm_oob_accuracy"]:F2} true return {v["charts/episodic_return"]:F1}");
                    }
                    void Progress(TrainProgress pr)
                    {
                        task.Value = Math.Min(pr.GlobalStep, steps);
                        task.Description = $"prefrl {envId} step {pr.GlobalStep} {last}";
                    }
                    result = PreferenceLoop.Run(cfg, labeler, seed, Log, Progress);
                    task.Value = steps;
                });
        }
        finally
        {
            app?.StopAsync().GetAwaiter().GetResult();
            store?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        result.Policy.Save(Path.Combine(dir, "policy"));
        var eval = PreferenceLoop.Evaluate(result.Policy, result.Predictor, EvalEpisodes, seed + 1_000_000);
        double acc = result.Predictor.OutOfBagAccuracy();
        var entries = new List<PrefRlReport.Entry> { new(frozen ? "frozen" : "online", result, eval) };
        if (withFrozen)
        {
            console.MarkupLine("[grey]frozen-predictor ablation: same seed, predictor fitted once before RL[/]");
            var frozenRun = PreferenceLoop.Run(cfg with { FreezeAfterFirstFit = true }, SegmentQueries.Oracle(epsilon: 0.1, seed: (int)(seed % int.MaxValue)), seed);
            entries.Add(new("frozen", frozenRun, PreferenceLoop.Evaluate(frozenRun.Policy, frozenRun.Predictor, EvalEpisodes, seed + 1_000_000)));
        }
        PrefRlReport.Build(envId, budget, entries).Write(Path.Combine(dir, "report.html"));
        console.MarkupLine($"[grey]run saved to {Markup.Escape(dir)} (report.html)[/]");
        static JsonNode? Num(double v) => double.IsFinite(v) ? Math.Round(v, 4) : null;
        var line = new JsonObject
        {
            ["env"] = envId, ["labels"] = result.LabelsUsed, ["steps"] = result.Metrics.Count > 0 ? result.Metrics[^1].GlobalStep : 0, ["seed"] = seed,
            ["selection"] = selectionName, ["frozen"] = frozen,
            ["eval_true_return"] = Num(eval.MeanTrueReturn), ["rm_heldout_accuracy"] = Num(acc), ["reward_correlation"] = Num(eval.RewardCorrelation),
            ["wall_s"] = Math.Round(result.WallSeconds, 3),
        };
        if (withFrozen) line["frozen_eval_true_return"] = Num(entries[1].Eval.MeanTrueReturn);
        Console.Out.WriteLine(line.ToJsonString());
        return 0;
    }
}
