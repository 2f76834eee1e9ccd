// LoRA (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models") for the GPT's Conv1D layers, laid out as
// Hugging Face PEFT lays it out, so PEFT loads what we save and we load what PEFT saves:
//   y = x·W + b + s · dropout(x)·Aᵀ·Bᵀ,     s = lora_alpha / r
// with W [in, out] frozen (GPT-2's Conv1D, hence fan_in_fan_out = true), A = lora_A.weight [r, in] and
// B = lora_B.weight [out, r] trained (nn.Linear layouts). A starts as PEFT's kaiming_uniform_(a=√5), i.e. U(±1/√in),
// and B at 0, so a fresh adapter leaves the model's outputs unchanged. Merging adds s·(B·A)ᵀ to W.
// Heads a task trains in full (the reward model's score, the value head) are kept as the adapter's own copies, as
// PEFT's modules_to_save does, and saved beside the adapter weights.
// Files: adapter_config.json (peft_type LORA, r, lora_alpha, lora_dropout, target_modules, …) and
// adapter_model.safetensors, keys "base_model.model.transformer.h.{l}.{module}.lora_{A,B}.weight" and
// "base_model.model.score.weight". Shapes: N rows, in/out the layer's widths, r the rank.
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using RlhfSharp.Models.Checkpoints;
using RlhfSharp.Tensors;
using RlhfSharp.Tensors.Kernels;
using RlhfSharp.Tensors.Nn;

namespace RlhfSharp.Models;

/// <summary>LoRA settings of a trainer (PEFT's LoraConfig names in config.json); R = 0 means full fine-tuning.</summary>
public sealed record LoraConfig
{
    [ConfigOption("LoRA rank r; 0 trains every weight (no adapter).", Name = "--lora-r", Min = 0)]
    [JsonPropertyName("r")]
    public int R { get; init; }

    [ConfigOption("LoRA alpha: the low-rank update is scaled by alpha / r.", Min = 0, MinExclusive = true)]
    public float LoraAlpha { get; init; } = 16f;

    [ConfigOption("Dropout on the adapter's input on passes that run with dropout (SFT); RLHF passes run without.", Min = 0, Max = 1, MaxExclusive = true)]
    public float LoraDropout { get; init; } = 0.05f;

    [ConfigOption("Layers that get an adapter, among c_attn, c_proj (attention's), c_fc, mlp.c_proj, separated by commas.", Name = "--lora-target-modules")]
    public string TargetModules { get; init; } = "c_attn";

    [JsonIgnore]
    public bool Enabled => R > 0;

    /// <summary>The targets as modules, in block order; throws on an unknown name.</summary>
    public IReadOnlyList<LoraTarget> Targets()
    {
        var set = new SortedSet<LoraTarget>();
        foreach (string item in TargetModules.Split([',', ' '], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            set.Add(LoraTargets.Parse(item));
        if (set.Count == 0) throw new ArgumentException("lora: target_modules is empty; name at least one of c_attn, c_proj, c_fc, mlp.c_proj.");
        return [.. set];
    }

    public void Validate()
    {
        if (!Enabled) return;
        if (LoraAlpha <= 0 || !float.IsFinite(LoraAlpha)) throw new ArgumentException($"lora: lora_alpha {LoraAlpha} must be positive.");
        if (LoraDropout is < 0 or >= 1) throw new ArgumentException($"lora: lora_dropout {LoraDropout} must lie in [0, 1).");
        _ = Targets();
    }
}

/// <summary>A GPT-2 layer LoRA can adapt, in the order a block computes them.</summary>
public enum LoraTarget
{
    /// <summary>attn.c_attn, C → 3C.</summary>
    CAttn,
    /// <summary>attn.c_proj, C → C.</summary>
    AttnCProj,
    /// <summary>mlp.c_fc, C → 4C.</summary>
    CFc,
    /// <summary>mlp.c_proj, 4C → C.</summary>
    MlpCProj,
}

public static class LoraTargets
{
    public const int Count = 4;

    /// <summary>The module's path inside a block (h.{l}.…), as in GPT-2's checkpoint keys.</summary>
    public static string Path(LoraTarget t) => t switch
    {
        LoraTarget.CAttn => "attn.c_attn",
        LoraTarget.AttnCProj => "attn.c_proj",
        LoraTarget.CFc => "mlp.c_fc",
        _ => "mlp.c_proj",
    };

    /// <summary>The name written to target_modules: unambiguous under PEFT's suffix match ("c_proj" alone would also match mlp.c_proj).</summary>
    public static string PeftName(LoraTarget t) => t switch
    {
        LoraTarget.CAttn => "c_attn",
        LoraTarget.AttnCProj => "attn.c_proj",
        LoraTarget.CFc => "c_fc",
        _ => "mlp.c_proj",
    };

    /// <summary>c_attn, c_proj or attn.c_proj (attention's), c_fc or mlp.c_fc, mlp.c_proj.</summary>
    public static LoraTarget Parse(string name) => name switch
    {
        "c_attn" or "attn.c_attn" => LoraTarget.CAttn,
        "c_proj" or "attn.c_proj" => LoraTarget.AttnCProj,
        "c_fc" or "mlp.c_fc" => LoraTarget.CFc,
        "mlp.c_proj" => LoraTarget.MlpCProj,
        _ => throw new ArgumentException($"lora: unknown target module '{name}'; use c_attn, c_proj (attention), c_fc or mlp.c_proj."),
    };

    public static (int In, int Out) Dims(LoraTarget t, int C) => t switch
    {
        LoraTarget.CAttn => (C, 3 * C),
        LoraTarget.AttnCProj => (C, C),
        LoraTarget.CFc => (C, 4 * C),
        _ => (4 * C, C),
    };
}

/// <summary>One adapted layer: A [r, in] and B [out, r], live views of the adapter's parameter buffer.</summary>
public sealed record LoraModule(int Layer, LoraTarget Target, int In, int Out, Tensor A, Tensor B)
{
    /// <summary>Our key for it without the lora_A/lora_B part: h.{l}.attn.c_attn.</summary>
    public string Prefix => $"h.{Layer}.{LoraTargets.Path(Target)}";
}

/// <summary>The adapter tensors of one GPT (see the file header): the only parameters a LoRA run trains.</summary>
public sealed class LoraAdapter
{
    public const string ConfigFileName = "adapter_config.json";
    public const string WeightsFileName = "adapter_model.safetensors";
    private const string PeftPrefix = "base_model.model.";

    private readonly LoraModule?[] _modules;
    private readonly Dictionary<string, Tensor> _heads;

    private LoraAdapter(GptConfig model, LoraConfig config, GptHeads heads, IReadOnlyList<LoraTarget> targets, IReadOnlyList<int> layers)
    {
        config.Validate();
        if (!config.Enabled) throw new ArgumentException("lora: r must be positive to build an adapter.");
        Config = config;
        ModelConfig = model;
        Heads = heads;
        Scaling = config.LoraAlpha / config.R;
        int r = config.R, C = model.NEmbd;
        var named = new List<KeyValuePair<string, Tensor>>();
        var pending = new List<(int Layer, LoraTarget Target, int In, int Out, Tensor A, Tensor B)>();
        foreach (int l in layers)
        {
            foreach (var t in targets)
            {
                var (din, dout) = LoraTargets.Dims(t, C);
                var a = Tensor.Zeros(r, din);
                var b = Tensor.Zeros(dout, r);
                string prefix = $"h.{l}.{LoraTargets.Path(t)}";
                named.Add(new(prefix + ".lora_A.weight", a));
                named.Add(new(prefix + ".lora_B.weight", b));
                pending.Add((l, t, din, dout, a, b));
            }
        }
        foreach (var (name, shape) in GptCheckpoint.HeadTensors(model))
        {
            bool wanted = (name == GptCheckpoint.RewardHeadWeight && heads.HasFlag(GptHeads.Reward))
                || (name.StartsWith("v_head", StringComparison.Ordinal) && heads.HasFlag(GptHeads.Value));
            if (wanted) named.Add(new(name, Tensor.Zeros(shape)));
        }
        // ParameterSet rebinds each tensor to a view of its flat buffers, so AdamW and clipping see only the adapter.
        ParameterSet = new ParameterSet(named);
        _modules = new LoraModule?[model.NLayer * LoraTargets.Count];
        foreach (var p in pending) _modules[p.Layer * LoraTargets.Count + (int)p.Target] = new LoraModule(p.Layer, p.Target, p.In, p.Out, p.A, p.B);
        _heads = named.Skip(pending.Count * 2).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal);
        Targets = [.. targets];
    }

    public LoraConfig Config { get; }
    public GptConfig ModelConfig { get; }

    /// <summary>Heads trained in full and kept by the adapter (PEFT's modules_to_save).</summary>
    public GptHeads Heads { get; }

    /// <summary>s = lora_alpha / r.</summary>
    public float Scaling { get; }

    public IReadOnlyList<LoraTarget> Targets { get; }

    /// <summary>Adapter weights and head copies, flat values and gradients: hand it to AdamW.</summary>
    public ParameterSet ParameterSet { get; }

    public IEnumerable<LoraModule> Modules => _modules.OfType<LoraModule>();

    /// <summary>The adapted layer (layer, target), or null when that layer has no adapter.</summary>
    public LoraModule? Module(int layer, LoraTarget target) => _modules[layer * LoraTargets.Count + (int)target];

    /// <summary>The adapter's copy of a head tensor (score.weight, v_head.summary.*), or null.</summary>
    public Tensor? Head(string name) => _heads.GetValueOrDefault(name);

    /// <summary>
    /// A fresh adapter for <paramref name="model"/>: A ~ U(±1/√in) from <paramref name="rng"/> (PEFT's kaiming_uniform_ with a=√5),
    /// B = 0; the model's heads are copied in, to train in full.
    /// </summary>
    /// <remarks>
    /// <paramref name="heads"/> (default: the model's) are the heads the adapter trains; one the model lacks (a value head on a
    /// reward model's trunk) starts as a fresh head would: weight N(0, initializer_range) from <paramref name="rng"/>, bias 0.
    /// </remarks>
    public static LoraAdapter Create(Gpt model, LoraConfig config, Rng rng, GptHeads? heads = null)
    {
        var adapter = new LoraAdapter(model.Config, config, heads ?? model.Heads, config.Targets(), Enumerable.Range(0, model.Config.NLayer).ToList());
        foreach (var m in adapter.Modules)
        {
            double bound = 1 / Math.Sqrt(m.In);
            var a = m.A.Span;
            for (int i = 0; i < a.Length; i++) a[i] = (float)rng.Uniform(-bound, bound);
        }
        foreach (var (name, t) in adapter._heads)
        {
            if (model.ParameterList.Any(p => p.Name == name)) model.Param(name).CopyTo(t.Span);
            else if (t.Shape.Length >= 2)
                for (int i = 0; i < t.Length; i++) t.Span[i] = (float)(rng.Normal() * model.Config.InitializerRange);
        }
        return adapter;
    }

    /// <summary>Copies <paramref name="other"/>'s values (a checkpoint's) into this adapter; the shapes must agree.</summary>
    public void CopyFrom(LoraAdapter other)
    {
        if (other.ParameterSet.Slots.Count != ParameterSet.Slots.Count || other.Config.R != Config.R
            || !other.ParameterSet.Slots.Select(s => s.Name).SequenceEqual(ParameterSet.Slots.Select(s => s.Name)))
            throw new InvalidOperationException($"lora: the saved adapter (r = {other.Config.R}, {other.ParameterSet.Slots.Count} tensors) differs from this one (r = {Config.R}, {ParameterSet.Slots.Count}); resume with the same settings.");
        other.ParameterSet.Values.CopyTo(ParameterSet.Values, 0);
    }

    /// <summary>An independent copy (same shape and values).</summary>
    public LoraAdapter Clone()
    {
        var copy = new LoraAdapter(ModelConfig, Config, Heads, Targets, Modules.Select(m => m.Layer).Distinct().ToList());
        ParameterSet.Values.CopyTo(copy.ParameterSet.Values, 0);
        return copy;
    }

    /// <summary>PEFT's key for our adapter or head tensor name.</summary>
    public static string PeftKey(string name) => PeftPrefix + (name.StartsWith("h.", StringComparison.Ordinal) ? "transformer." + name : name);

    /// <summary>Writes adapter_config.json and adapter_model.safetensors (PEFT's format) into <paramref name="directory"/>.</summary>
    public void Save(string directory, string? baseModel = null)
    {
        Directory.CreateDirectory(directory);
        var tensors = ParameterSet.Slots.ToDictionary(s => PeftKey(s.Name), s => new StoredTensor(s.Value.Shape.ToArray(), s.Value.Span.ToArray()), StringComparer.Ordinal);
        Safetensors.Write(System.IO.Path.Combine(directory, WeightsFileName), tensors, new Dictionary<string, string> { ["format"] = "pt" });
        var modulesToSave = new JsonArray();
        if (Heads.HasFlag(GptHeads.Reward)) modulesToSave.Add("score");
        if (Heads.HasFlag(GptHeads.Value)) modulesToSave.Add("v_head");
        var json = new JsonObject
        {
            ["peft_type"] = "LORA",
            ["task_type"] = Heads.HasFlag(GptHeads.Reward) ? "SEQ_CLS" : "CAUSAL_LM",
            ["base_model_name_or_path"] = baseModel,
            ["r"] = Config.R,
            ["lora_alpha"] = Config.LoraAlpha,
            ["lora_dropout"] = Config.LoraDropout,
            ["target_modules"] = new JsonArray([.. Targets.Select(t => (JsonNode)LoraTargets.PeftName(t))]),
            ["fan_in_fan_out"] = true,   // GPT-2's Conv1D stores W [in, out]
            ["bias"] = "none",
            ["modules_to_save"] = modulesToSave.Count > 0 ? modulesToSave : null,
            ["init_lora_weights"] = true,
            ["inference_mode"] = true,
            ["use_rslora"] = false,
            ["use_dora"] = false,
        };
        AtomicFile.WriteAllText(System.IO.Path.Combine(directory, ConfigFileName), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>Reads an adapter folder (ours or PEFT's) for a model of <paramref name="model"/>'s shape.</summary>
    public static LoraAdapter Load(string directory, GptConfig model)
    {
        string configPath = System.IO.Path.Combine(directory, ConfigFileName);
        string weightsPath = System.IO.Path.Combine(directory, WeightsFileName);
        if (!File.Exists(configPath)) throw new FileNotFoundException($"{configPath}: no adapter config (is this a LoRA adapter folder?).");
        if (!File.Exists(weightsPath)) throw new FileNotFoundException($"{weightsPath}: no adapter weights.");
        JsonNode node;
        try { node = JsonNode.Parse(File.ReadAllText(configPath)) ?? throw new FormatException("empty"); }
        catch (Exception e) when (e is JsonException or FormatException) { throw new FormatException($"{configPath}: not valid JSON ({e.Message})."); }
        string peftType = node["peft_type"]?.GetValue<string>() ?? "";
        if (peftType != "LORA") throw new FormatException($"{configPath}: field peft_type is '{peftType}', only LORA is supported.");
        int r = node["r"]?.GetValue<int>() ?? throw new FormatException($"{configPath}: field r is missing.");
        float alpha = (float)(node["lora_alpha"]?.GetValue<double>() ?? throw new FormatException($"{configPath}: field lora_alpha is missing."));
        float dropout = (float)(node["lora_dropout"]?.GetValue<double>() ?? 0);
        if (node["use_rslora"]?.GetValue<bool>() == true) throw new FormatException($"{configPath}: field use_rslora is true; only s = lora_alpha / r is supported.");
        if (node["use_dora"]?.GetValue<bool>() == true) throw new FormatException($"{configPath}: field use_dora is true; DoRA is not supported.");

        var stored = Safetensors.Read(weightsPath).Tensors;
        // Which layers and modules the file adapts comes from its keys (PEFT's target_modules matches by suffix).
        var layers = new SortedSet<int>();
        var targets = new SortedSet<LoraTarget>();
        var heads = GptHeads.None;
        foreach (string key in stored.Keys)
        {
            string name = key.StartsWith(PeftPrefix + "transformer.", StringComparison.Ordinal) ? key[(PeftPrefix.Length + "transformer.".Length)..]
                : key.StartsWith(PeftPrefix, StringComparison.Ordinal) ? key[PeftPrefix.Length..]
                : throw new FormatException($"{weightsPath}: tensor '{key}' does not start with {PeftPrefix}.");
            if (name == GptCheckpoint.RewardHeadWeight) { heads |= GptHeads.Reward; continue; }
            if (name.StartsWith("v_head.", StringComparison.Ordinal)) { heads |= GptHeads.Value; continue; }
            var parts = name.Split('.');
            if (parts.Length != 6 || parts[0] != "h" || !int.TryParse(parts[1], out int layer) || layer < 0 || layer >= model.NLayer
                || parts[4] is not ("lora_A" or "lora_B") || parts[5] != "weight")
                throw new FormatException($"{weightsPath}: tensor '{key}' is not a LoRA weight of a {model.NLayer}-layer GPT-2.");
            layers.Add(layer);
            targets.Add(LoraTargets.Parse(parts[2] + "." + parts[3]));
        }
        if (targets.Count == 0) throw new FormatException($"{weightsPath}: no lora_A/lora_B tensors.");
        var config = new LoraConfig { R = r, LoraAlpha = alpha, LoraDropout = dropout, TargetModules = string.Join(",", targets.Select(LoraTargets.PeftName)) };
        var adapter = new LoraAdapter(model, config, heads, [.. targets], [.. layers]);
        foreach (var slot in adapter.ParameterSet.Slots)
        {
            string key = PeftKey(slot.Name);
            if (!stored.TryGetValue(key, out var t)) throw new FormatException($"{weightsPath}: tensor '{key}' is missing.");
            if (!t.Shape.AsSpan().SequenceEqual(slot.Value.Shape))
                throw new FormatException($"{weightsPath}: tensor '{key}' has shape {StoredTensor.FormatShape(t.Shape)}, expected {StoredTensor.FormatShape(slot.Value.Shape)}.");
            t.Values.CopyTo(slot.Value.Span);
        }
        return adapter;
    }

    /// <summary>The base model folder an adapter folder names (base_model_name_or_path, relative paths from the adapter folder).</summary>
    public static string BaseModelDirectory(string directory)
    {
        string configPath = System.IO.Path.Combine(directory, ConfigFileName);
        string? name = JsonNode.Parse(File.ReadAllText(configPath))?["base_model_name_or_path"]?.GetValue<string>();
        if (string.IsNullOrEmpty(name))
            throw new FormatException($"{configPath}: field base_model_name_or_path is empty and the folder holds no {GptCheckpoint.WeightsFileName}; give the base model folder (rlhf lora merge --base DIR).");
        string path = System.IO.Path.IsPathRooted(name) ? name : System.IO.Path.Combine(directory, name);
        if (!File.Exists(System.IO.Path.Combine(path, GptCheckpoint.WeightsFileName)))
            throw new FileNotFoundException($"{configPath}: field base_model_name_or_path '{name}' is not a model folder here; give the base model folder (rlhf lora merge --base DIR).");
        return path;
    }

    /// <summary>A plain model: <paramref name="baseModel"/>'s weights with s·(B·A)ᵀ added to each adapted W [in, out], and the adapter's heads.</summary>
    public Gpt Merge(Gpt baseModel)
    {
        var merged = baseModel.BaseCopy(Heads != GptHeads.None ? Heads : baseModel.Heads);
        foreach (var m in Modules)
        {
            var w = merged.Param(m.Prefix + ".weight");     // [in, out]
            var a = m.A.Span;                                // [r, in]
            var b = m.B.Span;                                // [out, r]
            int r = Config.R;
            for (int i = 0; i < m.In; i++)
            {
                for (int o = 0; o < m.Out; o++)
                {
                    double sum = 0;
                    for (int k = 0; k < r; k++) sum += (double)b[o * r + k] * a[k * m.In + i];
                    w[i * m.Out + o] += (float)(Scaling * sum);
                }
            }
        }
        foreach (var (name, t) in _heads) t.Span.CopyTo(merged.Param(name));
        return merged;
    }

    // ---- kernels of the fused path -------------------------------------------------------------------------------

    /// <summary>
    /// y (N, out) += s · xd·Aᵀ·Bᵀ with xd = x ⊙ mask (mask null: xd = x); u (N, r) = xd·Aᵀ is kept for backward.
    /// </summary>
    internal void Forward(LoraModule m, ReadOnlySpan<float> x, Span<float> y, int N, Span<float> u, float[]? mask)
    {
        int r = Config.R;
        ReadOnlySpan<float> xd = x;
        if (mask is not null)
        {
            var tmp = new float[N * m.In];
            System.Numerics.Tensors.TensorPrimitives.Multiply(x[..(N * m.In)], mask.AsSpan(0, N * m.In), tmp);
            xd = tmp;
        }
        Gemm.Multiply(GemmForm.NT, N, r, m.In, xd, m.In, m.A.Span, m.In, u, r, accumulate: false);          // u = xd·Aᵀ
        var us = new float[N * r];
        System.Numerics.Tensors.TensorPrimitives.Multiply(u, Scaling, us);
        Gemm.Multiply(GemmForm.NT, N, m.Out, r, us, r, m.B.Span, r, y, m.Out, accumulate: true);           // y += s·u·Bᵀ
    }

    /// <summary>
    /// Backward of <see cref="Forward"/> given dy (N, out): dB += s·dyᵀ·u, dA += duᵀ·xd with du = s·dy·B, dx += (du·A) ⊙ mask.
    /// </summary>
    internal void Backward(LoraModule m, ReadOnlySpan<float> dy, ReadOnlySpan<float> x, Span<float> dx, int N, ReadOnlySpan<float> u, float[]? mask)
    {
        int r = Config.R;
        var us = new float[N * r];
        System.Numerics.Tensors.TensorPrimitives.Multiply(u, Scaling, us);
        Gemm.Multiply(GemmForm.TN, m.Out, r, N, dy, m.Out, us, r, m.B.Grad!.Span, r, accumulate: true);   // dB += dyᵀ·(s·u)
        var du = new float[N * r];
        Gemm.Multiply(GemmForm.NN, N, r, m.Out, dy, m.Out, m.B.Span, r, du, r, accumulate: false);        // du = dy·B
        System.Numerics.Tensors.TensorPrimitives.Multiply(du, Scaling, du);                                 //    · s
        ReadOnlySpan<float> xd = x;
        if (mask is not null)
        {
            var tmp = new float[N * m.In];
            System.Numerics.Tensors.TensorPrimitives.Multiply(x[..(N * m.In)], mask.AsSpan(0, N * m.In), tmp);
            xd = tmp;
        }
        Gemm.Multiply(GemmForm.TN, r, m.In, N, du, r, xd, m.In, m.A.Grad!.Span, m.In, accumulate: true);   // dA += duᵀ·xd
        if (mask is null)
        {
            Gemm.Multiply(GemmForm.NN, N, m.In, r, du, r, m.A.Span, m.In, dx, m.In, accumulate: true);     // dx += du·A
            return;
        }
        var dxd = new float[N * m.In];
        Gemm.Multiply(GemmForm.NN, N, m.In, r, du, r, m.A.Span, m.In, dxd, m.In, accumulate: false);
        System.Numerics.Tensors.TensorPrimitives.Multiply(dxd, mask.AsSpan(0, N * m.In), dxd);
        System.Numerics.Tensors.TensorPrimitives.Add(dx[..(N * m.In)], dxd, dx[..(N * m.In)]);
    }
}

/// <summary>What a forward pass keeps of each adapted layer for backward: u = xd·Aᵀ (N, r) and the dropout mask (N, in).</summary>
internal sealed class LoraPassState(LoraAdapter adapter, int layers, int N)
{
    public LoraAdapter Adapter { get; } = adapter;
    public int Rows { get; } = N;
    public readonly float[]?[] U = new float[]?[layers * LoraTargets.Count];
    public readonly float[]?[] Mask = new float[]?[layers * LoraTargets.Count];
    public bool Dropout { get; set; }
}
