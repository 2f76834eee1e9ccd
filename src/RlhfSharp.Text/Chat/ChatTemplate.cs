// The one chat format: a conversation (role, content messages) becomes text through the model's chat template, stored
// as Hugging Face stores it (`chat_template`, a Jinja string, in tokenizer_config.json with the special tokens it uses)
// and rendered by JinjaTemplate. SFT, reward, DPO, PPO, evaluation and `rlhf serve`'s chat endpoint all render through
// this class, so a model is asked in the format it was trained on.
//
// The default template (for a model folder without one; SFT writes it into the folder it saves) is role-tagged text any
// byte-level BPE encodes, with the model's end-of-text token closing each assistant turn:
//
//   System: {content}\n        (only when a system message is given)
//   User: {content}\n
//   Assistant: {content}<|endoftext|>
//   ...
//   Assistant:                 (the generation prompt: the reply continues after the colon, as " word ...")
//
// Why these choices: no new special tokens (the tiny story-world vocabularies and GPT-2's own have none to spare, and
// adding rows would change the embedding's shape); the turn ends with the EOS token generation already stops on; the
// generation prompt stops before the space, so a reply's first word keeps its GPT-2 leading-space token.
// TRL's rule for prompt/completion pairs (`maybe_apply_chat_template`) is RenderPromptCompletion: the prompt is rendered
// with the generation prompt, the whole conversation without, and the completion is what the second adds to their
// common prefix.
using RlhfSharp.Text.Chat;

namespace RlhfSharp.Text;

/// <summary>One message of a conversation.</summary>
public sealed record ChatMessage(string Role, string Content);

public sealed class ChatTemplate
{
    /// <summary>The documented default template (see the file header).</summary>
    public const string DefaultSource =
        "{%- for message in messages -%}" +
        "{%- if message['role'] == 'system' -%}{{ 'System: ' + message['content'] + '\\n' }}" +
        "{%- elif message['role'] == 'user' -%}{{ 'User: ' + message['content'] + '\\n' }}" +
        "{%- elif message['role'] == 'assistant' -%}{{ 'Assistant: ' + message['content'] + eos_token }}" +
        "{%- else -%}{{ raise_exception('roles are system, user and assistant; got ' + message['role']) }}" +
        "{%- endif -%}" +
        "{%- endfor -%}" +
        "{%- if add_generation_prompt -%}{{ 'Assistant:' }}{%- endif -%}";

    private readonly JinjaTemplate _template;

    /// <summary>Parses <paramref name="source"/> now, so a template using constructs we do not render is refused at load.</summary>
    /// <param name="source">The Jinja template.</param>
    /// <param name="bosToken">Text of the beginning-of-sequence token (`bos_token`), or null.</param>
    /// <param name="eosToken">Text of the end-of-sequence token (`eos_token`), or null.</param>
    /// <param name="origin">Where the template came from ("DIR/tokenizer_config.json"), named in every error.</param>
    public ChatTemplate(string source, string? bosToken, string? eosToken, string origin)
    {
        ArgumentNullException.ThrowIfNull(source);
        Source = source;
        BosToken = bosToken;
        EosToken = eosToken;
        Origin = origin;
        _template = JinjaTemplate.Parse(source, origin);
    }

    public string Source { get; }
    public string? BosToken { get; }
    public string? EosToken { get; }
    public string Origin { get; }

    /// <summary>The default template closed by GPT-2's &lt;|endoftext|&gt; (every tokenizer of ours has it).</summary>
    public static ChatTemplate Default { get; } = new(DefaultSource, Gpt2Tokenizer.EndOfText, Gpt2Tokenizer.EndOfText, "the default chat template");

    /// <summary>True for the built-in default (not read from a folder).</summary>
    public bool IsDefault => Source == DefaultSource;

    /// <summary>The template a tokenizer's text is rendered with: its own (tokenizer_config.json), else the default.</summary>
    public static ChatTemplate For(ITokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        string? eos = tokenizer.EosId is int id ? tokenizer.SpecialTokens.FirstOrDefault(kv => kv.Value == id).Key : null;
        if (tokenizer.ChatTemplate is { } own) return own;
        return new ChatTemplate(DefaultSource, eos, eos, "the default chat template");
    }

    /// <summary>Renders a conversation (transformers' apply_chat_template with tokenize=False).</summary>
    /// <param name="messages">The conversation.</param>
    /// <param name="addGenerationPrompt">Append what opens the assistant's turn.</param>
    /// <param name="continueFinalMessage">End the text right after the last message's content, leaving it open for the model to continue.</param>
    public string Render(IReadOnlyList<ChatMessage> messages, bool addGenerationPrompt, bool continueFinalMessage = false)
    {
        ArgumentNullException.ThrowIfNull(messages);
        if (messages.Count == 0) throw new ArgumentException("a conversation needs at least one message.", nameof(messages));
        if (addGenerationPrompt && continueFinalMessage)
            throw new ArgumentException("a conversation cannot both add a generation prompt and continue its final message.");
        var list = messages.Select(m => (object?)new Dictionary<string, object?>(StringComparer.Ordinal) { ["role"] = m.Role, ["content"] = m.Content }).ToList();
        var globals = new Dictionary<string, object?>(StringComparer.Ordinal)
        {
            ["messages"] = list,
            ["add_generation_prompt"] = addGenerationPrompt,
            ["bos_token"] = BosToken ?? "",
            ["eos_token"] = EosToken ?? "",
        };
        string text = _template.Render(globals, Origin);
        if (continueFinalMessage)
        {
            // As transformers does: cut the text after the final message's content (whitespace-stripped, last occurrence).
            string final = messages[^1].Content.Trim();
            int at = final.Length == 0 ? -1 : text.LastIndexOf(final, StringComparison.Ordinal);
            if (at < 0) throw new ChatTemplateException($"{Origin}: the rendered conversation does not contain its final message, so it cannot be continued.");
            text = text[..(at + final.Length)];
        }
        return text;
    }

    /// <summary>
    /// TRL's prompt/completion rendering: prompt = render(prompt, generation prompt when it ends with a user turn, else
    /// continue the final assistant message); full = render(prompt ++ completion); the prompt is cut to its common prefix with
    /// full, and the completion is the rest of full.
    /// </summary>
    public (string Prompt, string Completion) RenderPromptCompletion(IReadOnlyList<ChatMessage> prompt, IReadOnlyList<ChatMessage> completion)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(completion);
        string p = RenderPrompt(prompt);
        string full = Render([.. prompt, .. completion], addGenerationPrompt: false);
        int common = 0;
        while (common < p.Length && common < full.Length && p[common] == full[common]) common++;
        return (p[..common], full[common..]);
    }

    /// <summary>A prompt to be answered: the generation prompt after a user (or system) turn, or the last assistant message left open.</summary>
    public string RenderPrompt(IReadOnlyList<ChatMessage> prompt)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        if (prompt.Count == 0) throw new ArgumentException("a conversational prompt needs at least one message.", nameof(prompt));
        bool assistantLast = prompt[^1].Role == "assistant";
        return Render(prompt, addGenerationPrompt: !assistantLast, continueFinalMessage: assistantLast);
    }
}
