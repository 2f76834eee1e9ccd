// The engine's one data type: a float32, contiguous, row-major tensor that may be a view into a larger
// buffer (parameters live in one flat ParameterSet buffer) and that records how it was computed for autograd.
namespace RlhfSharp.Tensors;

public sealed class Tensor
{
    private float[] _data;
    private int _offset;
    private readonly int[] _shape;

    // Autograd bookkeeping: set only on tensors produced by an op while gradients are enabled.
    internal Tensor[]? Parents;
    internal Action<Tensor>? BackwardFn;

    private Tensor(float[] data, int offset, int[] shape)
    {
        long n = ElementCount(shape, "Tensor");
        if (offset < 0 || offset + n > data.Length)
            throw new ArgumentException($"Tensor: view [{offset}, {offset + n}) does not fit in a buffer of {data.Length} floats.");
        _data = data;
        _offset = offset;
        _shape = shape;
        Length = (int)n;
    }

    /// <summary>The sizes of each axis; a scalar has rank 0.</summary>
    public ReadOnlySpan<int> Shape => _shape;

    /// <summary>Number of axes.</summary>
    public int Rank => _shape.Length;

    /// <summary>Number of elements (the product of the shape).</summary>
    public int Length { get; }

    /// <summary>The backing buffer; the elements are Data[Offset .. Offset+Length).</summary>
    public float[] Data => _data;

    public int Offset => _offset;

    /// <summary>The elements, row-major.</summary>
    public Span<float> Span => new(_data, _offset, Length);

    /// <summary>The accumulated gradient (same shape), or null before any backward reached this tensor.</summary>
    public Tensor? Grad
    {
        get => _grad;
        set
        {
            if (value is not null && value.Length != Length)
                throw new ArgumentException($"Grad: a gradient of shape {value.ShapeString} does not fit tensor {ShapeString}.");
            _grad = value;
        }
    }

    private Tensor? _grad;

    /// <summary>True when gradients flow to this tensor. Set it on leaves (parameters, inputs you differentiate).</summary>
    public bool RequiresGrad { get; set; }

    /// <summary>Keep this non-leaf tensor's gradient after backward (by default intermediate gradients are freed).</summary>
    public bool RetainGrad { get; set; }

    /// <summary>The op that produced this tensor ("matmul", "layer_norm"...), or null for a leaf; a parameter's name for parameters.</summary>
    public string? Name { get; set; }

    /// <summary>True when this tensor was produced by an op that recorded a backward step.</summary>
    public bool IsLeaf => BackwardFn is null;

    /// <summary>Size of one axis; negative axes count from the end.</summary>
    public int Dim(int axis) => _shape[NormalizeAxis(axis, Rank, "Dim")];

    public string ShapeString => FormatShape(_shape);

    public override string ToString() => $"Tensor{ShapeString}{(Name is null ? "" : " " + Name)}";

    // ---- factories ----

    public static Tensor Zeros(params ReadOnlySpan<int> shape) => new(new float[ElementCount(shape, "Zeros")], 0, shape.ToArray());

    /// <summary>A tensor whose values are garbage until written: for ops that overwrite every element (skips zeroing).</summary>
    internal static Tensor Uninitialized(params ReadOnlySpan<int> shape) =>
        new(GC.AllocateUninitializedArray<float>((int)ElementCount(shape, "Uninitialized")), 0, shape.ToArray());

    public static Tensor Ones(params ReadOnlySpan<int> shape) => Full(1f, shape);

    public static Tensor Full(float value, params ReadOnlySpan<int> shape)
    {
        var t = Zeros(shape);
        t.Span.Fill(value);
        return t;
    }

    /// <summary>A rank-0 tensor holding one value.</summary>
    public static Tensor Scalar(float value) => new([value], 0, []);

    /// <summary>A tensor over a copy of <paramref name="values"/>.</summary>
    public static Tensor FromArray(ReadOnlySpan<float> values, params ReadOnlySpan<int> shape)
    {
        long n = ElementCount(shape, "FromArray");
        if (n != values.Length)
            throw new ArgumentException($"FromArray: {values.Length} values do not fill shape {FormatShape(shape)} ({n} elements).");
        return new(values.ToArray(), 0, shape.ToArray());
    }

    /// <summary>A tensor that uses <paramref name="data"/> as its storage without copying.</summary>
    public static Tensor Wrap(float[] data, params ReadOnlySpan<int> shape) => new(data, 0, shape.ToArray());

    /// <summary>A view of <paramref name="data"/>[offset..] with the given shape (no copy).</summary>
    public static Tensor View(float[] data, int offset, params ReadOnlySpan<int> shape) => new(data, offset, shape.ToArray());

    /// <summary>Independent standard-normal entries times <paramref name="std"/>.</summary>
    public static Tensor Randn(Rng rng, float std, params ReadOnlySpan<int> shape)
    {
        var t = Zeros(shape);
        var s = t.Span;
        for (int i = 0; i < s.Length; i++) s[i] = (float)(rng.Normal() * std);
        return t;
    }

    /// <summary>Independent uniform entries in [low, high).</summary>
    public static Tensor Rand(Rng rng, float low, float high, params ReadOnlySpan<int> shape)
    {
        var t = Zeros(shape);
        var s = t.Span;
        for (int i = 0; i < s.Length; i++) s[i] = (float)rng.Uniform(low, high);
        return t;
    }

    // ---- values ----

    /// <summary>The single value of a one-element tensor.</summary>
    public float Item()
    {
        if (Length != 1) throw new InvalidOperationException($"Item: tensor has shape {ShapeString} ({Length} elements), not one element.");
        return _data[_offset];
    }

    public float[] ToArray() => Span.ToArray();

    public int[] ShapeArray() => (int[])_shape.Clone();

    /// <summary>Element at a multi-index (slow; for tests and inspection).</summary>
    [System.Runtime.CompilerServices.IndexerName("At")]
    public float this[params ReadOnlySpan<int> index]
    {
        get => _data[_offset + FlatIndex(index)];
        set => _data[_offset + FlatIndex(index)] = value;
    }

    /// <summary>A tensor sharing this one's values but cut off from the graph (no gradient flows through it).</summary>
    public Tensor Detach() => new(_data, _offset, _shape);

    /// <summary>A deep copy of the values (no graph, no gradient).</summary>
    public Tensor Clone() => new(Span.ToArray(), 0, (int[])_shape.Clone());

    /// <summary>Same values viewed with a new shape (one axis may be -1 = inferred). Differentiable; no copy.</summary>
    public Tensor Reshape(params ReadOnlySpan<int> shape) => Ops.Reshape(this, shape);

    /// <summary>Runs backpropagation from this one-element tensor (seed 1).</summary>
    public void Backward(bool retainGraph = false) => Autograd.Backward(this, null, retainGraph);

    /// <summary>Runs backpropagation from this tensor with an explicit seed gradient of the same shape.</summary>
    public void Backward(Tensor seed, bool retainGraph = false) => Autograd.Backward(this, seed, retainGraph);

    /// <summary>Sets the gradient to zero (keeps the buffer, so flat-buffer views stay valid).</summary>
    public void ZeroGrad() => Grad?.Span.Clear();

    // ---- operators ----

    public static Tensor operator +(Tensor a, Tensor b) => Ops.Add(a, b);
    public static Tensor operator -(Tensor a, Tensor b) => Ops.Sub(a, b);
    public static Tensor operator *(Tensor a, Tensor b) => Ops.Mul(a, b);
    public static Tensor operator /(Tensor a, Tensor b) => Ops.Div(a, b);
    public static Tensor operator -(Tensor a) => Ops.Neg(a);
    public static Tensor operator +(Tensor a, float s) => Ops.AddScalar(a, s);
    public static Tensor operator +(float s, Tensor a) => Ops.AddScalar(a, s);
    public static Tensor operator -(Tensor a, float s) => Ops.AddScalar(a, -s);
    public static Tensor operator -(float s, Tensor a) => Ops.AddScalar(Ops.Neg(a), s);
    public static Tensor operator *(Tensor a, float s) => Ops.MulScalar(a, s);
    public static Tensor operator *(float s, Tensor a) => Ops.MulScalar(a, s);
    public static Tensor operator /(Tensor a, float s) => Ops.MulScalar(a, 1f / s);
    public static Tensor operator /(float s, Tensor a) => Ops.Div(Scalar(s), a);

    // ---- internals ----

    /// <summary>Points this tensor at new storage (used by ParameterSet to gather parameters into one buffer).</summary>
    internal void Rebind(float[] data, int offset)
    {
        if (offset < 0 || offset + Length > data.Length)
            throw new ArgumentException($"Rebind: view [{offset}, {offset + Length}) does not fit in {data.Length} floats.");
        _data = data;
        _offset = offset;
    }

    /// <summary>The gradient buffer to add into, created as zeros on first use.</summary>
    internal Span<float> GradForAccumulate()
    {
        Grad ??= new Tensor(new float[Length], 0, _shape);
        return Grad.Span;
    }

    internal int[] ShapeRef => _shape;

    private int FlatIndex(ReadOnlySpan<int> index)
    {
        if (index.Length != Rank) throw new ArgumentException($"Index of rank {index.Length} into tensor of shape {ShapeString}.");
        int flat = 0;
        for (int i = 0; i < index.Length; i++)
        {
            if ((uint)index[i] >= (uint)_shape[i])
                throw new IndexOutOfRangeException($"Index {index[i]} on axis {i} is outside shape {ShapeString}.");
            flat = flat * _shape[i] + index[i];
        }
        return flat;
    }

    internal static long ElementCount(ReadOnlySpan<int> shape, string op)
    {
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"{op}: negative size in shape {FormatShape(shape)}.");
            n *= d;
        }
        if (n > Array.MaxLength) throw new ArgumentException($"{op}: shape {FormatShape(shape)} has {n} elements, more than one array can hold.");
        return n;
    }

    internal static int NormalizeAxis(int axis, int rank, string op)
    {
        int a = axis < 0 ? axis + rank : axis;
        if (a < 0 || a >= rank) throw new ArgumentOutOfRangeException(nameof(axis), axis, $"{op}: axis {axis} is out of range for rank {rank}.");
        return a;
    }

    public static string FormatShape(ReadOnlySpan<int> shape)
    {
        var parts = new string[shape.Length];
        for (int i = 0; i < shape.Length; i++) parts[i] = shape[i].ToString(System.Globalization.CultureInfo.InvariantCulture);
        return "[" + string.Join(",", parts) + "]";
    }
}
