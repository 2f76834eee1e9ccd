// `rlhf judge train`: fine-tunes a model folder into a pairwise judge (Alignment/Judging/JudgeTrainer.cs) that answers
// AiJudge's question with "1" or "2", so `rlhf serve` can stand behind `label judge` and `eval --judge URL`; prints the
// held-out agreement and position bias. `rlhf judge eval`: the same measurement of a judge folder on a comparison file.
using System.CommandLine;
using RlhfSharp.Alignment.Evaluation;
using RlhfSharp.Alignment.Judging;
using RlhfSharp.Alignment.LanguageModeling;
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Feedback;
using RlhfSharp.Models;
using RlhfSharp.Text;

namespace RlhfSharp.Cli.Commands;

internal static class JudgeCommand
{
    public static Command Create()
    {
        var command = new Command("judge", "A pairwise judge model of our own (RLAIF): train it on comparisons, measure its agreement and position bias.");
        command.Subcommands.Add(Train());
        command.Subcommands.Add(Eval());
        return command;
    }

    private static Option<string> DataOption() => new("--data")
    {
        Description = "Comparisons: JSONL in TRL's forms (prompt/chosen/rejected; rankings and best-of-K give every pair they imply; ties are dropped) or a SQLite store (.db).",
        Required = true,
    };

    private static Option<bool> GoldOption() => new("--gold") { Description = "Measure agreement with the gold scorer (the story world's, or VADER with --lexicon) instead of the comparisons' labels; pairs gold scores equal are left out." };

    private static Option<string?> LexiconOption() => new("--lexicon") { Description = "With --gold: VADER lexicon (e.g. data/sentiment/vader_lexicon.txt), the sentiment task's gold scorer." };

    private static Command Train()
    {
        var model = new Option<string>("--model") { Description = "Model folder to start from (an SFT or pre-trained model with its tokenizer files).", Required = true };
        var data = DataOption();
        var campaign = new Option<string?>("--campaign") { Description = "With a store: only this campaign's judgments." };
        var output = new Option<string>("--out") { Description = "Judge model folder to write (serve it with `rlhf serve --model`).", Required = true };
        var gold = GoldOption();
        var lexicon = LexiconOption();
        var shared = new LmTrainingOptionSet();
        var command = new Command("train", "Fine-tune a model into a pairwise judge answering \"1\" or \"2\" in the chat format (both orders of every pair), then measure it on held-out pairs.");
        foreach (var o in new Option[] { model, data, campaign, output, gold, lexicon }) command.Options.Add(o);
        shared.AddTo(command);
        var settings = new ConfigOptions<JudgeConfig>(command);
        command.SetAction(p =>
        {
            string modelDir = DataPaths.Resolve(p.GetValue(model)!), outDir = p.GetValue(output)!;
            var gpt = Gpt.Load(modelDir);
            var tok = TokenizerFiles.Load(modelDir);
            var comparisons = Blocking.Run(() => PreferenceData.LoadAsync(DataPaths.Resolve(p.GetValue(data)!), p.GetValue(campaign), template: ChatTemplate.For(tok)));
            var config = LmTrainingOptionSet.Build(settings, p, c => c.Sft.Training, (c, t) => c with { Sft = c.Sft with { Training = t } });
            using var run = ClusterRuns.Open(p, shared.RunFolder(p, "judge", outDir), p.GetValue(shared.Resume));
            Console.Error.WriteLine($"{JudgeTrainer.Pairs(comparisons).Count:N0} comparisons with a preference ({config.HeldOutPairs:N0} held out); {gpt.ParameterSet.Count:N0} parameters from {modelDir}; run folder {run.Path}");
            var trainer = new JudgeTrainer(config);
            // The held-out line is against the labels, or against gold when asked.
            var goldScorer = p.GetValue(gold) ? EvaluationJudges.GoldScorer(LexiconPath(p, lexicon)) : null;
            var result = AlignCommandSupport.WithProgress("judge", config.Sft.Training.Steps, (progress, ct) => trainer.Train(gpt, tok, comparisons, run, progress, ct, goldScorer));
            if (result.Training.Cancelled) return LmCommandSupport.Report("judge", result.Training, outDir, run.Path);
            result.Judge.Save(outDir);
            tok.Save(outDir);
            RunContract.Finish(run, result.Training.Steps, outDir);
            int exit = LmCommandSupport.Report("judge", result.Training, outDir, run.Path);
            var heldOut = result.HeldOut;
            Console.Out.WriteLine(heldOut is null
                ? $"judge: context {result.BlockSize} tokens, trained on {result.TrainPairs:N0} pairs in both orders; no pairs held out; written to {outDir}"
                : $"judge: context {result.BlockSize} tokens, trained on {result.TrainPairs:N0} pairs in both orders; held out, {(p.GetValue(gold) ? "against gold" : "against the labels")}, {heldOut}; written to {outDir}");
            return exit;
        });
        return command;
    }

    private static Command Eval()
    {
        var model = new Option<string>("--model") { Description = "Judge model folder (from `rlhf judge train`).", Required = true };
        var data = DataOption();
        var campaign = new Option<string?>("--campaign") { Description = "With a store: only this campaign's judgments." };
        var count = new Option<int>("--count") { Description = "At most this many pairs (the first ones).", DefaultValueFactory = _ => 500 }.InRange(new(1));
        var gold = GoldOption();
        var lexicon = LexiconOption();
        var command = new Command("eval", "Ask a judge model about comparisons in both orders: agreement with the labels (or gold) and position bias.");
        foreach (var o in new Option[] { model, data, campaign, count, gold, lexicon }) command.Options.Add(o);
        command.SetAction(p =>
        {
            string modelDir = DataPaths.Resolve(p.GetValue(model)!);
            var judge = Gpt.Load(modelDir);
            var tok = TokenizerFiles.Load(modelDir);
            var comparisons = Blocking.Run(() => PreferenceData.LoadAsync(DataPaths.Resolve(p.GetValue(data)!), p.GetValue(campaign), template: ChatTemplate.For(tok)));
            var pairs = JudgeTrainer.Pairs(comparisons).Take(p.GetValue(count)).ToList();
            var agreement = JudgeEvaluator.Evaluate(judge, tok, pairs, p.GetValue(gold) ? EvaluationJudges.GoldScorer(LexiconPath(p, lexicon)) : null);
            Console.Out.WriteLine($"judge {modelDir}: {(p.GetValue(gold) ? "against gold" : "against the labels")}, {agreement}");
            return 0;
        });
        return command;
    }

    private static string? LexiconPath(ParseResult p, Option<string?> lexicon) => p.GetValue(lexicon) is { } path ? DataPaths.Resolve(path) : null;
}
