// The same GPT forward written with the engine's differentiable ops, so RLHF losses built from Objectives (token
// log-probs, KL, PPO clip, value loss, Bradley–Terry) backpropagate into the trunk with one loss.Backward().
// It reads the live parameter tensors, and gradients land in the same flat buffer as the fused path's (Gpt.cs).
// No dropout here: RLHF fine-tuning runs with dropout off so that log-probs of the same text agree across passes.
// Shapes: B batch, T time, C channels, V vocabulary.
using RlhfSharp.Models.Checkpoints;
using RlhfSharp.Tensors;

namespace RlhfSharp.Models;

/// <summary>Outputs of <see cref="Gpt.ForwardGraph"/>: tensors on the autograd tape (null where not computed).</summary>
/// <param name="Hidden">Final hidden states after ln_f, [B, T, C].</param>
/// <param name="Logits">LM logits [B, T, V].</param>
/// <param name="Values">Value head [B, T].</param>
/// <param name="Rewards">Reward head at each row's last real token, [B].</param>
public sealed record GptTensors(Tensor Hidden, Tensor? Logits, Tensor? Values, Tensor? Rewards);

public sealed partial class Gpt
{
    /// <summary>Forward through engine ops (autograd-recorded unless under Autograd.NoGrad); see the file header.</summary>
    public GptTensors ForwardGraph(GptInput input, bool logits = true)
    {
        ValidateTokens(input);
        int B = input.Batch, T = input.Length, C = Config.NEmbd;
        var positions = PositionIds(input);
        var lastReal = LastRealIndices(input);
        Tensor? keyMask = null;
        if (input.AttentionMask is { } m)
        {
            var maskValues = new float[m.Length];
            for (int i = 0; i < m.Length; i++) maskValues[i] = m[i];
            keyMask = RlhfSharp.Tensors.Tensor.Wrap(maskValues, B, T);
        }
        Tensor P(string name) => ParameterTensor(name);

        // x (B,T,C) = wte[tokens] + wpe[positions]
        var x = Ops.Add(Ops.Embedding(P("wte.weight"), input.Tokens, B, T), Ops.Embedding(P("wpe.weight"), positions, B, T));
        for (int l = 0; l < Config.NLayer; l++)
        {
            string pre = $"h.{l}.";
            var h = Ops.LayerNorm(x, P(pre + "ln_1.weight"), P(pre + "ln_1.bias"), Config.LayerNormEpsilon);
            var qkv = GraphLinear(h, l, LoraTarget.CAttn);                                                     // (B,T,3C), Conv1D [in,out]
            var y = Ops.CausalAttention(qkv, Config.NHead, keyMask);                                           // (B,T,C), heads merged
            x = Ops.Add(x, GraphLinear(y, l, LoraTarget.AttnCProj));
            h = Ops.LayerNorm(x, P(pre + "ln_2.weight"), P(pre + "ln_2.bias"), Config.LayerNormEpsilon);
            var fc = Ops.Gelu(GraphLinear(h, l, LoraTarget.CFc));                                              // (B,T,4C)
            x = Ops.Add(x, GraphLinear(fc, l, LoraTarget.MlpCProj));
        }
        var hidden = Ops.LayerNorm(x, P("ln_f.weight"), P("ln_f.bias"), Config.LayerNormEpsilon);

        // Tied LM head: logits (B,T,V) = hidden · wteᵀ.
        var lm = logits ? Ops.MatMul(hidden, P("wte.weight"), transB: true) : null;
        Tensor? values = null, rewards = null;
        if (Heads.HasFlag(GptHeads.Value))
        {
            var v = Ops.MatMul(hidden, GraphHead(GptCheckpoint.ValueHeadWeight), transB: true);                        // (B,T,1)
            values = Ops.Add(Ops.Reshape(v, B, T), GraphHead(GptCheckpoint.ValueHeadBias));
        }
        if (Heads.HasFlag(GptHeads.Reward))
        {
            // Pick each row's last real position with a one-hot selector: (B,1,T)·(B,T,C) = (B,1,C); then · score.weightᵀ.
            var select = new float[B * T];
            for (int b = 0; b < B; b++) select[b * T + lastReal[b]] = 1f;
            var last = Ops.Reshape(Ops.MatMul(RlhfSharp.Tensors.Tensor.Wrap(select, B, 1, T), hidden), B, C);
            rewards = Ops.Reshape(Ops.MatMul(last, GraphHead(GptCheckpoint.RewardHeadWeight), transB: true), B);
        }
        return new GptTensors(hidden, lm, values, rewards);
    }
}
