// The one reader of JSONL datasets in TRL's column names (docs/design.md "Formats"): every non-blank line is one JSON
// object, handed over with its file and line number; the column helpers read a field or throw a FormatException
// "FILE:LINE: field "NAME" ..." naming what is wrong. Each format is a small mapping on top of it:
//   {"prompt"}                                   prompts          Alignment.PromptData
//   {"prompt","completion"}                      demonstrations   Alignment.LanguageModeling.SftData
//   {"prompt","chosen","rejected"}               pairs            Alignment.RewardModeling.PreferenceData
//   {"prompt","responses","ranking"|"best"}      K-wise labels    Alignment.RewardModeling.PreferenceData
//   {"prompt","responses"}                       queries          Feedback.Jsonl
// Lines are read as strict UTF-8 (Utf8TextFile): a byte that is not UTF-8 is an error naming file, line and byte offset.
// The same columns may come from a Parquet file (Hugging Face Hub datasets ship as Parquet): a file ending in .parquet is
// read row by row into the same JSON objects (lists and structs become arrays and objects), each error naming "FILE: row N".
using System.Text.Json;
using Parquet.Serialization;
using RlhfSharp.Text;

namespace RlhfSharp.Feedback;

public static class JsonlReader
{
    /// <summary>
    /// The JSON objects of <paramref name="path"/>, one per non-blank line, in file order. <paramref name="what"/> names the
    /// file's role in the not-found message ("preference file", "SFT data"). Throws <see cref="FormatException"/> at the
    /// first line that is not valid JSON or not an object; a line is parsed only when the caller asks for it.
    /// </summary>
    public static IEnumerable<JsonlLine> Read(string path, string what)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{what} {path} does not exist.", path);
        return IsParquet(path) ? ParquetRows(path) : Lines(path);
    }

    /// <summary>True for a file read as Parquet (its name ends in .parquet).</summary>
    public static bool IsParquet(string path) => path.EndsWith(".parquet", StringComparison.OrdinalIgnoreCase);

    private static IEnumerable<JsonlLine> ParquetRows(string path)
    {
        IList<Dictionary<string, object>> rows;
        try
        {
            using var stream = File.OpenRead(path);
            rows = Blocking.Run(() => ParquetSerializer.DeserializeUntypedAsync(stream)).Data;
        }
        catch (Exception ex) when (ex is IOException or InvalidDataException or NotSupportedException or InvalidOperationException or ArgumentException or Parquet.ParquetException)
        {
            throw new FormatException($"{path}: not a readable Parquet file ({ex.Message}).", ex);
        }
        for (int i = 0; i < rows.Count; i++)
            yield return new JsonlLine(path, i + 1, JsonSerializer.SerializeToElement(rows[i]), IsRow: true);
    }

    private static IEnumerable<JsonlLine> Lines(string path)
    {
        foreach (var (number, text) in Utf8TextFile.ReadLines(path))
        {
            if (string.IsNullOrWhiteSpace(text)) continue;
            JsonElement element;
            try
            {
                using var doc = JsonDocument.Parse(text);
                element = doc.RootElement.Clone(); // outlives the document, so a caller may keep the line
            }
            catch (JsonException ex)
            {
                throw new FormatException($"{path}:{number}: not valid JSON ({ex.Message}).", ex);
            }
            var line = new JsonlLine(path, number, element);
            if (element.ValueKind != JsonValueKind.Object) throw line.Error($"expected a JSON object per line, got {element.ValueKind}.");
            yield return line;
        }
    }
}

/// <summary>One JSON object of a JSONL file, with where it stands ("FILE:LINE") for every error about it.</summary>
/// <param name="File">The file it was read from.</param>
/// <param name="Number">Its line number, counting from 1 (blank lines count).</param>
/// <param name="Object">The line's JSON object.</param>
/// <param name="IsRow">A row of a Parquet file (Number counts rows from 1) rather than a line of text.</param>
public sealed record JsonlLine(string File, int Number, JsonElement Object, bool IsRow = false)
{
    /// <summary>"FILE:LINE" (or "FILE: row N" for Parquet), the prefix of every error about this line.</summary>
    public string Where => IsRow ? $"{File}: row {Number}" : $"{File}:{Number}";

    /// <summary>The exception for a problem on this line: "FILE:LINE: <paramref name="message"/>".</summary>
    public FormatException Error(string message) => new($"{Where}: {message}");

    /// <summary>The field's value, or null when it is absent or JSON null (an optional column left out).</summary>
    public JsonElement? Optional(string field) =>
        Object.TryGetProperty(field, out var value) && value.ValueKind != JsonValueKind.Null ? value : null;

    /// <summary>True when the field is present and not null.</summary>
    public bool Has(string field) => Optional(field) is not null;

    /// <summary>A required string column.</summary>
    public string String(string field) => AsString(Required(field), field);

    /// <summary>An optional string column; null when absent.</summary>
    public string? OptionalString(string field) => Optional(field) is { } value ? AsString(value, field) : null;

    /// <summary>A required array of strings with at least <paramref name="minCount"/> entries.</summary>
    public string[] StringArray(string field, int minCount = 0)
    {
        var array = Array(Required(field), field, "strings");
        if (array.Length < minCount) throw Error($"field \"{field}\" needs at least {minCount} entries; got {array.Length}.");
        return [.. array.Select((e, i) => AsString(e, $"{field}[{i}]"))];
    }

    /// <summary>A required integer column.</summary>
    public int Int(string field) => AsInt(Required(field), field);

    /// <summary>A required array of integers.</summary>
    public int[] IntArray(string field) => [.. Array(Required(field), field, "integers").Select((e, i) => AsInt(e, $"{field}[{i}]"))];

    /// <summary>An optional finite number column; null when absent.</summary>
    public double? OptionalNumber(string field)
    {
        if (Optional(field) is not { } value) return null;
        return value.ValueKind == JsonValueKind.Number && value.TryGetDouble(out double x) && double.IsFinite(x)
            ? x : throw Error($"field \"{field}\" must be a number; got {Shown(value)}.");
    }

    /// <summary>A required true/false column.</summary>
    public bool Bool(string field) => OptionalBool(field) ?? throw Error($"field \"{field}\" is missing.");

    /// <summary>True when the field is a list of messages (TRL's conversational form): an array whose entries are objects.</summary>
    public bool IsConversational(string field) =>
        Optional(field) is { ValueKind: JsonValueKind.Array } a && a.GetArrayLength() > 0 && a[0].ValueKind == JsonValueKind.Object;

    /// <summary>A required list of {"role": str, "content": str} messages (other keys are ignored), at least one.</summary>
    public (string Role, string Content)[] Messages(string field) => Messages(Required(field), field);

    /// <summary>A value of this line (e.g. one entry of an array column) read as a list of messages; <paramref name="field"/> names it in errors.</summary>
    public (string Role, string Content)[] Messages(JsonElement value, string field)
    {
        var array = Array(value, field, "messages");
        if (array.Length == 0) throw Error($"field \"{field}\" is an empty list of messages.");
        var messages = new (string, string)[array.Length];
        for (int i = 0; i < array.Length; i++)
        {
            var m = array[i];
            if (m.ValueKind != JsonValueKind.Object) throw Error($"field \"{field}[{i}]\" must be a message {{\"role\", \"content\"}}; got {Shown(m)}.");
            if (!m.TryGetProperty("role", out var role) || role.ValueKind != JsonValueKind.String)
                throw Error($"field \"{field}[{i}].role\" must be a string.");
            if (!m.TryGetProperty("content", out var content) || content.ValueKind != JsonValueKind.String)
                throw Error($"field \"{field}[{i}].content\" must be a string (tool calls and content parts are not supported).");
            messages[i] = (role.GetString()!, content.GetString()!);
        }
        return messages;
    }

    /// <summary>An optional true/false column; null when absent.</summary>
    public bool? OptionalBool(string field) =>
        Optional(field) is not { } value ? null
        : value.ValueKind is JsonValueKind.True or JsonValueKind.False ? value.GetBoolean()
        : throw Error($"field \"{field}\" must be true or false; got {Shown(value)}.");

    private JsonElement Required(string field) => Optional(field) ?? throw Error($"field \"{field}\" is missing.");

    private string AsString(JsonElement value, string field) =>
        value.ValueKind == JsonValueKind.String ? value.GetString()! : throw Error($"field \"{field}\" must be a string; got {Shown(value)}.");

    private int AsInt(JsonElement value, string field) =>
        value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out int i) ? i : throw Error($"field \"{field}\" must be an integer; got {Shown(value)}.");

    private JsonElement[] Array(JsonElement value, string field, string of) =>
        value.ValueKind == JsonValueKind.Array ? [.. value.EnumerateArray()] : throw Error($"field \"{field}\" must be an array of {of}; got {Shown(value)}.");

    /// <summary>The offending value as written, cut to 40 characters.</summary>
    private static string Shown(JsonElement value)
    {
        string raw = value.GetRawText();
        return raw.Length <= 40 ? raw : raw[..40] + "…";
    }
}
