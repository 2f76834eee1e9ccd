// The GPT with a LoRA adapter attached (Lora.cs): the fused forward adds s·dropout(x)·Aᵀ·Bᵀ after each adapted Conv1D,
// backward sends gradients to A, B and the adapter's heads only (the base is frozen: no weight gradient is computed),
// and a view with the adapter off shares every base buffer, so PPO's frozen reference costs no memory.
// Shapes: N = B·T rows, in/out of the adapted layer, r the rank.
using RlhfSharp.Models.Checkpoints;
using RlhfSharp.Tensors;
using RlhfSharp.Tensors.Nn;

namespace RlhfSharp.Models;

public sealed partial class Gpt
{
    // A second handle on the same base buffers (names, parameter set) with its own adapter and flag: no copy.
    private Gpt(Gpt other, LoraAdapter? adapter, bool adapterOff, GptHeads heads)
    {
        Config = other.Config;
        Heads = heads;
        ParameterSet = other.ParameterSet;
        ParameterList = other.ParameterList;
        _byName = other._byName;
        _tensors = other._tensors;
        _bf16 = other._bf16;
        SourceDirectory = other.SourceDirectory;
        Adapter = adapter;
        AdapterOff = adapterOff;
    }

    /// <summary>The LoRA adapter of this handle, or null (full model). With one, the base weights are frozen.</summary>
    public LoraAdapter? Adapter { get; }

    /// <summary>The folder the base was loaded from (written as the adapter's base_model_name_or_path), or null.</summary>
    public string? SourceDirectory { get; private set; }

    /// <summary>Whether this handle computes the base alone (the adapter is ignored by every forward).</summary>
    public bool AdapterOff { get; }

    /// <summary>The adapter forward passes apply: null when none is attached or this is the adapter-off view.</summary>
    internal LoraAdapter? ActiveAdapter => AdapterOff ? null : Adapter;

    /// <summary>Base weights get no gradients: an adapter is attached.</summary>
    internal bool BaseFrozen => Adapter is not null;

    /// <summary>What an optimiser should train: the adapter's parameters when one is attached, else all of the model's.</summary>
    public ParameterSet TrainableParameters => Adapter?.ParameterSet ?? ParameterSet;

    /// <summary>
    /// This model's base with <paramref name="adapter"/> on it: a new handle sharing every base buffer (no copy); the base
    /// is frozen under it. Its heads are the adapter's when it carries any (a value head on a reward model's trunk), else the base's.
    /// </summary>
    public Gpt WithAdapter(LoraAdapter adapter)
    {
        ArgumentNullException.ThrowIfNull(adapter);
        if (adapter.ModelConfig.NEmbd != Config.NEmbd || adapter.ModelConfig.NLayer != Config.NLayer)
            throw new ArgumentException($"GPT: the adapter is for {adapter.ModelConfig.NLayer} layers × {adapter.ModelConfig.NEmbd} channels, the model has {Config.NLayer} × {Config.NEmbd}.");
        return new(this, adapter, adapterOff: false, adapter.Heads != GptHeads.None ? adapter.Heads : Heads);
    }

    /// <summary>
    /// The same model with the adapter off: a handle sharing every base buffer (no copy) whose forward skips the adapter.
    /// PPO's frozen reference is the policy with its adapter off.
    /// </summary>
    public Gpt WithAdapterOff() => new(this, Adapter, adapterOff: true, Adapter?.Heads is GptHeads h && h != GptHeads.None ? HeadsOfBase() : Heads);

    // The adapter-off view computes the heads the base itself carries.
    private GptHeads HeadsOfBase()
    {
        var heads = GptHeads.None;
        if (_byName.ContainsKey(GptCheckpoint.ValueHeadWeight)) heads |= GptHeads.Value;
        if (_byName.ContainsKey(GptCheckpoint.RewardHeadWeight)) heads |= GptHeads.Reward;
        return heads;
    }

    /// <summary>A plain model with the adapter merged into the weights (or a copy when none is attached).</summary>
    public Gpt Merged() => Adapter is null ? Clone() : AdapterOff ? BaseCopy(HeadsOfBase()) : Adapter.Merge(this);

    /// <summary>A plain copy of the base weights with <paramref name="heads"/>; heads the base lacks start at 0.</summary>
    internal Gpt BaseCopy(GptHeads heads)
    {
        var copy = new Gpt(Config, heads);
        foreach (var p in copy.ParameterList)
            if (_byName.ContainsKey(p.Name) || (_bf16?.ContainsKey(p.Name) ?? false))
                Param(p.Name).CopyTo(copy.Parameters.AsSpan(p.Offset, p.Length));   // a BF16 base's matrices come widened
        return copy;
    }

    // Head weights the forward reads: the adapter's trained copies when it carries them (PEFT's modules_to_save).
    private Span<float> HeadParam(string name) => ActiveAdapter?.Head(name) is { } t ? t.Span : Param(name);

    private Span<float> HeadGrad(string name) => ActiveAdapter?.Head(name) is { } t ? t.Grad!.Span
        : BaseFrozen ? throw new InvalidOperationException($"GPT backward: head {name} is frozen under the adapter (the adapter does not carry it), so it cannot take a gradient.")
        : Grad(name);

    // A base weight's gradient, or nothing when the base is frozen (the kernels then skip that product).
    private Span<float> BaseGrad(string name) => BaseFrozen ? default : Grad(name);

    private void LoraForward(GptPass a, int layer, LoraTarget target, float[] x, float[] y, int N, Rng? rng)
    {
        if (a.Lora is not { } state || state.Adapter.Module(layer, target) is not { } m) return;
        int slot = layer * LoraTargets.Count + (int)target;
        var u = state.U[slot] ??= new float[N * state.Adapter.Config.R];
        float[]? mask = null;
        float p = state.Adapter.Config.LoraDropout;
        if (p > 0 && rng is not null)
        {
            mask = state.Mask[slot] ??= new float[N * m.In];
            float keep = 1f / (1f - p);
            for (int i = 0; i < N * m.In; i++) mask[i] = rng.NextFloat() < p ? 0f : keep;
        }
        state.Dropout = mask is not null;
        state.Adapter.Forward(m, x.AsSpan(0, N * m.In), y.AsSpan(0, N * m.Out), N, u, mask);
    }

    private static void LoraBackward(GptPass a, int layer, LoraTarget target, float[] dy, float[] x, float[] dx, int N)
    {
        if (a.Lora is not { } state || state.Adapter.Module(layer, target) is not { } m) return;
        int slot = layer * LoraTargets.Count + (int)target;
        state.Adapter.Backward(m, dy.AsSpan(0, N * m.Out), x.AsSpan(0, N * m.In), dx.AsSpan(0, N * m.In), N, state.U[slot], state.Dropout ? state.Mask[slot] : null);
    }

    // KV-cached decoding: y (N, out) += s·x·Aᵀ·Bᵀ, no dropout, nothing kept.
    internal void LoraInference(int layer, LoraTarget target, float[] x, float[] y, int N)
    {
        if (ActiveAdapter is not { } adapter || adapter.Module(layer, target) is not { } m) return;
        adapter.Forward(m, x.AsSpan(0, N * m.In), y.AsSpan(0, N * m.Out), N, new float[N * adapter.Config.R], null);
    }

    // The differentiable graph's adapted linear: x·W + b + s·(x·Aᵀ)·Bᵀ.
    private Tensor GraphLinear(Tensor x, int layer, LoraTarget target)
    {
        string pre = $"h.{layer}.{LoraTargets.Path(target)}";
        var y = Ops.Add(Ops.MatMul(x, ParameterTensor(pre + ".weight")), ParameterTensor(pre + ".bias"));
        if (ActiveAdapter is not { } adapter || adapter.Module(layer, target) is not { } m) return y;
        var low = Ops.MatMul(Ops.MatMul(x, m.A, transB: true), m.B, transB: true);
        return Ops.Add(y, Ops.MulScalar(low, adapter.Scaling));
    }

    private Tensor GraphHead(string name) => ActiveAdapter?.Head(name) ?? ParameterTensor(name);
}
