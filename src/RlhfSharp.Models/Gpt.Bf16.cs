// Frozen weights held in bfloat16 and computed in float32 (issue 21, memory): the PPO reference and the reward model
// never train, so their big matrices — wte (V, C) and each block's c_attn (C, 3C), attn.c_proj (C, C), c_fc (C, 4C) and
// mlp.c_proj (4C, C) — can be kept at 2 bytes a weight, rounded to nearest even from float32 (as PyTorch's
// `.to(torch.bfloat16)` and safetensors BF16 do). Biases, LayerNorms, wpe and heads stay float32 (< 1% of GPT-2).
// How the arithmetic stays float32: the fused forward widens one matrix at a time (exactly: bits << 16, Tensors/Kernels/
// BFloat16.cs) into a scratch of the largest layer matrix (4C·C floats) and hands it to the unchanged GEMM; the tied LM
// head widens wte 3072 vocabulary rows at a time and runs the GEMM on each column block of the logits (TiedHeadLogits). The GEMM's
// element sums do not depend on the column block (Kernels/GemmBlocked.cs), so a BF16 model gives bit for bit the
// float32 model's results on the widened weights (Gpt.Bf16 tests). This is the brief's "documented alternative" to
// widening inside the GEMM's B-panel packing: no kernel changes, and the scratch (9.4 MB at GPT-2 124M) is per call.
// Anything else that asks for a BF16 matrix through Param (backward, KV-cached decoding) gets a widened copy: correct
// but allocating, so BF16 storage is meant for models that only run Forward.
// Shapes: C = NEmbd, V vocabulary, rows = hidden rows given to the head.
using RlhfSharp.Tensors;
using RlhfSharp.Tensors.Kernels;
using RlhfSharp.Tensors.Nn;

namespace RlhfSharp.Models;

/// <summary>How frozen weights (the reference, the reward model) are held: float32, or bfloat16 widened to float32 when used.</summary>
public enum FrozenDtype
{
    /// <summary>float32, as trained (the default; every result as before).</summary>
    F32,
    /// <summary>bfloat16 matrices (half the bytes), computed in float32.</summary>
    Bf16,
}

public sealed partial class Gpt
{
    /// <summary>One matrix held as bfloat16 bits, row-major in the float32 layout it came from.</summary>
    private sealed record Bf16Matrix(int[] Shape, ushort[] Bits)
    {
        public float[] Widened()
        {
            var values = new float[Bits.Length];
            BFloat16.Widen(Bits, values);
            return values;
        }
    }

    private Dictionary<string, Bf16Matrix>? _bf16;

    /// <summary>Vocabulary rows of wte widened per head GEMM (4·768 = 3072 fills the 4C·C scratch at GPT-2 124M); tests shrink it.</summary>
    internal static int HeadChunkRows { get; set; } = 3072;

    /// <summary>Whether the big matrices are held in bfloat16 (<see cref="NarrowFrozenWeightsToBf16"/>).</summary>
    public bool HoldsBf16Weights => _bf16 is not null;

    /// <summary>The matrices BF16 storage covers: wte and every block's four Conv1D weights.</summary>
    public static bool IsBf16Matrix(string name) =>
        name == "wte.weight" || (name.StartsWith("h.", StringComparison.Ordinal) && (name.EndsWith(".attn.c_attn.weight", StringComparison.Ordinal)
            || name.EndsWith(".attn.c_proj.weight", StringComparison.Ordinal) || name.EndsWith(".mlp.c_fc.weight", StringComparison.Ordinal)
            || name.EndsWith(".mlp.c_proj.weight", StringComparison.Ordinal)));

    /// <summary>Applies <paramref name="dtype"/> to a frozen model in place (F32: nothing).</summary>
    public void HoldFrozenWeightsAs(FrozenDtype dtype)
    {
        if (dtype == FrozenDtype.Bf16) NarrowFrozenWeightsToBf16();
    }

    /// <summary>
    /// Rounds the big matrices to bfloat16 in place and frees their float32 copies: the model keeps computing in float32
    /// but can no longer train (its ParameterSet no longer holds those matrices). For frozen models only.
    /// </summary>
    public void NarrowFrozenWeightsToBf16()
    {
        if (_bf16 is not null) return;
        if (Adapter is not null)
            throw new InvalidOperationException("GPT: this model has a LoRA adapter, which trains through its base; BF16 storage is for frozen models (the reference, the reward model).");
        var held = new Dictionary<string, Bf16Matrix>(StringComparer.Ordinal);
        foreach (var p in ParameterList.Where(p => IsBf16Matrix(p.Name)))
        {
            var bits = new ushort[p.Length];
            BFloat16.Narrow(Parameters.AsSpan(p.Offset, p.Length), bits);
            held[p.Name] = new Bf16Matrix((int[])p.Shape.Clone(), bits);
        }
        var kept = ParameterSet.Slots.Where(s => !held.ContainsKey(s.Name)).Select(s => new KeyValuePair<string, Tensor>(s.Name, s.Value)).ToList();
        _bf16 = held;
        Bind(new ParameterSet(kept));   // copies the float32 rest into a smaller buffer; the old one is garbage
    }

    /// <summary>
    /// <see cref="Create"/> followed by <see cref="NarrowFrozenWeightsToBf16"/>, the same bits, without ever holding the big
    /// matrices in float32: each is drawn piece by piece into a small scratch and rounded as it goes (GPT-2 large's float32
    /// weights alone are 3.1 GB, which a model meant to be held in BF16 need never occupy).
    /// </summary>
    public static Gpt CreateBf16(GptConfig config, Rng rng, GptHeads heads = GptHeads.None)
    {
        var gpt = new Gpt(config, heads, bf16Matrices: true);
        var scratch = new float[1 << 16];
        foreach (var (name, shape) in Shapes(config, heads))
        {
            if (gpt._bf16!.TryGetValue(name, out var held))
            {
                // Draws continue in element order across pieces, so the generator's sequence is Create's.
                for (int start = 0; start < held.Bits.Length; start += scratch.Length)
                {
                    var piece = scratch.AsSpan(0, Math.Min(scratch.Length, held.Bits.Length - start));
                    Initialize(config, name, shape, rng, piece);
                    BFloat16.Narrow(piece, held.Bits.AsSpan(start, piece.Length));
                }
            }
            else
            {
                var p = gpt[name];
                Initialize(config, name, shape, rng, gpt.Parameters.AsSpan(p.Offset, p.Length));
            }
        }
        return gpt;
    }

    // One widening scratch per thread, reused by every pass on it (a fresh one per pass left ~20 MB of large-object
    // garbage a call, and peak memory grew with it). Users are sequential: a widened matrix is consumed before the next.
    [ThreadStatic] private static float[]? t_widenScratch;

    /// <summary>This thread's scratch, large enough for the largest layer matrix (4C·C) and a head block of wte.</summary>
    internal float[] WidenScratch()
    {
        int C = Config.NEmbd;
        long floats = Math.Max(4L * C * C, (long)Math.Min(Config.VocabSize, Math.Max(HeadChunkRows, HeadTailMin) + HeadTailMin) * C);
        var scratch = t_widenScratch;
        if (scratch is null || scratch.Length < floats) t_widenScratch = scratch = new float[floats];
        return scratch;
    }

    private const int HeadTailMin = 257;

    /// <summary>Vocabulary rows per depth block of the head's backward: a multiple of the GEMM's depth slice KC = 256.</summary>
    private const int HeadGradChunkRows = 12 * 256;

    /// <summary>
    /// The tied head's input gradient: dHidden (rows, C) += dLogits (rows, V) · wte (V, C). With BF16 wte, depth block by
    /// depth block of 3072 vocabulary rows, each accumulated into dHidden: the blocked GEMM adds each KC = 256 depth slice
    /// into D in turn (GemmBlocked.cs), so blocks on KC boundaries give the whole product's bits.
    /// </summary>
    internal void TiedHeadInputGrad(ReadOnlySpan<float> dLogits, int rows, Span<float> dHidden)
    {
        int C = Config.NEmbd, V = Config.VocabSize;
        if (_bf16 is null || !_bf16.TryGetValue("wte.weight", out var wte))
        {
            Gemm.Multiply(GemmForm.NN, rows, C, V, dLogits, V, Param("wte.weight"), C, dHidden, C, accumulate: true);
            return;
        }
        var scratch = WidenScratch();
        for (int v0 = 0; v0 < V; v0 += HeadGradChunkRows)
        {
            int vn = Math.Min(HeadGradChunkRows, V - v0);
            var w = scratch.AsSpan(0, vn * C);
            BFloat16.Widen(wte.Bits.AsSpan(v0 * C, vn * C), w);
            // Depth block [v0, v0 + vn): columns of dLogits (row stride V) times rows of wte.
            Gemm.Multiply(GemmForm.NN, rows, C, vn, dLogits[v0..], V, w, C, dHidden, C, accumulate: true);
        }
    }

    /// <summary>
    /// y (N, OC) = x (N, C)·W + b for the Conv1D weight <paramref name="name"/> (bias <paramref name="biasName"/>): the float32
    /// GEMM, or with a BF16 matrix the GEMM that widens while it packs (Gemm.MultiplyBf16) — the same bits without a scratch
    /// copy, and half the weight bytes read, which is what KV-cached decoding pays per token.
    /// </summary>
    internal void LinearForward(string name, string biasName, ReadOnlySpan<float> x, Span<float> y, int N, int C, int OC)
    {
        if (_bf16 is not null && _bf16.TryGetValue(name, out var held))
            LinearKernels.ForwardBf16(x, held.Bits, Param(biasName), y, N, C, OC);
        else
            LinearKernels.Forward(x, Param(name), Param(biasName), y, N, C, OC, LinearWeightLayout.InOut);
    }

    /// <summary>A Conv1D weight for the forward: the float32 view, or the BF16 matrix widened into <paramref name="scratch"/>.</summary>
    internal ReadOnlySpan<float> LinearWeight(string name, float[]? scratch)
    {
        if (_bf16 is null || !_bf16.TryGetValue(name, out var held)) return Param(name);
        var dst = scratch.AsSpan(0, held.Bits.Length);
        BFloat16.Widen(held.Bits, dst);
        return dst;
    }

    /// <summary>Row <paramref name="token"/> of wte (C floats): a view, or widened into the front of <paramref name="scratch"/>.</summary>
    internal ReadOnlySpan<float> TokenEmbedding(int token, float[]? scratch)
    {
        int C = Config.NEmbd;
        if (_bf16 is null || !_bf16.TryGetValue("wte.weight", out var held)) return Parameters.AsSpan(this["wte.weight"].Offset + token * C, C);
        var dst = scratch.AsSpan(0, C);
        BFloat16.Widen(held.Bits.AsSpan(token * C, C), dst);
        return dst;
    }

    /// <summary>
    /// The tied LM head: logits (rows, V) = hidden (rows, C) · wteᵀ. With BF16 wte, block by block of HeadChunkRows (at
    /// least 257) vocabulary rows, a tail under 257 joining the last block: every block then has more columns than the
    /// GEMM's operand-swap threshold (256 rows), so each block takes the plan the whole product would (GemmPlan.Create,
    /// GemmSkinny.Choose) and, sums not depending on the column position, gives the whole product's bits.
    /// </summary>
    internal void TiedHeadLogits(ReadOnlySpan<float> hidden, int rows, Span<float> logits)
    {
        int C = Config.NEmbd, V = Config.VocabSize;
        if (_bf16 is null || !_bf16.TryGetValue("wte.weight", out var wte))
        {
            Gemm.Multiply(GemmForm.NT, rows, V, C, hidden[..(rows * C)], C, Param("wte.weight"), C, logits[..(rows * V)], V, accumulate: false);
            return;
        }
        if (Gemm.SupportsBf16(GemmForm.NT, rows, V))
        {
            // Few rows (decoding, short scoring passes): the GEMM reads wte's bf16 rows in place, no scratch.
            Gemm.MultiplyBf16(GemmForm.NT, rows, V, C, hidden[..(rows * C)], C, wte.Bits, C, logits[..(rows * V)], V, accumulate: false);
            return;
        }
        const int tailMin = HeadTailMin;
        int block = Math.Max(HeadChunkRows, tailMin);
        var scratch = WidenScratch();
        for (int v0 = 0; v0 < V;)
        {
            int vn = Math.Min(block, V - v0);
            if (V - v0 - vn < tailMin) vn = V - v0;
            var w = scratch.AsSpan(0, vn * C);
            BFloat16.Widen(wte.Bits.AsSpan(v0 * C, vn * C), w);
            // Column block [v0, v0 + vn) of the logits, row stride V.
            Gemm.Multiply(GemmForm.NT, rows, vn, C, hidden[..(rows * C)], C, w, C, logits[v0..(rows * V)], V, accumulate: false);
            v0 += vn;
        }
    }
}
