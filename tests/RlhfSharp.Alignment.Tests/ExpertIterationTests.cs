// Expert iteration (Sampling/ExpertIteration): its SFT steps move every parameter tensor; a threshold no sample reaches
// keeps nothing and leaves the policy's bits as the SFT model's; the same seed gives the same bits; the best of each
// group is what it keeps (a reward that likes 'a' raises the kept samples' mean above the round's mean).
using RlhfSharp.Alignment.Ppo;
using RlhfSharp.Alignment.Sampling;
using RlhfSharp.Models;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment.Tests;

public sealed class ExpertIterationTests
{
    private static readonly ITokenizer Chars = CharTokenizer.FromCorpus("abcdefghijklmnopqrstuvwxyz .,!?");
    private static readonly string[] Prompts = ["the cat", "a dog", "one day", "we saw"];
    private static readonly FunctionReward LikesA = new((_, r) => r.Count(c => c == 'a') / 4.0);

    private static Gpt TinySft() => TinyStoryModel.Random(Chars.VocabSize, 3) is var g ? Gpt.FromTensors(g.Config with { EosTokenId = Chars.EosId }, g.ToTensors()) : null!;

    private static readonly ExpertIterationConfig Small = new()
    {
        Rounds = 2, PromptsPerRound = 4, SamplesPerPrompt = 4, SftStepsPerRound = 2, BatchSize = 4, LearningRate = 1e-2f, MaxNewTokens = 8, Seed = 5,
    };

    [Fact]
    public void Given_rounds_that_keep_samples_When_trained_Then_every_tensor_moves_the_kept_beat_the_mean_and_a_rerun_gives_the_same_bits()
    {
        var sft = TinySft();
        var start = (float[])sft.Parameters.Clone();
        var result = new ExpertIteration(Small).Train(sft, Chars, Prompts, LikesA);
        Assert.Equal(2, result.Rounds);
        Assert.False(result.Cancelled);
        Assert.Equal(start, sft.Parameters); // the SFT model itself is left alone
        foreach (var p in result.Policy.ParameterList)
        {
            bool changed = false;
            for (int i = 0; i < p.Length; i++) changed |= result.Policy.Parameters[p.Offset + i] != start[p.Offset + i];
            Assert.True(changed, $"{p.Name} did not change");
        }
        foreach (var round in result.History)
        {
            Assert.Equal(4, round["rft/kept"]);
            Assert.True(round["rft/best_reward_mean"] >= round["rft/reward_mean"]);
        }
        Assert.True(result.History.Any(r => r["rft/best_reward_mean"] > r["rft/reward_mean"]), "the best of 4 never beat the mean: selection did nothing");
        Assert.Equal(8, result.History[^1]["rft/dataset_size"]);
        Assert.Equal(result.Policy.Parameters, new ExpertIteration(Small).Train(TinySft(), Chars, Prompts, LikesA).Policy.Parameters);
    }

    [Fact]
    public void Given_a_threshold_no_sample_reaches_When_trained_Then_nothing_is_kept_and_the_policy_is_the_sft_model()
    {
        var sft = TinySft();
        var result = new ExpertIteration(Small with { MinReward = 100 }).Train(sft, Chars, Prompts, LikesA);
        Assert.All(result.History, r => Assert.Equal(0, r["rft/kept"]));
        Assert.Equal(sft.Parameters, result.Policy.Parameters);
    }
}
