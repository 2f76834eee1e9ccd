// The shape of a GPT (GPT-2 architecture), read from and written to Hugging Face's GPT-2 config.json,
// with the named sizes the CLI offers (tiny, mini, small, medium, gpt2 = the 124M model).
using System.Globalization;
using System.Text.Json;

namespace RlhfSharp.Models;

public sealed record GptConfig
{
    /// <summary>Tokens in the vocabulary: rows of the embedding and columns of the tied LM head (`vocab_size`).</summary>
    public required int VocabSize { get; init; }

    /// <summary>Longest sequence the model attends over: rows of the learned position table (`n_positions`, `n_ctx`).</summary>
    public required int BlockSize { get; init; }

    /// <summary>Width C of the residual stream (`n_embd`).</summary>
    public required int NEmbd { get; init; }

    /// <summary>Number of transformer blocks (`n_layer`).</summary>
    public required int NLayer { get; init; }

    /// <summary>Attention heads per block; head size is NEmbd / NHead (`n_head`).</summary>
    public required int NHead { get; init; }

    /// <summary>Dropout probability after embeddings, attention weights and each residual branch (`resid_pdrop`,
    /// `embd_pdrop`, `attn_pdrop`); 0 for RLHF fine-tuning, where dropout would make log-probs of the same text disagree.</summary>
    public float Dropout { get; init; }

    /// <summary>Epsilon inside every LayerNorm's square root (`layer_norm_epsilon`, GPT-2: 1e-5).</summary>
    public float LayerNormEpsilon { get; init; } = 1e-5f;

    /// <summary>Standard deviation of the normal initialisation of weights (`initializer_range`, GPT-2: 0.02).</summary>
    public float InitializerRange { get; init; } = 0.02f;

    /// <summary>Token id that begins a document (`bos_token_id`); GPT-2 uses &lt;|endoftext|&gt; = 50256.</summary>
    public int? BosTokenId { get; init; }

    /// <summary>Token id that ends a generation (`eos_token_id`); generation stops a sequence when it samples it.</summary>
    public int? EosTokenId { get; init; }

    /// <summary>Token id batches are padded with (`pad_token_id`). Transformers' GPT2ForSequenceClassification reads the score
    /// at the last token that is not this id, so a reward model's must differ from the EOS its rows end with (see Gpt.Save).</summary>
    public int? PadTokenId { get; init; }

    /// <summary>Hugging Face class name written to `architectures` (GPT2LMHeadModel, or GPT2ForSequenceClassification for a reward model).</summary>
    public string Architecture { get; init; } = "GPT2LMHeadModel";

    public int HeadSize => NEmbd / NHead;

    /// <summary>Names accepted by <see cref="Named"/>, smallest first.</summary>
    public static IReadOnlyList<string> Sizes { get; } = ["tiny", "mini", "small", "medium", "gpt2", "gpt2-medium", "gpt2-large"];

    /// <summary>
    /// A named architecture with the tokenizer's vocabulary size. "mini" sits between tiny and small for the demos'
    /// short prompts and responses (block 64); "small" is the issue's benchmark (a) shape (L=4, C=256, NH=4, T=128);
    /// "medium" is nanoGPT's shakespeare-char shape; "gpt2" is GPT-2 124M, "gpt2-medium" GPT-2 355M and "gpt2-large"
    /// GPT-2 774M (n_layer, n_embd, n_head, n_positions of Hugging Face's gpt2-medium and gpt2-large config.json).
    /// </summary>
    public static GptConfig Named(string size, int vocabSize)
    {
        var (layers, embd, heads, block) = size switch
        {
            "tiny" => (2, 64, 2, 64),
            "mini" => (4, 128, 4, 64),
            "small" => (4, 256, 4, 128),
            "medium" => (6, 384, 6, 256),
            "gpt2" => (12, 768, 12, 1024),
            "gpt2-medium" => (24, 1024, 16, 1024),
            "gpt2-large" => (36, 1280, 20, 1024),
            _ => throw new ArgumentException($"model size '{size}' is unknown; choose one of {string.Join(", ", Sizes)}."),
        };
        var config = new GptConfig { VocabSize = vocabSize, BlockSize = block, NEmbd = embd, NLayer = layers, NHead = heads };
        config.Validate("model size " + size);
        return config;
    }

    /// <summary>Throws if a field is out of range; <paramref name="source"/> names where the config came from.</summary>
    public void Validate(string source)
    {
        Check(VocabSize > 0, "vocab_size", VocabSize);
        Check(BlockSize > 0, "n_positions", BlockSize);
        Check(NEmbd > 0, "n_embd", NEmbd);
        Check(NLayer > 0, "n_layer", NLayer);
        Check(NHead > 0 && NEmbd % NHead == 0, "n_head", NHead, $" (must divide n_embd = {NEmbd})");
        Check(Dropout is >= 0 and < 1, "resid_pdrop", Dropout);
        Check(LayerNormEpsilon > 0, "layer_norm_epsilon", LayerNormEpsilon);
        Check(InitializerRange > 0, "initializer_range", InitializerRange);
        Check(BosTokenId is null || (BosTokenId >= 0 && BosTokenId < VocabSize), "bos_token_id", BosTokenId);
        Check(EosTokenId is null || (EosTokenId >= 0 && EosTokenId < VocabSize), "eos_token_id", EosTokenId);
        Check(PadTokenId is null || (PadTokenId >= 0 && PadTokenId < VocabSize), "pad_token_id", PadTokenId);

        void Check(bool ok, string field, object? value, string why = "")
        {
            if (!ok) throw new FormatException($"{source}: field '{field}' has invalid value {Convert.ToString(value, CultureInfo.InvariantCulture)}{why}.");
        }
    }

    /// <summary>Reads a Hugging Face GPT-2 config.json; unknown fields are ignored, unsupported variants are refused.</summary>
    public static GptConfig ReadJson(string path)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException ex)
        {
            throw new FormatException($"{path}: not valid JSON ({ex.Message}).");
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new FormatException($"{path}: config must be a JSON object.");
            string? modelType = OptString(root, "model_type");
            if (modelType is not null && modelType != "gpt2")
                throw new FormatException($"{path}: field 'model_type' is '{modelType}'; only \"gpt2\" is supported.");
            string? activation = OptString(root, "activation_function");
            if (activation is not null && activation is not ("gelu_new" or "gelu_pytorch_tanh"))
                throw new FormatException($"{path}: field 'activation_function' is '{activation}'; only the tanh GELU (\"gelu_new\") is supported.");
            int embd = ReqInt(root, "n_embd");
            if (root.TryGetProperty("n_inner", out var inner) && inner.ValueKind != JsonValueKind.Null && inner.GetInt32() != 4 * embd)
                throw new FormatException($"{path}: field 'n_inner' is {inner.GetRawText()}; only the GPT-2 width 4·n_embd = {4 * embd} (or null) is supported.");
            if (root.TryGetProperty("scale_attn_by_inverse_layer_idx", out var inv) && inv.ValueKind == JsonValueKind.True)
                throw new FormatException($"{path}: field 'scale_attn_by_inverse_layer_idx' is true; unsupported.");
            if (root.TryGetProperty("scale_attn_weights", out var scale) && scale.ValueKind == JsonValueKind.False)
                throw new FormatException($"{path}: field 'scale_attn_weights' is false; unsupported.");
            string architecture = "GPT2LMHeadModel";
            if (root.TryGetProperty("architectures", out var arch) && arch.ValueKind == JsonValueKind.Array && arch.GetArrayLength() > 0)
                architecture = arch[0].GetString() ?? architecture;

            int positions = OptInt(root, "n_positions") ?? OptInt(root, "n_ctx")
                ?? throw new FormatException($"{path}: missing field 'n_positions'.");
            var config = new GptConfig
            {
                VocabSize = ReqInt(root, "vocab_size"),
                BlockSize = positions,
                NEmbd = embd,
                NLayer = ReqInt(root, "n_layer"),
                NHead = ReqInt(root, "n_head"),
                Dropout = OptFloat(root, "resid_pdrop") ?? 0f,
                LayerNormEpsilon = OptFloat(root, "layer_norm_epsilon") ?? 1e-5f,
                InitializerRange = OptFloat(root, "initializer_range") ?? 0.02f,
                BosTokenId = OptInt(root, "bos_token_id"),
                EosTokenId = OptInt(root, "eos_token_id"),
                PadTokenId = OptInt(root, "pad_token_id"),
                Architecture = architecture,
            };
            config.Validate(path);
            return config;

            int ReqInt(JsonElement o, string name) => OptInt(o, name) ?? throw new FormatException($"{path}: missing field '{name}'.");
            int? OptInt(JsonElement o, string name)
            {
                if (!o.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
                if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out int i))
                    throw new FormatException($"{path}: field '{name}' is {v.GetRawText()}, not an integer.");
                return i;
            }
            float? OptFloat(JsonElement o, string name)
            {
                if (!o.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
                if (v.ValueKind != JsonValueKind.Number) throw new FormatException($"{path}: field '{name}' is {v.GetRawText()}, not a number.");
                return (float)v.GetDouble();
            }
            string? OptString(JsonElement o, string name)
            {
                if (!o.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
                if (v.ValueKind != JsonValueKind.String) throw new FormatException($"{path}: field '{name}' is {v.GetRawText()}, not a string.");
                return v.GetString();
            }
        }
    }

    /// <summary>Writes config.json with the fields and names Hugging Face's GPT2Config uses, keys sorted as it sorts them.</summary>
    /// <paramref name="torchDtype"/>: the weights' dtype as transformers names it ("float32", "bfloat16", "float16").
    public void WriteJson(string path, string torchDtype = "float32")
    {
        Validate("config to write");
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("activation_function", "gelu_new");
            w.WriteStartArray("architectures");
            w.WriteStringValue(Architecture);
            w.WriteEndArray();
            w.WriteNumber("attn_pdrop", Dropout);
            WriteOptional("bos_token_id", BosTokenId);
            w.WriteNumber("embd_pdrop", Dropout);
            WriteOptional("eos_token_id", EosTokenId);
            bool classifier = Architecture == "GPT2ForSequenceClassification";
            if (classifier)
            {
                // One label, as transformers writes num_labels = 1 (the reward is a single regression output).
                w.WriteStartObject("id2label");
                w.WriteString("0", "LABEL_0");
                w.WriteEndObject();
            }
            w.WriteNumber("initializer_range", InitializerRange);
            if (classifier)
            {
                w.WriteStartObject("label2id");
                w.WriteNumber("LABEL_0", 0);
                w.WriteEndObject();
            }
            w.WriteNumber("layer_norm_epsilon", LayerNormEpsilon);
            w.WriteString("model_type", "gpt2");
            w.WriteNumber("n_ctx", BlockSize);
            w.WriteNumber("n_embd", NEmbd);
            w.WriteNumber("n_head", NHead);
            w.WriteNull("n_inner");
            w.WriteNumber("n_layer", NLayer);
            w.WriteNumber("n_positions", BlockSize);
            if (classifier) w.WriteNumber("num_labels", 1);
            WriteOptional("pad_token_id", PadTokenId);
            w.WriteNumber("resid_pdrop", Dropout);
            w.WriteBoolean("scale_attn_weights", true);
            w.WriteString("torch_dtype", torchDtype);
            w.WriteNumber("vocab_size", VocabSize);
            w.WriteEndObject();

            void WriteOptional(string name, int? value)
            {
                if (value is int v) w.WriteNumber(name, v);
                else w.WriteNull(name);
            }
        }
        ms.WriteByte((byte)'\n');
        AtomicFile.WriteAllBytes(path, ms.ToArray());
    }
}
