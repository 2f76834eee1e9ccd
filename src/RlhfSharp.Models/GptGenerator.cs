// Batched, seeded, KV-cached sampling from a GPT: temperature, top-k, top-p (nucleus; Holtzman et al. 2020), greedy,
// a per-row stop at EOS. Rollout code talks to ITextGenerator, so samples could later come from workers elsewhere.
using RlhfSharp.Tensors;

namespace RlhfSharp.Models;

/// <summary>How to sample continuations.</summary>
public sealed record GenerationOptions
{
    /// <summary>Tokens generated per row at most (EOS included).</summary>
    public int MaxNewTokens { get; init; } = 32;

    /// <summary>Logits are divided by this before softmax; log-probabilities are reported under the same scaled distribution.</summary>
    public float Temperature { get; init; } = 1f;

    /// <summary>Keep only the k most likely tokens (0 = no limit).</summary>
    public int TopK { get; init; }

    /// <summary>Keep the smallest set of most likely tokens whose probability reaches p (1 = no limit).</summary>
    public float TopP { get; init; } = 1f;

    /// <summary>Take the most likely token every step (ignores temperature, top-k and top-p; log-probs at temperature 1).</summary>
    public bool Greedy { get; init; }

    /// <summary>A row stops after emitting this token; null uses the model config's eos_token_id (or never stops early).</summary>
    public int? EosTokenId { get; init; }

    /// <summary>Token written into prompt padding and after a row has stopped (its mask is 0 there).</summary>
    public int PadTokenId { get; init; }

    /// <summary>How the KV cache holds keys and values: float32, or bfloat16 (half the bytes; logits near, not equal to, float32's).</summary>
    public KvDtype KvDtype { get; init; }

    public void Validate()
    {
        if (MaxNewTokens <= 0) throw new ArgumentException($"generation: max_new_tokens {MaxNewTokens} must be positive.");
        if (!(Temperature > 0)) throw new ArgumentException($"generation: temperature {Temperature} must be positive.");
        if (TopK < 0) throw new ArgumentException($"generation: top_k {TopK} must be ≥ 0.");
        if (!(TopP > 0 && TopP <= 1)) throw new ArgumentException($"generation: top_p {TopP} must be in (0, 1].");
    }
}

/// <summary>
/// Left-padded prompts followed by the generated tokens, row-major (B, PromptLength + NewTokens). AttentionMask is 1 on
/// real tokens (prompt and generated, EOS included) and 0 on padding; LogProbs (B, NewTokens) holds log π(token) for
/// each generated token and 0 after a row stopped.
/// </summary>
public sealed record GenerationResult(int Batch, int PromptLength, int NewTokens, int[] Tokens, byte[] AttentionMask, float[] LogProbs, int[] ResponseLengths)
{
    public int Length => PromptLength + NewTokens;

    /// <summary>The generated tokens of row b (up to and including EOS).</summary>
    public int[] Response(int b) => Tokens.AsSpan(b * Length + PromptLength, ResponseLengths[b]).ToArray();

    /// <summary>The real prompt tokens of row b, without padding.</summary>
    public int[] Prompt(int b)
    {
        var list = new List<int>();
        for (int t = 0; t < PromptLength; t++)
            if (AttentionMask[b * Length + t] != 0) list.Add(Tokens[b * Length + t]);
        return [.. list];
    }
}

/// <summary>Turns prompt batches into samples; the seam where remote rollout workers would plug in.</summary>
public interface ITextGenerator
{
    GenerationResult Generate(IReadOnlyList<int[]> prompts, GenerationOptions options, Rng rng);
}

public sealed class GptGenerator(Gpt model) : ITextGenerator
{
    public Gpt Model { get; } = model;

    public GenerationResult Generate(IReadOnlyList<int[]> prompts, GenerationOptions options, Rng rng) => Generate(prompts, options, rng, null);

    /// <summary>As <see cref="Generate(IReadOnlyList{int[]}, GenerationOptions, Rng)"/>; <paramref name="onLogits"/> sees each step's raw logits (B, V).</summary>
    public GenerationResult Generate(IReadOnlyList<int[]> prompts, GenerationOptions options, Rng rng, Action<int, float[]>? onLogits) =>
        Generate(prompts, options, rng, onLogits, null);

    /// <summary>
    /// As above; <paramref name="onTokens"/> sees each step's drawn tokens (B; the pad for a row already finished) as soon as
    /// they are sampled, so a server can stream them. The array is reused: copy what you keep. An exception it throws
    /// ends generation there and propagates (how a caller stops early).
    /// </summary>
    public GenerationResult Generate(IReadOnlyList<int[]> prompts, GenerationOptions options, Rng rng, Action<int, float[]>? onLogits, Action<int, int[]>? onTokens)
    {
        options.Validate();
        var cfg = Model.Config;
        var input = GptInput.LeftPadded(prompts, options.PadTokenId);
        int B = input.Batch, Tp = input.Length, steps = options.MaxNewTokens, V = cfg.VocabSize;
        int longest = prompts.Max(p => p.Length);
        if (longest + steps > cfg.BlockSize)
            throw new ArgumentException($"generation: prompt of {longest} tokens + {steps} new tokens exceeds block size {cfg.BlockSize}.");
        int? eos = options.EosTokenId ?? cfg.EosTokenId;
        int L = Tp + steps;
        var tokens = new int[B * L];
        var mask = new byte[B * L];
        var logProbs = new float[B * steps];
        var lengths = new int[B];
        var done = new bool[B];
        for (int b = 0; b < B; b++)
        {
            input.Tokens.AsSpan(b * Tp, Tp).CopyTo(tokens.AsSpan(b * L, Tp));
            input.AttentionMask!.AsSpan(b * Tp, Tp).CopyTo(mask.AsSpan(b * L, Tp));
        }

        var cache = new GptKvCache(cfg, B, L, options.KvDtype);
        var logits = GptInference.Step(Model, cache, input.Tokens, input.AttentionMask, Tp);
        var next = new int[B];
        var nextMask = new byte[B];
        var sampler = new TokenSampler(V);
        for (int step = 0; step < steps; step++)
        {
            onLogits?.Invoke(step, logits);
            Model.Profile?.Restart();
            for (int b = 0; b < B; b++)
            {
                int pos = b * L + Tp + step;
                if (done[b])
                {
                    next[b] = options.PadTokenId;
                    nextMask[b] = 0;
                }
                else
                {
                    var row = logits.AsSpan(b * V, V);
                    (int token, float logProb) = options.Greedy ? sampler.Greedy(row, b) : sampler.Sample(row, options, rng, b);
                    next[b] = token;
                    nextMask[b] = 1;
                    logProbs[b * steps + step] = logProb;
                    lengths[b]++;
                    if (token == eos) done[b] = true;
                }
                tokens[pos] = next[b];
                mask[pos] = nextMask[b];
            }
            Model.Profile?.Lap("sampling");
            onTokens?.Invoke(step, next);
            if (step + 1 == steps || done.All(d => d)) break;
            logits = GptInference.Step(Model, cache, next, nextMask, 1);
        }
        // Rows that stopped early are padded to the full length; trim columns nobody used.
        int used = lengths.Max();
        if (used < steps)
        {
            int L2 = Tp + used;
            var t2 = new int[B * L2];
            var m2 = new byte[B * L2];
            var lp2 = new float[B * used];
            for (int b = 0; b < B; b++)
            {
                tokens.AsSpan(b * L, L2).CopyTo(t2.AsSpan(b * L2, L2));
                mask.AsSpan(b * L, L2).CopyTo(m2.AsSpan(b * L2, L2));
                logProbs.AsSpan(b * steps, used).CopyTo(lp2.AsSpan(b * used, used));
            }
            return new GenerationResult(B, Tp, used, t2, m2, lp2, lengths);
        }
        return new GenerationResult(B, Tp, steps, tokens, mask, logProbs, lengths);
    }
}
