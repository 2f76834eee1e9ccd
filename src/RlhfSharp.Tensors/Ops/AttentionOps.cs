// Causal scaled-dot-product attention ops (forward and backward fused per head in Kernels.Attention, the kernels the
// fused GPT runs too). Forward keeps the attention probabilities [B, NH, T, T] for backward.
// Masking rule: query t attends key s iff s ≤ t and keyMask[b, s] ≠ 0 (1 = real token, 0 = padding);
// a query with nothing to attend (a left-padding position) outputs zeros, never NaN.
using RlhfSharp.Tensors.Kernels;

namespace RlhfSharp.Tensors;

public static partial class Ops
{
    /// <summary>
    /// softmax(QKᵀ/√HS + causal and padding mask)·V. q, k, v: [B, NH, T, HS]; keyMask: [B, T] or null.
    /// Returns [B, NH, T, HS].
    /// </summary>
    public static Tensor CausalAttention(Tensor q, Tensor k, Tensor v, Tensor? keyMask = null)
    {
        if (q.Rank != 4) throw new ArgumentException($"causal_attention: q must be [B,NH,T,HS], got {q.ShapeString}.");
        RequireSameShape("causal_attention", q, k);
        RequireSameShape("causal_attention", q, v);
        var d = new Attention.Dims(q.Shape[0], q.Shape[1], q.Shape[2], q.Shape[3]);
        CheckKeyMask(keyMask, d);
        var layout = new AttentionLayout(0, d.NH * d.T * d.HS, d.T * d.HS, d.HS);
        var y = Tensor.Uninitialized(q.ShapeRef);
        var probs = new float[d.B * d.NH * d.T * d.T];
        Attention.Forward(d, q.Span, layout, k.Span, layout, v.Span, layout, y.Span, layout, MaskBytes(keyMask), probs);
        return Autograd.Record("causal_attention", y, [q, k, v], o =>
            Attention.Backward(d, q.Span, layout, k.Span, layout, v.Span, layout, o.Grad!.Span, layout, probs,
                q.RequiresGrad ? q.GradForAccumulate() : default,
                k.RequiresGrad ? k.GradForAccumulate() : default,
                v.RequiresGrad ? v.GradForAccumulate() : default));
    }

    /// <summary>
    /// The same attention on a fused projection, as GPT-2's c_attn produces it: qkv [B, T, 3C] holding
    /// q | k | v along the last axis, each split into NH heads of HS = C/NH. Returns [B, T, C] with the heads
    /// already merged (ready for c_proj), so no permute copies are needed. keyMask: [B, T] or null.
    /// </summary>
    public static Tensor CausalAttention(Tensor qkv, int heads, Tensor? keyMask = null)
    {
        if (qkv.Rank != 3 || qkv.Shape[2] % 3 != 0)
            throw new ArgumentException($"causal_attention: qkv must be [B,T,3C], got {qkv.ShapeString}.");
        int B = qkv.Shape[0], T = qkv.Shape[1], C = qkv.Shape[2] / 3;
        if (heads <= 0 || C % heads != 0)
            throw new ArgumentException($"causal_attention: C = {C} (from qkv {qkv.ShapeString}) is not divisible by {heads} heads.");
        var d = new Attention.Dims(B, heads, T, C / heads);
        CheckKeyMask(keyMask, d);
        var qL = new AttentionLayout(0, T * 3 * C, d.HS, 3 * C);
        var kL = qL with { Offset = C };
        var vL = qL with { Offset = 2 * C };
        var oL = new AttentionLayout(0, T * C, d.HS, C);
        var y = Tensor.Uninitialized(B, T, C);
        var probs = new float[B * heads * T * T];
        Attention.Forward(d, qkv.Span, qL, qkv.Span, kL, qkv.Span, vL, y.Span, oL, MaskBytes(keyMask), probs);
        return Autograd.Record("causal_attention", y, [qkv], o =>
        {
            var dqkv = qkv.GradForAccumulate();
            Attention.Backward(d, qkv.Span, qL, qkv.Span, kL, qkv.Span, vL, o.Grad!.Span, oL, probs, dqkv, dqkv, dqkv);
        });
    }

    // The kernels take the mask as bytes (GPT inputs carry it so): 0 stays 0, anything else is a real token.
    private static byte[]? MaskBytes(Tensor? keyMask)
    {
        if (keyMask is null) return null;
        var m = keyMask.Span;
        var bytes = new byte[m.Length];
        for (int i = 0; i < m.Length; i++) bytes[i] = m[i] == 0f ? (byte)0 : (byte)1;
        return bytes;
    }

    private static void CheckKeyMask(Tensor? keyMask, Attention.Dims d)
    {
        if (keyMask is not null && (keyMask.Rank != 2 || keyMask.Shape[0] != d.B || keyMask.Shape[1] != d.T))
            throw new ArgumentException($"causal_attention: keyMask {keyMask.ShapeString} should be [{d.B},{d.T}].");
    }
}
