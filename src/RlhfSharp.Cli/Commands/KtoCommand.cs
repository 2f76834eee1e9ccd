// `rlhf kto`: Kahneman–Tversky optimisation of an SFT model on unpaired feedback ({"prompt","completion","label"} JSONL).
using System.CommandLine;
using RlhfSharp.Alignment.Dpo;
using RlhfSharp.Models;
using RlhfSharp.Text;

namespace RlhfSharp.Cli.Commands;

internal static class KtoCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "SFT model folder: the initial policy and the reference.", Required = true };
        var data = new Option<string>("--data") { Description = "Unpaired feedback: JSONL with \"prompt\", \"completion\" and \"label\" (true desirable, false undesirable).", Required = true };
        var output = new Option<string>("--out") { Description = "Folder the trained policy is written to.", Required = true };
        var run = new Option<string?>("--run") { Description = "Run folder (default runs/kto-NAME)." };
        var resume = new Option<bool>("--resume") { Description = LmTrainingOptionSet.ResumeDescription };
        var command = new Command("kto", "Kahneman–Tversky optimisation on unpaired desirable/undesirable completions.");
        foreach (var o in new Option[] { model, data, output, run, resume }) command.Options.Add(o);
        var settings = new ConfigOptions<KtoConfig>(command);
        command.SetAction(p =>
        {
            var config = settings.Build(p);
            config.Validate();
            string sftDir = p.GetValue(model)!, outDir = p.GetValue(output)!;
            var examples = UnpairedData.Read(p.GetValue(data)!);
            var sft = Gpt.Load(sftDir);
            var tokenizer = TokenizerFiles.Load(sftDir);
            using var runDir = RunContract.Open(p, AlignCommandSupport.RunFolder(p.GetValue(run), "kto", outDir), p.GetValue(resume));
            long steps = (long)Math.Ceiling(examples.Count * (1 - config.HeldOutFraction) / config.BatchSize) * config.Epochs;
            var result = AlignCommandSupport.WithProgress("kto", steps, (progress, ct) => new KtoTrainer(config).Train(sft, tokenizer, examples, runDir, progress, ct));
            if (result.Cancelled) return AlignCommandSupport.Stopped("kto", runDir.Path, result.Steps);
            result.Policy.Save(outDir);
            tokenizer.Save(outDir);
            RunContract.Finish(runDir, result.Steps, outDir);
            Console.Out.WriteLine(result.HeldOutLoss is double l ? $"kto: held-out loss {AlignCommandSupport.Format(l)}; policy written to {outDir}" : $"kto: policy written to {outDir}");
            return 0;
        });
        return command;
    }
}
