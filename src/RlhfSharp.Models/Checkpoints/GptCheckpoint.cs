// A model folder as Hugging Face writes GPT-2: config.json + model.safetensors (+ tokenizer files beside them).
// Tensors are kept under GPT-2's own names ("wte.weight", "h.0.attn.c_attn.weight", ...) with Conv1D weights in
// their stored [in, out] layout; the optional reward head is HF's `score.weight` and the value head TRL's `v_head.summary.*`.
using RlhfSharp.Text;

namespace RlhfSharp.Models.Checkpoints;

/// <summary>A checkpoint as loaded: its config and its tensors under canonical GPT-2 names (no `transformer.` prefix).</summary>
public sealed record GptCheckpointContent(GptConfig Config, IReadOnlyDictionary<string, StoredTensor> Tensors);

public static class GptCheckpoint
{
    public const string ConfigFileName = "config.json";
    public const string WeightsFileName = "model.safetensors";
    public const string GenerationConfigFileName = "generation_config.json";

    /// <summary>Reward head: HF GPT2ForSequenceClassification's bias-free projection [1, C] read at the last real token.</summary>
    public const string RewardHeadWeight = "score.weight";

    /// <summary>Value head: TRL's AutoModelForCausalLMWithValueHead projection [1, C] and bias [1], one value per token.</summary>
    public const string ValueHeadWeight = "v_head.summary.weight";
    public const string ValueHeadBias = "v_head.summary.bias";

    /// <summary>Tokenizer files copied beside a checkpoint when present in the source folder.</summary>
    public static IReadOnlyList<string> TokenizerFileNames { get; } =
        [Gpt2Tokenizer.VocabFileName, Gpt2Tokenizer.MergesFileName, CharTokenizer.FileName, "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"];

    private const string TrunkPrefix = "transformer.";

    /// <summary>Every trunk tensor a GPT of <paramref name="config"/> has, in GPT-2 order, with its shape.</summary>
    public static IReadOnlyList<(string Name, int[] Shape)> TrunkTensors(GptConfig config)
    {
        int C = config.NEmbd, V = config.VocabSize, T = config.BlockSize;
        var list = new List<(string, int[])> { ("wte.weight", [V, C]), ("wpe.weight", [T, C]) };
        for (int i = 0; i < config.NLayer; i++)
        {
            string p = $"h.{i}.";
            list.Add((p + "ln_1.weight", [C]));
            list.Add((p + "ln_1.bias", [C]));
            list.Add((p + "attn.c_attn.weight", [C, 3 * C]));
            list.Add((p + "attn.c_attn.bias", [3 * C]));
            list.Add((p + "attn.c_proj.weight", [C, C]));
            list.Add((p + "attn.c_proj.bias", [C]));
            list.Add((p + "ln_2.weight", [C]));
            list.Add((p + "ln_2.bias", [C]));
            list.Add((p + "mlp.c_fc.weight", [C, 4 * C]));
            list.Add((p + "mlp.c_fc.bias", [4 * C]));
            list.Add((p + "mlp.c_proj.weight", [4 * C, C]));
            list.Add((p + "mlp.c_proj.bias", [C]));
        }
        list.Add(("ln_f.weight", [C]));
        list.Add(("ln_f.bias", [C]));
        return list;
    }

    /// <summary>Shapes of the optional head tensors.</summary>
    public static IReadOnlyList<(string Name, int[] Shape)> HeadTensors(GptConfig config) =>
        [(RewardHeadWeight, [1, config.NEmbd]), (ValueHeadWeight, [1, config.NEmbd]), (ValueHeadBias, [1])];

    /// <summary>
    /// Loads a folder. Keys may carry the `transformer.` prefix or not; `attn.bias`/`attn.masked_bias` buffers are
    /// ignored; `lm_head.weight` must be absent or equal to `wte.weight` (tied). Missing, unknown or misshapen tensors
    /// are errors naming the key (and both shapes). A tensor holding NaN or ±Infinity is refused naming it, unless
    /// <paramref name="allowNonFinite"/> (to inspect a diverged model).
    /// </summary>
    public static GptCheckpointContent Load(string directory, bool allowNonFinite = false)
    {
        string configPath = Path.Combine(directory, ConfigFileName);
        string weightsPath = Path.Combine(directory, WeightsFileName);
        if (!File.Exists(configPath)) throw new FileNotFoundException($"{directory}: no {ConfigFileName} (not a model folder?).", configPath);
        if (!File.Exists(weightsPath)) throw new FileNotFoundException($"{directory}: no {WeightsFileName} (not a model folder?).", weightsPath);
        var config = GptConfig.ReadJson(configPath);
        var content = Safetensors.Read(weightsPath);
        var tensors = Canonicalize(weightsPath, config, content.Tensors);
        if (!allowNonFinite) RequireFinite(weightsPath, tensors);
        return new GptCheckpointContent(config, tensors);
    }

    /// <summary>Throws naming the first tensor (in name order) that holds NaN or ±Infinity, and where.</summary>
    public static void RequireFinite(string source, IReadOnlyDictionary<string, StoredTensor> tensors)
    {
        foreach (var (name, tensor) in tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            int i = RlhfSharp.Tensors.NumericGuard.FirstNonFinite(tensor.Values);
            if (i >= 0)
                throw new FormatException($"{source}: tensor '{name}' holds {RlhfSharp.Tensors.NumericGuard.Show(tensor.Values[i])} (value {i} of {tensor.Values.Length}): the weights are not finite (a diverged run, or a damaged file).");
        }
    }

    /// <summary>Maps stored keys to canonical names and checks them against <paramref name="config"/>; <paramref name="source"/> names the file in errors.</summary>
    public static IReadOnlyDictionary<string, StoredTensor> Canonicalize(string source, GptConfig config, IReadOnlyDictionary<string, StoredTensor> stored)
    {
        var expected = new Dictionary<string, int[]>(StringComparer.Ordinal);
        foreach (var (name, shape) in TrunkTensors(config)) expected[name] = shape;
        var heads = new Dictionary<string, int[]>(StringComparer.Ordinal);
        foreach (var (name, shape) in HeadTensors(config)) heads[name] = shape;

        var result = new Dictionary<string, StoredTensor>(StringComparer.Ordinal);
        StoredTensor? lmHead = null;
        foreach (var (key, tensor) in stored)
        {
            string name = key.StartsWith(TrunkPrefix, StringComparison.Ordinal) ? key[TrunkPrefix.Length..] : key;
            if (IsAttentionBuffer(name)) continue;
            if (name == "lm_head.weight")
            {
                lmHead = tensor;
                continue;
            }
            if (!expected.TryGetValue(name, out var shape) && !heads.TryGetValue(name, out shape))
                throw new FormatException($"{source}: tensor '{key}' is not part of a GPT-2 model with n_layer = {config.NLayer}.");
            if (!tensor.Shape.AsSpan().SequenceEqual(shape))
                throw new FormatException($"{source}: tensor '{key}' has shape {StoredTensor.FormatShape(tensor.Shape)} but the config needs {StoredTensor.FormatShape(shape)}.");
            if (!result.TryAdd(name, tensor))
                throw new FormatException($"{source}: tensor '{name}' is stored twice (with and without the '{TrunkPrefix}' prefix).");
        }
        foreach (var name in expected.Keys)
            if (!result.ContainsKey(name))
                throw new FormatException($"{source}: tensor '{name}' is missing.");
        if (result.ContainsKey(ValueHeadWeight) != result.ContainsKey(ValueHeadBias))
            throw new FormatException($"{source}: value head needs both '{ValueHeadWeight}' and '{ValueHeadBias}'.");
        if (lmHead is not null)
        {
            var wte = result["wte.weight"];
            if (!lmHead.Shape.AsSpan().SequenceEqual(wte.Shape) || !lmHead.Values.AsSpan().SequenceEqual(wte.Values))
                throw new FormatException($"{source}: tensor 'lm_head.weight' differs from 'wte.weight'; only a tied LM head is supported.");
        }
        return result;
    }

    /// <summary>
    /// Writes config.json, generation_config.json and model.safetensors (trunk under `transformer.`, heads at the top level,
    /// no lm_head since it is tied, metadata format=pt, as `transformers` saves GPT2LMHeadModel; tensors in
    /// <paramref name="dtype"/>) and copies tokenizer files from <paramref name="tokenizerDirectory"/>. Each file is written
    /// under a temporary name and renamed.
    /// </summary>
    public static void Save(string directory, GptConfig config, IReadOnlyDictionary<string, StoredTensor> tensors, string? tokenizerDirectory = null,
        SafetensorsDtype dtype = SafetensorsDtype.F32)
    {
        Canonicalize($"tensors to save in {directory}", config, tensors);
        RequireFinite($"tensors to save in {directory}", tensors); // no NaN model is ever written
        Directory.CreateDirectory(directory);
        var headNames = HeadTensors(config).Select(h => h.Name).ToHashSet(StringComparer.Ordinal);
        var keyed = new Dictionary<string, StoredTensor>(StringComparer.Ordinal);
        foreach (var (name, tensor) in tensors)
            keyed[headNames.Contains(name) ? name : TrunkPrefix + name] = tensor;
        Safetensors.Write(Path.Combine(directory, WeightsFileName), keyed, new Dictionary<string, string> { ["format"] = "pt" }, dtype);
        config.WriteJson(Path.Combine(directory, ConfigFileName), dtype switch
        {
            SafetensorsDtype.BF16 => "bfloat16",
            SafetensorsDtype.F16 => "float16",
            _ => "float32",
        });
        WriteGenerationConfig(Path.Combine(directory, GenerationConfigFileName), config);
        if (tokenizerDirectory is not null && Path.GetFullPath(tokenizerDirectory) != Path.GetFullPath(directory))
        {
            foreach (var file in TokenizerFileNames)
            {
                string from = Path.Combine(tokenizerDirectory, file);
                if (File.Exists(from)) AtomicFile.Copy(from, Path.Combine(directory, file));
            }
        }
    }

    /// <summary>
    /// generation_config.json as transformers writes it from a model config: bos/eos ids, and pad = EOS for generation
    /// (GPT-2 has no pad token; this is what `generate` would otherwise warn it assumes).
    /// </summary>
    public static void WriteGenerationConfig(string path, GptConfig config)
    {
        using var ms = new MemoryStream();
        using (var w = new System.Text.Json.Utf8JsonWriter(ms, new System.Text.Json.JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteBoolean("_from_model_config", true);
            if (config.BosTokenId is int bos) w.WriteNumber("bos_token_id", bos);
            if (config.EosTokenId is int eos) w.WriteNumber("eos_token_id", eos);
            if ((config.EosTokenId ?? config.PadTokenId) is int pad) w.WriteNumber("pad_token_id", pad);
            w.WriteEndObject();
        }
        ms.WriteByte((byte)'\n');
        AtomicFile.WriteAllBytes(path, ms.ToArray());
    }

    private static bool IsAttentionBuffer(string name) =>
        name.StartsWith("h.", StringComparison.Ordinal) && (name.EndsWith(".attn.bias", StringComparison.Ordinal) || name.EndsWith(".attn.masked_bias", StringComparison.Ordinal));
}
