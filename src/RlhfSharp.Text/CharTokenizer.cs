// One token per Unicode code point seen in a corpus, plus <|endoftext|>: the tokenizer for the smallest
// experiments (nanoGPT's shakespeare_char), where a tiny vocabulary matters more than short sequences.
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace RlhfSharp.Text;

public sealed class CharTokenizer : ITokenizer
{
    /// <summary>File written by Save and read by Load.</summary>
    public const string FileName = "char_tokenizer.json";

    private readonly string[] _tokens;
    private readonly Dictionary<int, int> _runeToId = new();
    private readonly Dictionary<string, int> _special;

    /// <summary>Builds from the code points in id order (each a one-code-point string); the end-of-text token is appended.</summary>
    public CharTokenizer(IEnumerable<string> characters)
    {
        var list = new List<string>();
        foreach (string ch in characters)
        {
            if (!Rune.TryGetRuneAt(ch, 0, out Rune r) || r.Utf16SequenceLength != ch.Length)
                throw new ArgumentException($"Character tokens must be exactly one code point, got \"{ch}\" (length {ch.Length}).", nameof(characters));
            if (!_runeToId.TryAdd(r.Value, list.Count))
                throw new ArgumentException($"Character U+{r.Value:X4} is listed twice.", nameof(characters));
            list.Add(ch);
        }
        _special = new Dictionary<string, int>(StringComparer.Ordinal) { [Gpt2Tokenizer.EndOfText] = list.Count };
        list.Add(Gpt2Tokenizer.EndOfText);
        _tokens = list.ToArray();
    }

    /// <summary>The vocabulary of a corpus: its distinct code points in code-point order (special-token text excluded).</summary>
    public static CharTokenizer FromCorpus(string corpus)
    {
        var seen = new SortedSet<int>();
        foreach (Rune r in corpus.Replace(Gpt2Tokenizer.EndOfText, "", StringComparison.Ordinal).EnumerateRunes()) seen.Add(r.Value);
        return new CharTokenizer(seen.Select(v => new Rune(v).ToString()));
    }

    public int VocabSize => _tokens.Length;

    public int? EosId => _special[Gpt2Tokenizer.EndOfText];

    public ChatTemplate? ChatTemplate { get; set; }

    public IReadOnlyDictionary<string, int> SpecialTokens => _special;

    public int[] Encode(string text) => Encode(text, allowSpecial: false);

    public int[] Encode(string text, bool allowSpecial)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length);
        int i = 0;
        while (i < text.Length)
        {
            if (allowSpecial && string.CompareOrdinal(text, i, Gpt2Tokenizer.EndOfText, 0, Gpt2Tokenizer.EndOfText.Length) == 0)
            {
                ids.Add(_special[Gpt2Tokenizer.EndOfText]);
                i += Gpt2Tokenizer.EndOfText.Length;
                continue;
            }
            Rune.DecodeFromUtf16(text.AsSpan(i), out Rune r, out int width);
            if (!_runeToId.TryGetValue(r.Value, out int id))
                throw new ArgumentException($"Character U+{r.Value:X4} ('{r}') at index {i} is not in the character vocabulary of {_tokens.Length - 1} characters.", nameof(text));
            ids.Add(id);
            i += width;
        }
        return ids.ToArray();
    }

    public string Decode(ReadOnlySpan<int> ids)
    {
        var sb = new StringBuilder(ids.Length);
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)_tokens.Length)
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"Token id {id} is outside the vocabulary [0, {_tokens.Length}).");
            sb.Append(_tokens[id]);
        }
        return sb.ToString();
    }

    public void Save(string directory)
    {
        Directory.CreateDirectory(directory);
        var doc = new CharTokenizerFile("char", _tokens[..^1], Gpt2Tokenizer.EndOfText);
        var options = new JsonSerializerOptions { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
        File.WriteAllText(Path.Combine(directory, FileName), JsonSerializer.Serialize(doc, options), new UTF8Encoding(false));
        TokenizerConfig.Write(directory, this, tokenizerClass: null);
    }

    /// <summary>Loads char_tokenizer.json from a folder.</summary>
    public static CharTokenizer Load(string directory)
    {
        string path = Path.Combine(directory, FileName);
        if (!File.Exists(path)) throw new FileNotFoundException($"Character tokenizer file not found: {path}", path);
        CharTokenizerFile? doc;
        try
        {
            doc = JsonSerializer.Deserialize<CharTokenizerFile>(Utf8TextFile.ReadAllText(path));
        }
        catch (JsonException ex)
        {
            throw new FormatException($"{path} line {(ex.LineNumber ?? 0) + 1}: invalid JSON ({ex.Message})", ex);
        }
        if (doc is null || doc.Type != "char" || doc.Characters is null)
            throw new FormatException($"{path}: expected {{\"type\":\"char\",\"characters\":[...]}}.");
        CharTokenizer tokenizer;
        try
        {
            tokenizer = new CharTokenizer(doc.Characters);
        }
        catch (ArgumentException ex)
        {
            throw new FormatException($"{path}: {ex.Message}", ex);
        }
        tokenizer.ChatTemplate = TokenizerConfig.ReadChatTemplate(directory, tokenizer);
        return tokenizer;
    }

    private sealed record CharTokenizerFile(
        [property: System.Text.Json.Serialization.JsonPropertyName("type")] string Type,
        [property: System.Text.Json.Serialization.JsonPropertyName("characters")] string[] Characters,
        [property: System.Text.Json.Serialization.JsonPropertyName("eos")] string Eos);
}
