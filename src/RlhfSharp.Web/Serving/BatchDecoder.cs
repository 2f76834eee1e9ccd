// One GPT forward step over several sequences at once, each with a KV cache of its own (its own rows, position and
// length), so `rlhf serve`'s scheduler can add a sequence to the running batch or drop one at any step boundary
// (continuous batching, as vLLM and TGI do). The same computation as GptInference.Step, which keeps one shared length
// for a left-padded batch instead.
// Shapes: S sequences; sequence i brings Tn_i new tokens after P_i cached ones; N = Σ Tn_i rows; C channels, NH heads,
// HS = C/NH head size, V vocabulary. Each linear layer runs once on the stacked (N, C) rows (the weights are read once
// per step for every sequence: the throughput gain); attention runs per (sequence, head) against that sequence's cache:
//   keys (NH, HS, Capacity), transposed per head; values (NH, Capacity, HS)   (GptKvCache's layout for one row)
// A row's result depends on that row alone: LayerNorm and GELU are per row, Gemm sums each element over the depth in one
// fixed order whatever the number of rows, and attention sees only its own sequence. So a request decodes to the same
// bits alone or batched with others (ModelServerBatchingTests checks this).
using System.Numerics.Tensors;
using RlhfSharp.Models;
using RlhfSharp.Tensors.Kernels;

namespace RlhfSharp.Web.Serving;

/// <summary>The keys and values of one sequence, every layer, for up to <see cref="Capacity"/> positions.</summary>
internal sealed class SequenceCache
{
    public SequenceCache(GptConfig config, int capacity)
    {
        if (capacity <= 0 || capacity > config.BlockSize)
            throw new ArgumentException($"SequenceCache: capacity {capacity} must lie in 1..{config.BlockSize} (the model's context).");
        Capacity = capacity;
        Keys = new float[config.NLayer][];
        Values = new float[config.NLayer][];
        for (int l = 0; l < config.NLayer; l++)
        {
            Keys[l] = new float[capacity * config.NEmbd];
            Values[l] = new float[capacity * config.NEmbd];
        }
        Mask = new byte[capacity];
        Mask.AsSpan().Fill(1); // no padding: every cached position is a real token
    }

    public int Capacity { get; }

    /// <summary>Positions cached so far (also the position of the next token).</summary>
    public int Length { get; internal set; }

    internal float[][] Keys { get; }
    internal float[][] Values { get; }
    internal byte[] Mask { get; }
}

/// <summary>One sequence's part of a step: its cache, its new tokens, and whether it wants logits at every new position.</summary>
internal readonly record struct DecodeItem(SequenceCache Cache, int[] Tokens, bool AllPositions);

internal static class BatchDecoder
{
    /// <summary>
    /// Appends each item's tokens to its cache and returns, per item, logits (Tn, V) when it asked for all positions,
    /// else (V) for its last new token.
    /// </summary>
    public static float[][] Step(Gpt gpt, IReadOnlyList<DecodeItem> items)
    {
        var cfg = gpt.Config;
        int S = items.Count, C = cfg.NEmbd, NH = cfg.NHead, HS = C / NH, V = cfg.VocabSize;
        var start = new int[S + 1];
        int maxProbs = 0;
        for (int i = 0; i < S; i++)
        {
            var (cache, tokens, _) = items[i];
            int Tn = tokens.Length, P = cache.Length;
            if (Tn == 0) throw new ArgumentException($"BatchDecoder.Step: sequence {i} brings no tokens.");
            if (P + Tn > cache.Capacity) throw new ArgumentException($"BatchDecoder.Step: sequence {i} reaches {P + Tn} positions, beyond its cache of {cache.Capacity}.");
            start[i + 1] = start[i] + Tn;
            maxProbs = Math.Max(maxProbs, Tn * (P + Tn));
        }
        int N = start[S];

        // Embeddings: token plus position, positions counting from each sequence's own cache length.
        var x = new float[N * C];
        var embedding = gpt.HoldsBf16Weights ? new float[C] : null;   // a BF16 model widens one wte row at a time (Gpt.Bf16.cs)
        var wpe = gpt.Param("wpe.weight");
        for (int i = 0; i < S; i++)
        {
            var (cache, tokens, _) = items[i];
            for (int t = 0; t < tokens.Length; t++)
            {
                int token = tokens[t];
                if ((uint)token >= (uint)V) throw new ArgumentException($"BatchDecoder.Step: token {token} of sequence {i} is outside the vocabulary [0, {V}).");
                TensorPrimitives.Add(gpt.TokenEmbedding(token, embedding), wpe.Slice((cache.Length + t) * C, C), x.AsSpan((start[i] + t) * C, C));
            }
        }

        var ln = new float[N * C];
        var mean = new float[N];
        var rstd = new float[N];
        var qkv = new float[N * 3 * C];
        var attY = new float[N * C];
        var proj = new float[N * C];
        var fc = new float[N * 4 * C];
        var fcGelu = new float[N * 4 * C];
        for (int l = 0; l < cfg.NLayer; l++)
        {
            string pre = $"h.{l}.";
            Norms.LayerNormForward(x, gpt.Param(pre + "ln_1.weight"), gpt.Param(pre + "ln_1.bias"), ln, mean, rstd, C, cfg.LayerNormEpsilon);
            gpt.LinearForward(pre + "attn.c_attn.weight", pre + "attn.c_attn.bias", ln, qkv, N, C, 3 * C);
            int layer = l;
            ParallelChunks.For(S * NH, (from, to) =>
            {
                var probs = new float[maxProbs];
                for (int sh = from; sh < to; sh++)
                {
                    int i = sh / NH, h = sh % NH;
                    var cache = items[i].Cache;
                    int Tn = items[i].Tokens.Length, P = cache.Length, Tk = P + Tn, cap = cache.Capacity, row0 = start[i];
                    var kT = cache.Keys[layer].AsSpan(h * HS * cap, HS * cap);
                    var vh = cache.Values[layer].AsSpan(h * cap * HS, cap * HS);
                    // Append this head's new keys (as columns of kT) and values (as rows).
                    for (int t = 0; t < Tn; t++)
                    {
                        var src = qkv.AsSpan((row0 + t) * 3 * C + h * HS);
                        for (int d = 0; d < HS; d++) kT[d * cap + P + t] = src[C + d];
                        src.Slice(2 * C, HS).CopyTo(vh.Slice((P + t) * HS, HS));
                    }
                    Attention.ForwardCached(attY.AsSpan(row0 * C + h * HS), C, probs, qkv.AsSpan(row0 * 3 * C + h * HS), 3 * C, kT, cap, vh, HS,
                        cache.Mask.AsSpan(0, Tk), Tn, Tk, P, HS);
                }
            }, minPerChunk: 16);
            gpt.LinearForward(pre + "attn.c_proj.weight", pre + "attn.c_proj.bias", attY, proj, N, C, C);
            TensorPrimitives.Add(x, proj, x);
            Norms.LayerNormForward(x, gpt.Param(pre + "ln_2.weight"), gpt.Param(pre + "ln_2.bias"), ln, mean, rstd, C, cfg.LayerNormEpsilon);
            gpt.LinearForward(pre + "mlp.c_fc.weight", pre + "mlp.c_fc.bias", ln, fc, N, C, 4 * C);
            Activations.GeluForward(fc, fcGelu);
            gpt.LinearForward(pre + "mlp.c_proj.weight", pre + "mlp.c_proj.bias", fcGelu, proj, N, 4 * C, C);
            TensorPrimitives.Add(x, proj, x);
        }
        foreach (var item in items) item.Cache.Length += item.Tokens.Length;

        // Final LayerNorm and tied head on the rows wanted: every new row of an all-positions item, else its last.
        var firstOut = new int[S + 1];
        for (int i = 0; i < S; i++) firstOut[i + 1] = firstOut[i] + (items[i].AllPositions ? items[i].Tokens.Length : 1);
        int rows = firstOut[S];
        var h = new float[rows * C];
        for (int i = 0; i < S; i++)
        {
            int Tn = items[i].Tokens.Length;
            if (items[i].AllPositions) x.AsSpan(start[i] * C, Tn * C).CopyTo(h.AsSpan(firstOut[i] * C));
            else x.AsSpan((start[i] + Tn - 1) * C, C).CopyTo(h.AsSpan(firstOut[i] * C));
        }
        var hn = new float[rows * C];
        Norms.LayerNormForward(h, gpt.Param("ln_f.weight"), gpt.Param("ln_f.bias"), hn, new float[rows], new float[rows], C, cfg.LayerNormEpsilon);
        var logits = new float[rows * V];
        gpt.TiedHeadLogits(hn, rows, logits);
        var result = new float[S][];
        for (int i = 0; i < S; i++) result[i] = logits.AsSpan(firstOut[i] * V, (firstOut[i + 1] - firstOut[i]) * V).ToArray();
        return result;
    }
}
