// `rlhf bench sample`: KV-cached batched sampling speed of the GPT-2 124M shape (config b) at batch 16, at a short and a
// long context, to show the cost per new token stays flat as the context grows.
using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using RlhfSharp.Models;
using RlhfSharp.Tensors;

namespace RlhfSharp.Cli.Commands;

internal static class BenchSampleCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Print one JSON object per context length (the default output is the same)." };
        var batch = new Option<int>("--batch") { Description = "Sequences sampled together.", DefaultValueFactory = _ => 16 };
        var newTokens = new Option<int>("--new-tokens") { Description = "Tokens generated per sequence.", DefaultValueFactory = _ => 16 };
        var context = new Option<int?>("--context") { Description = "Measure only this context length (prompt + new tokens) instead of 32 and 480." };
        var profile = new Option<bool>("--profile") { Description = "Add a per-phase breakdown of one decode step (milliseconds per step, wall and CPU)." };
        var command = new Command("sample", "KV-cached sampling tokens/s for GPT-2 124M at batch 16, context 32 and 480.");
        command.Options.Add(json);
        command.Options.Add(batch);
        command.Options.Add(newTokens);
        command.Options.Add(context);
        command.Options.Add(profile);
        command.SetAction(parseResult =>
        {
            int B = parseResult.GetValue(batch), n = parseResult.GetValue(newTokens);
            if (B < 1) throw new ArgumentException($"--batch must be at least 1 (got {B}).");
            if (n < 1 || n >= 480) throw new ArgumentException($"--new-tokens must be in [1, 480) (got {n}).");
            var gpt = Gpt.Create(GptConfig.Named("gpt2", 50257), new Rng(7));
            int? only = parseResult.GetValue(context);
            if (only is { } c && (c <= n || c > gpt.Config.BlockSize))
                throw new ArgumentException($"--context must exceed --new-tokens ({n}) and be at most {gpt.Config.BlockSize} (got {c}).");
            foreach (int ctx in only is { } single ? [single] : new[] { 32, 480 })
                Console.Out.WriteLine(Measure(gpt, B, ctx - n, n, parseResult.GetValue(profile)));
            return 0;
        });
        return command;
    }

    private static string Measure(Gpt gpt, int B, int promptLength, int newTokens, bool withProfile)
    {
        var rng = new Rng(11);
        var prompts = Enumerable.Range(0, B).Select(_ => Enumerable.Range(0, promptLength).Select(_ => rng.NextInt(gpt.Config.VocabSize)).ToArray()).ToArray();
        var generator = new GptGenerator(gpt);
        var options = new GenerationOptions { MaxNewTokens = newTokens, Temperature = 1f };
        generator.Generate(prompts, options with { MaxNewTokens = 2 }, new Rng(1)); // warm-up

        // The first step's logits arrive right after the prompt is prefilled: time decoding from there.
        var profile = withProfile ? new GptProfile() : null;
        gpt.Profile = profile;
        double load = BenchConditions.LoadAverage();
        var cpu0 = Environment.CpuUsage.TotalTime;
        var sw = Stopwatch.StartNew();
        double prefill = 0, prefillCpu = 0;
        var result = generator.Generate(prompts, options, new Rng(2), (step, _) =>
        {
            if (step != 0) return;
            prefill = sw.Elapsed.TotalSeconds;
            prefillCpu = (Environment.CpuUsage.TotalTime - cpu0).TotalSeconds;
            profile?.Clear();
        });
        double total = sw.Elapsed.TotalSeconds;
        double totalCpu = (Environment.CpuUsage.TotalTime - cpu0).TotalSeconds;
        gpt.Profile = null;
        int generated = result.ResponseLengths.Sum();
        var fields = new Dictionary<string, object>
        {
            ["config"] = "b",
            ["batch"] = B,
            ["prompt_len"] = promptLength,
            ["new_tokens"] = newTokens,
            // The first token of each row comes from the prefill logits; the other n − 1 each cost one cached step.
            ["tokens_per_s"] = Math.Round((generated - B) / (total - prefill), 1),
            ["tokens_per_s_with_prefill"] = Math.Round(generated / total, 1),
            ["prefill_seconds"] = Math.Round(prefill, 3),
            // Decoded tokens per CPU-second of the whole process: on a shared machine wall time also counts waiting for a
            // core, CPU time does not (the ideal on an idle machine is this figure × threads).
            ["tokens_per_cpu_s"] = Math.Round((generated - B) / (totalCpu - prefillCpu), 1),
            ["threads"] = Parallelism.Threads,
            ["load_average"] = load,
        };
        if (profile is not null) fields["decode_step_ms"] = BenchConditions.Phases(profile, newTokens - 1);
        return JsonSerializer.Serialize(fields);
    }
}
