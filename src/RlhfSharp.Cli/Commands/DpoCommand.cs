// `rlhf dpo`: direct preference optimisation of an SFT model on preference pairs (the offline baseline).
using System.CommandLine;
using RlhfSharp.Alignment.Dpo;
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Feedback;
using RlhfSharp.Models;
using RlhfSharp.Runs;
using RlhfSharp.Text;

namespace RlhfSharp.Cli.Commands;

internal static class DpoCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "SFT model folder: the initial policy and the reference.", Required = true };
        var data = new Option<string>("--data") { Description = "Preferences: JSONL (TRL forms) or a SQLite store (.db).", Required = true };
        var output = new Option<string>("--out") { Description = "Folder the trained policy is written to.", Required = true };
        var run = new Option<string?>("--run") { Description = "Run folder (default runs/dpo-NAME)." };
        var resume = new Option<bool>("--resume") { Description = LmTrainingOptionSet.ResumeDescription };
        var command = new Command("dpo", "Direct preference optimisation on preference pairs (--loss-type sigmoid, ipo, simpo, orpo).");
        var dtype = AlignCommandSupport.DtypeOption();
        foreach (var o in new Option[] { model, data, output, run, resume, dtype }) command.Options.Add(o);
        var settings = new ConfigOptions<DpoConfig>(command);
        command.SetAction(p =>
        {
            var config = settings.Build(p);
            config = config with { GradShards = ClusterRuns.GradShards(settings, p, config.GradShards) };
            config.Validate();
            string sftDir = p.GetValue(model)!, outDir = p.GetValue(output)!;
            var sft = Gpt.Load(sftDir);
            var tokenizer = TokenizerFiles.Load(sftDir);
            var examples = Blocking.Run(() => PreferenceData.LoadAsync(p.GetValue(data)!, template: ChatTemplate.For(tokenizer)));
            using var runDir = ClusterRuns.Open(p, AlignCommandSupport.RunFolder(p.GetValue(run), "dpo", outDir), p.GetValue(resume));
            int pairs = examples.Sum(e => e.OrderedPairs().Count());
            var result = AlignCommandSupport.WithProgress("dpo", (long)Math.Ceiling(pairs * (1 - config.HeldOutFraction) / config.BatchSize) * config.Epochs,
                (progress, ct) => new DpoTrainer(config).Train(sft, tokenizer, examples, runDir, progress, ct));
            // Under mpirun rank 0 alone writes the outputs and the summary (every rank holds the same policy).
            if (!RlhfSharp.Distributed.Cluster.World.IsRoot) return result.Cancelled ? AlignCommandSupport.InterruptedExitCode : 0;
            if (result.Cancelled) return AlignCommandSupport.Stopped("dpo", runDir.Path, result.Steps);
            result.Policy.Save(outDir, dtype: p.GetValue(dtype));
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
