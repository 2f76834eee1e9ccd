// `rlhf bench sample`: KV-cached batched sampling speed of the GPT-2 124M shape (config b) at batch 16, at a short and a
// long context, to show the cost per new token stays flat as the context grows.
// The measuring is RlhfSharp.Bench's SampleBench; this file parses the options and prints. `--weights-dtype f32 bf16`
// runs both holdings back to back (interleaved `--repeats` times per context) and ends each context with a line of the
// medians and their ratio: on a shared machine only the ratio of runs measured side by side means much.
using System.CommandLine;
using RlhfSharp.Runs;
using System.Text.Json;
using RlhfSharp.Bench;
using RlhfSharp.Models;

namespace RlhfSharp.Cli.Commands;

internal static class BenchSampleCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Print one JSON object per context length (the default output is the same)." };
        var batch = new Option<int>("--batch") { Description = "Sequences sampled together.", DefaultValueFactory = _ => 16 }.InRange(new(1));
        var newTokens = new Option<int>("--new-tokens") { Description = "Tokens generated per sequence.", DefaultValueFactory = _ => 16 }.InRange(new(1));
        var context = new Option<int?>("--context") { Description = "Measure only this context length (prompt + new tokens) instead of 32 and 480." }.InRange(new(1));
        var profile = new Option<bool>("--profile") { Description = "Add a per-phase breakdown of one decode step (milliseconds per step, wall and CPU)." };
        var dtypes = new Option<FrozenDtype[]>("--weights-dtype", "--dtype")
        {
            Description = "How the weights are held: f32, bf16, or both (`f32 bf16`, measured back to back, with their ratio).",
            DefaultValueFactory = _ => [FrozenDtype.F32],
            AllowMultipleArgumentsPerToken = true,
        };
        var kvDtype = new Option<KvDtype>("--kv-dtype") { Description = "How the KV cache holds keys and values: f32 or bf16 (half the bytes, attention in float32).", DefaultValueFactory = _ => KvDtype.F32 };
        var repeats = new Option<int>("--repeats") { Description = "Measurements per context and dtype, interleaved across dtypes; the summary takes medians.", DefaultValueFactory = _ => 1 }.InRange(new(1));
        var model = new Option<string>("--model") { Description = "gpt2 (124M), gpt2-medium (355M) or gpt2-large (774M), random weights, vocabulary 50257.", DefaultValueFactory = _ => "gpt2" };
        var save = new Option<string?>("--save") { Description = "Also save the (first) model to this folder, as `rlhf sample --model` loads it (config.json, model.safetensors; no tokenizer)." };
        var command = new Command("sample", "KV-cached sampling tokens/s for GPT-2 124M at batch 16, context 32 and 480.");
        command.Options.Add(dtypes);
        command.Options.Add(repeats);
        command.Options.Add(kvDtype);
        command.Options.Add(json);
        command.Options.Add(batch);
        command.Options.Add(newTokens);
        command.Options.Add(context);
        command.Options.Add(profile);
        command.Options.Add(model);
        command.Options.Add(save);
        command.SetAction(parseResult =>
        {
            int B = parseResult.GetValue(batch), n = parseResult.GetValue(newTokens);
            if (B < 1) throw new ArgumentException($"--batch must be at least 1 (got {B}).");
            if (n < 1 || n >= 480) throw new ArgumentException($"--new-tokens must be in [1, 480) (got {n}).");
            var held = parseResult.GetValue(dtypes)!.Distinct().ToArray();
            int runs = parseResult.GetValue(repeats);
            // One model per dtype, the same seeded weights: bf16 is the float32 model rounded (Gpt.Bf16.cs).
            var models = held.Select(d => (Dtype: d, Gpt: SampleBench.Model(parseResult.GetValue(model)!, d))).ToArray();
            if (parseResult.GetValue(save) is { } folder) models[0].Gpt.Save(folder);
            int blockSize = models[0].Gpt.Config.BlockSize;
            int? only = parseResult.GetValue(context);
            if (only is { } c && (c <= n || c > blockSize))
                throw new ArgumentException($"--context must exceed --new-tokens ({n}) and be at most {blockSize} (got {c}).");
            foreach (int ctx in only is { } single ? [single] : new[] { 32, 480 })
            {
                var perDtype = models.ToDictionary(m => m.Dtype, _ => new List<Dictionary<string, object>>());
                for (int r = 0; r < runs; r++)
                    foreach (var (dtype, gpt) in models)
                    {
                        var fields = new Dictionary<string, object> { ["weights_dtype"] = Name(dtype) };
                        foreach (var kv in SampleBench.Measure(gpt, B, ctx - n, n, parseResult.GetValue(profile), parseResult.GetValue(kvDtype))) fields[kv.Key] = kv.Value;
                        perDtype[dtype].Add(fields);
                        Console.Out.WriteLine(JsonSerializer.Serialize(fields));
                    }
                if (models.Length > 1) Console.Out.WriteLine(JsonSerializer.Serialize(Summary(ctx, perDtype)));
            }
            return 0;
        });
        return command;
    }

    private static string Name(FrozenDtype dtype) => dtype == FrozenDtype.Bf16 ? "bf16" : "f32";

    /// <summary>Medians per dtype of wall and CPU tokens/s, and bf16 / f32 for each.</summary>
    private static Dictionary<string, object> Summary(int ctx, Dictionary<FrozenDtype, List<Dictionary<string, object>>> runs)
    {
        var summary = new Dictionary<string, object> { ["summary"] = "median", ["context"] = ctx, ["repeats"] = runs.Values.First().Count };
        foreach (var (dtype, list) in runs)
        {
            summary[$"tokens_per_s_{Name(dtype)}"] = Median(list, "tokens_per_s");
            summary[$"tokens_per_cpu_s_{Name(dtype)}"] = Median(list, "tokens_per_cpu_s");
        }
        if (runs.ContainsKey(FrozenDtype.F32) && runs.ContainsKey(FrozenDtype.Bf16))
        {
            summary["ratio_bf16_over_f32"] = Math.Round(Median(runs[FrozenDtype.Bf16], "tokens_per_s") / Median(runs[FrozenDtype.F32], "tokens_per_s"), 3);
            summary["cpu_ratio_bf16_over_f32"] = Math.Round(Median(runs[FrozenDtype.Bf16], "tokens_per_cpu_s") / Median(runs[FrozenDtype.F32], "tokens_per_cpu_s"), 3);
        }
        summary["load_average"] = BenchConditions.LoadAverage();
        return summary;

        static double Median(List<Dictionary<string, object>> list, string key)
        {
            var values = list.Select(f => Convert.ToDouble(f[key], System.Globalization.CultureInfo.InvariantCulture)).Order().ToArray();
            int m = values.Length / 2;
            return values.Length % 2 == 1 ? values[m] : (values[m - 1] + values[m]) / 2;
        }
    }
}
