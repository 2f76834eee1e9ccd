// A constitution (Bai et al. 2022, "Constitutional AI: Harmlessness from AI Feedback"): a list of principles, each a
// critique request and a revision request as in the paper's appendix, and optionally a comparison question for the RL-CAI
// stage and a programmatic check (a StoryChecks rule) that decides the principle by code instead of a critic model.
// The file is JSONL, one principle per line (blank lines and lines starting with // are skipped):
//   {"name": "proper-ending",                                   required, unique
//    "critique_request": "Identify specific ways in which …",   required: asked of the critic after the response
//    "revision_request": "Please rewrite the assistant …",      required: asked of the policy after the critique
//    "comparison": "Which response ends with a finished …?",    optional: the RL-CAI question (default from the name)
//    "check": "proper-ending",                                  optional: one of StoryChecks.Names
//    "min_words": 5}                                            optional: only with "check": "min-length"
// A bad line is one error naming FILE:LINE and the field.
using System.Text.Json;
using RlhfSharp.Feedback;
using RlhfSharp.Text.StoryWorld;

namespace RlhfSharp.Alignment.Constitutional;

/// <summary>One principle of a constitution.</summary>
/// <param name="Name">Its name (unique in the file), written into every record it produced.</param>
/// <param name="CritiqueRequest">What the critic is asked after the response (the paper's CritiqueRequest).</param>
/// <param name="RevisionRequest">What the policy is asked after the critique (the paper's RevisionRequest).</param>
/// <param name="Comparison">The RL-CAI question: which of two responses better follows the principle.</param>
/// <param name="Check">A programmatic check (<see cref="StoryChecks"/>) deciding the principle instead of the critic; null for none.</param>
/// <param name="MinWords">min-length's word count.</param>
public sealed record Principle(string Name, string CritiqueRequest, string RevisionRequest, string Comparison, string? Check = null,
    int MinWords = StoryChecks.DefaultMinWords)
{
    /// <summary>Null when <paramref name="response"/> satisfies the check, else the violation; only for a checked principle.</summary>
    public string? Violation(string prompt, string response) =>
        StoryChecks.Violation(Check ?? throw new InvalidOperationException($"principle \"{Name}\" has no programmatic check."), response, prompt, MinWords);
}

public sealed class Constitution
{
    private static readonly string[] Fields = ["name", "critique_request", "revision_request", "comparison", "check", "min_words"];

    public Constitution(IReadOnlyList<Principle> principles)
    {
        if (principles.Count == 0) throw new ArgumentException("a constitution needs at least one principle.");
        Principles = principles;
    }

    public IReadOnlyList<Principle> Principles { get; }

    /// <summary>The principles with a programmatic check.</summary>
    public IEnumerable<Principle> Checked => Principles.Where(p => p.Check is not null);

    /// <summary>Reads a constitution file (format in the file header); a bad line throws naming FILE:LINE and the field.</summary>
    public static Constitution Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"constitution {path} does not exist.", path);
        var principles = new List<Principle>();
        var names = new Dictionary<string, int>(StringComparer.Ordinal);
        int number = 0;
        foreach (string raw in File.ReadLines(path))
        {
            number++;
            string text = raw.Trim();
            if (text.Length == 0 || text.StartsWith("//", StringComparison.Ordinal)) continue;
            JsonElement element;
            try
            {
                using var doc = JsonDocument.Parse(text);
                element = doc.RootElement.Clone();
            }
            catch (JsonException ex)
            {
                throw new FormatException($"{path}:{number}: not valid JSON ({ex.Message.Split('.')[0]}).");
            }
            var line = new JsonlLine(path, number, element);
            if (element.ValueKind != JsonValueKind.Object) throw line.Error("a principle must be a JSON object.");
            foreach (var property in element.EnumerateObject())
            {
                if (!Fields.Contains(property.Name))
                    throw line.Error($"unknown field \"{property.Name}\"; a principle's fields are {string.Join(", ", Fields)}.");
            }
            string name = NonEmpty(line, "name");
            if (names.TryGetValue(name, out int first)) throw line.Error($"field \"name\": \"{name}\" is already the name of the principle on line {first}.");
            names[name] = number;
            string critique = NonEmpty(line, "critique_request"), revision = NonEmpty(line, "revision_request");
            string? check = line.OptionalString("check");
            if (check is not null && !StoryChecks.Names.Contains(check))
                throw line.Error($"field \"check\": \"{check}\" is not a check; the checks are {string.Join(", ", StoryChecks.Names)}.");
            int minWords = StoryChecks.DefaultMinWords;
            if (line.Has("min_words"))
            {
                if (check != "min-length") throw line.Error("field \"min_words\" only applies with \"check\": \"min-length\".");
                minWords = line.Int("min_words");
                if (minWords < 1) throw line.Error($"field \"min_words\" must be 1 or more; got {minWords}.");
            }
            string comparison = line.Has("comparison") ? NonEmpty(line, "comparison")
                : $"Which response better follows the principle \"{name}\"?";
            principles.Add(new Principle(name, critique, revision, comparison, check, minWords));
        }
        if (principles.Count == 0) throw new FormatException($"{path}: no principles (the file has no non-blank lines).");
        return new Constitution(principles);
    }

    private static string NonEmpty(JsonlLine line, string field)
    {
        string value = line.String(field);
        return value.Trim().Length > 0 ? value : throw line.Error($"field \"{field}\" is empty.");
    }
}
