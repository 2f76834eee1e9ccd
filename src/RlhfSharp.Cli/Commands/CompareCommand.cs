// `rlhf compare`: one comparison, apples to apples (issue 20 part 5). PPO (adaptive β), RLOO, GRPO, Dr. GRPO, DAPO, online
// DPO, DPO, IPO, KTO, SimPO, best-of-N and expert iteration, each from the same SFT model per task, rewarded by the task's
// scorer, at the same budget, measured per method × task × seed (ComparisonMethods, ComparisonEvaluation).
// The run contract: RUN/config.json holds the command line, the settings and the plan (steps per method × task, from
// --budget-seconds calibrated here, from --plan FILE, or --steps); RUN/cells/TASK.METHOD.seedN.json holds each finished
// cell, written atomically; RUN/metrics.jsonl one line per cell; at the end RUN/comparison.json, RUN/comparison.md and
// RUN/report.html. `--resume --run RUN` keeps the plan and the finished cells and runs the others from their start (a cell
// is deterministic, so an interrupted one gives the same bits when run again).
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using RlhfSharp.Alignment;
using RlhfSharp.Alignment.Comparison;
using RlhfSharp.Alignment.Demo;
using RlhfSharp.Models;
using RlhfSharp.Runs;
using RlhfSharp.Text;

namespace RlhfSharp.Cli.Commands;

internal static class CompareCommand
{
    public const string CellsFolder = "cells";
    public const string PlanKey = "plan";

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>Test hook: the cell with this 1-based index (in run order) is cancelled at its first progress report, as a signal would.</summary>
    internal static int? InterruptCell { get; set; }

    public static Command Create()
    {
        var storyModel = new Option<string?>("--story-model") { Description = "SFT model folder (weights + tokenizer) the story task starts from, e.g. a `rlhf demo` run's sft folder." };
        var sentimentModel = new Option<string?>("--sentiment-model") { Description = "Model folder the sentiment task starts from (a model pre-trained on --corpus, e.g. `rlhf demo --task sentiment`'s sft folder)." };
        var arithmeticModel = new Option<string?>("--arithmetic-model") { Description = "SFT model folder the arithmetic task starts from (trained on `rlhf arithmetic write`'s sft.jsonl)." };
        var corpus = new Option<string>("--corpus") { Description = "sentiment: the corpus its prompts come from (text file or folder of *.txt).", DefaultValueFactory = _ => "data/austen" };
        var lexicon = new Option<string>("--lexicon") { Description = "sentiment: the VADER lexicon file that scores continuations.", DefaultValueFactory = _ => "data/sentiment/vader_lexicon.txt" };
        var planFile = new Option<string?>("--plan") { Description = "Replay a plan instead of calibrating: a compare run's config.json (its \"plan\") or a plan JSON file." };
        var run = new Option<string>("--run") { Description = "Run folder (config.json, cells/, metrics.jsonl, comparison.md/json, report.html).", Required = true };
        var resume = new Option<bool>("--resume") { Description = "Continue the run in --run: same plan, finished cells kept, the others run from their start." };
        var command = new Command("compare",
            "Compare PPO, RLOO, GRPO, Dr. GRPO, DAPO, online DPO, DPO, IPO, KTO, SimPO, best-of-N and expert iteration at one budget on the story, sentiment and arithmetic tasks.");
        foreach (var o in new Option[] { storyModel, sentimentModel, arithmeticModel, corpus, lexicon, planFile, run, resume }) command.Options.Add(o);
        var settings = new ConfigOptions<CompareConfig>(command);
        command.SetAction(p =>
        {
            var config = settings.Build(p);
            config.Validate();
            var tasks = config.TaskList();
            var methods = config.MethodList();
            var modelDirs = new Dictionary<string, string?>
            {
                ["story"] = p.GetValue(storyModel), ["sentiment"] = p.GetValue(sentimentModel), ["arithmetic"] = p.GetValue(arithmeticModel),
            };
            foreach (string task in tasks)
            {
                if (modelDirs[task] is not string dir) throw new ArgumentException($"compare: task {task} needs its starting model: give --{task}-model DIR (or leave {task} out of --tasks).");
                if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"--{task}-model: {dir} does not exist.");
            }
            SentimentDemoTask? sentiment = tasks.Contains("sentiment") ? new SentimentDemoTask(DataPaths.Resolve(p.GetValue(corpus)!), DataPaths.Resolve(p.GetValue(lexicon)!)) : null;
            string command = "rlhf " + string.Join(' ', RunContract.Args);

            using var runDir = RunContract.Open(p, p.GetValue(run)!, p.GetValue(resume));
            if (!runDir.Resumed) runDir.WriteConfig(config);
            var contexts = new Dictionary<string, ComparisonContext>();
            ComparisonContext Context(string task, ulong seed)
            {
                if (!contexts.TryGetValue(task, out var ctx))
                {
                    string dir = modelDirs[task]!;
                    var model = Gpt.Load(dir);
                    var tokenizer = TokenizerFiles.Load(dir);
                    var t = task switch
                    {
                        "story" => ComparisonTask.Story(config.TrainPrompts, config.EvalPrompts),
                        "sentiment" => ComparisonTask.Sentiment(sentiment!, config.TrainPrompts, config.EvalPrompts),
                        _ => ComparisonTask.Arithmetic(config.TrainPrompts, config.EvalPrompts),
                    };
                    ctx = contexts[task] = new ComparisonContext(model, tokenizer, t, config, config.Seed);
                }
                return ctx with { Seed = seed };
            }

            int total = tasks.Count * methods.Count * config.Seeds;
            return AlignCommandSupport.WithProgress("compare", total, (progress, ct) =>
            {
                var plan = ResolvePlan(runDir, p.GetValue(planFile), config, tasks, methods, Context, progress, ct);
                if (plan is null) return Stopped(runDir.Path, "the calibration");

                string cellsDir = Path.Combine(runDir.Path, CellsFolder);
                Directory.CreateDirectory(cellsDir);
                var cells = new List<CellResult>();
                int index = 0;
                // Seed-major order: a run stopped early has whole seeds of every task and method.
                for (int s = 0; s < config.Seeds; s++)
                    foreach (string task in tasks)
                        foreach (string method in methods)
                        {
                            index++;
                            ulong seed = config.Seed + (ulong)s;
                            string file = Path.Combine(cellsDir, $"{task}.{method}.seed{seed}.json");
                            CellResult cell;
                            if (File.Exists(file)) cell = ReadCell(file);
                            else
                            {
                                var ctx = Context(task, seed);
                                int steps = plan.For(task, method).Steps;
                                using var cellCts = CancellationTokenSource.CreateLinkedTokenSource(ct);
                                var cellProgress = new CellProgress(progress, $"{task}/{method}/seed {seed}", InterruptCell == index ? cellCts : null);
                                try
                                {
                                    var trained = ComparisonMethods.Train(method, steps, ctx, cellProgress, cellCts.Token);
                                    if (trained.Cancelled) return Stopped(runDir.Path, $"cell {index} ({task}/{method}/seed {seed})");
                                    cell = ComparisonEvaluation.Evaluate(ctx, method, trained, cellCts.Token);
                                }
                                catch (OperationCanceledException)
                                {
                                    return Stopped(runDir.Path, $"cell {index} ({task}/{method}/seed {seed})");
                                }
                                catch (MethodNotApplicableException e)
                                {
                                    cell = CellResult.NotApplicableCell(task, method, seed, steps, e.Message);
                                }
                                AtomicFile.WriteAllText(file, JsonSerializer.Serialize(cell, Json));
                            }
                            cells.Add(cell);
                            if (cell.NotApplicable is null) runDir.Log(index, new Dictionary<string, double>
                            {
                                ["compare/gold"] = cell.Gold, ["compare/sft_gold"] = cell.SftGold, ["compare/gold_delta"] = cell.GoldDelta, ["compare/kl"] = cell.Kl,
                                ["compare/win_rate"] = cell.WinRate.Rate, ["compare/steps"] = cell.Steps, ["compare/train_seconds"] = cell.TrainSeconds,
                            });
                            progress.Report(new AlignmentProgress("compare", index, total, new Dictionary<string, double>()));
                        }

                var rows = ComparisonTable.Rows(cells, tasks, methods, t => t == "arithmetic");
                string markdown = ComparisonTable.Markdown(rows, plan, command);
                AtomicFile.WriteAllText(Path.Combine(runDir.Path, "comparison.md"), markdown);
                AtomicFile.WriteAllText(Path.Combine(runDir.Path, "comparison.json"),
                    JsonSerializer.Serialize(new { budget_seconds = plan.BudgetSeconds, command, rows, cells }, Json));
                ComparisonTable.Report(rows, plan, command, runDir.Path).Write(Path.Combine(runDir.Path, RunReportFileName));
                runDir.MarkFinished(index, null);
                Console.Out.Write(markdown);
                return 0;
            });
        });
        return command;
    }

    private const string RunReportFileName = "report.html";

    private static int Stopped(string runPath, string where)
    {
        Console.Error.WriteLine($"compare: stopped in {where}; finished cells are in {runPath}/{CellsFolder}. Continue with `rlhf compare --resume --run {runPath}`.");
        return AlignCommandSupport.InterruptedExitCode;
    }

    private static CellResult ReadCell(string file)
    {
        try
        {
            return JsonSerializer.Deserialize<CellResult>(File.ReadAllText(file), Json) ?? throw new JsonException("empty");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{file}: not a compare cell result ({e.Message}); delete it to run the cell again.");
        }
    }

    /// <summary>
    /// The plan: the one recorded in config.json (a resumed run), else --plan FILE, else --steps for all (budget 0), else a
    /// calibration on this machine. A new plan is recorded in config.json before any cell runs. Null when cancelled.
    /// </summary>
    private static ComparisonPlan? ResolvePlan(RunDirectory run, string? planFile, CompareConfig config, IReadOnlyList<string> tasks, IReadOnlyList<string> methods,
        Func<string, ulong, ComparisonContext> context, IProgress<AlignmentProgress> progress, CancellationToken ct)
    {
        ComparisonPlan? plan = null;
        if (run.Resumed && run.ReadConfigRoot()[PlanKey] is JsonNode recorded) plan = recorded.Deserialize<ComparisonPlan>(Json);
        else if (planFile is not null) plan = ReadPlan(planFile);
        else if (config.BudgetSeconds == 0)
            plan = new ComparisonPlan(0, [.. tasks.SelectMany(t => methods.Select(m => new PlanEntry(t, m, config.Steps)))]);
        else
        {
            var entries = new List<PlanEntry>();
            var warmed = new HashSet<string>();
            int done = 0;
            foreach (string task in tasks)
                foreach (string method in methods)
                {
                    var ctx = context(task, config.Seed);
                    double Time(int steps)
                    {
                        var trained = ComparisonMethods.Train(method, steps, ctx, null, ct);
                        // Best-of-N's cost is its sampling, which happens when it is evaluated.
                        return method == "best_of_n" && !ct.IsCancellationRequested ? ComparisonEvaluation.Evaluate(ctx, method, trained, ct).TrainSeconds : trained.Seconds;
                    }
                    double one, many;
                    try
                    {
                        // An untimed step first, once per method: the JIT compiles its code then, not inside t₁.
                        if (warmed.Add(method)) Time(1);
                        one = Time(1);
                        many = Time(1 + config.CalibrationSteps);
                    }
                    catch (OperationCanceledException)
                    {
                        return null;
                    }
                    catch (MethodNotApplicableException)
                    {
                        // Its cells will say why; it needs no steps.
                        entries.Add(new PlanEntry(task, method, 1));
                        continue;
                    }
                    if (ct.IsCancellationRequested) return null;
                    entries.Add(ComparisonPlanner.Plan(task, method, config.BudgetSeconds, config.CalibrationSteps, one, many, config.MaxSteps));
                    progress.Report(new AlignmentProgress("calibrate", ++done, tasks.Count * methods.Count, new Dictionary<string, double>()));
                }
            plan = new ComparisonPlan(config.BudgetSeconds, entries);
        }
        if (plan is null) throw new InvalidDataException($"{planFile ?? run.Path}: no plan in it.");
        foreach (string t in tasks) foreach (string m in methods)
            {
                var e = plan.For(t, m);
                if (e.Steps < 1) throw new InvalidDataException($"{planFile ?? run.Path}: plan entry {t}/{m} has {e.Steps} steps; it needs at least 1.");
            }
        if (!(run.Resumed && run.ReadConfigRoot()[PlanKey] is not null))
            run.UpdateConfig(root => root[PlanKey] = JsonSerializer.SerializeToNode(plan, Json));
        return plan;
    }

    /// <summary>A plan from a compare run's config.json ("plan") or from a file holding the plan itself.</summary>
    private static ComparisonPlan ReadPlan(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"--plan: {path} does not exist.", path);
        try
        {
            var node = JsonNode.Parse(File.ReadAllText(path)) ?? throw new JsonException("empty file");
            var planNode = node is JsonObject o && o[PlanKey] is JsonNode inner ? inner : node;
            return planNode.Deserialize<ComparisonPlan>(Json) ?? throw new JsonException("no plan");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"--plan: {path} holds no compare plan ({e.Message}).");
        }
    }

    /// <summary>Forwards a cell's progress under its name; the test hook cancels the cell at its first report.</summary>
    private sealed class CellProgress(IProgress<AlignmentProgress> inner, string name, CancellationTokenSource? interrupt) : IProgress<AlignmentProgress>
    {
        public void Report(AlignmentProgress value)
        {
            interrupt?.Cancel();
            inner.Report(value with { Stage = name });
        }
    }
}
