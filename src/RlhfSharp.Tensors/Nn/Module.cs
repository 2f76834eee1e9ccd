// Base class for layers: named parameters and sub-modules, so a whole model enumerates its parameters
// with dotted names (`h.0.attn.c_attn.weight`, as GPT-2 checkpoints name them) and loads or saves state by name.
namespace RlhfSharp.Tensors.Nn;

public abstract class Module
{
    private readonly List<KeyValuePair<string, Tensor>> _parameters = [];
    private readonly List<KeyValuePair<string, Module>> _children = [];

    /// <summary>False after <see cref="Eval"/>: layers such as dropout then pass values through unchanged.</summary>
    public bool Training { get; private set; } = true;

    /// <summary>Registers a trainable tensor under <paramref name="name"/> (sets RequiresGrad and its Name).</summary>
    protected Tensor RegisterParameter(string name, Tensor value)
    {
        CheckName(name);
        value.RequiresGrad = true;
        value.Name = name;
        _parameters.Add(new(name, value));
        return value;
    }

    /// <summary>Registers a child whose parameters appear as <c>name.childParameter</c>.</summary>
    protected T RegisterModule<T>(string name, T module) where T : Module
    {
        CheckName(name);
        _children.Add(new(name, module));
        return module;
    }

    /// <summary>Every parameter with its full dotted name, depth-first in registration order.</summary>
    public IReadOnlyList<KeyValuePair<string, Tensor>> NamedParameters()
    {
        var result = new List<KeyValuePair<string, Tensor>>();
        var stack = new Stack<(string Prefix, Module Module)>();
        stack.Push(("", this));
        while (stack.Count > 0)
        {
            var (prefix, m) = stack.Pop();
            foreach (var (name, t) in m._parameters) result.Add(new(prefix + name, t));
            for (int i = m._children.Count - 1; i >= 0; i--)
                stack.Push((prefix + m._children[i].Key + ".", m._children[i].Value));
        }
        return result;
    }

    /// <summary>The parameters in <see cref="NamedParameters"/> order.</summary>
    public IReadOnlyList<Tensor> Parameters() => NamedParameters().Select(p => p.Value).ToList();

    /// <summary>Total number of parameter values (a tensor registered twice, as in weight tying, counts once).</summary>
    public long ParameterCount()
    {
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        long n = 0;
        foreach (var (_, t) in NamedParameters()) if (seen.Add(t)) n += t.Length;
        return n;
    }

    /// <summary>Name → live parameter tensor (not copies: writing into them changes the model).</summary>
    public Dictionary<string, Tensor> StateDict()
    {
        var d = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, t) in NamedParameters()) d[name] = t;
        return d;
    }

    /// <summary>
    /// Copies values from <paramref name="state"/> into the parameters with the same names. With
    /// <paramref name="strict"/>, a missing or unexpected name throws; a shape mismatch always throws.
    /// </summary>
    public void LoadState(IReadOnlyDictionary<string, Tensor> state, bool strict = true)
    {
        var own = StateDict();
        if (strict)
        {
            var missing = own.Keys.Where(k => !state.ContainsKey(k)).ToList();
            var unexpected = state.Keys.Where(k => !own.ContainsKey(k)).ToList();
            if (missing.Count > 0 || unexpected.Count > 0)
                throw new ArgumentException($"LoadState: missing [{string.Join(", ", missing)}], unexpected [{string.Join(", ", unexpected)}].");
        }
        foreach (var (name, target) in own)
        {
            if (!state.TryGetValue(name, out var source)) continue;
            if (!source.Shape.SequenceEqual(target.Shape))
                throw new ArgumentException($"LoadState: '{name}' has shape {source.ShapeString} in the state but {target.ShapeString} in the model.");
            source.Span.CopyTo(target.Span);
        }
    }

    /// <summary>Training mode (the default) for this module and every child.</summary>
    public void Train() => SetTraining(true);

    /// <summary>Evaluation mode for this module and every child.</summary>
    public void Eval() => SetTraining(false);

    private void SetTraining(bool on)
    {
        var stack = new Stack<Module>();
        stack.Push(this);
        while (stack.Count > 0)
        {
            var m = stack.Pop();
            m.Training = on;
            foreach (var (_, c) in m._children) stack.Push(c);
        }
    }

    private void CheckName(string name)
    {
        if (string.IsNullOrEmpty(name) || name.Contains('.'))
            throw new ArgumentException($"Module: name '{name}' must be non-empty and contain no '.' (dots join nested names).");
        if (_parameters.Any(p => p.Key == name) || _children.Any(c => c.Key == name))
            throw new ArgumentException($"Module: name '{name}' is already registered in {GetType().Name}.");
    }
}
