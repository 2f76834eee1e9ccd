// Dataset rows (the JSON objects JsonlReader hands out) written as a Parquet file, the form Hugging Face Hub datasets ship
// in. The schema is derived from the rows: strings, booleans, integers and numbers become columns of that type; an array of
// strings or integers a list column; a list of messages a list of {role, content} structs; a list of such lists (a
// conversational "responses") a list of lists. A key missing from some rows makes its column nullable.
using System.Text.Json;
using System.Text.Json.Nodes;
using Parquet.Schema;
using Parquet.Serialization;

namespace RlhfSharp.Feedback;

public static class ParquetRows
{
    /// <summary>Writes <paramref name="rows"/> (each a flat object of the shapes above) to <paramref name="stream"/>.</summary>
    public static async Task WriteAsync(Stream stream, IReadOnlyList<JsonObject> rows, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(rows);
        var names = new List<string>();
        foreach (var row in rows)
            foreach (var (key, _) in row)
                if (!names.Contains(key)) names.Add(key);
        var fields = new List<Field>();
        foreach (var name in names)
        {
            var sample = rows.Select(r => r[name]).FirstOrDefault(v => v is not null)
                ?? throw new ArgumentException($"parquet export: column \"{name}\" holds only nulls.");
            bool nullable = rows.Any(r => r[name] is null);
            fields.Add(FieldFor(name, sample, nullable));
        }
        var schema = new ParquetSchema(fields);
        var data = rows.Select(r => (IDictionary<string, object?>)names.ToDictionary(n => n, n => ToClr(r[n]))).ToList();
        await ParquetSerializer.SerializeUntypedAsync(data, schema, stream, cancellationToken: ct);
    }

    private static Field FieldFor(string name, JsonNode sample, bool nullable) => sample switch
    {
        JsonValue v when v.GetValueKind() == JsonValueKind.String => new DataField(name, typeof(string), nullable),
        JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => new DataField(name, nullable ? typeof(bool?) : typeof(bool), nullable),
        JsonValue v when v.TryGetValue(out int _) => new DataField(name, nullable ? typeof(int?) : typeof(int), nullable),
        JsonValue v when v.GetValueKind() == JsonValueKind.Number => new DataField(name, nullable ? typeof(double?) : typeof(double), nullable),
        JsonArray { Count: > 0 } a when a[0] is JsonObject => new ListField(name, MessageStruct()),
        JsonArray { Count: > 0 } a when a[0] is JsonArray => new ListField(name, new ListField("element", MessageStruct())),
        JsonArray { Count: > 0 } a when a[0] is JsonValue e && e.TryGetValue(out int _) => new ListField(name, new DataField("element", typeof(int))),
        JsonArray => new ListField(name, new DataField("element", typeof(string))),
        _ => throw new ArgumentException($"parquet export: column \"{name}\" holds {sample.GetValueKind()}, which has no Parquet form here."),
    };

    private static StructField MessageStruct() =>
        new("element", new DataField("role", typeof(string)), new DataField("content", typeof(string)));

    private static IDictionary<string, object> Struct(JsonObject o) => o.ToDictionary(kv => kv.Key, kv => ToClr(kv.Value)!);

    private static object? ToClr(JsonNode? node) => node switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValue<bool>(),
        JsonValue v when v.TryGetValue(out int i) => i,
        JsonValue v => v.GetValue<double>(),
        // Parquet.Net wants typed lists: a list of structs as dictionaries, a list of lists of structs, of strings, of ints.
        JsonArray a when a.Count > 0 && a[0] is JsonObject => a.Select(x => Struct((JsonObject)x!)).ToList(),
        JsonArray a when a.Count > 0 && a[0] is JsonArray => a.Select(x => x!.AsArray().Select(y => Struct((JsonObject)y!)).ToList()).ToList(),
        JsonArray a when a.Count > 0 && a[0] is JsonValue e && e.TryGetValue(out int _) => a.Select(x => x!.GetValue<int>()).ToList(),
        JsonArray a => a.Select(x => x!.GetValue<string>()).ToList(),
        JsonObject o => Struct(o),
        _ => throw new ArgumentException($"parquet export: {node.GetValueKind()} has no Parquet form here."),
    };
}
