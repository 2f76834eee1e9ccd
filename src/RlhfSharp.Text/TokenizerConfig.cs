// Hugging Face's tokenizer side files, written beside vocab.json/merges.txt (or char_tokenizer.json) by every tokenizer's
// Save: tokenizer_config.json (special tokens, `chat_template`, `tokenizer_class`, the keys transformers' GPT2Tokenizer
// writes) and special_tokens_map.json. Reading takes the chat template from tokenizer_config.json (a string, or the
// list-of-{name, template} form, whose "default" entry is used) or from chat_template.jinja (newer transformers save it
// there), with the bos/eos token texts the template uses.
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using RlhfSharp.Text.Chat;

namespace RlhfSharp.Text;

public static class TokenizerConfig
{
    public const string ConfigFileName = "tokenizer_config.json";
    public const string SpecialTokensMapFileName = "special_tokens_map.json";
    public const string ChatTemplateFileName = "chat_template.jinja";

    private static readonly JsonSerializerOptions Pretty = new() { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>
    /// Writes tokenizer_config.json and special_tokens_map.json for <paramref name="tokenizer"/>: bos, eos, unk and pad are
    /// its end-of-text token (GPT-2 has no other); `chat_template` is written when the tokenizer carries one.
    /// <paramref name="tokenizerClass"/> names the transformers class that reads the folder (null: none can, e.g. our char tokenizer).
    /// </summary>
    public static void Write(string directory, ITokenizer tokenizer, string? tokenizerClass)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        Directory.CreateDirectory(directory);
        string? eos = tokenizer.EosId is int id ? tokenizer.SpecialTokens.FirstOrDefault(kv => kv.Value == id).Key : null;
        var decoder = new JsonObject();
        foreach (var (text, tokenId) in tokenizer.SpecialTokens.OrderBy(kv => kv.Value))
            decoder[tokenId.ToString(System.Globalization.CultureInfo.InvariantCulture)] = new JsonObject
            {
                ["content"] = text, ["lstrip"] = false, ["normalized"] = true, ["rstrip"] = false, ["single_word"] = false, ["special"] = true,
            };
        // Keys in the order transformers writes them (sorted).
        var config = new JsonObject
        {
            ["add_bos_token"] = false,
            ["add_prefix_space"] = false,
            ["added_tokens_decoder"] = decoder,
            ["bos_token"] = eos,
        };
        if (tokenizer.ChatTemplate is { } template) config["chat_template"] = template.Source;
        config["clean_up_tokenization_spaces"] = false;
        config["eos_token"] = eos;
        config["errors"] = "replace";
        config["extra_special_tokens"] = new JsonObject();
        config["pad_token"] = eos;
        if (tokenizerClass is not null) config["tokenizer_class"] = tokenizerClass;
        config["unk_token"] = eos;
        File.WriteAllText(Path.Combine(directory, ConfigFileName), config.ToJsonString(Pretty) + "\n", new UTF8Encoding(false));

        var map = new JsonObject();
        if (eos is not null)
            foreach (var key in new[] { "bos_token", "eos_token", "pad_token", "unk_token" }) map[key] = eos;
        File.WriteAllText(Path.Combine(directory, SpecialTokensMapFileName), map.ToJsonString(Pretty) + "\n", new UTF8Encoding(false));
    }

    /// <summary>
    /// Makes the pad token of a saved folder the token with id <paramref name="padId"/> (tokenizer_config.json and
    /// special_tokens_map.json): a reward model pads with a token other than the EOS its rows end with (Gpt.Save).
    /// </summary>
    public static void SetPadToken(string directory, ITokenizer tokenizer, int padId)
    {
        string pad = tokenizer.Decode([padId]);
        foreach (var file in new[] { ConfigFileName, SpecialTokensMapFileName })
        {
            string path = Path.Combine(directory, file);
            if (JsonNode.Parse(File.ReadAllText(path)) is not JsonObject obj) throw new FormatException($"{path}: expected a JSON object.");
            obj["pad_token"] = pad;
            File.WriteAllText(path, obj.ToJsonString(Pretty) + "\n", new UTF8Encoding(false));
        }
    }

    /// <summary>
    /// The chat template stored in <paramref name="directory"/> (tokenizer_config.json's `chat_template`, else
    /// chat_template.jinja), or null when there is none. A template we cannot render is refused here, naming the file.
    /// </summary>
    public static ChatTemplate? ReadChatTemplate(string directory, ITokenizer tokenizer)
    {
        string configPath = Path.Combine(directory, ConfigFileName);
        string? source = null, bos = null, eos = null, origin = configPath;
        if (File.Exists(configPath))
        {
            JsonNode? root;
            try
            {
                root = JsonNode.Parse(File.ReadAllText(configPath));
            }
            catch (JsonException ex)
            {
                throw new FormatException($"{configPath}: not valid JSON ({ex.Message}).", ex);
            }
            if (root is not JsonObject obj) throw new FormatException($"{configPath}: expected a JSON object.");
            bos = TokenText(obj["bos_token"], configPath, "bos_token");
            eos = TokenText(obj["eos_token"], configPath, "eos_token");
            source = obj["chat_template"] switch
            {
                null => null,
                JsonValue v when v.TryGetValue(out string? s) => s,
                JsonArray named => named.OfType<JsonObject>().FirstOrDefault(t => t["name"]?.GetValue<string>() == "default")?["template"]?.GetValue<string>()
                    ?? throw new FormatException($"{configPath}: field \"chat_template\" lists named templates but none is called \"default\"."),
                _ => throw new FormatException($"{configPath}: field \"chat_template\" must be a string or a list of {{name, template}}."),
            };
        }
        string jinjaPath = Path.Combine(directory, ChatTemplateFileName);
        if (source is null && File.Exists(jinjaPath))
        {
            source = File.ReadAllText(jinjaPath);
            origin = jinjaPath;
        }
        if (source is null) return null;
        string? fallback = tokenizer.EosId is int id ? tokenizer.SpecialTokens.FirstOrDefault(kv => kv.Value == id).Key : null;
        return new ChatTemplate(source, bos ?? fallback, eos ?? fallback, origin);
    }

    // A special token is written as its text or as an AddedToken object {"content": ...}.
    private static string? TokenText(JsonNode? node, string path, string field) => node switch
    {
        null => null,
        JsonValue v when v.TryGetValue(out string? s) => s,
        JsonObject o when o["content"] is JsonValue c && c.TryGetValue(out string? s) => s,
        _ => throw new FormatException($"{path}: field \"{field}\" must be a string or an object with \"content\"."),
    };
}
