// GPT-2 as one readable model (nanoGPT's model.py, computed llm.c-style with explicit forward and backward):
// learned token + position embeddings, NLayer pre-LN blocks (causal self-attention and a tanh-GELU MLP), a final
// LayerNorm and the LM head tied to the token embedding; optional value and reward heads on the same trunk.
// Parameters live in one flat buffer with views named exactly like GPT-2 checkpoint keys, Conv1D weights [in, out],
// so loading Hugging Face weights is a copy and AdamW is one flat loop. Not here: KV-cached decoding (GptInference.cs).
// The layer kernels (layer norm, Conv1D linear, GELU, attention) are the engine's own (Tensors/Kernels), the ones its
// autograd ops run, each tested there against a scalar reference.
// Shapes: B batch, T time, C = NEmbd, NH heads, HS = C/NH, V vocabulary, N = B·T rows.
using RlhfSharp.Models.Checkpoints;
using RlhfSharp.Tensors;
using RlhfSharp.Tensors.Kernels;
using RlhfSharp.Tensors.Nn;

namespace RlhfSharp.Models;

public sealed partial class Gpt
{
    private Dictionary<string, GptParameter> _byName = null!;

    private Gpt(GptConfig config, GptHeads heads, bool bf16Matrices = false)
    {
        config.Validate("GPT config");
        Config = config;
        Heads = heads;
        var shapes = Shapes(config, heads);
        // The engine's ParameterSet owns the flat buffers: each parameter is a live Tensor view, so engine ops, AdamW and
        // gradient clipping work on this model directly, while the fused kernels here index the same buffers by offset.
        // With bf16Matrices the big matrices are held as bfloat16 from the start (Gpt.Bf16.cs) and are not among them.
        Bind(ParameterSet.Zeros(shapes.Where(s => !(bf16Matrices && IsBf16Matrix(s.Name)))));
        if (bf16Matrices)
            _bf16 = shapes.Where(s => IsBf16Matrix(s.Name)).ToDictionary(s => s.Name, s => new Bf16Matrix((int[])s.Shape.Clone(), new ushort[ElementCount(s.Shape)]), StringComparer.Ordinal);
    }

    /// <summary>The trunk's tensors and the heads', in the order of the flat buffer (the order Create draws them in).</summary>
    private static List<(string Name, int[] Shape)> Shapes(GptConfig config, GptHeads heads)
    {
        var shapes = GptCheckpoint.TrunkTensors(config).ToList();
        if (heads.HasFlag(GptHeads.Value)) shapes.AddRange(GptCheckpoint.HeadTensors(config).Where(h => h.Name.StartsWith("v_head", StringComparison.Ordinal)));
        if (heads.HasFlag(GptHeads.Reward)) shapes.AddRange(GptCheckpoint.HeadTensors(config).Where(h => h.Name == GptCheckpoint.RewardHeadWeight));
        return shapes;
    }

    private static int ElementCount(int[] shape)
    {
        int n = 1;
        foreach (int d in shape) n *= d;
        return n;
    }

    /// <summary>Makes <paramref name="set"/> the model's parameters (named views, lookups by name).</summary>
    private void Bind(ParameterSet set)
    {
        ParameterSet = set;
        ParameterList = set.Slots.Select(s => new GptParameter(s.Name, s.Value.Shape.ToArray(), s.Offset, s.Length)).ToList();
        _byName = ParameterList.ToDictionary(p => p.Name, StringComparer.Ordinal);
        _tensors = set.Slots.ToDictionary(s => s.Name, s => s.Value, StringComparer.Ordinal);
    }

    private Dictionary<string, Tensor> _tensors = null!;

    /// <summary>The engine's view of the parameters (flat values and gradients, slots by name): hand it to AdamW.</summary>
    public ParameterSet ParameterSet { get; private set; } = null!;

    /// <summary>The live parameter tensor called <paramref name="name"/> (a view of <see cref="Parameters"/>, gradient a view of <see cref="Gradients"/>).</summary>
    public Tensor ParameterTensor(string name) => _tensors.TryGetValue(name, out var t) ? t
        : throw new KeyNotFoundException($"GPT has no parameter '{name}'.");

    public GptConfig Config { get; }

    public GptHeads Heads { get; }

    /// <summary>All parameters, one flat buffer (the ParameterSet's); see <see cref="ParameterList"/> for the named views.</summary>
    public float[] Parameters => ParameterSet.Values;

    /// <summary>Gradients with the same layout as <see cref="Parameters"/>; backward passes accumulate into it.</summary>
    public float[] Gradients => ParameterSet.Grads;

    /// <summary>The float32 parameters; after <see cref="NarrowFrozenWeightsToBf16"/> the BF16 matrices are not among them (see Gpt.Bf16.cs).</summary>
    public IReadOnlyList<GptParameter> ParameterList { get; private set; } = null!;

    public GptParameter this[string name] => _byName.TryGetValue(name, out var p) ? p
        : throw new KeyNotFoundException($"GPT has no parameter '{name}'.");

    /// <summary>A parameter's float32 values; a BF16-held matrix (Gpt.Bf16.cs) comes back widened into a fresh array.</summary>
    public Span<float> Param(string name)
    {
        if (_bf16 is not null && _bf16.TryGetValue(name, out var held)) return held.Widened();
        var p = this[name];
        return Parameters.AsSpan(p.Offset, p.Length);
    }

    public Span<float> Grad(string name) { var p = this[name]; return Gradients.AsSpan(p.Offset, p.Length); }

    /// <summary>Zeroes the gradients of what trains: the adapter's under LoRA (the base then has none), else all.</summary>
    public void ZeroGrad() => TrainableParameters.ZeroGrad();

    /// <summary>When set, Forward, Backward and KV-cached steps charge their time per phase to it (null = no timing).</summary>
    public GptProfile? Profile { get; set; }

    /// <summary>
    /// A fresh model: weights N(0, initializer_range), biases 0, LayerNorm gains 1, and the residual projections
    /// (attn.c_proj, mlp.c_proj) at 0.02/√(2·n_layer) — GPT-2 paper §2.3, as nanoGPT's model.py `_init_weights` applies it.
    /// </summary>
    public static Gpt Create(GptConfig config, Rng rng, GptHeads heads = GptHeads.None)
    {
        var gpt = new Gpt(config, heads);
        foreach (var p in gpt.ParameterList) Initialize(config, p.Name, p.Shape, rng, gpt.Parameters.AsSpan(p.Offset, p.Length));
        return gpt;
    }

    /// <summary>
    /// Fills <paramref name="span"/>, all or the next piece of parameter <paramref name="name"/>, with its initial values:
    /// LayerNorm gains 1, matrices N(0, σ) drawn in order from <paramref name="rng"/>, the rest 0.
    /// </summary>
    private static void Initialize(GptConfig config, string name, int[] shape, Rng rng, Span<float> span)
    {
        float std = config.InitializerRange;
        float residualStd = std / MathF.Sqrt(2f * config.NLayer);
        if (shape.Length < 2 && name.Contains("ln_", StringComparison.Ordinal) && name.EndsWith(".weight", StringComparison.Ordinal))
        {
            span.Fill(1f);
        }
        else if (shape.Length >= 2)
        {
            float s = name.EndsWith("c_proj.weight", StringComparison.Ordinal) ? residualStd : std;
            for (int i = 0; i < span.Length; i++) span[i] = (float)(rng.Normal() * s);
        }
    }

    /// <summary>Builds a model from checkpoint tensors under canonical names (see <see cref="GptCheckpoint.Canonicalize"/>).</summary>
    public static Gpt FromTensors(GptConfig config, IReadOnlyDictionary<string, StoredTensor> tensors, string source = "tensors")
    {
        var canonical = GptCheckpoint.Canonicalize(source, config, tensors);
        var heads = GptHeads.None;
        if (canonical.ContainsKey(GptCheckpoint.ValueHeadWeight)) heads |= GptHeads.Value;
        if (canonical.ContainsKey(GptCheckpoint.RewardHeadWeight)) heads |= GptHeads.Reward;
        var gpt = new Gpt(config, heads);
        foreach (var p in gpt.ParameterList)
            canonical[p.Name].Values.CopyTo(gpt.Parameters.AsSpan(p.Offset, p.Length));
        return gpt;
    }

    public Dictionary<string, StoredTensor> ToTensors()
    {
        var tensors = ParameterList.ToDictionary(p => p.Name, p => new StoredTensor((int[])p.Shape.Clone(), Parameters.AsSpan(p.Offset, p.Length).ToArray()), StringComparer.Ordinal);
        if (_bf16 is not null)
            foreach (var (name, held) in _bf16) tensors[name] = new StoredTensor((int[])held.Shape.Clone(), held.Widened());
        return tensors;
    }

    /// <summary>Loads a model folder (ours or Hugging Face's GPT-2).</summary>
    public static Gpt Load(string directory, bool allowNonFinite = false)
    {
        // A LoRA folder (adapter_config.json): the base from the same folder when it holds one, else from base_model_name_or_path.
        if (File.Exists(Path.Combine(directory, LoraAdapter.ConfigFileName)))
        {
            string baseDir = File.Exists(Path.Combine(directory, GptCheckpoint.WeightsFileName)) ? directory : LoraAdapter.BaseModelDirectory(directory);
            var baseModel = LoadPlain(baseDir, allowNonFinite);
            if (baseDir != directory) baseModel.SourceDirectory = Path.GetFullPath(baseDir);
            return baseModel.WithAdapter(LoraAdapter.Load(directory, baseModel.Config));
        }
        var gpt = LoadPlain(directory, allowNonFinite);
        gpt.SourceDirectory = Path.GetFullPath(directory);
        return gpt;
    }

    private static Gpt LoadPlain(string directory, bool allowNonFinite)
    {
        var content = GptCheckpoint.Load(directory, allowNonFinite);
        return FromTensors(content.Config, content.Tensors, Path.Combine(directory, GptCheckpoint.WeightsFileName));
    }

    /// <summary>
    /// Saves config.json + generation_config.json + model.safetensors in <paramref name="dtype"/> (and tokenizer files copied from <paramref name="tokenizerDirectory"/>). With an
    /// adapter: adapter_config.json + adapter_model.safetensors (PEFT's format), plus the base's files only when the base was
    /// not loaded from a folder (base_model_name_or_path names that folder otherwise).
    /// </summary>
    public void Save(string directory, string? tokenizerDirectory = null, SafetensorsDtype dtype = SafetensorsDtype.F32)
    {
        if (ActiveAdapter is { } adapter)
        {
            if (SourceDirectory is null || tokenizerDirectory is not null)
            {
                var baseHeads = HeadsOfBase();
                var baseConfig = baseHeads.HasFlag(GptHeads.Reward) ? Config with { Architecture = "GPT2ForSequenceClassification" } : Config;
                if (SourceDirectory is null) GptCheckpoint.Save(directory, baseConfig, ToTensors(), tokenizerDirectory);
                else
                {
                    Directory.CreateDirectory(directory);
                    foreach (var file in GptCheckpoint.TokenizerFileNames)
                        if (File.Exists(Path.Combine(tokenizerDirectory!, file)) && Path.GetFullPath(tokenizerDirectory!) != Path.GetFullPath(directory))
                            AtomicFile.Copy(Path.Combine(tokenizerDirectory!, file), Path.Combine(directory, file));
                }
            }
            adapter.Save(directory, SourceDirectory);
            return;
        }
        // A reward model is saved as transformers' GPT2ForSequenceClassification: its rows end with EOS and it reads the
        // score there, while transformers reads at the last token that is not pad_token_id, so its pad_token_id must not
        // be EOS: it is id 0 (or 1 when EOS is 0), and padding with it reproduces our score.
        var config = Heads.HasFlag(GptHeads.Reward)
            ? Config with { Architecture = "GPT2ForSequenceClassification", PadTokenId = Config.PadTokenId ?? (Config.EosTokenId == 0 ? 1 : 0) }
            : Config;
        GptCheckpoint.Save(directory, config, ToTensors(), tokenizerDirectory, dtype);
    }

    /// <summary>The same trunk with a different set of heads; heads kept are copied, new ones initialised from <paramref name="rng"/>
    /// (InstructGPT starts the reward model, and Ziegler the value head, from the pre-trained LM this way).</summary>
    public Gpt WithHeads(GptHeads heads, Rng rng)
    {
        var fresh = Create(Config, rng, heads);
        foreach (var p in fresh.ParameterList)
            if (_byName.ContainsKey(p.Name) || (_bf16?.ContainsKey(p.Name) ?? false))
                Param(p.Name).CopyTo(fresh.Parameters.AsSpan(p.Offset, p.Length));
        return fresh;
    }

    /// <summary>An independent copy; with an adapter, of the base and the adapter both.</summary>
    public Gpt Clone()
    {
        var copy = new Gpt(Config, Adapter is null ? Heads : HeadsOfBase());
        if (_bf16 is not null) copy.NarrowFrozenWeightsToBf16();
        Parameters.CopyTo(copy.Parameters, 0);
        if (_bf16 is not null)
            foreach (var (name, held) in _bf16) held.Bits.CopyTo(copy._bf16![name].Bits, 0);
        copy.SourceDirectory = SourceDirectory;
        if (Adapter is null) return copy;
        var adapted = copy.WithAdapter(Adapter.Clone());
        return AdapterOff ? adapted.WithAdapterOff() : adapted;
    }

    /// <summary>Position of each token: the count of real tokens before it in its row (HF: cumsum(mask) − 1), 0 for pads.</summary>
    internal int[] PositionIds(GptInput input)
    {
        int B = input.Batch, T = input.Length;
        var pos = new int[B * T];
        for (int b = 0; b < B; b++)
        {
            int seen = 0;
            for (int t = 0; t < T; t++)
            {
                if (!input.IsReal(b, t)) continue;
                if (seen >= Config.BlockSize)
                    throw new ArgumentException($"GPT forward: row {b} has more than block size {Config.BlockSize} real tokens.");
                pos[b * T + t] = seen++;
            }
        }
        return pos;
    }

    private void ValidateTokens(GptInput input)
    {
        if (input.Length > Config.BlockSize)
            throw new ArgumentException($"GPT forward: length {input.Length} exceeds block size {Config.BlockSize}.");
        for (int i = 0; i < input.Tokens.Length; i++)
            if ((uint)input.Tokens[i] >= (uint)Config.VocabSize)
                throw new ArgumentException($"GPT forward: token {input.Tokens[i]} at row {i / input.Length}, position {i % input.Length} is outside the vocabulary [0, {Config.VocabSize}).");
    }

    /// <summary>
    /// Forward pass over a batch, keeping what backward needs. Returns logits (B,T,V) if asked, values (B,T) with a value
    /// head and rewards (B) with a reward head. Pass the previous <see cref="GptPass"/> of the same shape to reuse its buffers.
    /// </summary>
    public GptPass Forward(GptInput input, GptForwardOptions? options = null, GptPass? reuse = null)
    {
        options ??= new GptForwardOptions();
        ValidateTokens(input);
        int B = input.Batch, T = input.Length, C = Config.NEmbd, L = Config.NLayer, NH = Config.NHead, V = Config.VocabSize;
        int N = B * T;
        // Checkpointed (Gpt.Checkpointing.cs) when training asks for it, and for scoring passes that will not be backpropagated.
        bool checkpointed = ActivationCheckpointing || !options.KeepActivations;
        var a = reuse is not null && reuse.Matches(B, T, options.Logits, checkpointed) ? reuse : new GptPass(Config, B, T, options.Logits, Heads, checkpointed);
        a.Input = input;
        a.Positions = PositionIds(input);
        a.LastReal = LastRealIndices(input);
        float p = options.DropoutRng is null ? 0f : Config.Dropout;
        a.DropoutP = p;
        var profile = Profile;
        profile?.Restart();
        // LoRA (Gpt.Lora.cs): what each adapted layer keeps for backward; its dropout runs with the model's generator.
        a.Lora = ActiveAdapter is { } adapter ? (a.Lora is { } kept && kept.Adapter == adapter && kept.Rows == N ? kept : new LoraPassState(adapter, L, N)) : null;

        // Embeddings: x0[n] = wte[token] + wpe[position], then dropout.
        var wScratch = _bf16 is null ? null : WidenScratch();   // BF16 weights: token rows (and a long head) widened here; the layers widen in the GEMM
        var wpe = Param("wpe.weight");
        var x0 = a.Residuals[0];
        for (int n = 0; n < N; n++)
        {
            var dst = x0.AsSpan(n * C, C);
            var te = TokenEmbedding(input.Tokens[n], wScratch);
            var pe = wpe.Slice(a.Positions[n] * C, C);
            for (int c = 0; c < C; c++) dst[c] = te[c] + pe[c];
        }
        ApplyDropout(x0.AsSpan(0, N * C), a.EmbedDropout, p, options.DropoutRng);
        profile?.Lap("fwd/embeddings");

        for (int l = 0; l < L; l++)
        {
            // Activation checkpointing keeps only the block's input (Residuals[l]) and the generator's state before it;
            // Backward reruns the block from there into the one shared activation set (Gpt.Checkpointing.cs).
            if (a.Checkpointed) a.LayerRngStates[l] = options.DropoutRng?.GetState();
            BlockForward(a, l, options.DropoutRng);
        }

        Norms.LayerNormForward(a.Residuals[L], Param("ln_f.weight"), Param("ln_f.bias"), a.LnF, a.LnFMean, a.LnFRstd, C, Config.LayerNormEpsilon);
        profile?.Lap("fwd/layernorm");
        if (a.Logits is not null) TiedHeadLogits(a.LnF, N, a.Logits);
        profile?.Lap("fwd/lm_head");
        if (a.Values is not null)
        {
            var w = HeadParam(GptCheckpoint.ValueHeadWeight);
            float bias = HeadParam(GptCheckpoint.ValueHeadBias)[0];
            for (int n = 0; n < N; n++) a.Values[n] = bias + Reduce.Dot(a.LnF.AsSpan(n * C, C), w);
        }
        if (a.Rewards is not null)
        {
            var w = HeadParam(GptCheckpoint.RewardHeadWeight);
            for (int b = 0; b < B; b++) a.Rewards[b] = Reduce.Dot(a.LnF.AsSpan((b * T + a.LastReal[b]) * C, C), w);
        }
        return a;
    }


    /// <summary>
    /// Block l of the forward: x_{l+1} = x_mid + dropout(mlp(ln_2(x_mid))), x_mid = x_l + dropout(attn(ln_1(x_l))), reading
    /// Residuals[l] and writing Residuals[l + 1] and the block's activations (the shared set when checkpointed).
    /// </summary>
    private void BlockForward(GptPass a, int l, Rng? rng)
    {
        int B = a.Batch, T = a.Length, C = Config.NEmbd, NH = Config.NHead, N = B * T;
        float p = a.DropoutP;
        var profile = Profile;
        var keyMask = a.Input!.AttentionMask;
        var (att, qL, kL, vL, yL) = AttentionLayouts(B, T, C, NH);
        var la = a.LayerActivationsOf(l);
        var x = a.Residuals[l];
        string pre = $"h.{l}.";
        Norms.LayerNormForward(x, Param(pre + "ln_1.weight"), Param(pre + "ln_1.bias"), la.Ln1, la.Ln1Mean, la.Ln1Rstd, C, Config.LayerNormEpsilon);
        profile?.Lap("fwd/layernorm");
        LinearForward(pre + "attn.c_attn.weight", pre + "attn.c_attn.bias", la.Ln1, la.Qkv, N, C, 3 * C);
        LoraForward(a, l, LoraTarget.CAttn, la.Ln1, la.Qkv, N, rng);
        profile?.Lap("fwd/matmul_qkv");
        Attention.Forward(att, la.Qkv, qL, la.Qkv, kL, la.Qkv, vL, la.AttY, yL, keyMask, la.Probs);
        profile?.Lap("fwd/attention");
        // Residual: xMid = x + dropout(c_proj(attY)).
        LinearForward(pre + "attn.c_proj.weight", pre + "attn.c_proj.bias", la.AttY, a.Scratch, N, C, C);
        LoraForward(a, l, LoraTarget.AttnCProj, la.AttY, a.Scratch, N, rng);
        ApplyDropout(a.Scratch.AsSpan(0, N * C), la.AttnDropout, p, rng);
        AddInto(la.XMid, x, a.Scratch, N * C);
        profile?.Lap("fwd/matmul_attn_proj");

        Norms.LayerNormForward(la.XMid, Param(pre + "ln_2.weight"), Param(pre + "ln_2.bias"), la.Ln2, la.Ln2Mean, la.Ln2Rstd, C, Config.LayerNormEpsilon);
        profile?.Lap("fwd/layernorm");
        LinearForward(pre + "mlp.c_fc.weight", pre + "mlp.c_fc.bias", la.Ln2, la.Fc, N, C, 4 * C);
        LoraForward(a, l, LoraTarget.CFc, la.Ln2, la.Fc, N, rng);
        profile?.Lap("fwd/matmul_fc");
        Activations.GeluForward(la.Fc, la.FcGelu);
        profile?.Lap("fwd/gelu");
        LinearForward(pre + "mlp.c_proj.weight", pre + "mlp.c_proj.bias", la.FcGelu, a.Scratch, N, 4 * C, C);
        LoraForward(a, l, LoraTarget.MlpCProj, la.FcGelu, a.Scratch, N, rng);
        ApplyDropout(a.Scratch.AsSpan(0, N * C), la.MlpDropout, p, rng);
        AddInto(a.Residuals[l + 1], la.XMid, a.Scratch, N * C);
        profile?.Lap("fwd/matmul_mlp_proj");
    }

    /// <summary>
    /// Accumulates into <see cref="Gradients"/> the gradient of a loss whose derivatives with respect to this pass's outputs are
    /// given: dLogits (B,T,V), dValues (B,T), dRewards (B); any may be null (treated as zero). <paramref name="dHidden"/>
    /// (B,T,C) is a gradient with respect to the final hidden states (after ln_f) that the caller computed itself, e.g. through
    /// the tied head at a few positions only (GptScoring.HeadInputGrad); it reaches the trunk, not wte's head gradient.
    /// </summary>
    public void Backward(GptPass a, float[]? dLogits = null, float[]? dValues = null, float[]? dRewards = null, float[]? dHidden = null)
    {
        int B = a.Batch, T = a.Length, C = Config.NEmbd, L = Config.NLayer, NH = Config.NHead, V = Config.VocabSize;
        int N = B * T;
        var input = a.Input ?? throw new InvalidOperationException("GPT backward: the pass has no forward data.");
        if (dLogits is not null && (a.Logits is null || dLogits.Length != N * V))
            throw new ArgumentException($"GPT backward: dLogits has {dLogits.Length} entries; the pass {(a.Logits is null ? "computed no logits" : $"needs {N * V}")}.");
        if (dValues is not null && (a.Values is null || dValues.Length != N))
            throw new ArgumentException($"GPT backward: dValues has {dValues.Length} entries; the pass {(a.Values is null ? "has no value head" : $"needs {N}")}.");
        if (dRewards is not null && (a.Rewards is null || dRewards.Length != B))
            throw new ArgumentException($"GPT backward: dRewards has {dRewards.Length} entries; the pass {(a.Rewards is null ? "has no reward head" : $"needs {B}")}.");
        if (dHidden is not null && dHidden.Length != N * C)
            throw new ArgumentException($"GPT backward: dHidden has {dHidden.Length} entries; the pass needs {N * C}.");

        var profile = Profile;
        profile?.Restart();
        var (att, qL, kL, vL, yL) = AttentionLayouts(B, T, C, NH);
        // Heads -> dLnF (N,C).
        var dLnF = a.GradLnF;
        Array.Clear(dLnF);
        if (dHidden is not null) dHidden.CopyTo(dLnF, 0);   // onto zeros: the values the head's GEMM would have accumulated
        var wScratch = _bf16 is null ? null : WidenScratch();   // a BF16 base: one matrix widened at a time
        if (dLogits is not null)
        {
            TiedHeadInputGrad(dLogits, N, dLnF);
            if (!BaseFrozen) Gemm.Multiply(GemmForm.TN, V, C, N, dLogits, V, a.LnF, C, Grad("wte.weight"), C, accumulate: true);
        }
        profile?.Lap("bwd/lm_head");
        if (dValues is not null)
        {
            var w = HeadParam(GptCheckpoint.ValueHeadWeight);
            var dw = HeadGrad(GptCheckpoint.ValueHeadWeight);
            var db = HeadGrad(GptCheckpoint.ValueHeadBias);
            for (int n = 0; n < N; n++)
            {
                float g = dValues[n];
                if (g == 0) continue;
                var h = a.LnF.AsSpan(n * C, C);
                var dh = dLnF.AsSpan(n * C, C);
                for (int c = 0; c < C; c++)
                {
                    dh[c] += g * w[c];
                    dw[c] += g * h[c];
                }
                db[0] += g;
            }
        }
        if (dRewards is not null)
        {
            var w = HeadParam(GptCheckpoint.RewardHeadWeight);
            var dw = HeadGrad(GptCheckpoint.RewardHeadWeight);
            for (int b = 0; b < B; b++)
            {
                int n = b * T + a.LastReal[b];
                float g = dRewards[b];
                var h = a.LnF.AsSpan(n * C, C);
                var dh = dLnF.AsSpan(n * C, C);
                for (int c = 0; c < C; c++)
                {
                    dh[c] += g * w[c];
                    dw[c] += g * h[c];
                }
            }
        }

        // ln_f backward into dResidual, then the blocks in reverse.
        var dRes = a.GradResidual;
        Array.Clear(dRes);
        Norms.LayerNormBackward(dLnF, a.Residuals[L], Param("ln_f.weight"), a.LnFMean, a.LnFRstd, dRes, BaseGrad("ln_f.weight"), BaseGrad("ln_f.bias"), C);
        profile?.Lap("bwd/layernorm");
        for (int l = L - 1; l >= 0; l--)
        {
            if (a.Checkpointed)
            {
                // Rerun block l from its kept input, drawing the same dropout masks from the generator's saved state.
                var replay = a.LayerRngStates[l] is { } state ? RngAt(state) : null;
                BlockForward(a, l, replay);
            }
            var la = a.LayerActivationsOf(l);
            string pre = $"h.{l}.";
            // MLP branch. dRes is d(x_{l+1}) and becomes d(xMid) once ln_2's backward adds into it.
            var dOut = a.GradScratch1;
            CopyWithDropout(dOut, dRes, la.MlpDropout, N * C, a.DropoutP);
            var dFcGelu = a.GradHidden;
            Array.Clear(dFcGelu);
            LinearKernels.Backward(dOut, la.FcGelu, LinearWeight(pre + "mlp.c_proj.weight", wScratch), dFcGelu, BaseGrad(pre + "mlp.c_proj.weight"), BaseGrad(pre + "mlp.c_proj.bias"), N, 4 * C, C, Conv1D);
            LoraBackward(a, l, LoraTarget.MlpCProj, dOut, la.FcGelu, dFcGelu, N);
            profile?.Lap("bwd/matmul_mlp_proj");
            var dFc = a.GradHidden2;
            Array.Clear(dFc);
            Activations.GeluBackward(la.Fc, dFcGelu, dFc);
            profile?.Lap("bwd/gelu");
            var dLn2 = a.GradScratch2;
            Array.Clear(dLn2);
            LinearKernels.Backward(dFc, la.Ln2, LinearWeight(pre + "mlp.c_fc.weight", wScratch), dLn2, BaseGrad(pre + "mlp.c_fc.weight"), BaseGrad(pre + "mlp.c_fc.bias"), N, C, 4 * C, Conv1D);
            LoraBackward(a, l, LoraTarget.CFc, dFc, la.Ln2, dLn2, N);
            profile?.Lap("bwd/matmul_fc");
            Norms.LayerNormBackward(dLn2, la.XMid, Param(pre + "ln_2.weight"), la.Ln2Mean, la.Ln2Rstd, dRes, BaseGrad(pre + "ln_2.weight"), BaseGrad(pre + "ln_2.bias"), C);
            profile?.Lap("bwd/layernorm");

            // Attention branch. dRes is d(xMid) and becomes d(x_l).
            CopyWithDropout(dOut, dRes, la.AttnDropout, N * C, a.DropoutP);
            var dAttY = a.GradScratch2;
            Array.Clear(dAttY);
            LinearKernels.Backward(dOut, la.AttY, LinearWeight(pre + "attn.c_proj.weight", wScratch), dAttY, BaseGrad(pre + "attn.c_proj.weight"), BaseGrad(pre + "attn.c_proj.bias"), N, C, C, Conv1D);
            LoraBackward(a, l, LoraTarget.AttnCProj, dOut, la.AttY, dAttY, N);
            profile?.Lap("bwd/matmul_attn_proj");
            var dQkv = a.GradQkv;
            Array.Clear(dQkv);
            Attention.Backward(att, la.Qkv, qL, la.Qkv, kL, la.Qkv, vL, dAttY, yL, la.Probs, dQkv, dQkv, dQkv);
            profile?.Lap("bwd/attention");
            var dLn1 = a.GradScratch2;
            Array.Clear(dLn1);
            LinearKernels.Backward(dQkv, la.Ln1, LinearWeight(pre + "attn.c_attn.weight", wScratch), dLn1, BaseGrad(pre + "attn.c_attn.weight"), BaseGrad(pre + "attn.c_attn.bias"), N, C, 3 * C, Conv1D);
            LoraBackward(a, l, LoraTarget.CAttn, dQkv, la.Ln1, dLn1, N);
            profile?.Lap("bwd/matmul_qkv");
            Norms.LayerNormBackward(dLn1, a.Residuals[l], Param(pre + "ln_1.weight"), la.Ln1Mean, la.Ln1Rstd, dRes, BaseGrad(pre + "ln_1.weight"), BaseGrad(pre + "ln_1.bias"), C);
            profile?.Lap("bwd/layernorm");
        }

        // Embeddings (a token or position used twice gets both contributions); nothing to do for a frozen base.
        if (BaseFrozen)
        {
            profile?.Lap("bwd/embeddings");
            return;
        }
        CopyWithDropout(a.GradScratch1, dRes, a.EmbedDropout, N * C, a.DropoutP);
        var dWte = Grad("wte.weight");
        var dWpe = Grad("wpe.weight");
        for (int n = 0; n < N; n++)
        {
            var g = a.GradScratch1.AsSpan(n * C, C);
            System.Numerics.Tensors.TensorPrimitives.Add(dWte.Slice(input.Tokens[n] * C, C), g, dWte.Slice(input.Tokens[n] * C, C));
            System.Numerics.Tensors.TensorPrimitives.Add(dWpe.Slice(a.Positions[n] * C, C), g, dWpe.Slice(a.Positions[n] * C, C));
        }
        profile?.Lap("bwd/embeddings");
    }

    /// <summary>
    /// Next-token cross-entropy averaged over the targets whose weight is non-zero (targets[n] = the token to predict at row
    /// position n, weight 0 = ignore), with its gradient written to <paramref name="dLogits"/> (N·V). Fused as in llm.c.
    /// <paramref name="totalWeight"/>, when given, replaces this pass's own total weight as the divisor: a shard of a larger
    /// batch divides by the whole batch's total, so the shards' losses and gradients add up to the batch mean.
    /// </summary>
    public static float CrossEntropy(GptPass pass, int[] targets, float[]? weights, float[] dLogits, double? totalWeight = null)
    {
        var logits = pass.Logits ?? throw new ArgumentException("CrossEntropy: the pass computed no logits.");
        int V = pass.Vocab, N = pass.Batch * pass.Length;
        if (targets.Length != N) throw new ArgumentException($"CrossEntropy: {targets.Length} targets for {N} positions.");
        if (dLogits.Length != N * V) throw new ArgumentException($"CrossEntropy: dLogits holds {dLogits.Length}, needs {N * V}.");
        double total = 0;
        foreach (float w in weights ?? []) total += w;
        if (weights is null) total = N;
        if (totalWeight is double whole) total = whole;
        if (total <= 0) throw new ArgumentException("CrossEntropy: every target has weight 0.");
        float norm = (float)(1 / total);
        var losses = new double[N];
        ParallelChunks.For(N, (start, end) =>
        {
            for (int n = start; n < end; n++)
            {
                var row = logits.AsSpan(n * V, V);
                var d = dLogits.AsSpan(n * V, V);
                float w = weights is null ? 1f : weights[n];
                if (w == 0)
                {
                    d.Clear();
                    continue;
                }
                int target = targets[n];
                if ((uint)target >= (uint)V) throw new ArgumentException($"CrossEntropy: target {target} at position {n} is outside [0, {V}).");
                float max = System.Numerics.Tensors.TensorPrimitives.Max(row);
                System.Numerics.Tensors.TensorPrimitives.Subtract(row, max, d);
                System.Numerics.Tensors.TensorPrimitives.Exp(d, d);
                double sum = Reduce.Sum(d);
                losses[n] = w * (Math.Log(sum) + max - row[target]);
                float scale = w * norm;
                System.Numerics.Tensors.TensorPrimitives.Multiply(d, (float)(scale / sum), d);
                d[target] -= scale;
            }
        }, minPerChunk: 16);
        double loss = 0;
        for (int n = 0; n < N; n++) loss += losses[n];
        return (float)(loss / total);
    }

    // GPT-2's Conv1D stores its weight [in, out].
    private const LinearWeightLayout Conv1D = LinearWeightLayout.InOut;

    // Head h of row b: q, k, v are columns [h·HS, (h+1)·HS) of the thirds of qkv (B,T,3C); its output goes to the same
    // columns of attY (B,T,C), so the heads come out merged for c_proj.
    private static (Attention.Dims Dims, AttentionLayout Q, AttentionLayout K, AttentionLayout V, AttentionLayout Y) AttentionLayouts(int B, int T, int C, int NH)
    {
        int HS = C / NH;
        var q = new AttentionLayout(0, T * 3 * C, HS, 3 * C);
        return (new Attention.Dims(B, NH, T, HS), q, q with { Offset = C }, q with { Offset = 2 * C }, new AttentionLayout(0, T * C, HS, C));
    }

    private static int[] LastRealIndices(GptInput input)
    {
        var last = new int[input.Batch];
        for (int b = 0; b < input.Batch; b++)
        {
            int t = input.Length - 1;
            while (t >= 0 && !input.IsReal(b, t)) t--;
            if (t < 0) throw new ArgumentException($"GPT forward: row {b} has no real token (its attention mask is all 0).");
            last[b] = t;
        }
        return last;
    }

    private static void AddInto(float[] dst, float[] x, float[] y, int n) =>
        System.Numerics.Tensors.TensorPrimitives.Add(x.AsSpan(0, n), y.AsSpan(0, n), dst.AsSpan(0, n));

    /// <summary>Inverted dropout: keep with probability 1 − p, scaled by 1/(1 − p); the mask is kept for backward.</summary>
    private static void ApplyDropout(Span<float> values, float[] mask, float p, Rng? rng)
    {
        if (p <= 0 || rng is null) return; // the mask is then unused: backward sees DropoutP == 0
        float keep = 1f / (1f - p);
        for (int i = 0; i < values.Length; i++)
        {
            mask[i] = rng.NextFloat() < p ? 0f : keep;
            values[i] *= mask[i];
        }
    }

    private static void CopyWithDropout(float[] dst, float[] src, float[] mask, int n, float p)
    {
        if (p > 0) System.Numerics.Tensors.TensorPrimitives.Multiply(src.AsSpan(0, n), mask.AsSpan(0, n), dst.AsSpan(0, n));
        else Array.Copy(src, dst, n);
    }
}

/// <summary>Activations of one forward pass (kept for backward) and its outputs. Buffers are reused when passed back to Forward.</summary>
public sealed class GptPass
{
    internal GptPass(GptConfig config, int B, int T, bool logits, GptHeads heads, bool checkpointed = false)
    {
        int C = config.NEmbd, N = B * T, NH = config.NHead;
        Batch = B;
        Length = T;
        Vocab = config.VocabSize;
        Residuals = new float[config.NLayer + 1][];
        for (int i = 0; i <= config.NLayer; i++) Residuals[i] = new float[N * C];
        // Checkpointed: one activation set that every block's forward (and its rerun in backward) writes in turn.
        Checkpointed = checkpointed;
        Layers = new LayerActivations[checkpointed ? 1 : config.NLayer];
        for (int l = 0; l < Layers.Length; l++) Layers[l] = new LayerActivations(N, C, NH, B, T);
        LayerRngStates = new ulong[]?[checkpointed ? config.NLayer : 0];
        EmbedDropout = new float[N * C];
        LnF = new float[N * C];
        LnFMean = new float[N];
        LnFRstd = new float[N];
        Scratch = new float[N * C];
        Logits = logits ? new float[N * config.VocabSize] : null;
        Values = heads.HasFlag(GptHeads.Value) ? new float[N] : null;
        Rewards = heads.HasFlag(GptHeads.Reward) ? new float[B] : null;
    }

    public int Batch { get; }
    public int Length { get; }
    public int Vocab { get; }

    /// <summary>LM logits (B,T,V), or null when not asked for.</summary>
    public float[]? Logits { get; }

    /// <summary>Value head per token (B,T), or null without a value head.</summary>
    public float[]? Values { get; }

    /// <summary>Reward head at each row's last real token (B), or null without a reward head.</summary>
    public float[]? Rewards { get; }

    /// <summary>Final hidden states after ln_f (B,T,C).</summary>
    public float[] LnF { get; }

    internal GptInput? Input { get; set; }
    internal int[] Positions { get; set; } = [];
    internal int[] LastReal { get; set; } = [];
    internal float DropoutP { get; set; }
    internal LoraPassState? Lora { get; set; }
    internal float[][] Residuals { get; }
    internal LayerActivations[] Layers { get; }

    /// <summary>Activation checkpointing: only block inputs (Residuals) are kept; Backward recomputes each block.</summary>
    internal bool Checkpointed { get; }

    /// <summary>Checkpointed: the dropout generator's state before each block (null entries: no dropout generator).</summary>
    internal ulong[]?[] LayerRngStates { get; }

    internal LayerActivations LayerActivationsOf(int layer) => Layers[Checkpointed ? 0 : layer];
    internal float[] EmbedDropout { get; }
    internal float[] LnFMean { get; }
    internal float[] LnFRstd { get; }
    internal float[] Scratch { get; }

    // Backward scratch, allocated on first use.
    private float[]? _gradLnF, _gradResidual, _gradScratch1, _gradScratch2, _gradHidden, _gradHidden2, _gradQkv;
    internal float[] GradLnF => _gradLnF ??= new float[LnF.Length];
    internal float[] GradResidual => _gradResidual ??= new float[LnF.Length];
    internal float[] GradScratch1 => _gradScratch1 ??= new float[LnF.Length];
    internal float[] GradScratch2 => _gradScratch2 ??= new float[LnF.Length];
    internal float[] GradHidden => _gradHidden ??= new float[4 * LnF.Length];
    internal float[] GradHidden2 => _gradHidden2 ??= new float[4 * LnF.Length];
    internal float[] GradQkv => _gradQkv ??= new float[3 * LnF.Length];

    internal bool Matches(int B, int T, bool logits, bool checkpointed) =>
        B == Batch && T == Length && logits == (Logits is not null) && checkpointed == Checkpointed;

    internal sealed class LayerActivations(int N, int C, int NH, int B, int T)
    {
        public readonly float[] Ln1 = new float[N * C], Ln1Mean = new float[N], Ln1Rstd = new float[N];
        public readonly float[] Qkv = new float[N * 3 * C];
        public readonly float[] Probs = new float[B * NH * T * T];
        public readonly float[] AttY = new float[N * C], AttnDropout = new float[N * C];
        public readonly float[] XMid = new float[N * C];
        public readonly float[] Ln2 = new float[N * C], Ln2Mean = new float[N], Ln2Rstd = new float[N];
        public readonly float[] Fc = new float[N * 4 * C], FcGelu = new float[N * 4 * C], MlpDropout = new float[N * C];
    }
}
