// How candidates and answers are written as JSON inside the stores and in JSONL files: one set of
// options, so a stored answer and an exported one read the same and compare byte for byte.
using System.Text.Json;
using System.Text.Json.Serialization;

namespace RlhfSharp.Feedback;

/// <summary>The JSON form of answers and candidates (snake_case, enums as lower-case words) that stores and files share.</summary>
public static class FeedbackJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
    };

    public static string Write(Answer answer) => JsonSerializer.Serialize(answer, Options);

    public static Answer ReadAnswer(string json) =>
        JsonSerializer.Deserialize<Answer>(json, Options) ?? throw new InvalidDataException($"stored answer is null: {json}");

    public static string Write(IReadOnlyList<Candidate> candidates) => JsonSerializer.Serialize(candidates, Options);

    public static IReadOnlyList<Candidate> ReadCandidates(string json) =>
        JsonSerializer.Deserialize<List<Candidate>>(json, Options) ?? throw new InvalidDataException($"stored candidates are null: {json}");

    /// <summary>Two answers are the same when their JSON is (records compare lists by reference, so == would not do).</summary>
    public static bool SameAnswer(Answer a, Answer b) => Write(a) == Write(b);
}
