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

    /// <summary>One prompt-only row as the text a model continues.</summary>
    public static string FromLine(JsonlLine line, ChatTemplate? template = null)
    {
        if (line.IsConversational("prompt")) return DatasetForms.RenderPromptOnly(template ?? ChatTemplate.Default, line);
        if (!line.Has("prompt") && (line.Has("messages") || line.Has("text")))
            throw line.Error($"a prompt file needs a \"prompt\" column; the accepted forms are {DatasetForms.Prompt}.");
        return line.String("prompt");
    }
}
