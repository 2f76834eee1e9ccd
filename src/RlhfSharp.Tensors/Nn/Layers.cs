// Standard layers on top of the ops: Linear, Embedding, LayerNorm, and an MLP of Linear layers.
namespace RlhfSharp.Tensors.Nn;

/// <summary>A list of child modules named 0, 1, 2, … (parameters appear as <c>0.weight</c>, <c>1.weight</c>…).</summary>
public sealed class ModuleList<T> : Module where T : Module
{
    private readonly List<T> _items = [];

    public ModuleList(IEnumerable<T> items)
    {
        foreach (var m in items) Add(m);
    }

    public void Add(T module)
    {
        RegisterModule(_items.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), module);
        _items.Add(module);
    }

    public int Count => _items.Count;

    public T this[int index] => _items[index];

    public IReadOnlyList<T> Items => _items;
}

/// <summary>y = x·Wᵀ + b with weight [out, in] and bias [out] (torch.nn.Linear layout and default init).</summary>
public sealed class Linear : Module
{
    public Tensor Weight { get; }
    public Tensor? Bias { get; }

    /// <summary>Weight and bias drawn from U(−1/√in, 1/√in), PyTorch's nn.Linear default.</summary>
    public Linear(int inFeatures, int outFeatures, Rng rng, bool bias = true)
    {
        if (inFeatures <= 0 || outFeatures <= 0)
            throw new ArgumentException($"Linear: sizes must be positive (in {inFeatures}, out {outFeatures}).");
        float bound = 1f / MathF.Sqrt(inFeatures);
        Weight = RegisterParameter("weight", Tensor.Rand(rng, -bound, bound, outFeatures, inFeatures));
        if (bias) Bias = RegisterParameter("bias", Tensor.Rand(rng, -bound, bound, outFeatures));
    }

    public int InFeatures => Weight.Shape[1];
    public int OutFeatures => Weight.Shape[0];

    /// <summary>x [..., in] → [..., out].</summary>
    public Tensor Forward(Tensor x) => Ops.Linear(x, Weight, Bias);
}

/// <summary>A lookup table weight [count, dim]: ids → rows.</summary>
public sealed class Embedding : Module
{
    public Tensor Weight { get; }

    /// <summary>Rows drawn from N(0, std²) (PyTorch uses std 1; GPT-2 uses 0.02).</summary>
    public Embedding(int count, int dim, Rng rng, float std = 1f)
    {
        if (count <= 0 || dim <= 0) throw new ArgumentException($"Embedding: sizes must be positive (count {count}, dim {dim}).");
        Weight = RegisterParameter("weight", Tensor.Randn(rng, std, count, dim));
    }

    /// <summary>ids of shape S → [S..., dim].</summary>
    public Tensor Forward(ReadOnlySpan<int> ids, ReadOnlySpan<int> idsShape) => Ops.Embedding(Weight, ids, idsShape);
}

/// <summary>Layer norm over the last axis with a learned scale ("weight", ones) and shift ("bias", zeros).</summary>
public sealed class LayerNorm : Module
{
    public Tensor Weight { get; }
    public Tensor Bias { get; }
    public float Eps { get; }

    public LayerNorm(int dim, float eps = 1e-5f)
    {
        Weight = RegisterParameter("weight", Tensor.Ones(dim));
        Bias = RegisterParameter("bias", Tensor.Zeros(dim));
        Eps = eps;
    }

    public Tensor Forward(Tensor x) => Ops.LayerNorm(x, Weight, Bias, Eps);
}

/// <summary>
/// A stack of Linear layers named layers.0, layers.1, … with an activation between them (and after the
/// last one only if <c>activateLast</c>). sizes = [in, hidden..., out].
/// </summary>
public sealed class Mlp : Module
{
    private readonly ModuleList<Linear> _layers;
    private readonly Activation _activation;
    private readonly bool _activateLast;

    public Mlp(IReadOnlyList<int> sizes, Activation activation, Rng rng, bool activateLast = false)
    {
        if (sizes.Count < 2) throw new ArgumentException($"Mlp: needs at least [in, out] sizes, got {sizes.Count}.");
        _layers = RegisterModule("layers", new ModuleList<Linear>(
            Enumerable.Range(0, sizes.Count - 1).Select(i => new Linear(sizes[i], sizes[i + 1], rng)).ToList()));
        _activation = activation;
        _activateLast = activateLast;
    }

    public IReadOnlyList<Linear> Layers => _layers.Items;

    /// <summary>The nonlinearity between layers.</summary>
    public Activation Activation => _activation;

    /// <summary>Whether the last layer's output is activated too.</summary>
    public bool ActivateLast => _activateLast;

    public Tensor Forward(Tensor x)
    {
        for (int i = 0; i < _layers.Count; i++)
        {
            x = _layers[i].Forward(x);
            if (i < _layers.Count - 1 || _activateLast) x = Ops.Activate(x, _activation);
        }
        return x;
    }
}

/// <summary>RMS norm over the last axis with a learned scale ("weight", ones).</summary>
public sealed class RmsNorm : Module
{
    public Tensor Weight { get; }
    public float Eps { get; }

    public RmsNorm(int dim, float eps = 1e-6f)
    {
        Weight = RegisterParameter("weight", Tensor.Ones(dim));
        Eps = eps;
    }

    public Tensor Forward(Tensor x) => Ops.RmsNorm(x, Weight, Eps);
}

/// <summary>Inverted dropout, active only in training mode; owns a forked Rng so its masks are reproducible.</summary>
public sealed class Dropout : Module
{
    private readonly Rng _rng;

    public Dropout(float p, Rng rng)
    {
        if (!(p >= 0f && p < 1f)) throw new ArgumentOutOfRangeException(nameof(p), p, "Dropout: probability must be in [0, 1).");
        P = p;
        _rng = rng.Fork();
    }

    public float P { get; }

    public Tensor Forward(Tensor x) => Ops.Dropout(x, P, _rng, Training);
}
