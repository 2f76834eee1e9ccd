// Opens whatever tokenizer a folder holds (a checkpoint folder, or the output of `rlhf tokenizer train`).
namespace RlhfSharp.Text;

public static class TokenizerFiles
{
    /// <summary>char_tokenizer.json gives a CharTokenizer; vocab.json + merges.txt give a Gpt2Tokenizer.</summary>
    public static ITokenizer Load(string directory)
    {
        if (File.Exists(Path.Combine(directory, CharTokenizer.FileName))) return CharTokenizer.Load(directory);
        if (File.Exists(Path.Combine(directory, Gpt2Tokenizer.VocabFileName)) || File.Exists(Path.Combine(directory, Gpt2Tokenizer.MergesFileName)))
            return Gpt2Tokenizer.Load(directory);
        throw new FileNotFoundException(
            $"No tokenizer in {directory}: expected {Gpt2Tokenizer.VocabFileName} + {Gpt2Tokenizer.MergesFileName} or {CharTokenizer.FileName}.");
    }
}
