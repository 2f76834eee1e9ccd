// The generator's token callback (what `rlhf serve` streams from): each step's draws as they happen, the same tokens the
// result holds, and an exception from the callback ends generation early.
using RlhfSharp.Tensors;

namespace RlhfSharp.Models.Tests;

public sealed class StreamedTokensTests
{
    private static readonly GptConfig Config = RandomWeights.TinyConfig(vocab: 17, block: 24, embd: 16, layers: 2, heads: 2);
    private static readonly int[][] Prompts = [[3], [1, 2, 3, 4, 5, 6], [9, 9, 1]];

    private static Gpt Model() => Gpt.FromTensors(Config, RandomWeights.For(Config, 31));

    private sealed class Stop : Exception;

    [Fact]
    public void TokensSeenStepByStep_AreTheResponsesOfTheResult_AndTheSameAsWithoutTheCallback()
    {
        var options = new GenerationOptions { MaxNewTokens = 10, EosTokenId = 5, PadTokenId = 0 };
        var seen = new List<int[]>();

        var result = new GptGenerator(Model()).Generate(Prompts, options, new Rng(4), null, (step, next) =>
        {
            Assert.Equal(seen.Count, step);
            seen.Add((int[])next.Clone());
        });
        var plain = new GptGenerator(Model()).Generate(Prompts, options, new Rng(4));

        Assert.Equal(plain.Tokens, result.Tokens);
        Assert.Equal(result.NewTokens, seen.Count);
        for (int b = 0; b < Prompts.Length; b++)
        {
            var response = result.Response(b);
            Assert.Equal(response, seen.Take(response.Length).Select(s => s[b]).ToArray());
        }
    }

    [Fact]
    public void AnExceptionFromTheCallback_EndsGenerationAtThatStep()
    {
        int calls = 0;
        Assert.Throws<Stop>(() => new GptGenerator(Model()).Generate(Prompts, new GenerationOptions { MaxNewTokens = 10 }, new Rng(4), null, (step, _) =>
        {
            calls++;
            if (step == 2) throw new Stop();
        }));
        Assert.Equal(3, calls);
    }
}
