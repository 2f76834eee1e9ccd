// Causal scaled-dot-product attention ops (forward and backward fused per head in Kernels.Attention).
// Masking rule: query t attends key s iff s ≤ t and keyMask[b, s] ≠ 0 (1 = real token, 0 = padding);
// a query with nothing to attend (a left-padding position) outputs zeros, never NaN.
using RlhfSharp.Tensors.Kernels;

namespace RlhfSharp.Tensors;

public static unsafe partial class Ops
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
        var lse = new float[d.B * d.NH * d.T];
        fixed (float* pq = q.Span, pk = k.Span, pv = v.Span, po = y.Span, pl = lse)
        fixed (float* pm = keyMask is null ? default : keyMask.Span)
            Attention.Forward(d, pq, pk, pv, layout, layout, layout, po, layout, pm, pl);
        return Autograd.Record("causal_attention", y, [q, k, v], o =>
        {
            fixed (float* pq = q.Span, pk = k.Span, pv = v.Span, pg = o.Grad!.Span, pl = lse)
            fixed (float* pm = keyMask is null ? default : keyMask.Span)
            fixed (float* dq = q.RequiresGrad ? q.GradForAccumulate() : default)
            fixed (float* dk = k.RequiresGrad ? k.GradForAccumulate() : default)
            fixed (float* dv = v.RequiresGrad ? v.GradForAccumulate() : default)
                Attention.Backward(d, pq, pk, pv, layout, layout, layout, pg, layout, pm, pl, dq, dk, dv);
        });
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
        var lse = new float[B * heads * T];
        fixed (float* p = qkv.Span, po = y.Span, pl = lse)
        fixed (float* pm = keyMask is null ? default : keyMask.Span)
            Attention.Forward(d, p, p, p, qL, kL, vL, po, oL, pm, pl);
        return Autograd.Record("causal_attention", y, [qkv], o =>
        {
            fixed (float* p = qkv.Span, pg = o.Grad!.Span, pl = lse, dp = qkv.GradForAccumulate())
            fixed (float* pm = keyMask is null ? default : keyMask.Span)
                Attention.Backward(d, p, p, p, qL, kL, vL, pg, oL, pm, pl, dp, dp, dp);
        });
    }

    private static void CheckKeyMask(Tensor? keyMask, Attention.Dims d)
    {
        if (keyMask is not null && (keyMask.Rank != 2 || keyMask.Shape[0] != d.B || keyMask.Shape[1] != d.T))
            throw new ArgumentException($"causal_attention: keyMask {keyMask.ShapeString} should be [{d.B},{d.T}].");
    }
}
