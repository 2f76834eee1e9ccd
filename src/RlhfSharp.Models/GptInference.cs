// KV-cached incremental forward for generation: each layer's keys and values are kept per row, so a new token costs
// one token's matmuls plus attention over the cache, instead of recomputing the whole prefix (llm.c's sampler does that).
// A cache may hold bfloat16 (KvDtype.Bf16): keys and values rounded when appended, attention in float32 on their exact
// widening (Tensors/Kernels/AttentionCachedBf16.cs) — half the cache bytes read per step, logits near float32's.
// Shapes: B rows, P tokens already cached, Tn new tokens per row, C channels, NH heads, HS head size, V vocabulary.
using System.Numerics.Tensors;
using RlhfSharp.Tensors.Kernels;

namespace RlhfSharp.Models;

/// <summary>How a KV cache holds keys and values.</summary>
public enum KvDtype
{
    /// <summary>float32 (the default; every result as before).</summary>
    F32,
    /// <summary>bfloat16, rounded to nearest even when cached and widened exactly when read: half the bytes, attention in float32.</summary>
    Bf16,
}

/// <summary>
/// Per-layer keys and values, the attention mask of every cached position, and positions so far. Laid out for decoding:
/// keys (B, NH, HS, Capacity) — transposed per head, so a query's scores run along contiguous memory — and values
/// (B, NH, Capacity, HS), so each head's cache is one contiguous block that does not move as the context grows.
/// </summary>
public sealed class GptKvCache
{
    public GptKvCache(GptConfig config, int batch, int capacity, KvDtype dtype = KvDtype.F32)
    {
        if (batch <= 0 || capacity <= 0)
            throw new ArgumentException($"GptKvCache: batch {batch} and capacity {capacity} must be positive.");
        Batch = batch;
        Capacity = capacity;
        Dtype = dtype;
        int size = batch * capacity * config.NEmbd;
        if (dtype == KvDtype.Bf16)
        {
            Keys16 = Enumerable.Range(0, config.NLayer).Select(_ => new ushort[size]).ToArray();
            Values16 = Enumerable.Range(0, config.NLayer).Select(_ => new ushort[size]).ToArray();
        }
        else
        {
            Keys = Enumerable.Range(0, config.NLayer).Select(_ => new float[size]).ToArray();
            Values = Enumerable.Range(0, config.NLayer).Select(_ => new float[size]).ToArray();
        }
        Mask = new byte[batch * capacity];
        RealCount = new int[batch];
    }

    public int Batch { get; }
    public int Capacity { get; }

    /// <summary>Positions filled so far (the same for every row; padding fills the gaps).</summary>
    public int Length { get; internal set; }

    public KvDtype Dtype { get; }

    /// <summary>float32 keys and values (null when the cache holds bfloat16).</summary>
    internal float[][]? Keys { get; }
    internal float[][]? Values { get; }

    /// <summary>bfloat16 keys and values, same layouts (null when the cache holds float32).</summary>
    internal ushort[][]? Keys16 { get; }
    internal ushort[][]? Values16 { get; }
    internal byte[] Mask { get; }
    internal int[] RealCount { get; }
}

public static class GptInference
{
    /// <summary>
    /// Appends Tn tokens per row (tokens and mask are B·Tn, mask may be null = all real) to the cache and returns logits:
    /// (B, Tn, V) when <paramref name="allPositions"/>, else (B, V) for each row's last new position.
    /// </summary>
    public static float[] Step(Gpt gpt, GptKvCache cache, int[] tokens, byte[]? mask, int Tn, bool allPositions = false)
    {
        var cfg = gpt.Config;
        int B = cache.Batch, P = cache.Length, C = cfg.NEmbd, NH = cfg.NHead, HS = C / NH, V = cfg.VocabSize, cap = cache.Capacity;
        int N = B * Tn, Tk = P + Tn;
        if (tokens.Length != N) throw new ArgumentException($"GptInference.Step: {tokens.Length} tokens for batch {B} × {Tn} new positions.");
        if (mask is not null && mask.Length != N) throw new ArgumentException($"GptInference.Step: mask holds {mask.Length} entries, needs {N}.");
        if (Tk > cap) throw new ArgumentException($"GptInference.Step: {Tk} positions exceed the cache capacity {cap}.");
        var profile = gpt.Profile;
        profile?.Restart();

        // Embeddings at positions that count real tokens only (left padding does not shift a prompt).
        var x = new float[N * C];
        // BF16 weights (Gpt.Bf16.cs): the GEMM widens them while it packs (Gemm.MultiplyBf16), same bits as float32 on the
        // widened weights with half the bytes read; only the token rows of wte are widened here, into a small scratch.
        var wScratch = gpt.HoldsBf16Weights ? new float[C] : null;
        var wpe = gpt.Param("wpe.weight");
        for (int b = 0; b < B; b++)
        {
            for (int t = 0; t < Tn; t++)
            {
                int n = b * Tn + t;
                int token = tokens[n];
                if ((uint)token >= (uint)V) throw new ArgumentException($"GptInference.Step: token {token} in row {b} is outside the vocabulary [0, {V}).");
                bool real = mask is null || mask[n] != 0;
                int pos = real ? cache.RealCount[b]++ : 0;
                if (pos >= cfg.BlockSize) throw new ArgumentException($"GptInference.Step: row {b} reaches position {pos}, beyond block size {cfg.BlockSize}.");
                cache.Mask[b * cap + P + t] = real ? (byte)1 : (byte)0;
                TensorPrimitives.Add(gpt.TokenEmbedding(token, wScratch), wpe.Slice(pos * C, C), x.AsSpan(n * C, C));
            }
        }

        profile?.Lap("embeddings");
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
            profile?.Lap("layernorm");
            gpt.LinearForward(pre + "attn.c_attn.weight", pre + "attn.c_attn.bias", ln, qkv, N, C, 3 * C);
            gpt.LoraInference(l, LoraTarget.CAttn, ln, qkv, N);
            profile?.Lap("matmul_qkv");
            int layer = l;
            ParallelChunks.For(B * NH, (start, end) =>
            {
                var probs = new float[Tn * Tk];
                for (int bh = start; bh < end; bh++)
                {
                    int b = bh / NH, h = bh % NH;
                    var q = qkv.AsSpan(b * Tn * 3 * C + h * HS);
                    var y = attY.AsSpan(b * Tn * C + h * HS);
                    var mask = cache.Mask.AsSpan(b * cap, Tk);
                    if (cache.Dtype == KvDtype.Bf16)
                    {
                        var kT = cache.Keys16![layer].AsSpan(bh * HS * cap, HS * cap);
                        var vh = cache.Values16![layer].AsSpan(bh * cap * HS, cap * HS);
                        // Append this head's new keys (as columns of kT) and values (as rows), rounded to bfloat16.
                        for (int t = 0; t < Tn; t++)
                        {
                            var src = qkv.AsSpan((b * Tn + t) * 3 * C + h * HS);
                            for (int d = 0; d < HS; d++) kT[d * cap + P + t] = BFloat16.FromFloat(src[C + d]);
                            BFloat16.Narrow(src.Slice(2 * C, HS), vh.Slice((P + t) * HS, HS));
                        }
                        AttentionCachedBf16.Forward(y, C, probs, q, 3 * C, kT, cap, vh, HS, mask, Tn, Tk, P, HS);
                    }
                    else
                    {
                        var kT = cache.Keys![layer].AsSpan(bh * HS * cap, HS * cap);
                        var vh = cache.Values![layer].AsSpan(bh * cap * HS, cap * HS);
                        // Append this head's new keys (as columns of kT) and values (as rows).
                        for (int t = 0; t < Tn; t++)
                        {
                            var src = qkv.AsSpan((b * Tn + t) * 3 * C + h * HS);
                            for (int d = 0; d < HS; d++) kT[d * cap + P + t] = src[C + d];
                            src.Slice(2 * C, HS).CopyTo(vh.Slice((P + t) * HS, HS));
                        }
                        Attention.ForwardCached(y, C, probs, q, 3 * C, kT, cap, vh, HS, mask, Tn, Tk, P, HS);
                    }
                }
            }, minPerChunk: 16);
            profile?.Lap("attention");
            gpt.LinearForward(pre + "attn.c_proj.weight", pre + "attn.c_proj.bias", attY, proj, N, C, C);
            gpt.LoraInference(l, LoraTarget.AttnCProj, attY, proj, N);
            TensorPrimitives.Add(x, proj, x);
            profile?.Lap("matmul_attn_proj");
            Norms.LayerNormForward(x, gpt.Param(pre + "ln_2.weight"), gpt.Param(pre + "ln_2.bias"), ln, mean, rstd, C, cfg.LayerNormEpsilon);
            profile?.Lap("layernorm");
            gpt.LinearForward(pre + "mlp.c_fc.weight", pre + "mlp.c_fc.bias", ln, fc, N, C, 4 * C);
            gpt.LoraInference(l, LoraTarget.CFc, ln, fc, N);
            profile?.Lap("matmul_fc");
            Activations.GeluForward(fc, fcGelu);
            profile?.Lap("gelu");
            gpt.LinearForward(pre + "mlp.c_proj.weight", pre + "mlp.c_proj.bias", fcGelu, proj, N, 4 * C, C);
            gpt.LoraInference(l, LoraTarget.MlpCProj, fcGelu, proj, N);
            TensorPrimitives.Add(x, proj, x);
            profile?.Lap("matmul_mlp_proj");
        }
        cache.Length = Tk;

        // Final LayerNorm and tied head, on every new position or only each row's last one.
        int rows = allPositions ? N : B;
        var h = allPositions ? x : new float[B * C];
        if (!allPositions)
            for (int b = 0; b < B; b++) x.AsSpan((b * Tn + Tn - 1) * C, C).CopyTo(h.AsSpan(b * C, C));
        var hn = new float[rows * C];
        Norms.LayerNormForward(h, gpt.Param("ln_f.weight"), gpt.Param("ln_f.bias"), hn, new float[rows], new float[rows], C, cfg.LayerNormEpsilon);
        profile?.Lap("layernorm");
        var logits = new float[rows * V];
        gpt.TiedHeadLogits(hn, rows, logits);
        profile?.Lap("lm_head");
        return logits;
    }
}
