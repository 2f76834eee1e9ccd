// Prompts for PPO, evaluation and sampling: TRL's prompt-only form ({"prompt": str} or a conversational
// {"prompt": [messages]}, rendered with the chat template and its generation prompt) in JSONL or Parquet, or a plain text
// file with one prompt per line. Errors name the file and line (JsonlReader).
using RlhfSharp.Feedback;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment;

public static class PromptData
{
    /// <summary>
    /// The prompts of <paramref name="path"/>: a file ending in .jsonl or .parquet holds {"prompt"} rows (a string, or a list
    /// of messages rendered with <paramref name="template"/>, the default when null; other fields are ignored), any other
    /// file one prompt per line, kept as written. Blank lines are skipped; a file without a prompt is refused.
    /// </summary>
    public static List<string> Read(string path, ChatTemplate? template = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"prompt file {path} does not exist.", path);
        List<string> prompts = path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase) || JsonlReader.IsParquet(path)
            ? [.. JsonlReader.Read(path, "prompt file").Select(line => FromLine(line, template))]
            : [.. Utf8TextFile.ReadLines(path).Select(line => line.Text).Where(line => line.Trim().Length > 0)];
        if (prompts.Count == 0) throw new FormatException($"{path}: no prompts (the file has no non-blank lines).");
        return prompts;
    }

    /// <summary>
    /// Prompts with their reference outputs (RL on a metric): JSONL or Parquet rows {"prompt", "reference"}, the reference a
    /// string or a list of strings (several references). A row without one is an error naming the file and line. A prompt
    /// given twice keeps the references of both rows.
    /// </summary>
    public static List<(string Prompt, string[] References)> ReadWithReferences(string path, ChatTemplate? template = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"prompt file {path} does not exist.", path);
        if (!path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase) && !JsonlReader.IsParquet(path))
            throw new FormatException($"{path}: prompts with references must be JSONL or Parquet rows {{\"prompt\", \"reference\"}}.");
        var rows = new List<(string Prompt, string[] References)>();
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var line in JsonlReader.Read(path, "prompt file"))
        {
            string prompt = FromLine(line, template);
            string[] references = line.Optional("reference") switch
            {
                null => throw line.Error("field \"reference\" is missing: a metric reward compares each response with its prompt's reference."),
                { ValueKind: System.Text.Json.JsonValueKind.Array } => line.StringArray("reference", minCount: 1),
                _ => [line.String("reference")],
            };
            if (index.TryGetValue(prompt, out int i)) rows[i] = (prompt, [.. rows[i].References, .. references]);
            else
            {
                index[prompt] = rows.Count;
                rows.Add((prompt, references));
            }
        }
        if (rows.Count == 0) throw new FormatException($"{path}: no prompts (the file has no non-blank lines).");
        return rows;
    }

    /// <summary>One prompt-only row as the text a model continues.</summary>
    public static string FromLine(JsonlLine line, ChatTemplate? template = null)
    {
        if (line.IsConversational("prompt")) return DatasetForms.RenderPromptOnly(template ?? ChatTemplate.Default, line);
        if (!line.Has("prompt") && (line.Has("messages") || line.Has("text")))
            throw line.Error($"a prompt file needs a \"prompt\" column; the accepted forms are {DatasetForms.Prompt}.");
        return line.String("prompt");
    }
}
