// Text continuations (`rlhf sample`): K samples per prompt in prompt order, batched without changing what is drawn, the
// EOS that ends a sample kept in its tokens but not in its text, and an empty prompt started from EOS.
using RlhfSharp.Tensors;
using RlhfSharp.Text;

namespace RlhfSharp.Models.Tests;

public sealed class ContinuationsTests
{
    // 16 characters + <|endoftext|> = 17 ids, the tiny model's vocabulary; EOS is id 16.
    private static readonly CharTokenizer Chars = CharTokenizer.FromCorpus("abcdefgh ijklmno");
    private static readonly GptConfig Config = RandomWeights.TinyConfig(vocab: 17, block: 24, embd: 16, layers: 2, heads: 2);

    private static Gpt Model() => Gpt.FromTensors(Config, RandomWeights.For(Config, 31));

    private static GenerationOptions Options => new() { MaxNewTokens = 8, EosTokenId = Chars.EosId, PadTokenId = Chars.EosId!.Value };

    [Fact]
    public void Given_two_prompts_and_k_3_in_batches_of_4_When_sampled_Then_the_samples_are_those_of_the_same_batches_generated_directly()
    {
        string[] prompts = ["abc", ""];

        var samples = Continuations.Sample(Model(), Chars, prompts, k: 3, Options, new Rng(5), batch: 4).ToList();

        Assert.Equal(["abc", "abc", "abc", "", "", ""], samples.Select(s => s.Prompt));
        // The same draws: rows [abc, abc, abc, EOS] then [EOS, EOS], one generator, one RNG.
        var generator = new GptGenerator(Model());
        var rng = new Rng(5);
        int eos = Chars.EosId!.Value;
        var first = generator.Generate([Chars.Encode("abc"), Chars.Encode("abc"), Chars.Encode("abc"), [eos]], Options, rng);
        var second = generator.Generate([[eos], [eos]], Options, rng);
        int[][] expected = [first.Response(0), first.Response(1), first.Response(2), first.Response(3), second.Response(0), second.Response(1)];
        Assert.Equal(expected, samples.Select(s => s.Tokens));
        foreach (var s in samples)
        {
            Assert.Equal(s.Tokens.Length, s.LogProbs.Length);
            var text = s.Tokens.Length > 0 && s.Tokens[^1] == eos ? s.Tokens[..^1] : s.Tokens;
            Assert.Equal(Chars.Decode(text), s.Completion);
            Assert.DoesNotContain("<|endoftext|>", s.Completion, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Given_a_prompt_longer_than_the_block_When_the_room_is_asked_Then_it_is_refused_naming_both_lengths()
    {
        Assert.Equal(24 - 3, Continuations.Room(Model(), Chars, ["ab", "abc"]));

        var ex = Assert.Throws<ArgumentException>(() => Continuations.Room(Model(), Chars, [new string('a', 24)]));

        Assert.Contains("24 tokens", ex.Message, StringComparison.Ordinal);
        Assert.Contains("block size 24", ex.Message, StringComparison.Ordinal);
    }
}
