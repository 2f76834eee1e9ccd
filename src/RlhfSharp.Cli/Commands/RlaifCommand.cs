// `rlhf rlaif` (issue 19 part 2): PPO on N judge-labelled comparisons against PPO on N oracle-labelled ones and on the n
// oracle labels the judge was trained from, the same budget otherwise, over seeds (Alignment/Rlaif/RlaifExperiment.cs).
// The run contract: RUN/config.json holds the command line and the settings; RUN/seedS/ holds each seed's stages
// (pairs, judge, judge-labels, ppo-judge, ppo-oracle, ppo-oracle-n) with RUN/seedS/stages.json naming the finished ones; RUN/metrics.jsonl
// one line per finished seed; at the end RUN/rlaif.json, RUN/rlaif.md and RUN/report.html. `--resume --run RUN` keeps the
// finished stages and runs the rest (an interrupted stage starts over).
using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization;
using RlhfSharp.Alignment;
using RlhfSharp.Alignment.Demo;
using RlhfSharp.Alignment.Rlaif;
using RlhfSharp.Models;
using RlhfSharp.Runs;
using RlhfSharp.Text;

namespace RlhfSharp.Cli.Commands;

internal static class RlaifCommand
{
    public const string ResultFileName = "rlaif.json", TableFileName = "rlaif.md", ReportFileName = "report.html";

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static Command Create()
    {
        var sftModel = new Option<string>("--sft-model")
        {
            Description = "SFT model folder (weights + tokenizer) every condition and the judge start from, e.g. `rlhf demo --quick --out demo`'s demo/sft.", Required = true,
        };
        var taskOption = new Option<string>("--task") { Description = "story (the story world's gold scorer and oracle) or sentiment (VADER on Austen continuations).", DefaultValueFactory = _ => "story" };
        taskOption.AcceptOnlyFromAmong("story", "sentiment");
        var corpus = new Option<string>("--corpus") { Description = "sentiment: the corpus its prompts come from (text file or folder of *.txt).", DefaultValueFactory = _ => "data/austen" };
        var lexicon = new Option<string>("--lexicon") { Description = "sentiment: the VADER lexicon file that scores continuations.", DefaultValueFactory = _ => "data/sentiment/vader_lexicon.txt" };
        var run = new Option<string>("--run") { Description = "Run folder (config.json, seedS/ stages, metrics.jsonl, rlaif.md/json, report.html).", Required = true };
        var resume = new Option<bool>("--resume") { Description = "Continue the run in --run: finished stages are kept, an interrupted one starts over." };
        var command = new Command("rlaif",
            "RLAIF measured: PPO on N judge-labelled comparisons vs N oracle-labelled ones vs the n oracle labels the judge was trained on, same budget otherwise, " +
            "over seeds; gold win rate over SFT with intervals, KL, reward-model accuracy on gold, the judge's agreement with the oracle and position flips.");
        foreach (var o in new Option[] { sftModel, taskOption, corpus, lexicon, run, resume }) command.Options.Add(o);
        var settings = new ConfigOptions<RlaifConfig>(command);
        command.SetAction(p =>
        {
            var config = settings.Build(p);
            config.Validate();
            string sftDir = DataPaths.Resolve(p.GetValue(sftModel)!);
            if (!Directory.Exists(sftDir)) throw new DirectoryNotFoundException($"--sft-model: {sftDir} does not exist.");
            IDemoTask task = p.GetValue(taskOption) == "sentiment"
                ? new SentimentDemoTask(DataPaths.Resolve(p.GetValue(corpus)!), DataPaths.Resolve(p.GetValue(lexicon)!))
                : new StoryDemoTask();
            var sft = Gpt.Load(sftDir);
            var tokenizer = TokenizerFiles.Load(sftDir);
            string commandLine = "rlhf " + string.Join(' ', RunContract.Args);

            using var runDir = RunContract.Open(p, p.GetValue(run)!, p.GetValue(resume));
            if (!runDir.Resumed) runDir.WriteConfig(config);
            var experiment = new RlaifExperiment(config, sft, tokenizer, task);
            var seeds = new List<RlaifSeedResult>();
            int stopped = AlignCommandSupport.WithProgress("rlaif", config.Seeds, (progress, ct) =>
            {
                for (int s = 0; s < config.Seeds; s++)
                {
                    ulong seed = config.Seed + (ulong)s;
                    try
                    {
                        seeds.Add(experiment.RunSeed(Path.Combine(runDir.Path, $"seed{seed}"), seed, progress, ct));
                    }
                    catch (OperationCanceledException)
                    {
                        Console.Error.WriteLine($"rlaif: stopped in seed {seed}; finished stages are kept in {runDir.Path}/seed{seed}. Continue with `rlhf rlaif --resume --run {runDir.Path}`.");
                        return AlignCommandSupport.InterruptedExitCode;
                    }
                    var result = seeds[^1];
                    var metrics = new Dictionary<string, double>
                    {
                        ["rlaif/judge_oracle_agreement"] = result.Judge.OracleAgreement, ["rlaif/judge_position_flips"] = result.Judge.PositionFlips,
                    };
                    foreach (var cell in result.Cells)
                    {
                        metrics[$"rlaif/{cell.Condition}/win_rate"] = cell.WinRate.Rate;
                        metrics[$"rlaif/{cell.Condition}/kl"] = cell.Kl;
                        metrics[$"rlaif/{cell.Condition}/gold_delta"] = cell.GoldDelta;
                        metrics[$"rlaif/{cell.Condition}/reward_accuracy"] = cell.RewardAccuracy;
                    }
                    runDir.Log(s + 1, metrics);
                    progress.Report(new AlignmentProgress("rlaif", s + 1, config.Seeds, new Dictionary<string, double>()));
                }
                return 0;
            });
            if (stopped != 0) return stopped;

            var rows = RlaifTable.Rows(seeds);
            var judge = RlaifTable.Judge(seeds);
            string markdown = RlaifTable.Markdown(rows, judge, config, task.Name, commandLine);
            string report = Path.Combine(runDir.Path, ReportFileName);
            AtomicFile.WriteAllText(Path.Combine(runDir.Path, TableFileName), markdown);
            AtomicFile.WriteAllText(Path.Combine(runDir.Path, ResultFileName), JsonSerializer.Serialize(new { task = task.Name, command = commandLine, config, rows, judge, seeds }, Json));
            RlaifTable.Report(rows, judge, config, task.Name, commandLine, runDir.Path).Write(report);
            runDir.MarkFinished(config.Seeds, report);
            Console.Out.Write(markdown);
            return 0;
        });
        return command;
    }
}
