// `rlhf sft`: supervised fine-tuning of a model folder on {"prompt","completion"} JSONL (or the story world's
// demonstrations); loss on completion tokens and EOS only; writes a complete model folder.
using System.CommandLine;
using RlhfSharp.Alignment.LanguageModeling;
using RlhfSharp.Models;
using RlhfSharp.Runs;
using RlhfSharp.Text;

namespace RlhfSharp.Cli.Commands;

internal static class SftCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model folder to start from (config.json + model.safetensors + tokenizer files).", Required = true };
        var data = new Option<string?>("--data") { Description = "Demonstrations as {\"prompt\",\"completion\"} JSONL (default: story-world demonstrations)." };
        var demos = new Option<int>("--demos") { Description = "Story-world demonstrations generated when no --data is given.", DefaultValueFactory = _ => 2000 }.InRange(new(1));
        var output = new Option<string>("--out") { Description = "Model folder to write when training finishes.", Required = true };
        var shared = new LmTrainingOptionSet();
        var command = new Command("sft", "Supervised fine-tuning on demonstrations (loss on completions only), with checkpoints and --resume.");
        var dtype = AlignCommandSupport.DtypeOption();
        foreach (var o in new Option[] { model, data, demos, output, dtype }) command.Options.Add(o);
        shared.AddTo(command);
        var settings = new ConfigOptions<SftConfig>(command);
        command.SetAction(p =>
        {
            string modelDir = DataPaths.Resolve(p.GetValue(model)!);
            string outDir = p.GetValue(output)!;
            string runDir = shared.RunFolder(p, "sft", outDir);
            bool resume = p.GetValue(shared.Resume);
            var gpt = Gpt.Load(modelDir);
            var tok = TokenizerFiles.Load(modelDir);
            var examples = p.GetValue(data) is { } path ? SftData.ReadJsonl(DataPaths.Resolve(path), ChatTemplate.For(tok)) : SftData.StoryWorld(1, p.GetValue(demos));
            using var run = ClusterRuns.Open(p, runDir, resume);
            var config = LmTrainingOptionSet.Build(settings, p, c => c.Training, (c, t) => c with { Training = t });
            if (RlhfSharp.Distributed.Cluster.World.IsRoot) Console.Error.WriteLine($"{examples.Count:N0} demonstrations; {gpt.ParameterSet.Count:N0} parameters from {modelDir}; run folder {run.Path}");
            var trainer = new SftTrainer(config);
            var result = LmCommandSupport.WithProgress("sft", config.Training.Steps, (progress, ct) => trainer.Train(gpt, tok, examples, run, progress, ct));
            // Under mpirun rank 0 alone writes the outputs and the summary line (every rank holds the same weights).
            if (!RlhfSharp.Distributed.Cluster.World.IsRoot) return result.Cancelled ? 130 : 0;
            if (!result.Cancelled)
            {
                (result.Model ?? gpt).Save(outDir, dtype: p.GetValue(dtype)); // with LoRA: the adapter in PEFT's format
                tok.Save(outDir);
                RunContract.Finish(run, result.Steps, outDir);
            }
            return LmCommandSupport.Report("sft", result, outDir, run.Path);
        });
        return command;
    }
}
