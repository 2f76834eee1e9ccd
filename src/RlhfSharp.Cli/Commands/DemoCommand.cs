// `rlhf demo`: the whole RLHF pipeline in one command (DemoPipeline) on the built-in story world or on the mock-sentiment
// task over a corpus (--task sentiment), with a progress bar on standard error and one JSON summary line on standard output.
using System.CommandLine;
using RlhfSharp.Runs;
using System.Globalization;
using System.Text.Json;
using RlhfSharp.Alignment.Demo;
using RlhfSharp.Web;
using Spectre.Console;

namespace RlhfSharp.Cli.Commands;

internal static class DemoCommand
{
    public static Command Create()
    {
        var quick = new Option<bool>("--quick") { Description = "Small sizes (about a minute): every stage and report section, weak results." };
        var output = new Option<string>("--out") { Description = "Run folder: one sub-folder per stage, stages.json, report.html.", DefaultValueFactory = _ => Path.Combine("runs", "demo") };
        var resume = new Option<bool>("--resume") { Description = "Continue the run folder, skipping the stages stages.json records as finished." };
        var seed = new Option<ulong>("--seed") { Description = "Seed of every stage.", DefaultValueFactory = _ => 1UL }.InRange(NumericRange.NonNegative);
        var task = new Option<string>("--task") { Description = "story (built in, no files) or sentiment (Ziegler et al. 2019's mock-sentiment task on --corpus, scored by --lexicon).", DefaultValueFactory = _ => "story" };
        task.AcceptOnlyFromAmong("story", "sentiment");
        var corpus = new Option<string>("--corpus") { Description = "sentiment: a text file, or a folder whose *.txt files are read in name order (the default: Jane Austen's six novels, shipped with rlhf in data/).", DefaultValueFactory = _ => "data/austen" };
        var lexicon = new Option<string>("--lexicon") { Description = "sentiment: the VADER lexicon file, token TAB valence per line.", DefaultValueFactory = _ => "data/sentiment/vader_lexicon.txt" };
        var tokenizerDir = new Option<string?>("--tokenizer") { Description = "sentiment: a saved tokenizer folder (e.g. data/gpt2, GPT-2's vocab.json + merges.txt) instead of a BPE learned on the corpus." };
        var human = new Option<bool>("--human") { Description = $"People label the pairs: the labels stage serves them in the labelling app on 127.0.0.1 (store {HumanDemoLabeler.StoreFileName} in the run folder), prints the URL and a labeller token, and waits for the judgments." };
        var judgments = new Option<int>("--judgments") { Description = "With --human: pairs to judge (the reward model trains on the answers; ties count ½ each way, skips are left out).", DefaultValueFactory = _ => 100 }.InRange(new(1));
        var port = new Option<int>("--port") { Description = "With --human: port of the labelling app on 127.0.0.1 (0 picks a free one).", DefaultValueFactory = _ => 5080 }.InRange(new(0, 65535));
        var pg = new Option<string?>("--pg")
        {
            Description = "With --human: a PostgreSQL connection string (Npgsql form; one database or Search Path schema per demo run). The pairs go to that shared store " +
                $"and people label them through any number of `rlhf label serve --pg ... --campaign {HumanDemoLabeler.Campaign}` instances; no app is started here.",
        };
        var command = new Command("demo",
            "Run the whole RLHF pipeline on the built-in story world (or --task sentiment on a corpus): pre-train, SFT, labels, reward model, PPO (adaptive KL and β = 0), gold-judged evaluation, report.html. " +
            "Labels come from the oracle, or from people in the labelling app with --human.");
        foreach (var o in new Option[] { quick, output, resume, seed, task, corpus, lexicon, tokenizerDir, human, judgments, port, pg })
            command.Options.Add(o);
        command.SetAction(p =>
        {
            bool sentiment = p.GetValue(task) == "sentiment";
            if (!sentiment && (p.GetResult(corpus) is { Implicit: false } || p.GetResult(lexicon) is { Implicit: false } || p.GetValue(tokenizerDir) is not null))
                throw new ArgumentException("demo: --corpus, --lexicon and --tokenizer belong to --task sentiment; the story world is built in.");
            var config = (sentiment
                ? (p.GetValue(quick) ? SentimentDemoTask.QuickConfig : SentimentDemoTask.DefaultConfig)
                : (p.GetValue(quick) ? DemoConfig.Quick : new DemoConfig())) with { Seed = p.GetValue(seed) };
            bool people = p.GetValue(human);
            if (people && p.GetValue(judgments) < 10)
                throw new ArgumentException($"demo: --judgments {p.GetValue(judgments)} is too few; the reward model needs at least 10 (a fifth are held out to measure it).");
            if (people) config = config with { Pairs = p.GetValue(judgments) };
            else if (p.GetResult(judgments) is { Implicit: false } || p.GetResult(port) is { Implicit: false } || p.GetValue(pg) is not null)
                throw new ArgumentException("demo: --judgments, --port and --pg apply only with --human.");
            string outDir = p.GetValue(output)!;
            if (p.GetValue(resume) && !people) HumanDemoLabeler.RefuseResumeWithoutPeople(outDir);
            // The task reads its files before any stage starts: a missing corpus or lexicon costs nothing already written.
            IDemoTask demoTask = sentiment
                ? new SentimentDemoTask(
                    DataPaths.Resolve(p.GetValue(corpus)!),
                    DataPaths.Resolve(p.GetValue(lexicon)!),
                    new SentimentTaskOptions { TokenizerDirectory = p.GetValue(tokenizerDir) is string t ? DataPaths.Resolve(t) : null, Seed = p.GetValue(seed) })
                : new StoryDemoTask();
            DemoSummary summary;
            try
            {
                summary = AlignCommandSupport.WithProgress("demo", 1, (console, progress, ct) =>
                {
                    var labeler = people ? new HumanDemoLabeler(new HumanLabelingOptions(
                        (store, campaign, c) => LabelingApp.StartAsync(store, new LabelingAppOptions(Port: p.GetValue(port), Campaign: campaign), c),
                        TimeSpan.FromMilliseconds(500),
                        (url, token) => console.MarkupLine($"labelling app: [bold]{Markup.Escape(url.ToString())}[/]  labeller token: [bold]{Markup.Escape(token)}[/]  (sign in there; Ctrl-C stops, --resume continues)"))
                    {
                        OpenSharedStore = p.GetValue(pg) is { } connection ? c => OpenSharedAsync(connection, c) : null,
                    }) : null;
                    // Many labellers: the pairs go to the shared store that every `rlhf label serve --pg` instance serves.
                    async Task<RlhfSharp.Feedback.Stores.SqlPreferenceStore> OpenSharedAsync(string connection, CancellationToken c)
                    {
                        var store = new RlhfSharp.Feedback.Stores.PostgresPreferenceStore(connection);
                        await store.MigrateAsync(c);
                        console.MarkupLine($"pairs go to PostgreSQL (campaign [bold]{HumanDemoLabeler.Campaign}[/]): label them through `rlhf label serve --pg ... --campaign {HumanDemoLabeler.Campaign}` (any number of instances)");
                        return store;
                    }
                    return new DemoPipeline(config, demoTask) { Labeler = labeler }.Run(outDir, p.GetValue(resume), progress, ct);
                });
            }
            catch (OperationCanceledException)
            {
                Console.Error.WriteLine($"demo: stopped; finished stages are recorded in {Path.Combine(outDir, DemoPipeline.StagesFileName)} (continue with --resume).");
                return 130;
            }
            Console.Error.WriteLine($"demo: report in {summary.Report}");
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"demo: PPO (adaptive β) wins {summary.Ppo.WinRate:0.000} [{summary.Ppo.WinLow:0.000}, {summary.Ppo.WinHigh:0.000}] over the {summary.ReferenceName} model at KL {summary.Ppo.Kl:0.00} nats; " +
                $"PPO β = 0 wins {summary.PpoBetaZero.WinRate:0.000} at KL {summary.PpoBetaZero.Kl:0.00}; reward model held-out accuracy {summary.RewardModelAccuracy:0.000}."));
            Console.Out.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
            {
                ["win_rate_ppo"] = summary.Ppo.WinRate, ["win_rate_ppo_ci"] = new[] { summary.Ppo.WinLow, summary.Ppo.WinHigh }, ["kl_ppo"] = summary.Ppo.Kl, ["gold_ppo"] = summary.Ppo.Gold,
                ["win_rate_beta0"] = summary.PpoBetaZero.WinRate, ["win_rate_beta0_ci"] = new[] { summary.PpoBetaZero.WinLow, summary.PpoBetaZero.WinHigh }, ["kl_beta0"] = summary.PpoBetaZero.Kl, ["gold_beta0"] = summary.PpoBetaZero.Gold,
                ["gold_sft"] = summary.SftGold, ["reference"] = summary.ReferenceName, ["rm_accuracy"] = summary.RewardModelAccuracy, ["wall_s"] = Math.Round(summary.WallSeconds, 1), ["report"] = summary.Report,
            }));
            return 0;
        });
        return command;
    }
}
