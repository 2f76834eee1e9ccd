// `rlhf dpo`: direct preference optimisation of an SFT model on preference pairs (the offline baseline).
using System.CommandLine;
using RlhfSharp.Alignment.Dpo;
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Models;
using RlhfSharp.Runs;
using RlhfSharp.Text;

namespace RlhfSharp.Cli.Commands;

internal static class DpoCommand
{
    public static Command Create()
    {
        var d = new DpoConfig();
        var model = new Option<string>("--model") { Description = "SFT model folder: the initial policy and the reference.", Required = true };
        var data = new Option<string>("--data") { Description = "Preferences: JSONL (TRL forms) or a SQLite store (.db).", Required = true };
        var output = new Option<string>("--out") { Description = "Folder the trained policy is written to.", Required = true };
        var beta = new Option<float>("--beta") { Description = "DPO β.", DefaultValueFactory = _ => d.Beta };
        var smoothing = new Option<float>("--label-smoothing") { Description = "Label smoothing ε (0: plain DPO).", DefaultValueFactory = _ => d.LabelSmoothing };
        var epochs = new Option<int>("--epochs") { Description = "Passes over the pairs.", DefaultValueFactory = _ => d.Epochs };
        var batch = new Option<int>("--batch-size") { Description = "Pairs per step.", DefaultValueFactory = _ => d.BatchSize };
        var lr = new Option<float>("--lr") { Description = "AdamW peak learning rate.", DefaultValueFactory = _ => d.LearningRate };
        var heldOut = new Option<double>("--held-out") { Description = "Share of pairs held out.", DefaultValueFactory = _ => d.HeldOutFraction };
        var seed = new Option<ulong>("--seed") { Description = "Seed.", DefaultValueFactory = _ => d.Seed };
        var checkpointEvery = new Option<int>("--checkpoint-interval") { Description = "Checkpoint every this many steps (0: only when stopped and at the end).", DefaultValueFactory = _ => d.CheckpointInterval };
        var run = new Option<string?>("--run") { Description = "Run folder (default runs/dpo-NAME)." };
        var resume = new Option<bool>("--resume") { Description = LmTrainingOptionSet.ResumeDescription };
        var command = new Command("dpo", "Direct preference optimisation on preference pairs.");
        foreach (var o in new Option[] { model, data, output, beta, smoothing, epochs, batch, lr, heldOut, seed, checkpointEvery, run, resume }) command.Options.Add(o);
        command.SetAction(p =>
        {
            var config = new DpoConfig
            {
                Beta = p.GetValue(beta), LabelSmoothing = p.GetValue(smoothing), Epochs = p.GetValue(epochs), BatchSize = p.GetValue(batch),
                LearningRate = p.GetValue(lr), HeldOutFraction = p.GetValue(heldOut), Seed = p.GetValue(seed),
                CheckpointInterval = p.GetValue(checkpointEvery),
            };
            config.Validate();
            string sftDir = p.GetValue(model)!, outDir = p.GetValue(output)!;
            var examples = PreferenceData.LoadAsync(p.GetValue(data)!).GetAwaiter().GetResult();
            var sft = Gpt.Load(sftDir);
            var tokenizer = TokenizerFiles.Load(sftDir);
            using var runDir = RunContract.Open(p, AlignCommandSupport.RunFolder(p.GetValue(run), "dpo", outDir), p.GetValue(resume));
            int pairs = examples.Sum(e => e.OrderedPairs().Count());
            var result = AlignCommandSupport.WithProgress("dpo", (long)Math.Ceiling(pairs * (1 - config.HeldOutFraction) / config.BatchSize) * config.Epochs,
                (progress, ct) => new DpoTrainer(config).Train(sft, tokenizer, examples, runDir, progress, ct));
            if (result.Cancelled) return AlignCommandSupport.Stopped("dpo", runDir.Path, result.Steps);
            result.Policy.Save(outDir);
            tokenizer.Save(outDir);
            RunContract.Finish(runDir, result.Steps, outDir);
            Console.Out.WriteLine(result.HeldOutLoss is double l
                ? $"dpo: held-out loss {AlignCommandSupport.Format(l)}, implicit-reward accuracy {AlignCommandSupport.Format(result.HeldOutAccuracy!.Value)}; policy written to {outDir}"
                : $"dpo: policy written to {outDir}");
            return 0;
        });
        return command;
    }
}
