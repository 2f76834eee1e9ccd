// Reductions with their backward: sum and mean (all elements, or along one axis), masked mean, max along an
// axis. Axis reductions view the input as [outer, n, inner] where n is the reduced axis.
using System.Numerics.Tensors;
using RlhfSharp.Tensors.Kernels;

namespace RlhfSharp.Tensors;

public static partial class Ops
{
    /// <summary>Σ of all elements, as a rank-0 tensor.</summary>
    public static Tensor Sum(Tensor x)
    {
        var y = Tensor.Scalar(Reduce.Sum(x.Span));
        return Autograd.Record("sum", y, [x], o =>
        {
            var dx = x.GradForAccumulate();
            TensorPrimitives.Add(dx, o.Grad!.Span[0], dx);
        });
    }

    /// <summary>Mean of all elements, as a rank-0 tensor.</summary>
    public static Tensor Mean(Tensor x)
    {
        if (x.Length == 0) throw new ArgumentException($"mean: tensor {x.ShapeString} is empty.");
        float inv = 1f / x.Length;
        var y = Tensor.Scalar(Reduce.Sum(x.Span) * inv);
        return Autograd.Record("mean", y, [x], o =>
        {
            var dx = x.GradForAccumulate();
            TensorPrimitives.Add(dx, o.Grad!.Span[0] * inv, dx);
        });
    }

    /// <summary>Σ along <paramref name="axis"/>; the axis is removed unless <paramref name="keepDim"/>.</summary>
    public static Tensor Sum(Tensor x, int axis, bool keepDim = false) => SumAxis("sum_axis", x, axis, keepDim, 1f);

    /// <summary>Mean along <paramref name="axis"/>; the axis is removed unless <paramref name="keepDim"/>.</summary>
    public static Tensor Mean(Tensor x, int axis, bool keepDim = false)
    {
        int n = x.Dim(axis);
        if (n == 0) throw new ArgumentException($"mean: axis {axis} of {x.ShapeString} is empty.");
        return SumAxis("mean_axis", x, axis, keepDim, 1f / n);
    }

    private static Tensor SumAxis(string op, Tensor x, int axis, bool keepDim, float scale)
    {
        var (outer, n, inner, shape) = SplitAxis(op, x, axis, keepDim);
        var y = Tensor.Zeros(shape);
        var xs = x.Span;
        var ys = y.Span;
        for (int o = 0; o < outer; o++)
        {
            if (inner == 1)
            {
                ys[o] = Reduce.Sum(xs.Slice(o * n, n)) * scale;
                continue;
            }
            var dst = ys.Slice(o * inner, inner);
            for (int j = 0; j < n; j++) TensorPrimitives.Add(dst, xs.Slice((o * n + j) * inner, inner), dst);
            if (scale != 1f) TensorPrimitives.Multiply(dst, scale, dst);
        }
        return Autograd.Record(op, y, [x], t =>
        {
            var g = t.Grad!.Span;
            var dx = x.GradForAccumulate();
            for (int o = 0; o < outer; o++)
            {
                var go = g.Slice(o * inner, inner);
                for (int j = 0; j < n; j++)
                {
                    var d = dx.Slice((o * n + j) * inner, inner);
                    TensorPrimitives.MultiplyAdd(go, scale, d, d);
                }
            }
        });
    }

    /// <summary>Σ(x·mask) / Σ mask over all elements; the mask (same shape, usually 0/1) is a constant. 0 when the mask is all zero.</summary>
    public static Tensor MaskedMean(Tensor x, Tensor mask)
    {
        RequireSameShape("masked_mean", x, mask);
        float count = Reduce.Sum(mask.Span);
        float inv = count != 0f ? 1f / count : 0f;
        var y = Tensor.Scalar(Reduce.Dot(x.Span, mask.Span) * inv);
        return Autograd.Record("masked_mean", y, [x], o =>
        {
            var dx = x.GradForAccumulate();
            TensorPrimitives.MultiplyAdd(mask.Span, o.Grad!.Span[0] * inv, dx, dx);
        });
    }

    /// <summary>Largest value along <paramref name="axis"/>; the gradient goes to the first maximal element.</summary>
    public static Tensor Max(Tensor x, int axis, bool keepDim = false)
    {
        var (outer, n, inner, shape) = SplitAxis("max_axis", x, axis, keepDim);
        if (n == 0) throw new ArgumentException($"max: axis {axis} of {x.ShapeString} is empty.");
        var y = Tensor.Zeros(shape);
        var arg = new int[y.Length];
        var xs = x.Span;
        var ys = y.Span;
        for (int o = 0; o < outer; o++)
        {
            for (int i = 0; i < inner; i++)
            {
                int best = 0;
                float bv = xs[o * n * inner + i];
                for (int j = 1; j < n; j++)
                {
                    float v = xs[(o * n + j) * inner + i];
                    if (v > bv) (bv, best) = (v, j);
                }
                ys[o * inner + i] = bv;
                arg[o * inner + i] = best;
            }
        }
        return Autograd.Record("max_axis", y, [x], t =>
        {
            var g = t.Grad!.Span;
            var dx = x.GradForAccumulate();
            for (int o = 0; o < outer; o++)
                for (int i = 0; i < inner; i++)
                    dx[(o * n + arg[o * inner + i]) * inner + i] += g[o * inner + i];
        });
    }

    /// <summary>Index of the largest value along the last axis, one per row (no gradient).</summary>
    public static int[] ArgMax(Tensor x)
    {
        if (x.Rank == 0) throw new ArgumentException("argmax: needs at least one axis.");
        int n = x.Dim(-1);
        int rows = n == 0 ? 0 : x.Length / n;
        var result = new int[rows];
        var xs = x.Span;
        for (int r = 0; r < rows; r++) result[r] = TensorPrimitives.IndexOfMax(xs.Slice(r * n, n));
        return result;
    }

    private static (int Outer, int N, int Inner, int[] Shape) SplitAxis(string op, Tensor x, int axis, bool keepDim)
    {
        var s = x.Shape;
        int a = Tensor.NormalizeAxis(axis, x.Rank, op);
        int outer = 1, inner = 1;
        for (int i = 0; i < a; i++) outer *= s[i];
        for (int i = a + 1; i < s.Length; i++) inner *= s[i];
        var shape = new List<int>(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            if (i != a) shape.Add(s[i]);
            else if (keepDim) shape.Add(1);
        }
        return (outer, s[a], inner, shape.ToArray());
    }
}
