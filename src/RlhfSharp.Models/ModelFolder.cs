// A model folder as the commands take it (`--model`, `--policy`): the GPT (config.json + model.safetensors) and the
// tokenizer files beside it, checked against each other.
using RlhfSharp.Text;

namespace RlhfSharp.Models;

public static class ModelFolder
{
    /// <summary>The GPT and tokenizer of <paramref name="directory"/>; a tokenizer with more ids than the model's vocabulary is refused naming the folder.</summary>
    /// <remarks>Weights holding NaN or ±Infinity are refused naming the tensor, unless <paramref name="allowNonFinite"/>.</remarks>
    public static (Gpt Model, ITokenizer Tokenizer) Load(string directory, bool allowNonFinite = false)
    {
        var gpt = Gpt.Load(directory, allowNonFinite);
        var tokenizer = TokenizerFiles.Load(directory);
        if (tokenizer.VocabSize > gpt.Config.VocabSize)
            throw new ArgumentException($"{directory}: tokenizer has {tokenizer.VocabSize} tokens but the model's vocab_size is {gpt.Config.VocabSize}.");
        return (gpt, tokenizer);
    }
}
