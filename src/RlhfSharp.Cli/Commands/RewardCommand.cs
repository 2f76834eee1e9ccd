// `rlhf reward train`: a reward model (or an ensemble) from an SFT folder and preference data (JSONL or a SQLite store).
using System.CommandLine;
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Feedback;
using RlhfSharp.Models;
using RlhfSharp.Runs;
using RlhfSharp.Text;

namespace RlhfSharp.Cli.Commands;

internal static class RewardCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "SFT model folder the reward model starts from.", Required = true };
        var data = new Option<string>("--data") { Description = "Preferences: JSONL in TRL's forms (chosen/rejected, responses+ranking, responses+best) or a SQLite store (.db).", Required = true };
        var output = new Option<string>("--out") { Description = "Folder the reward model (ensemble) is written to.", Required = true };
        var campaign = new Option<string?>("--campaign") { Description = "With a store: only this campaign's judgments." };
        var run = new Option<string?>("--run") { Description = "Run folder for config.json, metrics.jsonl, TensorBoard events and checkpoints (default runs/reward-NAME)." };
        var resume = new Option<bool>("--resume") { Description = LmTrainingOptionSet.ResumeDescription };
        var train = new Command("train", "Train a reward model on preference comparisons.");
        foreach (var o in new Option[] { model, data, output, campaign, run, resume }) train.Options.Add(o);
        var settings = new ConfigOptions<RewardTrainerConfig>(train);
        train.SetAction(p =>
        {
            var config = settings.Build(p);
            config = config with { GradShards = ClusterRuns.GradShards(settings, p, config.GradShards) };
            config.Validate();
            string sftDir = p.GetValue(model)!, outDir = p.GetValue(output)!;
            var sft = Gpt.Load(sftDir);
            var tokenizer = TokenizerFiles.Load(sftDir);
            var examples = Blocking.Run(() => PreferenceData.LoadAsync(p.GetValue(data)!, p.GetValue(campaign), template: ChatTemplate.For(tokenizer)));
            using var runDir = ClusterRuns.Open(p, AlignCommandSupport.RunFolder(p.GetValue(run), "reward", outDir), p.GetValue(resume));
            int steps = config.Members * config.Epochs * (int)Math.Ceiling(examples.Count * (1 - config.HeldOutFraction) / config.BatchSize);
            var result = AlignCommandSupport.WithProgress("reward", steps, (progress, ct) => new RewardTrainer(config).Train(sft, tokenizer, examples, run: runDir, progress: progress, ct: ct));
            // Under mpirun rank 0 alone writes the outputs and the summary (every rank holds the same members).
            if (!RlhfSharp.Distributed.Cluster.World.IsRoot) return result.Cancelled ? AlignCommandSupport.InterruptedExitCode : 0;
            if (result.Cancelled) return AlignCommandSupport.Stopped("reward", runDir.Path, result.Steps);
            result.Ensemble.Save(outDir);
            RunContract.Finish(runDir, result.Steps, outDir);
            var e = result.HeldOut;
            Console.Out.WriteLine(e is null
                ? $"reward model: {result.TrainExamples} examples, no held-out split; written to {outDir}"
                : $"reward model: held-out accuracy {AlignCommandSupport.Format(e.Accuracy)} on {e.Pairs} pairs, loss {AlignCommandSupport.Format(e.Loss)}, ECE {AlignCommandSupport.Format(e.ExpectedCalibrationError)}; written to {outDir} (run {runDir.Path})");
            return 0;
        });
        var command = new Command("reward", "Reward models: train on preferences.");
        command.Subcommands.Add(train);
        return command;
    }
}
