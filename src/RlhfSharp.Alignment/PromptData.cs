// Prompts for PPO, evaluation and sampling: TRL's prompt-only JSONL ({"prompt"} per line) or a plain text file with one
// prompt per line. Errors name the file and line (JsonlReader).
using RlhfSharp.Feedback;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment;

public static class PromptData
{
    /// <summary>
    /// The prompts of <paramref name="path"/>: a file ending in .jsonl holds {"prompt": str} objects (other fields are
    /// ignored), any other file one prompt per line, kept as written. Blank lines are skipped; a file without a prompt is refused.
    /// </summary>
    public static List<string> Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"prompt file {path} does not exist.", path);
        List<string> prompts = path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase)
            ? [.. JsonlReader.Read(path, "prompt file").Select(line => line.String("prompt"))]
            : [.. Utf8TextFile.ReadLines(path).Select(line => line.Text).Where(line => line.Trim().Length > 0)];
        if (prompts.Count == 0) throw new FormatException($"{path}: no prompts (the file has no non-blank lines).");
        return prompts;
    }
}
