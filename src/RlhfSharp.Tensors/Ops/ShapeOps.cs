// Shape ops with their backward: reshape (a view), permute/transpose (a copy), concat, narrow/slice,
// embedding lookup (scatter-add backward).
using System.Numerics.Tensors;

namespace RlhfSharp.Tensors;

public static partial class Ops
{
    /// <summary>Same elements, new shape (one axis may be -1). No copy: the result shares x's storage.</summary>
    public static Tensor Reshape(Tensor x, params ReadOnlySpan<int> shape)
    {
        var s = shape.ToArray();
        int infer = -1;
        long known = 1;
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] == -1)
            {
                if (infer >= 0) throw new ArgumentException($"reshape: more than one -1 in {Tensor.FormatShape(s)}.");
                infer = i;
            }
            else
            {
                known *= s[i];
            }
        }
        if (infer >= 0)
        {
            if (known == 0 || x.Length % known != 0)
                throw new ArgumentException($"reshape: cannot infer -1 in {Tensor.FormatShape(s)} from {x.ShapeString}.");
            s[infer] = (int)(x.Length / known);
            known *= s[infer];
        }
        if (known != x.Length)
            throw new ArgumentException($"reshape: {x.ShapeString} has {x.Length} elements but {Tensor.FormatShape(s)} needs {known}.");
        var y = Tensor.View(x.Data, x.Offset, s);
        return Autograd.Record("reshape", y, [x], o => Accumulate(x, o.Grad!.Span));
    }

    /// <summary>Swaps two axes (a copy). Transpose(x, -2, -1) turns [.., M, N] into [.., N, M].</summary>
    public static Tensor Transpose(Tensor x, int axis1, int axis2)
    {
        int r = x.Rank;
        var perm = new int[r];
        for (int i = 0; i < r; i++) perm[i] = i;
        int a = Tensor.NormalizeAxis(axis1, r, "transpose"), b = Tensor.NormalizeAxis(axis2, r, "transpose");
        (perm[a], perm[b]) = (perm[b], perm[a]);
        return Permute(x, perm);
    }

    /// <summary>Reorders axes: output axis i is input axis perm[i] (a copy), e.g. (B,T,NH,HS) → (B,NH,T,HS) with [0,2,1,3].</summary>
    public static Tensor Permute(Tensor x, params int[] perm)
    {
        int r = x.Rank;
        if (perm.Length != r) throw new ArgumentException($"permute: {perm.Length} axes given for {x.ShapeString}.");
        var seen = new bool[r];
        foreach (int p in perm)
        {
            if (p < 0 || p >= r || seen[p]) throw new ArgumentException($"permute: [{string.Join(",", perm)}] is not a permutation of {r} axes.");
            seen[p] = true;
        }
        var inShape = x.ShapeRef;
        var outShape = new int[r];
        for (int i = 0; i < r; i++) outShape[i] = inShape[perm[i]];
        var y = Tensor.Uninitialized(outShape);
        PermuteWalk(x.Span, inShape, perm, y.Span, scatterAdd: false);
        return Autograd.Record("permute", y, [x], o => PermuteWalk(x.GradForAccumulate(), inShape, perm, o.Grad!.Span, scatterAdd: true));
    }

    // Walks the output in row-major order. Gather: outBuf[o] = inBuf[i]. Scatter-add: inBuf[i] += outBuf[o].
    private static void PermuteWalk(Span<float> inBuf, int[] inShape, int[] perm, Span<float> outBuf, bool scatterAdd)
    {
        int r = inShape.Length;
        if (outBuf.Length == 0) return;
        var inStride = new int[r];
        int st = 1;
        for (int i = r - 1; i >= 0; i--)
        {
            inStride[i] = st;
            st *= inShape[i];
        }
        var dims = new int[r];
        var strides = new int[r];
        for (int i = 0; i < r; i++)
        {
            dims[i] = inShape[perm[i]];
            strides[i] = inStride[perm[i]];
        }
        // When the last axis stays last, whole rows are contiguous on both sides.
        bool rowCopy = r > 0 && perm[r - 1] == r - 1;
        int block = rowCopy ? dims[r - 1] : 1;
        int loopRank = rowCopy ? r - 1 : r;
        var idx = new int[r];
        int inOff = 0;
        for (int o = 0; o < outBuf.Length; o += block)
        {
            if (rowCopy)
            {
                var src = inBuf.Slice(inOff, block);
                var dst = outBuf.Slice(o, block);
                if (scatterAdd) TensorPrimitives.Add(src, dst, src);
                else src.CopyTo(dst);
            }
            else if (scatterAdd)
            {
                inBuf[inOff] += outBuf[o];
            }
            else
            {
                outBuf[o] = inBuf[inOff];
            }
            for (int d = loopRank - 1; d >= 0; d--)
            {
                idx[d]++;
                inOff += strides[d];
                if (idx[d] < dims[d]) break;
                inOff -= strides[d] * dims[d];
                idx[d] = 0;
            }
        }
    }

    /// <summary>Joins tensors along <paramref name="axis"/>; all other axes must agree.</summary>
    public static Tensor Concat(IReadOnlyList<Tensor> parts, int axis)
    {
        if (parts.Count == 0) throw new ArgumentException("concat: no tensors given.");
        var first = parts[0];
        int a = Tensor.NormalizeAxis(axis, first.Rank, "concat");
        int total = 0;
        foreach (var p in parts)
        {
            bool ok = p.Rank == first.Rank;
            for (int i = 0; ok && i < p.Rank; i++) ok = i == a || p.Shape[i] == first.Shape[i];
            if (!ok) throw new ArgumentException($"concat: shapes {first.ShapeString} and {p.ShapeString} differ outside axis {axis}.");
            total += p.Shape[a];
        }
        var shape = first.ShapeArray();
        shape[a] = total;
        int outer = 1, inner = 1;
        for (int i = 0; i < a; i++) outer *= shape[i];
        for (int i = a + 1; i < shape.Length; i++) inner *= shape[i];
        var y = Tensor.Uninitialized(shape);
        var ys = y.Span;
        int at = 0;
        foreach (var p in parts)
        {
            int w = p.Shape[a] * inner;
            var ps = p.Span;
            for (int o = 0; o < outer; o++) ps.Slice(o * w, w).CopyTo(ys.Slice(o * total * inner + at, w));
            at += w;
        }
        var inputs = parts.ToArray();
        return Autograd.Record("concat", y, inputs, t =>
        {
            var g = t.Grad!.Span;
            int pos = 0;
            foreach (var p in inputs)
            {
                int w = p.Shape[a] * inner;
                if (p.RequiresGrad)
                {
                    var dp = p.GradForAccumulate();
                    for (int o = 0; o < outer; o++)
                    {
                        var d = dp.Slice(o * w, w);
                        TensorPrimitives.Add(d, g.Slice(o * total * inner + pos, w), d);
                    }
                }
                pos += w;
            }
        });
    }

    /// <summary>Elements start..start+length-1 along <paramref name="axis"/> (a copy).</summary>
    public static Tensor Narrow(Tensor x, int axis, int start, int length)
    {
        int a = Tensor.NormalizeAxis(axis, x.Rank, "narrow");
        int n = x.Shape[a];
        if (start < 0 || length < 0 || start + length > n)
            throw new ArgumentOutOfRangeException(nameof(start), $"narrow: range [{start}, {start + length}) is outside axis {axis} of {x.ShapeString}.");
        var shape = x.ShapeArray();
        shape[a] = length;
        int outer = 1, inner = 1;
        for (int i = 0; i < a; i++) outer *= shape[i];
        for (int i = a + 1; i < shape.Length; i++) inner *= shape[i];
        var y = Tensor.Uninitialized(shape);
        var xs = x.Span;
        var ys = y.Span;
        int w = length * inner;
        for (int o = 0; o < outer; o++) xs.Slice((o * n + start) * inner, w).CopyTo(ys.Slice(o * w, w));
        return Autograd.Record("narrow", y, [x], t =>
        {
            var g = t.Grad!.Span;
            var dx = x.GradForAccumulate();
            for (int o = 0; o < outer; o++)
            {
                var d = dx.Slice((o * n + start) * inner, w);
                TensorPrimitives.Add(d, g.Slice(o * w, w), d);
            }
        });
    }

    /// <summary>Elements start..end-1 along <paramref name="axis"/> (a copy); same as Narrow(x, axis, start, end - start).</summary>
    public static Tensor Slice(Tensor x, int axis, int start, int end) => Narrow(x, axis, start, end - start);

    /// <summary>
    /// Embedding lookup: weight [V, C], ids (any shape S, values in [0, V)) → [S..., C].
    /// Backward scatter-adds each output row into its weight row (a token used twice gets both).
    /// </summary>
    public static Tensor Embedding(Tensor weight, ReadOnlySpan<int> ids, params ReadOnlySpan<int> idsShape)
    {
        if (weight.Rank != 2) throw new ArgumentException($"embedding: weight must be [V, C], got {weight.ShapeString}.");
        if (Tensor.ElementCount(idsShape, "embedding") != ids.Length)
            throw new ArgumentException($"embedding: {ids.Length} ids do not fill shape {Tensor.FormatShape(idsShape)}.");
        int V = weight.Shape[0], C = weight.Shape[1];
        var shape = new int[idsShape.Length + 1];
        idsShape.CopyTo(shape);
        shape[^1] = C;
        var y = Tensor.Uninitialized(shape);
        var w = weight.Span;
        var ys = y.Span;
        var idCopy = ids.ToArray();
        for (int i = 0; i < idCopy.Length; i++)
        {
            int id = idCopy[i];
            if ((uint)id >= (uint)V) throw new ArgumentOutOfRangeException(nameof(ids), $"embedding: id {id} at position {i} is outside the vocabulary [0, {V}).");
            w.Slice(id * C, C).CopyTo(ys.Slice(i * C, C));
        }
        return Autograd.Record("embedding", y, [weight], t =>
        {
            var g = t.Grad!.Span;
            var dw = weight.GradForAccumulate();
            for (int i = 0; i < idCopy.Length; i++)
            {
                var d = dw.Slice(idCopy[i] * C, C);
                TensorPrimitives.Add(d, g.Slice(i * C, C), d);
            }
        });
    }
}
