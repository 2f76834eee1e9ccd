// GPT training throughput (forward, cross-entropy, backward, AdamW step) on the two shapes (`rlhf bench train`).
// MFU divides the achieved GFLOP/s by the float32 FMA peak measured in the same run, right before each configuration's
// timed steps, on the trainer's thread count (FmaPeak), never by a figure from another machine.
using System.Diagnostics;
using RlhfSharp.Models;
using RlhfSharp.Tensors;
using RlhfSharp.Tensors.Optim;

namespace RlhfSharp.Bench;

/// <summary>A measured configuration: the GPT shape, batch B and sequence length T.</summary>
public sealed record TrainShape(string Name, GptConfig Config, int B, int T);

public static class TrainBench
{
    /// <summary>(a) L=4 C=256 T=128 B=8 V=4096 and (b) GPT-2 124M at B=4 T=64.</summary>
    public static readonly TrainShape[] Shapes =
    [
        new("a", new GptConfig { VocabSize = 4096, BlockSize = 128, NEmbd = 256, NLayer = 4, NHead = 4 }, 8, 128),
        new("b", GptConfig.Named("gpt2", 50257), 4, 64),
    ];

    /// <summary>
    /// Two untimed steps, the FMA peak, then <paramref name="steps"/> timed steps; the fields of one JSON object in output
    /// order (tokens/s, GFLOP/s and MFU from the median step, per-phase seconds, CPU time, load average; with
    /// <paramref name="withProfile"/> a per-phase breakdown under "step_ms").
    /// </summary>
    public static Dictionary<string, object> Measure(TrainShape shape, int steps, bool withProfile, bool activationCheckpointing = false)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(steps, 1);
        var (cfg, B, T) = (shape.Config, shape.B, shape.T);
        var rng = new Rng(1337);
        var gpt = Gpt.Create(cfg, rng);
        gpt.ActivationCheckpointing = activationCheckpointing;
        var opt = new AdamW(gpt.ParameterSet, new AdamWConfig { LearningRate = 3e-4f, Beta2 = 0.95f, WeightDecay = 0.1f });
        int N = B * T;
        var tokens = new int[N];
        var targets = new int[N];
        for (int i = 0; i < N; i++) tokens[i] = rng.NextInt(cfg.VocabSize);
        for (int i = 0; i < N; i++) targets[i] = rng.NextInt(cfg.VocabSize);
        var input = new GptInput(B, T, tokens);
        var dLogits = new float[N * cfg.VocabSize];
        GptPass? pass = null;

        var phase = new double[4];
        var process = Process.GetCurrentProcess();
        (double Wall, double Cpu) Step()
        {
            var cpu0 = process.TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            gpt.ZeroGrad();
            pass = gpt.Forward(input, reuse: pass);
            phase[0] += sw.Elapsed.TotalSeconds;
            Gpt.CrossEntropy(pass, targets, null, dLogits);
            phase[1] += sw.Elapsed.TotalSeconds;
            gpt.Backward(pass, dLogits);
            phase[2] += sw.Elapsed.TotalSeconds;
            gpt.ParameterSet.ClipGradNorm(1.0);
            opt.Step();
            phase[3] += sw.Elapsed.TotalSeconds;
            process.Refresh();
            return (sw.Elapsed.TotalSeconds, (process.TotalProcessorTime - cpu0).TotalSeconds);
        }

        Step(); // warm-up: JIT, buffers, GEMM workers (twice, so tiered JIT has settled before timing)
        Step();
        Array.Clear(phase);
        // The peak just before the timed steps, so that both see the machine in the same state (load from other processes).
        var peak = FmaPeak.Measure(Parallelism.Threads);
        var profile = withProfile ? new GptProfile() : null;
        gpt.Profile = profile;
        double load = BenchConditions.LoadAverage();
        var runs = Enumerable.Range(0, steps).Select(_ => Step()).ToArray();
        gpt.Profile = null;
        double median = runs.Select(r => r.Wall).Order().ElementAt(steps / 2);
        double cpuMedian = runs.Select(r => r.Cpu).Order().ElementAt(steps / 2);
        double tokensPerSecond = N / median;
        // nanoGPT's estimate_mfu (PaLM appendix B): 6·N_params + 12·L·NH·HS·T FLOPs per token, N_params without wpe.
        long parameters = gpt.ParameterList.Where(p => p.Name != "wpe.weight").Sum(p => (long)p.Length);
        double flopsPerToken = 6.0 * parameters + 12.0 * cfg.NLayer * cfg.NHead * cfg.HeadSize * T;
        double gflops = flopsPerToken * tokensPerSecond / 1e9;
        var fields = new Dictionary<string, object>
        {
            ["config"] = shape.Name,
            ["params"] = gpt.ParameterList.Sum(p => (long)p.Length),
            ["activation_checkpointing"] = activationCheckpointing,
            ["tokens_per_s"] = Math.Round(tokensPerSecond, 1),
            ["gflops"] = Math.Round(gflops, 2),
            ["peak_gflops"] = Math.Round(peak.Gflops, 1),
            ["peak_isa"] = peak.Isa,
            ["mfu"] = Math.Round(gflops / peak.Gflops, 4),
            ["step_seconds"] = Math.Round(median, 4),
            // CPU seconds per step: on a shared, oversubscribed machine wall time overstates the cost; cpu/threads does not.
            ["step_cpu_seconds"] = Math.Round(cpuMedian, 4),
            ["forward_s"] = Math.Round(phase[0] / steps, 4),
            ["loss_s"] = Math.Round((phase[1] - phase[0]) / steps, 4),
            ["backward_s"] = Math.Round((phase[2] - phase[1]) / steps, 4),
            ["optimizer_s"] = Math.Round((phase[3] - phase[2]) / steps, 4),
            ["tokens_per_cpu_s"] = Math.Round(N / cpuMedian, 1),
            ["threads"] = Parallelism.Threads,
            ["load_average"] = load,
            ["peak_rss_mb"] = PpoBench.Rss("VmHWM") / 1024,
        };
        if (profile is not null) fields["step_ms"] = BenchConditions.Phases(profile, steps);
        return fields;
    }
}
