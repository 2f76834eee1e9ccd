// `rlhf lora merge`: folds a LoRA adapter (ours or Hugging Face PEFT's adapter folder) into its base model and writes a
// plain model folder: W ← W + (lora_alpha / r)·(B·A)ᵀ for each adapted Conv1D, the adapter's heads replacing the base's.
using System.CommandLine;
using RlhfSharp.Models;
using RlhfSharp.Models.Checkpoints;

namespace RlhfSharp.Cli.Commands;

internal static class LoraCommand
{
    public static Command Create()
    {
        var command = new Command("lora", "LoRA adapters (PEFT format).");
        var baseDir = new Option<string?>("--base") { Description = "Base model folder (default: the adapter folder's own base files, else its base_model_name_or_path)." };
        var adapterDir = new Option<string>("--adapter") { Description = "Adapter folder (adapter_config.json + adapter_model.safetensors).", Required = true };
        var output = new Option<string>("--out") { Description = "Model folder to write.", Required = true };
        var merge = new Command("merge", "Merge an adapter into its base and write a plain model folder.");
        foreach (var o in new Option[] { baseDir, adapterDir, output }) merge.Options.Add(o);
        merge.SetAction(p =>
        {
            string adapterPath = DataPaths.Resolve(p.GetValue(adapterDir)!);
            string outDir = p.GetValue(output)!;
            Gpt adapted;
            string tokenizerDir;
            if (p.GetValue(baseDir) is { } b)
            {
                string basePath = DataPaths.Resolve(b);
                var baseModel = Gpt.Load(basePath);
                adapted = baseModel.WithAdapter(LoraAdapter.Load(adapterPath, baseModel.Config));
                tokenizerDir = basePath;
            }
            else
            {
                adapted = Gpt.Load(adapterPath);
                if (adapted.Adapter is null) throw new ArgumentException($"{adapterPath}: no {LoraAdapter.ConfigFileName}; this is a plain model folder.");
                tokenizerDir = adapterPath;
            }
            // Tokenizer files from the adapter folder when it has them (trainers write them there), else from the base.
            if (GptCheckpoint.TokenizerFileNames.Any(f => File.Exists(Path.Combine(adapterPath, f)))) tokenizerDir = adapterPath;
            var merged = adapted.Merged();
            merged.Save(outDir, tokenizerDir);
            Console.Error.WriteLine($"merged {adapted.Adapter!.Modules.Count()} adapted layers (r = {adapted.Adapter.Config.R}, s = {adapted.Adapter.Scaling}) into {outDir}");
            return 0;
        });
        command.Subcommands.Add(merge);
        return command;
    }
}
