// KV-cached batched sampling speed of the GPT-2 124M shape (config b), at a short and a long context, to show the cost
// per new token stays flat as the context grows (`rlhf bench sample`).
using System.Diagnostics;
using RlhfSharp.Models;
using RlhfSharp.Tensors;

namespace RlhfSharp.Bench;

public static class SampleBench
{
    /// <summary>
    /// A GPT-2 shape (GptConfig size "gpt2" = 124M, config b; "gpt2-medium"; "gpt2-large") with seeded random weights, held
    /// as <paramref name="dtype"/>: speed does not depend on the values. BF16 is created narrowed (Gpt.CreateBf16, the
    /// same bits as narrowing the float32 model), so its float32 matrices never occupy memory.
    /// </summary>
    public static Gpt Model(string size = "gpt2", FrozenDtype dtype = FrozenDtype.F32)
    {
        if (!size.StartsWith("gpt2", StringComparison.Ordinal) || !GptConfig.Sizes.Contains(size))
            throw new ArgumentException($"bench sample: unknown model '{size}'; use gpt2, gpt2-medium or gpt2-large.");
        var config = GptConfig.Named(size, 50257);
        return dtype == FrozenDtype.Bf16 ? Gpt.CreateBf16(config, new Rng(7)) : Gpt.Create(config, new Rng(7));
    }

    /// <summary>
    /// One warm-up, then <paramref name="B"/> random prompts of <paramref name="promptLength"/> tokens continued by
    /// <paramref name="newTokens"/> tokens, decoding timed from the prefill's end; the fields of one JSON object in output
    /// order (with <paramref name="withProfile"/> a per-phase breakdown of one decode step under "decode_step_ms").
    /// </summary>
    public static Dictionary<string, object> Measure(Gpt gpt, int B, int promptLength, int newTokens, bool withProfile, KvDtype kvDtype = KvDtype.F32)
    {
        var rng = new Rng(11);
        var prompts = Enumerable.Range(0, B).Select(_ => Enumerable.Range(0, promptLength).Select(_ => rng.NextInt(gpt.Config.VocabSize)).ToArray()).ToArray();
        var generator = new GptGenerator(gpt);
        var options = new GenerationOptions { MaxNewTokens = newTokens, Temperature = 1f, KvDtype = kvDtype };
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
            ["kv_dtype"] = kvDtype == KvDtype.Bf16 ? "bf16" : "f32",
            // The first token of each row comes from the prefill logits; the other n − 1 each cost one cached step.
            ["tokens_per_s"] = Math.Round((generated - B) / (total - prefill), 1),
            ["tokens_per_s_with_prefill"] = Math.Round(generated / total, 1),
            ["prefill_seconds"] = Math.Round(prefill, 3),
            // Decoded tokens per CPU-second of the whole process: on a shared machine wall time also counts waiting for a
            // core, CPU time does not (the ideal on an idle machine is this figure × threads).
            ["tokens_per_cpu_s"] = Math.Round((generated - B) / (totalCpu - prefillCpu), 1),
            ["threads"] = Parallelism.Threads,
            ["load_average"] = load,
            ["peak_rss_mb"] = PpoBench.Rss("VmHWM") / 1024,
        };
        if (profile is not null) fields["decode_step_ms"] = BenchConditions.Phases(profile, newTokens - 1);
        return fields;
    }
}
