// The one tokenizer contract every model, trainer and CLI command uses, whatever the scheme underneath
// (GPT-2 byte-level BPE, a BPE vocabulary we trained, or single characters).
namespace RlhfSharp.Text;

public interface ITokenizer
{
    /// <summary>Number of ids: every id in [0, VocabSize) decodes; models size their embedding with it.</summary>
    int VocabSize { get; }

    /// <summary>Id of the end-of-text token (<c>&lt;|endoftext|&gt;</c>), or null when the vocabulary has none.</summary>
    int? EosId { get; }

    /// <summary>Special tokens (text to id). They are matched in input only when Encode is asked to.</summary>
    IReadOnlyDictionary<string, int> SpecialTokens { get; }

    /// <summary>Encodes text with special-token strings treated as plain text.</summary>
    int[] Encode(string text);

    /// <summary>Encodes text; when <paramref name="allowSpecial"/> is true, special-token strings become their ids.</summary>
    int[] Encode(string text, bool allowSpecial);

    /// <summary>Decodes ids to text; byte sequences that are not valid UTF-8 become U+FFFD.</summary>
    string Decode(ReadOnlySpan<int> ids);

    /// <summary>
    /// The chat template conversations are rendered with (tokenizer_config.json's `chat_template`), or null when the folder
    /// had none and <see cref="Text.ChatTemplate.For"/> falls back to the default. Saved with the tokenizer.
    /// </summary>
    ChatTemplate? ChatTemplate { get; set; }

    /// <summary>Writes the files <see cref="TokenizerFiles.Load"/> reads back into a folder (created if missing).</summary>
    void Save(string directory);
}
