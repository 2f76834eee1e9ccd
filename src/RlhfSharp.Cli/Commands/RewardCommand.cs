// `rlhf reward train`: a reward model (or an ensemble) from an SFT folder and preference data (JSONL or a SQLite store).
using System.CommandLine;
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Models;
using RlhfSharp.Runs;
using RlhfSharp.Text;

namespace RlhfSharp.Cli.Commands;

internal static class RewardCommand
{
    public static Command Create()
    {
        var d = new RewardTrainerConfig();
        var model = new Option<string>("--model") { Description = "SFT model folder the reward model starts from.", Required = true };
        var data = new Option<string>("--data") { Description = "Preferences: JSONL in TRL's forms (chosen/rejected, responses+ranking, responses+best) or a SQLite store (.db).", Required = true };
        var output = new Option<string>("--out") { Description = "Folder the reward model (ensemble) is written to.", Required = true };
        var campaign = new Option<string?>("--campaign") { Description = "With a store: only this campaign's judgments." };
        var members = new Option<int>("--members") { Description = "Ensemble size M (bootstrap resamples when M > 1).", DefaultValueFactory = _ => d.Members };
        var epochs = new Option<int>("--epochs") { Description = "Passes over the training split.", DefaultValueFactory = _ => d.Epochs };
        var batch = new Option<int>("--batch-size") { Description = "Examples per optimiser step.", DefaultValueFactory = _ => d.BatchSize };
        var lr = new Option<float>("--lr") { Description = "AdamW peak learning rate (linear decay).", DefaultValueFactory = _ => d.LearningRate };
        var heldOut = new Option<double>("--held-out") { Description = "Share of examples held out for accuracy and calibration.", DefaultValueFactory = _ => d.HeldOutFraction };
        var normStd = new Option<bool>("--normalize-std") { Description = "Also scale rewards so reference samples have std 1." };
        var normSamples = new Option<int>("--normalization-samples") { Description = "Reference samples for the normalisation (0 skips it).", DefaultValueFactory = _ => d.NormalizationSamples };
        var seed = new Option<ulong>("--seed") { Description = "Seed.", DefaultValueFactory = _ => d.Seed };
        var checkpointEvery = new Option<int>("--checkpoint-interval") { Description = "Checkpoint every this many steps of a member (0: only when stopped and when a member ends).", DefaultValueFactory = _ => d.CheckpointInterval };
        var run = new Option<string?>("--run") { Description = "Run folder for config.json, metrics.jsonl, TensorBoard events and checkpoints (default runs/reward-NAME)." };
        var resume = new Option<bool>("--resume") { Description = LmTrainingOptionSet.ResumeDescription };
        var train = new Command("train", "Train a reward model on preference comparisons.");
        foreach (var o in new Option[] { model, data, output, campaign, members, epochs, batch, lr, heldOut, normStd, normSamples, seed, checkpointEvery, run, resume }) train.Options.Add(o);
        train.SetAction(p =>
        {
            var config = new RewardTrainerConfig
            {
                Members = p.GetValue(members), Epochs = p.GetValue(epochs), BatchSize = p.GetValue(batch), LearningRate = p.GetValue(lr),
                HeldOutFraction = p.GetValue(heldOut), NormalizeStd = p.GetValue(normStd), NormalizationSamples = p.GetValue(normSamples), Seed = p.GetValue(seed),
                CheckpointInterval = p.GetValue(checkpointEvery),
            };
            config.Validate();
            string sftDir = p.GetValue(model)!, outDir = p.GetValue(output)!;
            var examples = PreferenceData.LoadAsync(p.GetValue(data)!, p.GetValue(campaign)).GetAwaiter().GetResult();
            var sft = Gpt.Load(sftDir);
            var tokenizer = TokenizerFiles.Load(sftDir);
            using var runDir = RunContract.Open(p, AlignCommandSupport.RunFolder(p.GetValue(run), "reward", outDir), p.GetValue(resume));
            int steps = config.Members * config.Epochs * (int)Math.Ceiling(examples.Count * (1 - config.HeldOutFraction) / config.BatchSize);
            var result = AlignCommandSupport.WithProgress("reward", steps, (progress, ct) => new RewardTrainer(config).Train(sft, tokenizer, examples, run: runDir, progress: progress, ct: ct));
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
