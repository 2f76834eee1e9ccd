// TRL's dataset forms (trl docs/source/dataset_formats.md), standard and conversational, read from JSONL or Parquet:
//
//   type                 standard                                  conversational (lists of {"role","content"})
//   language modelling   {"text"}                                  {"messages"}
//   prompt-only          {"prompt"}                                {"prompt": [...]}
//   prompt-completion    {"prompt","completion"}                   {"prompt": [...], "completion": [...]}
//   preference           {"prompt","chosen","rejected"}            the same with lists
//     implicit prompt    {"chosen","rejected"}                     {"chosen": [...], "rejected": [...]}
//   unpaired (KTO)       {"prompt","completion","label"}           the same with lists
//   K-wise (ours)        {"prompt","responses","ranking"|"best"}   {"prompt": [...], "responses": [[...], ...], ...}
//
// Conversational rows become text through the model's chat template exactly as TRL's maybe_apply_chat_template does
// (ChatTemplate.RenderPromptCompletion); an implicit prompt is the common start of chosen and rejected, as TRL's
// extract_prompt finds it. The readers live beside their records (SftData, PreferenceData, PromptData, UnpairedData).
using RlhfSharp.Feedback;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment;

public static class DatasetForms
{
    /// <summary>What an SFT file may hold, for errors.</summary>
    public const string Sft = "{\"text\"}, {\"messages\": [...]}, or {\"prompt\", \"completion\"} (strings, or lists of {\"role\", \"content\"} messages)";

    /// <summary>What a preference file may hold, for errors.</summary>
    public const string Preference = "{\"prompt\", \"chosen\", \"rejected\"} (optional \"margin\", \"tie\"), {\"chosen\", \"rejected\"} (implicit prompt), " +
        "{\"prompt\", \"responses\", \"ranking\"} or {\"prompt\", \"responses\", \"best\"}; each text a string or a list of {\"role\", \"content\"} messages";

    /// <summary>What an unpaired-preference (KTO) file may hold, for errors.</summary>
    public const string Unpaired = "{\"prompt\", \"completion\", \"label\": true|false} (strings, or lists of {\"role\", \"content\"} messages)";

    /// <summary>What a prompt file may hold, for errors.</summary>
    public const string Prompt = "{\"prompt\": \"...\"} or {\"prompt\": [{\"role\", \"content\"}, ...]}";

    /// <summary>The messages of a conversational column.</summary>
    public static ChatMessage[] Messages(JsonlLine line, string field) => [.. line.Messages(field).Select(m => new ChatMessage(m.Role, m.Content))];

    /// <summary>
    /// Renders a conversational prompt with each of its completions (TRL: prompt with the generation prompt, each
    /// prompt ++ completion without); the prompt text is cut to what all renderings share, and each completion is the rest.
    /// </summary>
    public static (string Prompt, string[] Completions) Render(ChatTemplate template, ChatMessage[] prompt, IReadOnlyList<ChatMessage[]> completions, JsonlLine line)
    {
        try
        {
            string p = template.RenderPrompt(prompt);
            var full = completions.Select(c => template.Render([.. prompt, .. c], addGenerationPrompt: false)).ToArray();
            int common = p.Length;
            foreach (var f in full) common = Math.Min(common, CommonPrefixLength(p, f));
            return (p[..common], [.. full.Select(f => f[common..])]);
        }
        catch (Text.Chat.ChatTemplateException ex)
        {
            throw line.Error(ex.Message);
        }
    }

    /// <summary>TRL's extract_prompt on text: the common start of chosen and rejected, less a space that begins the answers.</summary>
    public static int ImplicitPromptLength(string chosen, string rejected)
    {
        int idx = CommonPrefixLength(chosen, rejected);
        if (idx < chosen.Length && idx < rejected.Length && idx > 0 && chosen[idx - 1] == ' ') idx--;
        return idx;
    }

    /// <summary>TRL's extract_prompt on conversations: the leading messages chosen and rejected share.</summary>
    public static int ImplicitPromptLength(ChatMessage[] chosen, ChatMessage[] rejected)
    {
        int idx = 0;
        while (idx < chosen.Length && idx < rejected.Length && chosen[idx] == rejected[idx]) idx++;
        return idx;
    }

    /// <summary>A conversational prompt for generation (PPO, evaluation): rendered, and refused when its text holds a
    /// special token, since prompts are encoded as plain text.</summary>
    public static string RenderPromptOnly(ChatTemplate template, JsonlLine line, string field = "prompt")
    {
        string text;
        try
        {
            text = template.RenderPrompt(Messages(line, field));
        }
        catch (Text.Chat.ChatTemplateException ex)
        {
            throw line.Error(ex.Message);
        }
        foreach (var special in new[] { template.EosToken, template.BosToken })
            if (!string.IsNullOrEmpty(special) && text.Contains(special, StringComparison.Ordinal))
                throw line.Error($"field \"{field}\" renders with the special token {special} (e.g. a finished assistant turn); generation prompts are plain text, so end the conversation with a user turn or an open assistant turn.");
        return text;
    }

    private static int CommonPrefixLength(string a, string b)
    {
        int n = 0;
        while (n < a.Length && n < b.Length && a[n] == b[n]) n++;
        return n;
    }
}
