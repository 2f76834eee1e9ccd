// The tensor engine's non-GEMM kernels (softmax, layer norm, GELU, attention, AdamW) and a small 2-layer
// transformer-like stack (forward + backward through autograd), each timed with the scalar reference kernels and with
// the SIMD kernels, at 1 and 2 threads, alternating in one process so the ratios survive a noisy machine
// (`rlhf bench engine`). GEMM is the same in every mode (it has its own GemmBench).
using System.Diagnostics;
using System.Text.Json;
using RlhfSharp.Tensors;
using RlhfSharp.Tensors.Kernels;
using RlhfSharp.Tensors.Nn;
using RlhfSharp.Tensors.Optim;

namespace RlhfSharp.Bench;

/// <summary>One case's fastest time per mode (scalar_1t, simd_1t, simd_2t), in milliseconds.</summary>
public sealed record EngineResult(string Case, IReadOnlyDictionary<string, double> BestMs)
{
    /// <summary>One JSON object: case, each mode's _ms, simd_speedup_1t and speedup_2t_vs_scalar_1t.</summary>
    public string ToJson()
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream))
        {
            writer.WriteStartObject();
            writer.WriteString("case", Case);
            foreach (var (mode, ms) in BestMs) writer.WriteNumber(mode + "_ms", Math.Round(ms, 3));
            writer.WriteNumber("simd_speedup_1t", Math.Round(BestMs["scalar_1t"] / BestMs["simd_1t"], 2));
            writer.WriteNumber("speedup_2t_vs_scalar_1t", Math.Round(BestMs["scalar_1t"] / BestMs["simd_2t"], 2));
            writer.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }
}

public static class EngineBench
{
    /// <summary>A kernel configuration: scalar references or SIMD, and the thread count.</summary>
    private sealed record Mode(string Name, bool Scalar, int Threads);

    private static readonly Mode[] Modes = [new("scalar_1t", true, 1), new("simd_1t", false, 1), new("simd_2t", false, 2)];

    private static IEnumerable<(string Name, Action Run)> Cases()
    {
        var rng = new Rng(1);

        // Softmax rows: cross-entropy over a 4096-token vocabulary for 512 positions, forward + backward.
        var logits = Tensor.Randn(rng, 2f, 512, 4096);
        var targets = Enumerable.Range(0, 512).Select(i => (i * 37) % 4096).ToArray();
        yield return ("cross_entropy_512x4096_fwd_bwd", () =>
        {
            logits.RequiresGrad = true;
            logits.Grad = null;
            Ops.CrossEntropy(logits, targets).Backward();
        });

        // Layer norm (B·T = 1024 rows, C = 768), forward + backward.
        var x = Tensor.Randn(rng, 1f, 1024, 768);
        var w = Tensor.Ones(768);
        var b = Tensor.Zeros(768);
        yield return ("layer_norm_1024x768_fwd_bwd", () =>
        {
            x.RequiresGrad = w.RequiresGrad = b.RequiresGrad = true;
            x.Grad = w.Grad = b.Grad = null;
            Ops.Sum(Ops.LayerNorm(x, w, b)).Backward();
        });

        // GELU on an MLP hidden activation (1024 × 3072), forward + backward.
        var h = Tensor.Randn(rng, 1f, 1024, 3072);
        yield return ("gelu_1024x3072_fwd_bwd", () =>
        {
            h.RequiresGrad = true;
            h.Grad = null;
            Ops.Sum(Ops.Gelu(h)).Backward();
        });

        // Causal attention, B = 4, NH = 12, T = 256, HS = 64, forward + backward.
        var qkv = Tensor.Randn(rng, 1f, 4, 256, 3 * 768);
        yield return ("attention_b4_nh12_t256_hs64_fwd_bwd", () =>
        {
            qkv.RequiresGrad = true;
            qkv.Grad = null;
            Ops.Sum(Ops.CausalAttention(qkv, 12)).Backward();
        });

        // AdamW over 4M parameters.
        var p = Tensor.Randn(rng, 0.02f, 2048, 2048);
        var ps = new ParameterSet([new("p", p)]);
        Tensor.Randn(rng, 1f, ps.Grads.Length).Span.CopyTo(ps.Grads);
        var adam = new AdamW(ps, new AdamWConfig());
        yield return ("adamw_4M_step", () => adam.Step());

        // The stack: embeddings, 2 pre-LN blocks (attention + GELU MLP), final LN, LM head, cross-entropy.
        var stack = new Stack(new Rng(2), vocab: 512, context: 128, channels: 256, heads: 8, layers: 2);
        var stackParams = new ParameterSet(stack);
        var ids = Enumerable.Range(0, 8 * 128).Select(i => (i * 31 + 7) % 512).ToArray();
        var next = ids.Skip(1).Append(0).ToArray();
        yield return ("transformer_2layer_b8_t128_c256_fwd_bwd", () =>
        {
            stackParams.ZeroGrad();
            Ops.CrossEntropy(stack.Forward(ids, 8, 128), next).Backward();
        });
    }

    /// <summary>Each case measured in turn with <paramref name="reps"/> timed runs per mode; a case is yielded as soon as it is measured.</summary>
    public static IEnumerable<EngineResult> Run(int reps)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(reps, 1);
        foreach (var (name, run) in Cases()) yield return Measure(name, run, reps);
    }

    private static EngineResult Measure(string name, Action run, int reps)
    {
        var best = Modes.ToDictionary(m => m.Name, _ => double.MaxValue);
        bool savedScalar = KernelOptions.UseScalarReference;
        int savedThreads = Parallelism.Threads;
        try
        {
            // Warm-up: at least a second per mode, so the tiered JIT has promoted every kernel to optimised code
            // (tier-0 Vector256 code is many times slower and would make the first runs meaningless).
            foreach (var mode in Modes)
            {
                KernelOptions.UseScalarReference = mode.Scalar;
                Parallelism.Threads = mode.Threads;
                var warm = Stopwatch.StartNew();
                do run(); while (warm.ElapsedMilliseconds < 1000);
            }
            for (int r = 0; r < reps; r++)
            {
                foreach (var mode in Modes) // alternate modes so load spikes hit all of them alike
                {
                    KernelOptions.UseScalarReference = mode.Scalar;
                    Parallelism.Threads = mode.Threads;
                    long start = Stopwatch.GetTimestamp();
                    run();
                    best[mode.Name] = Math.Min(best[mode.Name], Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                }
            }
        }
        finally
        {
            KernelOptions.UseScalarReference = savedScalar;
            Parallelism.Threads = savedThreads;
        }
        return new EngineResult(name, best);
    }

    /// <summary>A GPT-like stack written against the engine's public API (the benchmark's workload).</summary>
    private sealed class Stack : Module
    {
        private readonly Embedding _wte, _wpe;
        private readonly ModuleList<Block> _blocks;
        private readonly LayerNorm _lnF;
        private readonly Linear _head;
        private readonly int _heads;

        public Stack(Rng rng, int vocab, int context, int channels, int heads, int layers)
        {
            _heads = heads;
            _wte = RegisterModule("wte", new Embedding(vocab, channels, rng, 0.02f));
            _wpe = RegisterModule("wpe", new Embedding(context, channels, rng, 0.01f));
            _blocks = RegisterModule("h", new ModuleList<Block>(Enumerable.Range(0, layers).Select(_ => new Block(rng, channels)).ToList()));
            _lnF = RegisterModule("ln_f", new LayerNorm(channels));
            _head = RegisterModule("lm_head", new Linear(channels, vocab, rng, bias: false));
        }

        public Tensor Forward(int[] ids, int B, int T)
        {
            var positions = Enumerable.Range(0, B * T).Select(i => i % T).ToArray();
            var x = _wte.Forward(ids, [B, T]) + _wpe.Forward(positions, [B, T]);
            foreach (var block in _blocks.Items) x = block.Forward(x, _heads);
            return _head.Forward(_lnF.Forward(x)).Reshape(B * T, -1);
        }
    }

    private sealed class Block : Module
    {
        private readonly LayerNorm _ln1, _ln2;
        private readonly Linear _attn, _proj, _fc, _fcProj;

        public Block(Rng rng, int c)
        {
            _ln1 = RegisterModule("ln_1", new LayerNorm(c));
            _attn = RegisterModule("c_attn", new Linear(c, 3 * c, rng));
            _proj = RegisterModule("c_proj", new Linear(c, c, rng));
            _ln2 = RegisterModule("ln_2", new LayerNorm(c));
            _fc = RegisterModule("c_fc", new Linear(c, 4 * c, rng));
            _fcProj = RegisterModule("mlp_proj", new Linear(4 * c, c, rng));
        }

        public Tensor Forward(Tensor x, int heads)
        {
            x = x + _proj.Forward(Ops.CausalAttention(_attn.Forward(_ln1.Forward(x)), heads));
            return x + _fcProj.Forward(Ops.Gelu(_fc.Forward(_ln2.Forward(x))));
        }
    }
}
