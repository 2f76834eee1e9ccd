// The shared tiny SFT model is good enough to stand in for `rlhf sft` output: it writes grammatical story sentences.
using RlhfSharp.Models;
using RlhfSharp.Tensors;
using RlhfSharp.Text.StoryWorld;
using Xunit.Abstractions;

namespace RlhfSharp.Alignment.Tests;

public sealed class TinyStoryModelTests(ITestOutputHelper output)
{
    // Build seeds 11 (the shared model), 1, 2: uncredited fraction 0.125, 0.227, 0.159 (seed 3: 0.242; bar 0.5).
    [Theory]
    [InlineData(11)]
    [InlineData(1)]
    [InlineData(2)]
    public void SamplesAreMostlyGrammaticalStorySentences(int seed)
    {
        var s = seed == TinyStoryModel.SharedSeed ? TinyStoryModel.Get() : TinyStoryModel.Build(TinyStoryModel.SharedSteps, seed);
        var prompts = Stories.Prompts(5, 32).Select(p => s.Tokenizer.Encode(p)).ToList();
        var result = new GptGenerator(s.Model).Generate(prompts, new GenerationOptions { MaxNewTokens = 40, EosTokenId = s.Tokenizer.EosId }, new Rng(3));
        var texts = Enumerable.Range(0, result.Batch).Select(b => s.Tokenizer.Decode(result.Response(b).Where(t => t != s.Tokenizer.EosId).ToArray())).ToList();
        double gold = texts.Select((t, i) => GoldScorer.Score(t).UncreditedFraction).Average();
        output.WriteLine($"tokens per demo {s.Demonstrations.Take(200).Average(d => s.Tokenizer.Encode(d.Prompt + d.Completion).Length):F1}, prompt {s.Demonstrations.Take(200).Average(d => s.Tokenizer.Encode(d.Prompt).Length):F1}"); output.WriteLine($"seed {seed}: build {s.BuildTime.TotalSeconds:F1}s, final loss {s.FinalLoss:F3}, uncredited fraction {gold:F3}");
        foreach (var t in texts.Take(5)) output.WriteLine(t);
        Assert.True(gold < 0.5, $"uncredited fraction {gold:F3} (build seed {seed})");
    }
}
