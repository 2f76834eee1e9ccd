// Text in, text out: a model folder's GPT and tokenizer continue prompts, K samples per prompt, generated in batches with
// the KV-cached generator (`rlhf sample`). An empty prompt starts from <|endoftext|>, as GPT-2's unconditional samples do;
// the EOS that ends a sample is not part of its completion text.
using RlhfSharp.Tensors;
using RlhfSharp.Text;

namespace RlhfSharp.Models;

/// <summary>One sample: the prompt, the completion text, the generated tokens (EOS included when emitted) and log π of each.</summary>
public sealed record Continuation(string Prompt, string Completion, int[] Tokens, float[] LogProbs);

public static class Continuations
{
    /// <summary>Tokens left in the model's block after the longest prompt; refuses prompts that leave none.</summary>
    public static int Room(Gpt gpt, ITokenizer tokenizer, IReadOnlyList<string> prompts)
    {
        int longestPrompt = prompts.Max(t => EncodePrompt(tokenizer, t).Length);
        int room = gpt.Config.BlockSize - longestPrompt;
        if (room < 1)
            throw new ArgumentException($"sample: the longest prompt has {longestPrompt} tokens, which leaves no room in the model's block size {gpt.Config.BlockSize}.");
        return room;
    }

    /// <summary>
    /// <paramref name="k"/> continuations of each prompt in prompt order (each prompt's K together), generated
    /// <paramref name="batch"/> rows at a time; a batch is yielded as soon as it is generated.
    /// </summary>
    public static IEnumerable<Continuation> Sample(Gpt gpt, ITokenizer tokenizer, IReadOnlyList<string> prompts, int k, GenerationOptions options, Rng rng, int batch)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(batch, 1);
        var generator = new GptGenerator(gpt);
        var jobs = prompts.SelectMany(t => Enumerable.Repeat(t, k)).ToList();
        for (int start = 0; start < jobs.Count; start += batch)
        {
            var chunk = jobs.Skip(start).Take(batch).ToList();
            var result = generator.Generate([.. chunk.Select(t => EncodePrompt(tokenizer, t))], options, rng);
            for (int i = 0; i < chunk.Count; i++)
            {
                var response = result.Response(i);
                var textTokens = response.Length > 0 && response[^1] == options.EosTokenId ? response[..^1] : response;
                var logProbs = result.LogProbs.AsSpan(i * result.NewTokens, response.Length).ToArray();
                yield return new Continuation(chunk[i], tokenizer.Decode(textTokens), response, logProbs);
            }
        }
    }

    /// <summary>The prompt's tokens; an empty prompt is the tokenizer's end-of-text token.</summary>
    public static int[] EncodePrompt(ITokenizer tokenizer, string text)
    {
        var ids = tokenizer.Encode(text);
        if (ids.Length == 0)
            ids = tokenizer.EosId is int eos ? [eos] : throw new ArgumentException("sample: an empty prompt needs a tokenizer with an end-of-text token.");
        return ids;
    }
}
