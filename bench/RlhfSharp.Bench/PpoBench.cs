// One or two PPO steps at the issue-21 shape (`rlhf bench ppo`): random GPT-2 124M (or 355M "medium") weights with a
// 50257-token vocabulary, batch 16, minibatch 4, 24 new tokens; policy, reference, reward model and value model as the
// PPO trainer builds them, full fine-tuning or LoRA. Reports the process's peak resident memory (VmHWM from
// /proc/self/status), seconds per phase (generation, scoring, training) and tokens/s, from the trainer's own metrics.
using System.Diagnostics;
using System.Globalization;
using RlhfSharp.Alignment.Ppo;
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Models;
using RlhfSharp.Tensors;
using RlhfSharp.Text;

namespace RlhfSharp.Bench;

/// <summary>What to run: the model size ("gpt2" = 124M, "gpt2-medium" = 355M), the PPO shape, LoRA (R = 0: full fine-tuning) and how frozen weights are held.</summary>
public sealed record PpoBenchOptions(string Model = "gpt2", int Steps = 1, int BatchSize = 16, int MiniBatchSize = 4, int MaxNewTokens = 24,
    int PromptTokens = 32, LoraConfig? Lora = null, FrozenDtype FrozenDtype = FrozenDtype.F32, bool ActivationCheckpointing = false, bool Profile = false,
    bool MeasureLive = false);

public static class PpoBench
{
    public const int Vocab = 50257;

    /// <summary>GPT-2 124M, medium (355M) or large (774M) as GptConfig names them, with the GPT-2 vocabulary size.</summary>
    public static GptConfig Config(string model) => model is "gpt2" or "gpt2-medium" or "gpt2-large"
        ? GptConfig.Named(model, Vocab)
        : throw new ArgumentException($"bench ppo: unknown model '{model}'; use gpt2, gpt2-medium or gpt2-large.");

    public static Dictionary<string, object> Measure(PpoBenchOptions o)
    {
        double loadStart = BenchConditions.LoadAverage();
        var config = Config(o.Model);
        var setup = Stopwatch.StartNew();
        var sft = Gpt.Create(config, new Rng(7));
        var rewardModel = new RewardModel(sft.WithHeads(GptHeads.Reward, new Rng(8)), SyntheticTokenizer.Instance);
        var ensemble = new RewardEnsemble([rewardModel]);
        var rng = new Rng(11);
        // Prompts of PromptTokens synthetic tokens (the tokenizer maps each character to one token).
        var prompts = Enumerable.Range(0, o.BatchSize)
            .Select(_ => new string(Enumerable.Range(0, o.PromptTokens).Select(_ => (char)('a' + rng.NextInt(26))).ToArray())).ToList();
        var ppo = new PpoConfig
        {
            Steps = o.Steps, BatchSize = o.BatchSize, MiniBatchSize = o.MiniBatchSize, MaxNewTokens = o.MaxNewTokens,
            CheckpointInterval = 0, SnapshotEvery = 0, Lora = o.Lora ?? new LoraConfig(), FrozenDtype = o.FrozenDtype,
            ActivationCheckpointing = o.ActivationCheckpointing,
        };
        long parameters = sft.ParameterSet.Count;   // before a BF16 reference gives its matrices up
        double setupSeconds = setup.Elapsed.TotalSeconds;
        long rssSetup = Rss("VmRSS");
        var sw = Stopwatch.StartNew();
        // Where the peak falls: VmRSS sampled every 20 ms on a side thread (its time, after the trainer started, places it in a phase).
        long peakKb = 0;
        double peakAt = 0;
        using var stop = new CancellationTokenSource();
        var sampler = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                long rss = Rss("VmRSS");
                if (rss > peakKb) (peakKb, peakAt) = (rss, sw.Elapsed.TotalSeconds);
                Thread.Sleep(20);
            }
        }) { IsBackground = true };
        sampler.Start();
        int gen0 = GC.CollectionCount(0), gen1 = GC.CollectionCount(1), gen2 = GC.CollectionCount(2);
        var profile = o.Profile ? new PpoProfile() : null;
        var memory = new StepMemory(o.MeasureLive);
        var cpu0 = Environment.CpuUsage.TotalTime;
        var result = new PpoTrainer(ppo).Train(sft, SyntheticTokenizer.Instance, prompts, new RewardModelReward(ensemble), ensemble,
            new PpoTrainer.Options(Progress: memory, Profile: profile));
        double cpuSeconds = (Environment.CpuUsage.TotalTime - cpu0).TotalSeconds;   // all threads: the work done, whatever the machine's load
        double total = sw.Elapsed.TotalSeconds;
        stop.Cancel();
        sampler.Join();
        double Mean(string key) => Math.Round(result.History.Average(h => h[key]), 3);
        double tokens = result.History.Sum(h => h[RlhfSharp.Runs.MetricKeys.MeanLength]) * o.BatchSize;
        var report = new Dictionary<string, object>
        {
            ["bench"] = "ppo",
            ["model"] = o.Model,
            ["parameters"] = parameters,
            ["frozen_dtype"] = o.FrozenDtype.ToString().ToLowerInvariant(),
            ["activation_checkpointing"] = o.ActivationCheckpointing,
            // The collector's settings as the runtime resolved them (runtimeconfig.json, overridden by DOTNET_GC* variables).
            ["gc"] = $"{(System.Runtime.GCSettings.IsServerGC ? "server" : "workstation")}, conserve_memory={(GC.GetConfigurationVariables().TryGetValue("GCConserveMemory", out var conserve) ? conserve : 0)}",
            ["lora_r"] = ppo.Lora.R,
            ["lora_target_modules"] = ppo.Lora.Enabled ? string.Join(",", ppo.Lora.Targets().Select(LoraTargets.PeftName)) : "",
            ["trainable_parameters"] = result.Policy.TrainableParameters.Count,
            ["batch_size"] = o.BatchSize,
            ["minibatch_size"] = o.MiniBatchSize,
            ["max_new_tokens"] = o.MaxNewTokens,
            ["prompt_tokens"] = o.PromptTokens,
            ["steps"] = result.History.Count,
            ["peak_rss_mb"] = Rss("VmHWM") / 1024,
            ["rss_after_setup_mb"] = rssSetup / 1024,
            ["peak_rss_sampled_mb"] = peakKb / 1024,
            ["peak_at_s"] = Math.Round(peakAt, 1),
            ["memory_per_step"] = memory.Steps,
            ["gc_collections"] = $"{GC.CollectionCount(0) - gen0}/{GC.CollectionCount(1) - gen1}/{GC.CollectionCount(2) - gen2}",
            ["setup_s"] = Math.Round(setupSeconds, 2),
            ["generation_s"] = Mean("time/generation_s"),
            ["scoring_s"] = Mean("time/scoring_s"),
            ["training_s"] = Mean("time/training_s"),
            ["step_s"] = Mean("time/step_s"),
            ["tokens_per_s"] = Mean("perf/tokens_per_s"),
            ["total_s"] = Math.Round(total, 2),
            // Process CPU seconds per step (the trainer's steps, every thread) and response tokens per CPU second: on a
            // loaded machine these compare two builds where wall-clock tokens/s does not.
            ["step_cpu_s"] = Math.Round(cpuSeconds / result.History.Count, 2),
            ["tokens_per_cpu_s"] = Math.Round(tokens / cpuSeconds, 2),
            ["threads"] = Parallelism.Threads,
            ["load_average_start"] = loadStart,
            ["load_average_end"] = BenchConditions.LoadAverage(),
        };
        if (profile is not null)
        {
            // Per step: the trainer's phases, then the kernel phases inside the policy's and the value model's passes.
            int n = result.History.Count;
            object Phases(GptProfile p) => p.Phases.ToDictionary(x => x.Phase, x => (object)new { cpu_s = Math.Round(x.CpuSeconds / n, 3), wall_s = Math.Round(x.WallSeconds / n, 3) });
            report["profile_steps"] = Phases(profile.Steps);
            report["profile_policy"] = Phases(profile.Policy);
            report["profile_value"] = Phases(profile.Value);
        }
        return report;
    }

    /// <summary>
    /// Memory at the end of each step, recorded synchronously from the trainer's progress report: resident set now and its
    /// peak so far, the managed heap as of the last collection (size, fragmentation = free space inside it, committed), and,
    /// with <c>measureLive</c>, the bytes still reachable after a full blocking collection (this collection changes when
    /// the collector runs, so a live-measuring run's peaks are not the plain run's).
    /// </summary>
    private sealed class StepMemory(bool measureLive) : IProgress<RlhfSharp.Alignment.AlignmentProgress>
    {
        public List<Dictionary<string, object>> Steps { get; } = [];

        public void Report(RlhfSharp.Alignment.AlignmentProgress value)
        {
            var info = GC.GetGCMemoryInfo();
            var row = new Dictionary<string, object>
            {
                ["step"] = value.Step,
                ["rss_mb"] = Rss("VmRSS") / 1024,
                ["peak_rss_mb"] = Rss("VmHWM") / 1024,
                ["gc_heap_mb"] = info.HeapSizeBytes >> 20,
                ["gc_fragmented_mb"] = info.FragmentedBytes >> 20,
                ["gc_committed_mb"] = info.TotalCommittedBytes >> 20,
                ["loh_mb"] = info.GenerationInfo.Length > 3 ? info.GenerationInfo[3].SizeAfterBytes >> 20 : -1,
            };
            if (measureLive) row["live_mb"] = GC.GetTotalMemory(forceFullCollection: true) >> 20;
            Steps.Add(row);
        }
    }

    /// <summary>A field of /proc/self/status in kB (VmHWM: peak resident set; VmRSS: current), or −1 where there is none.</summary>
    public static long Rss(string field)
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith(field + ":", StringComparison.Ordinal))
                    return long.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
        }
        return -1;
    }

    /// <summary>
    /// A tokenizer over the GPT-2-sized random vocabulary: a character encodes to its code (mod the vocabulary), a token
    /// decodes to "‹id›"; token 50256 is end-of-text as in GPT-2. Enough to drive PPO; meaningless as text.
    /// </summary>
    private sealed class SyntheticTokenizer : ITokenizer
    {
        public RlhfSharp.Text.ChatTemplate? ChatTemplate { get; set; }

        public static readonly SyntheticTokenizer Instance = new();

        public int VocabSize => Vocab;
        public int? EosId => Vocab - 1;
        public IReadOnlyDictionary<string, int> SpecialTokens { get; } = new Dictionary<string, int> { ["<|endoftext|>"] = Vocab - 1 };
        public int[] Encode(string text) => text.Select(c => c % (Vocab - 1)).ToArray();
        public int[] Encode(string text, bool allowSpecial) => Encode(text);
        public string Decode(ReadOnlySpan<int> ids)
        {
            var sb = new System.Text.StringBuilder();
            foreach (int id in ids) sb.Append('‹').Append(id.ToString(CultureInfo.InvariantCulture)).Append('›');
            return sb.ToString();
        }
        public void Save(string directory) => throw new NotSupportedException("bench ppo: the synthetic tokenizer is not saved.");
    }
}
