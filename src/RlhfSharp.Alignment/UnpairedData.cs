// Unpaired preferences, TRL's {"prompt","completion","label"} form (KTO: Ethayarajh et al. 2024): one completion judged
// desirable (true) or undesirable (false) on its own, standard or conversational, from JSONL or Parquet. The record a KTO
// trainer reads; the reader names file:line and the field of a bad row.
using RlhfSharp.Feedback;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment;

/// <summary>One unpaired judgment.</summary>
/// <param name="Prompt">The prompt text (rendered with the chat template when the row was conversational).</param>
/// <param name="Completion">The judged completion.</param>
/// <param name="Desirable">TRL's "label": true when the completion is desirable.</param>
/// <param name="Source">"FILE:LINE", for error messages.</param>
/// <param name="Templated">Rendered by the chat template: encode with special tokens recognised and no appended EOS (TokenRows.Encode).</param>
public sealed record UnpairedExample(string Prompt, string Completion, bool Desirable, string Source = "", bool Templated = false);

public static class UnpairedData
{
    /// <summary>Reads {"prompt","completion","label"} rows (<see cref="DatasetForms.Unpaired"/>); conversational rows use <paramref name="template"/> (default when null).</summary>
    public static IReadOnlyList<UnpairedExample> Read(string path, ChatTemplate? template = null)
    {
        var list = JsonlReader.Read(path, "unpaired preference file").Select(line => FromLine(line, template)).ToList();
        if (list.Count == 0) throw new FormatException($"{path}: no unpaired preference examples.");
        return list;
    }

    /// <summary>One row as an example.</summary>
    public static UnpairedExample FromLine(JsonlLine line, ChatTemplate? template = null)
    {
        if (!line.Has("completion") || !line.Has("label"))
            throw line.Error(line.Has("chosen") || line.Has("rejected")
                ? $"this is a paired preference; KTO reads unpaired rows: {DatasetForms.Unpaired}."
                : $"not an unpaired preference; the accepted form is {DatasetForms.Unpaired}.");
        bool label = line.Bool("label");
        if (line.IsConversational("prompt") || line.IsConversational("completion"))
        {
            var (p, c) = DatasetForms.Render(template ?? ChatTemplate.Default, DatasetForms.Messages(line, "prompt"), [DatasetForms.Messages(line, "completion")], line);
            return new UnpairedExample(p, c[0], label, line.Where, Templated: true);
        }
        string completion = line.String("completion");
        if (completion.Length == 0) throw line.Error("field \"completion\" is empty.");
        return new UnpairedExample(line.String("prompt"), completion, label, line.Where);
    }
}
