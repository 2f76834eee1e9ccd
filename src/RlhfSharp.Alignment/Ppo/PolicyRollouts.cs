// The rollout machinery the on-policy language-model trainers share (PPO, RLOO and REINFORCE in PpoTrainer, GRPO, online
// DPO): sample responses with the KV-cached generator, lay them out as [B, R] response tokens with a mask, read log π and
// V per response token with a fused forward (no tape), and the same log π on the tape for a minibatch, whose gradient
// goes back through the fused backward. Shapes: B rows, Tp prompt positions (left-padded), R response positions,
// L = Tp + R, V vocabulary; response token t of row b is predicted at position Tp − 1 + t.
using System.Diagnostics;
using RlhfSharp.Models;
using RlhfSharp.Tensors;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment.Ppo;

/// <summary>A batch of sampled responses and their layout.</summary>
/// <param name="Prompts">The prompt text of each row.</param>
/// <param name="Input">Prompt ++ response tokens, [B, L], with the attention mask (left-padded prompts, right-padded responses).</param>
/// <param name="PromptLength">Tp.</param>
/// <param name="ResponseLength">R.</param>
/// <param name="Mask">1 on real response tokens, [B, R].</param>
/// <param name="Lengths">Real response tokens per row (EOS included when emitted).</param>
/// <param name="Responses">Response texts without EOS.</param>
/// <param name="Rows">Prompt tokens ++ response tokens per row (EOS kept when emitted).</param>
/// <param name="EndsWithEos">Whether each response emitted EOS within the limit.</param>
/// <param name="GenerationSeconds">Time spent sampling.</param>
public sealed record RolloutBatch(IReadOnlyList<string> Prompts, GptInput Input, int PromptLength, int ResponseLength, float[] Mask, int[] Lengths,
    string[] Responses, List<int[]> Rows, bool[] EndsWithEos, double GenerationSeconds)
{
    public int Batch => Lengths.Length;

    /// <summary>The mask as booleans.</summary>
    public bool[] BoolMask() => Mask.Select(m => m != 0).ToArray();
}

/// <summary>Log π of a minibatch's response tokens on the tape, and what is needed to send its gradient into the GPT.</summary>
/// <param name="Pass">The fused forward pass.</param>
/// <param name="Logits">Temperature-scaled logits [b, L, V], a leaf whose gradient feeds Gpt.Backward.</param>
/// <param name="LogProbs">log π of each response token, [b, R], on the tape.</param>
/// <param name="ResponseOnly">
/// Logits holds only the R positions that predict response tokens, [b, R, V] (ResponseLogProbsOnTape), not all L.
/// </param>
/// <param name="Hidden">With ResponseOnly: the hidden states (after ln_f) at those positions, [b·R, C].</param>
/// <param name="HeadStart">With ResponseOnly: the first of those positions, Tp − 1.</param>
public sealed record TapedLogProbs(GptPass Pass, Tensor Logits, Tensor LogProbs, bool ResponseOnly = false, float[]? Hidden = null, int HeadStart = 0)
{
    /// <summary>H[π] at the positions that predict response tokens, [b, R] (detached: measured, not trained).</summary>
    public Tensor ResponseEntropy(int Tp, int R, bool detach)
    {
        var logits = detach ? Logits.Detach() : Logits;
        return ResponseOnly ? Ops.Entropy(logits) : Ops.Narrow(Ops.Entropy(logits), 1, Tp - 1, R);
    }
}

public static class PolicyRollouts
{
    /// <summary>Samples one response per prompt (repeat a prompt G times for G samples) with the policy's generator.</summary>
    public static RolloutBatch Sample(GptGenerator generator, ITokenizer tokenizer, int eos, IReadOnlyList<string> prompts, int maxNewTokens, float temperature, Rng rng)
    {
        var policy = generator.Model;
        int B = prompts.Count;
        int maxNew = Math.Min(maxNewTokens, policy.Config.BlockSize - 1);
        var encoded = prompts.Select(p =>
        {
            var t = tokenizer.Encode(p);
            if (t.Length == 0) t = [eos];
            return t.Length > policy.Config.BlockSize - maxNew ? t[^(policy.Config.BlockSize - maxNew)..] : t;
        }).ToList();
        var genWatch = Stopwatch.StartNew();
        GenerationResult rollout;
        using (Autograd.NoGrad())
            rollout = generator.Generate(encoded, new GenerationOptions { MaxNewTokens = maxNew, Temperature = temperature, EosTokenId = eos }, rng);
        double generationSeconds = genWatch.Elapsed.TotalSeconds;

        int Tp = rollout.PromptLength, R = rollout.NewTokens, L = rollout.Length;
        var input = new GptInput(B, L, rollout.Tokens, rollout.AttentionMask);
        var mask = new float[B * R];
        var lengths = new int[B];
        var responses = new string[B];
        var rows = new List<int[]>(B);
        var endsWithEos = new bool[B];
        for (int b = 0; b < B; b++)
        {
            var resp = rollout.Response(b);
            lengths[b] = resp.Length;
            for (int t = 0; t < resp.Length; t++) mask[b * R + t] = 1f;
            endsWithEos[b] = resp.Length > 0 && resp[^1] == eos;
            responses[b] = tokenizer.Decode(endsWithEos[b] ? resp.AsSpan(0, resp.Length - 1) : resp);
            rows.Add([.. rollout.Prompt(b), .. resp]);
        }
        return new RolloutBatch(prompts, input, Tp, R, mask, lengths, responses, rows, endsWithEos, generationSeconds);
    }

    /// <summary>
    /// A new batch of the chosen rows of other batches (DAPO's dynamic sampling keeps groups from several generation
    /// rounds), laid out again: prompts left-padded to the longest, responses right-padded. Positions count real tokens
    /// only, so a row's log-probabilities do not depend on its padding.
    /// </summary>
    public static RolloutBatch Select(IReadOnlyList<(RolloutBatch Batch, int Row)> picks)
    {
        if (picks.Count == 0) throw new ArgumentException("rollouts: no rows selected.");
        int B = picks.Count, Tp = picks.Max(p => p.Batch.PromptLength), R = picks.Max(p => p.Batch.ResponseLength), L = Tp + R;
        var tokens = new int[B * L];
        var attention = new byte[B * L];
        var mask = new float[B * R];
        for (int i = 0; i < B; i++)
        {
            var (src, row) = picks[i];
            int sTp = src.PromptLength, sR = src.ResponseLength, sL = src.Input.Length;
            // Prompt region right-aligned at Tp; response region starting at Tp.
            src.Input.Tokens.AsSpan(row * sL, sTp).CopyTo(tokens.AsSpan(i * L + Tp - sTp));
            src.Input.AttentionMask!.AsSpan(row * sL, sTp).CopyTo(attention.AsSpan(i * L + Tp - sTp));
            src.Input.Tokens.AsSpan(row * sL + sTp, sR).CopyTo(tokens.AsSpan(i * L + Tp));
            src.Input.AttentionMask!.AsSpan(row * sL + sTp, sR).CopyTo(attention.AsSpan(i * L + Tp));
            for (int t = 0; t < src.Lengths[row]; t++) mask[i * R + t] = 1f;
        }
        return new RolloutBatch(
            [.. picks.Select(p => p.Batch.Prompts[p.Row])], new GptInput(B, L, tokens, attention), Tp, R, mask, [.. picks.Select(p => p.Batch.Lengths[p.Row])],
            [.. picks.Select(p => p.Batch.Responses[p.Row])], [.. picks.Select(p => p.Batch.Rows[p.Row])], [.. picks.Select(p => p.Batch.EndsWithEos[p.Row])],
            picks.Select(p => p.Batch).Distinct().Sum(b => b.GenerationSeconds));
    }

    /// <summary>
    /// A batch laid out from its rows' tokens (data parallelism: every rank lays out the rows all ranks sampled the same
    /// way): prompts left-padded to the longest, responses right-padded to the longest, padding token 0 with mask 0.
    /// </summary>
    public static RolloutBatch Layout(IReadOnlyList<string> prompts, IReadOnlyList<(int[] Prompt, int[] Response, string Text, bool Eos)> rows, double generationSeconds)
    {
        if (rows.Count == 0) throw new ArgumentException("rollouts: no rows to lay out.");
        int B = rows.Count, Tp = rows.Max(r => r.Prompt.Length), R = rows.Max(r => r.Response.Length), L = Tp + R;
        var tokens = new int[B * L];
        var attention = new byte[B * L];
        var mask = new float[B * R];
        for (int b = 0; b < B; b++)
        {
            var (prompt, response, _, _) = rows[b];
            prompt.CopyTo(tokens.AsSpan(b * L + Tp - prompt.Length));
            attention.AsSpan(b * L + Tp - prompt.Length, prompt.Length).Fill(1);
            response.CopyTo(tokens.AsSpan(b * L + Tp));
            attention.AsSpan(b * L + Tp, response.Length).Fill(1);
            mask.AsSpan(b * R, response.Length).Fill(1f);
        }
        return new RolloutBatch(prompts, new GptInput(B, L, tokens, attention), Tp, R, mask, [.. rows.Select(r => r.Response.Length)],
            [.. rows.Select(r => r.Text)], [.. rows.Select(r => (int[])[.. r.Prompt, .. r.Response])], [.. rows.Select(r => r.Eos)], generationSeconds);
    }

    /// <summary>log π(response token) for each row (B, R), from one fused forward at the given temperature.</summary>
    public static float[] ResponseLogProbs(Gpt model, GptInput input, int Tp, int R, float temperature)
    {
        // The LM head runs one row at a time (GptScoring.HeadLogits, the same bits as the batch's), so (B, L, V) logits
        // are never held at once.
        int B = input.Batch, L = input.Length, V = model.Config.VocabSize, C = model.Config.NEmbd;
        var hidden = model.Forward(input, new GptForwardOptions { Logits = false, KeepActivations = false }).LnF;
        // Only the R positions Tp − 1 … Tp + R − 2 predict response tokens: the head runs on those rows alone (each row's
        // logits do not depend on which rows are given with it), a third of the head's work at 32 + 24 tokens.
        var next = NextTokens(input);
        var chunk = new float[R * V];
        var result = new float[B * R];
        using (Autograd.NoGrad())
        {
            for (int b = 0; b < B; b++)
            {
                GptScoring.HeadLogits(model, hidden.AsSpan((b * L + Tp - 1) * C, R * C), R, chunk);
                var logits = temperature == 1f ? chunk : Scale(chunk, 1f / temperature);
                var span = Ops.TokenLogProbs(Tensor.Wrap(logits, 1, R, V), next.AsSpan(b * L + Tp - 1, R)).Span;
                for (int t = 0; t < R; t++)
                    if (input.IsReal(b, Tp + t)) result[b * R + t] = span[t];
            }
        }
        return result;
    }

    /// <summary>V of the state before each response token (B, R).</summary>
    public static float[] ResponseValues(Gpt value, GptInput input, int Tp, int R)
    {
        int B = input.Batch, L = input.Length;
        var pass = value.Forward(input, new GptForwardOptions { Logits = false, KeepActivations = false });
        var result = new float[B * R];
        for (int b = 0; b < B; b++)
            for (int t = 0; t < R; t++)
                if (input.IsReal(b, Tp + t)) result[b * R + t] = pass.Values![b * L + Tp - 1 + t];
        return result;
    }

    /// <summary>
    /// log π of the response tokens of <paramref name="sub"/> on the tape, through temperature-scaled logits. Pass the previous
    /// minibatch's pass as <paramref name="reuse"/> to reuse its buffers (its Backward must be done).
    /// </summary>
    public static TapedLogProbs LogProbsOnTape(Gpt policy, GptInput sub, int Tp, int R, float temperature, GptPass? reuse = null)
    {
        int b = sub.Batch, L = sub.Length, V = policy.Config.VocabSize;
        var pass = policy.Forward(sub, null, reuse);
        // The logits are scaled in place (Backward needs the pass's activations, not its logits): no second (b, L, V) array.
        var scaled = Tensor.Wrap(temperature == 1f ? pass.Logits! : Scale(pass.Logits!, 1f / temperature, inPlace: true), b, L, V);
        scaled.RequiresGrad = true;
        var logp = Ops.Narrow(Ops.TokenLogProbs(scaled, NextTokens(sub)), 1, Tp - 1, R);
        return new TapedLogProbs(pass, scaled, logp);
    }

    /// <summary>
    /// As <see cref="LogProbsOnTape"/>, with the LM head run only at the R positions that predict response tokens: the
    /// logits are [b, R, V] and the head's forward and input gradient cost R/L of the full pass's (the head is a third of
    /// GPT-2 124M's FLOPs). Every value equals the full pass's bit for bit (rows are independent in the head's GEMM and in
    /// the log-softmax). For a frozen base (LoRA) only: wte's gradient would need every position's logits gradient.
    /// Pass the previous minibatch's result as <paramref name="reuse"/> to reuse its buffers (its Backward must be done).
    /// </summary>
    public static TapedLogProbs ResponseLogProbsOnTape(Gpt policy, GptInput sub, int Tp, int R, float temperature, TapedLogProbs? reuse = null)
    {
        if (policy.Adapter is null) throw new ArgumentException("rollouts: the response-only head is for a frozen base (LoRA); a model that trains wte needs LogProbsOnTape.");
        int b = sub.Batch, L = sub.Length, V = policy.Config.VocabSize, C = policy.Config.NEmbd;
        var pass = policy.Forward(sub, new GptForwardOptions { Logits = false }, reuse?.Pass);
        bool same = reuse is { ResponseOnly: true, Hidden: { } h } && h.Length == b * R * C;
        var hidden = same ? reuse!.Hidden! : new float[b * R * C];
        var logits = same ? reuse!.Logits.Data : new float[b * R * V];
        for (int i = 0; i < b; i++) pass.LnF.AsSpan((i * L + Tp - 1) * C, R * C).CopyTo(hidden.AsSpan(i * R * C));
        GptScoring.HeadLogits(policy, hidden, b * R, logits);
        if (temperature != 1f) Scale(logits, 1f / temperature, inPlace: true);
        var scaled = Tensor.Wrap(logits, b, R, V);
        scaled.RequiresGrad = true;
        var all = NextTokens(sub);
        var next = new int[b * R];
        for (int i = 0; i < b; i++) all.AsSpan(i * L + Tp - 1, R).CopyTo(next.AsSpan(i * R));
        var logp = Ops.TokenLogProbs(scaled, next);
        return new TapedLogProbs(pass, scaled, logp, ResponseOnly: true, Hidden: hidden, HeadStart: Tp - 1);
    }

    /// <summary>After a loss over <paramref name="taped"/> was backpropagated: sends the logits' gradient into the GPT's parameters.</summary>
    public static void Backward(Gpt policy, TapedLogProbs taped, float temperature)
    {
        if (taped.ResponseOnly)
        {
            BackwardResponseOnly(policy, taped, temperature);
            return;
        }
        // The logits' gradient buffer itself (nothing reads it after this), scaled in place: no copy of (b, L, V).
        var grad = taped.Logits.Grad!;
        var dLogits = grad.Offset == 0 && grad.Data.Length == grad.Length ? grad.Data : grad.ToArray();
        if (temperature != 1f) Scale(dLogits, 1f / temperature, inPlace: true);
        policy.Backward(taped.Pass, dLogits);
        taped.Logits.Grad = null;   // a caller keeping taped for its buffers does not keep this (b, L, V) one alive
    }

    // The head's input gradient at the response positions, scattered into a (b, L, C) gradient of the final hidden states
    // (zero elsewhere, as the full head's would be: those positions' logits have no gradient).
    private static void BackwardResponseOnly(Gpt policy, TapedLogProbs taped, float temperature)
    {
        var pass = taped.Pass;
        int b = pass.Batch, L = pass.Length, C = policy.Config.NEmbd, R = taped.Logits.Shape[1], start = taped.HeadStart;
        var grad = taped.Logits.Grad!;
        var dLogits = grad.Offset == 0 && grad.Data.Length == grad.Length ? grad.Data : grad.ToArray();
        if (temperature != 1f) Scale(dLogits, 1f / temperature, inPlace: true);
        var dRows = taped.Hidden!;   // the gathered hidden rows are not read again: their buffer takes the gradient
        Array.Clear(dRows);
        GptScoring.HeadInputGrad(policy, dLogits, b * R, dRows);
        var dHidden = new float[b * L * C];
        for (int i = 0; i < b; i++) dRows.AsSpan(i * R * C, R * C).CopyTo(dHidden.AsSpan((i * L + start) * C));
        policy.Backward(pass, dHidden: dHidden);
        taped.Logits.Grad = null;
    }

    /// <summary>The token each position predicts (the next one); the last position's target is a placeholder 0.</summary>
    public static int[] NextTokens(GptInput input)
    {
        int B = input.Batch, L = input.Length;
        var next = new int[B * L];
        for (int b = 0; b < B; b++)
            for (int t = 0; t + 1 < L; t++) next[b * L + t] = input.Tokens[b * L + t + 1];
        return next;
    }

    /// <summary>The rows <paramref name="idx"/> of <paramref name="input"/>.</summary>
    public static GptInput Rows(GptInput input, int[] idx)
    {
        int L = input.Length;
        var tokens = new int[idx.Length * L];
        var mask = new byte[idx.Length * L];
        for (int i = 0; i < idx.Length; i++)
        {
            input.Tokens.AsSpan(idx[i] * L, L).CopyTo(tokens.AsSpan(i * L));
            input.AttentionMask!.AsSpan(idx[i] * L, L).CopyTo(mask.AsSpan(i * L));
        }
        return new GptInput(idx.Length, L, tokens, mask);
    }

    /// <summary>The rows <paramref name="idx"/> of a [B, width] array.</summary>
    public static float[] Gather(float[] source, int[] idx, int width)
    {
        var result = new float[idx.Length * width];
        for (int i = 0; i < idx.Length; i++) source.AsSpan(idx[i] * width, width).CopyTo(result.AsSpan(i * width));
        return result;
    }

    internal static float[] Scale(float[] x, float s, bool inPlace = false)
    {
        var y = inPlace ? x : new float[x.Length];
        System.Numerics.Tensors.TensorPrimitives.Multiply(x, s, y);
        return y;
    }
}
