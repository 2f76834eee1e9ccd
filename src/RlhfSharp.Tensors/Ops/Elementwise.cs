// Elementwise ops with their backward beside each forward: binary arithmetic with broadcasting of a
// trailing-axes operand (a bias [C] against [B,T,C]) or of a one-element operand, and unary functions.
using System.Numerics.Tensors;
using RlhfSharp.Tensors.Kernels;

namespace RlhfSharp.Tensors;

/// <summary>Nonlinearities, for layers that take one as a setting (e.g. Nn.Mlp).</summary>
public enum Activation
{
    Identity,
    Tanh,
    Relu,
    Gelu,
    Silu,
}

public static partial class Ops
{
    /// <summary>Applies the named nonlinearity (Identity returns x itself).</summary>
    public static Tensor Activate(Tensor x, Activation activation) => activation switch
    {
        Activation.Identity => x,
        Activation.Tanh => Tanh(x),
        Activation.Relu => Relu(x),
        Activation.Gelu => Gelu(x),
        Activation.Silu => Silu(x),
        _ => throw new ArgumentOutOfRangeException(nameof(activation), activation, "Activate: unknown activation."),
    };

    private enum BinaryKind { Add, Sub, Mul, Div }

    // How two operands line up: the larger one's shape is the output; the smaller one repeats every `Inner` elements.
    private readonly record struct Broadcast(int[] Shape, int Inner, bool ASmall, bool BSmall);

    private static Broadcast ResolveBroadcast(string op, Tensor a, Tensor b)
    {
        if (a.Shape.SequenceEqual(b.Shape) || (a.Length == b.Length && a.Length == 1))
            return new(a.ShapeRef, a.Length, false, false);
        if (b.Length == 1) return new(a.ShapeRef, 1, false, true);
        if (a.Length == 1) return new(b.ShapeRef, 1, true, false);
        if (IsTrailingSuffix(b.Shape, a.Shape)) return new(a.ShapeRef, b.Length, false, true);
        if (IsTrailingSuffix(a.Shape, b.Shape)) return new(b.ShapeRef, a.Length, true, false);
        throw new ArgumentException($"{op}: shapes {a.ShapeString} and {b.ShapeString} do not broadcast (the smaller operand must equal the trailing axes of the larger, or have one element).");
    }

    // small (leading 1s ignored) equals the last axes of big.
    private static bool IsTrailingSuffix(ReadOnlySpan<int> small, ReadOnlySpan<int> big)
    {
        int lead = 0;
        while (lead < small.Length && small[lead] == 1) lead++;
        var core = small[lead..];
        return core.Length <= big.Length && core.SequenceEqual(big[(big.Length - core.Length)..]);
    }

    public static Tensor Add(Tensor a, Tensor b) => Binary("add", BinaryKind.Add, a, b);
    public static Tensor Sub(Tensor a, Tensor b) => Binary("sub", BinaryKind.Sub, a, b);
    public static Tensor Mul(Tensor a, Tensor b) => Binary("mul", BinaryKind.Mul, a, b);
    public static Tensor Div(Tensor a, Tensor b) => Binary("div", BinaryKind.Div, a, b);

    private static Tensor Binary(string op, BinaryKind kind, Tensor a, Tensor b)
    {
        var bc = ResolveBroadcast(op, a, b);
        var y = Tensor.Uninitialized(bc.Shape);
        ApplyChunked(kind, a.Span, b.Span, y.Span, bc);
        return Autograd.Record(op, y, [a, b], o =>
        {
            var g = o.Grad!.Span;
            switch (kind)
            {
                case BinaryKind.Add:
                    if (a.RequiresGrad) AccumulateBroadcast(a, g);
                    if (b.RequiresGrad) AccumulateBroadcast(b, g);
                    break;
                case BinaryKind.Sub:
                    if (a.RequiresGrad) AccumulateBroadcast(a, g);
                    if (b.RequiresGrad)
                    {
                        var t = new float[g.Length];
                        TensorPrimitives.Negate(g, t);
                        AccumulateBroadcast(b, t);
                    }
                    break;
                case BinaryKind.Mul:
                    // d(a·b)/da = b, d(a·b)/db = a
                    if (a.RequiresGrad)
                    {
                        var t = new float[g.Length];
                        Apply(BinaryKind.Mul, g, b.Span, t, new(bc.Shape, bc.Inner, false, bc.BSmall));
                        AccumulateBroadcast(a, t);
                    }
                    if (b.RequiresGrad)
                    {
                        var t = new float[g.Length];
                        Apply(BinaryKind.Mul, g, a.Span, t, new(bc.Shape, bc.Inner, false, bc.ASmall));
                        AccumulateBroadcast(b, t);
                    }
                    break;
                case BinaryKind.Div:
                    // d(a/b)/da = 1/b, d(a/b)/db = −a/b² = −y/b
                    var gOverB = new float[g.Length];
                    Apply(BinaryKind.Div, g, b.Span, gOverB, new(bc.Shape, bc.Inner, false, bc.BSmall));
                    if (a.RequiresGrad) AccumulateBroadcast(a, gOverB);
                    if (b.RequiresGrad)
                    {
                        var ys = y.Span;
                        TensorPrimitives.Multiply(gOverB, ys, gOverB);
                        TensorPrimitives.Negate(gOverB, gOverB);
                        AccumulateBroadcast(b, gOverB);
                    }
                    break;
            }
        });
    }

    // Elementwise work on large tensors is split over Parallelism.Threads in fixed chunks of whole broadcast
    // rows; every element's value is independent of the split.
    private const int ParallelElements = 1 << 16;

    private static unsafe void ApplyChunked(BinaryKind kind, ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> dst, Broadcast bc)
    {
        int n = dst.Length;
        if (n < 2 * ParallelElements || Parallelism.Threads == 1)
        {
            Apply(kind, x, y, dst, bc);
            return;
        }
        int unit = bc.ASmall || bc.BSmall ? bc.Inner : 1;
        fixed (float* px = x, py = y, pd = dst)
        {
            float* cx = px, cy = py, cd = pd;
            int xl = x.Length, yl = y.Length;
            Kernels.ParallelChunks.For(n / unit, (s, e) =>
            {
                int o = s * unit, len = (e - s) * unit;
                var xs = bc.ASmall ? new ReadOnlySpan<float>(cx, xl) : new ReadOnlySpan<float>(cx + o, len);
                var ys = bc.BSmall ? new ReadOnlySpan<float>(cy, yl) : new ReadOnlySpan<float>(cy + o, len);
                Apply(kind, xs, ys, new Span<float>(cd + o, len), bc);
            }, minPerChunk: Math.Max(1, ParallelElements / unit));
        }
    }

    /// <summary>A span-to-span elementwise kernel (source, destination).</summary>
    internal delegate void SpanMap(ReadOnlySpan<float> source, Span<float> destination);

    /// <summary>map(x[i..j], y[i..j]) over fixed chunks of a large tensor (in one call for a small one).</summary>
    internal static unsafe void MapChunked(ReadOnlySpan<float> x, Span<float> y, SpanMap map)
    {
        int n = x.Length;
        if (n < 2 * ParallelElements || Parallelism.Threads == 1)
        {
            map(x, y);
            return;
        }
        fixed (float* px = x, py = y)
        {
            float* cx = px, cy = py;
            Kernels.ParallelChunks.For(n, (s, e) => map(new ReadOnlySpan<float>(cx + s, e - s), new Span<float>(cy + s, e - s)), minPerChunk: ParallelElements);
        }
    }

    // dst = x ∘ y with the broadcast layout bc (dst has the full shape).
    private static void Apply(BinaryKind kind, ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> dst, Broadcast bc)
    {
        int inner = bc.Inner;
        if (!bc.ASmall && !bc.BSmall)
        {
            ApplySame(kind, x, y, dst);
        }
        else if (inner == 1)
        {
            if (bc.BSmall)
            {
                float s = y[0];
                switch (kind)
                {
                    case BinaryKind.Add: TensorPrimitives.Add(x, s, dst); break;
                    case BinaryKind.Sub: TensorPrimitives.Subtract(x, s, dst); break;
                    case BinaryKind.Mul: TensorPrimitives.Multiply(x, s, dst); break;
                    case BinaryKind.Div: TensorPrimitives.Divide(x, s, dst); break;
                }
            }
            else
            {
                float s = x[0];
                switch (kind)
                {
                    case BinaryKind.Add: TensorPrimitives.Add(y, s, dst); break;
                    case BinaryKind.Sub: TensorPrimitives.Subtract(s, y, dst); break;
                    case BinaryKind.Mul: TensorPrimitives.Multiply(y, s, dst); break;
                    case BinaryKind.Div: TensorPrimitives.Divide(s, y, dst); break;
                }
            }
        }
        else
        {
            for (int r = 0; r < dst.Length; r += inner)
            {
                var xr = bc.ASmall ? x : x.Slice(r, inner);
                var yr = bc.BSmall ? y : y.Slice(r, inner);
                ApplySame(kind, xr, yr, dst.Slice(r, inner));
            }
        }
    }

    private static void ApplySame(BinaryKind kind, ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> dst)
    {
        switch (kind)
        {
            case BinaryKind.Add: TensorPrimitives.Add(x, y, dst); break;
            case BinaryKind.Sub: TensorPrimitives.Subtract(x, y, dst); break;
            case BinaryKind.Mul: TensorPrimitives.Multiply(x, y, dst); break;
            case BinaryKind.Div: TensorPrimitives.Divide(x, y, dst); break;
        }
    }

    /// <summary>target.grad += full, summed over the repeats when target was broadcast (fixed row order).</summary>
    private static void AccumulateBroadcast(Tensor target, ReadOnlySpan<float> full)
    {
        if (target.Length == full.Length)
        {
            Accumulate(target, full);
            return;
        }
        var dst = target.GradForAccumulate();
        int inner = dst.Length;
        if (inner == 1)
        {
            dst[0] += Reduce.Sum(full);
        }
        else
        {
            for (int r = 0; r < full.Length; r += inner) TensorPrimitives.Add(dst, full.Slice(r, inner), dst);
        }
    }

    /// <summary>target.grad += g (same length).</summary>
    internal static void Accumulate(Tensor target, ReadOnlySpan<float> g)
    {
        if (target.Grad is null)
        {
            target.Grad = Tensor.FromArray(g, target.ShapeRef); // first contribution: one copy instead of zero-fill then add
            return;
        }
        MapChunked(g, target.Grad.Span, static (src, d) => TensorPrimitives.Add(d, src, d));
    }

    public static Tensor AddScalar(Tensor x, float s)
    {
        var y = Tensor.Uninitialized(x.ShapeRef);
        TensorPrimitives.Add(x.Span, s, y.Span);
        return Autograd.Record("add_scalar", y, [x], o => Accumulate(x, o.Grad!.Span));
    }

    public static Tensor MulScalar(Tensor x, float s)
    {
        var y = Tensor.Uninitialized(x.ShapeRef);
        TensorPrimitives.Multiply(x.Span, s, y.Span);
        return Autograd.Record("mul_scalar", y, [x], o =>
        {
            var dx = x.GradForAccumulate();
            TensorPrimitives.MultiplyAdd(o.Grad!.Span, s, dx, dx);
        });
    }

    public static Tensor Neg(Tensor x) => MulScalar(x, -1f).Named("neg");

    // ---- unary functions: y = f(x), dx += g · f'(x) ----

    public static Tensor Exp(Tensor x)
    {
        var y = Tensor.Uninitialized(x.ShapeRef);
        MapChunked(x.Span, y.Span, static (a, b) => TensorPrimitives.Exp(a, b));
        return Autograd.Record("exp", y, [x], o =>
        {
            var dx = x.GradForAccumulate();
            TensorPrimitives.MultiplyAdd(o.Grad!.Span, y.Span, dx, dx); // (eˣ)' = eˣ = y
        });
    }

    public static Tensor Log(Tensor x)
    {
        var y = Tensor.Uninitialized(x.ShapeRef);
        TensorPrimitives.Log(x.Span, y.Span);
        return Autograd.Record("log", y, [x], o =>
        {
            var dx = x.GradForAccumulate();
            var t = GC.AllocateUninitializedArray<float>(dx.Length);
            TensorPrimitives.Divide(o.Grad!.Span, x.Span, t); // (ln x)' = 1/x
            TensorPrimitives.Add(dx, t, dx);
        });
    }

    public static Tensor Sqrt(Tensor x)
    {
        var y = Tensor.Uninitialized(x.ShapeRef);
        TensorPrimitives.Sqrt(x.Span, y.Span);
        return Autograd.Record("sqrt", y, [x], o =>
        {
            var dx = x.GradForAccumulate();
            var t = GC.AllocateUninitializedArray<float>(dx.Length);
            TensorPrimitives.Divide(o.Grad!.Span, y.Span, t); // (√x)' = 1/(2√x)
            TensorPrimitives.MultiplyAdd(t, 0.5f, dx, dx);
        });
    }

    public static Tensor Square(Tensor x)
    {
        var y = Tensor.Uninitialized(x.ShapeRef);
        TensorPrimitives.Multiply(x.Span, x.Span, y.Span);
        return Autograd.Record("square", y, [x], o =>
        {
            var dx = x.GradForAccumulate();
            var t = GC.AllocateUninitializedArray<float>(dx.Length);
            TensorPrimitives.Multiply(o.Grad!.Span, x.Span, t); // (x²)' = 2x
            TensorPrimitives.MultiplyAdd(t, 2f, dx, dx);
        });
    }

    public static Tensor Tanh(Tensor x)
    {
        var y = Tensor.Uninitialized(x.ShapeRef);
        MapChunked(x.Span, y.Span, static (a, b) => TensorPrimitives.Tanh(a, b));
        return Autograd.Record("tanh", y, [x], o =>
        {
            var dx = x.GradForAccumulate();
            var t = new float[y.Length];
            TensorPrimitives.Multiply(y.Span, y.Span, t);
            TensorPrimitives.Subtract(1f, t, t);                 // tanh' = 1 − tanh²
            TensorPrimitives.MultiplyAdd(o.Grad!.Span, t, dx, dx);
        });
    }

    public static Tensor Sigmoid(Tensor x)
    {
        var y = Tensor.Uninitialized(x.ShapeRef);
        MapChunked(x.Span, y.Span, static (a, b) => TensorPrimitives.Sigmoid(a, b));
        return Autograd.Record("sigmoid", y, [x], o =>
        {
            var dx = x.GradForAccumulate();
            var t = new float[y.Length];
            TensorPrimitives.Subtract(1f, y.Span, t);
            TensorPrimitives.Multiply(t, y.Span, t);            // σ' = σ(1−σ)
            TensorPrimitives.MultiplyAdd(o.Grad!.Span, t, dx, dx);
        });
    }

    /// <summary>log σ(x) computed as min(x,0) − log(1 + e^(−|x|)), finite for any finite x.</summary>
    public static Tensor LogSigmoid(Tensor x)
    {
        var y = Tensor.Uninitialized(x.ShapeRef);
        var xs = x.Span;
        var ys = y.Span;
        for (int i = 0; i < xs.Length; i++)
        {
            float v = xs[i];
            ys[i] = MathF.Min(v, 0f) - MathF.Log(1f + MathF.Exp(-MathF.Abs(v)));
        }
        return Autograd.Record("log_sigmoid", y, [x], o =>
        {
            var dx = x.GradForAccumulate();
            var g = o.Grad!.Span;
            var xv = x.Span;
            for (int i = 0; i < dx.Length; i++) dx[i] += g[i] * StableSigmoid(-xv[i]); // (log σ(x))' = σ(−x)
        });
    }

    private static float StableSigmoid(float v)
    {
        if (v >= 0) return 1f / (1f + MathF.Exp(-v));
        float e = MathF.Exp(v);
        return e / (1f + e);
    }

    public static Tensor Relu(Tensor x)
    {
        var y = Tensor.Uninitialized(x.ShapeRef);
        TensorPrimitives.Max(x.Span, 0f, y.Span);
        return Autograd.Record("relu", y, [x], o => Activations.ReluBackward(x.Span, o.Grad!.Span, x.GradForAccumulate()));
    }

    /// <summary>GELU, tanh approximation as in GPT-2 (Hendrycks &amp; Gimpel 2016).</summary>
    public static Tensor Gelu(Tensor x)
    {
        var y = Tensor.Uninitialized(x.ShapeRef);
        Activations.GeluForward(x.Span, y.Span);
        return Autograd.Record("gelu", y, [x], o => Activations.GeluBackward(x.Span, o.Grad!.Span, x.GradForAccumulate()));
    }

    /// <summary>SiLU (swish): x·σ(x).</summary>
    public static Tensor Silu(Tensor x)
    {
        var y = Tensor.Uninitialized(x.ShapeRef);
        var sig = new float[x.Length];
        TensorPrimitives.Sigmoid(x.Span, sig);
        TensorPrimitives.Multiply(x.Span, sig, y.Span);
        return Autograd.Record("silu", y, [x], o =>
        {
            var dx = x.GradForAccumulate();
            var g = o.Grad!.Span;
            var xs = x.Span;
            for (int i = 0; i < dx.Length; i++) dx[i] += g[i] * sig[i] * (1f + xs[i] * (1f - sig[i]));
        });
    }

    /// <summary>min(max(x, low), high); the gradient passes only where low &lt; x &lt; high.</summary>
    public static Tensor Clamp(Tensor x, float low, float high)
    {
        if (!(low <= high)) throw new ArgumentException($"clamp: low {low} is above high {high}.");
        var y = Tensor.Uninitialized(x.ShapeRef);
        TensorPrimitives.Clamp(x.Span, low, high, y.Span);
        return Autograd.Record("clamp", y, [x], o =>
        {
            var dx = x.GradForAccumulate();
            var g = o.Grad!.Span;
            var xs = x.Span;
            for (int i = 0; i < dx.Length; i++) if (xs[i] > low && xs[i] < high) dx[i] += g[i];
        });
    }

    /// <summary>Elementwise minimum of two same-shape tensors; ties send the gradient to <paramref name="a"/>.</summary>
    public static Tensor Minimum(Tensor a, Tensor b) => Select("minimum", a, b, takeMin: true);

    /// <summary>Elementwise maximum of two same-shape tensors; ties send the gradient to <paramref name="a"/>.</summary>
    public static Tensor Maximum(Tensor a, Tensor b) => Select("maximum", a, b, takeMin: false);

    private static Tensor Select(string op, Tensor a, Tensor b, bool takeMin)
    {
        RequireSameShape(op, a, b);
        var fromA = new bool[a.Length];
        var y = Tensor.Uninitialized(a.ShapeRef);
        Span<float> av = a.Span, bv = b.Span, ys = y.Span;
        for (int i = 0; i < ys.Length; i++)
        {
            bool pickA = takeMin ? av[i] <= bv[i] : av[i] >= bv[i];
            fromA[i] = pickA;
            ys[i] = pickA ? av[i] : bv[i];
        }
        return Autograd.Record(op, y, [a, b], o => RouteGradient(o.Grad!.Span, fromA, a, b));
    }

    /// <summary>mask[i] ≠ 0 ? a[i] : b[i]. The mask is a constant (no gradient); all three share one shape.</summary>
    public static Tensor Where(Tensor mask, Tensor a, Tensor b)
    {
        RequireSameShape("where", mask, a);
        RequireSameShape("where", a, b);
        var fromA = new bool[a.Length];
        var y = Tensor.Uninitialized(a.ShapeRef);
        Span<float> m = mask.Span, av = a.Span, bv = b.Span, ys = y.Span;
        for (int i = 0; i < ys.Length; i++)
        {
            fromA[i] = m[i] != 0f;
            ys[i] = fromA[i] ? av[i] : bv[i];
        }
        return Autograd.Record("where", y, [a, b], o => RouteGradient(o.Grad!.Span, fromA, a, b));
    }

    private static void RouteGradient(ReadOnlySpan<float> g, bool[] fromA, Tensor a, Tensor b)
    {
        if (a.RequiresGrad)
        {
            var da = a.GradForAccumulate();
            for (int i = 0; i < g.Length; i++) if (fromA[i]) da[i] += g[i];
        }
        if (b.RequiresGrad)
        {
            var db = b.GradForAccumulate();
            for (int i = 0; i < g.Length; i++) if (!fromA[i]) db[i] += g[i];
        }
    }

    internal static void RequireSameShape(string op, Tensor a, Tensor b)
    {
        if (!a.Shape.SequenceEqual(b.Shape))
            throw new ArgumentException($"{op}: shapes {a.ShapeString} and {b.ShapeString} must be equal.");
    }

    private static Tensor Named(this Tensor t, string name)
    {
        t.Name = name;
        return t;
    }
}
