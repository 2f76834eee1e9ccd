// Evaluation: the Wilson interval against published values, ties as ½, distinct-n by hand, KL estimates that vanish
// for a policy equal to its reference, and the policy's position alternating so a position-biased judge scores ½.
using RlhfSharp.Alignment.Evaluation;
using RlhfSharp.Feedback;
using RlhfSharp.Feedback.Labelers;
using RlhfSharp.Models;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment.Tests;

public sealed class EvaluationTests
{
    private static readonly CharTokenizer Chars = CharTokenizer.FromCorpus("abcdefghij klmnop.");
    private static readonly string[] Prompts = ["abc", "de f", "gh", "ij k", "lm", "no p", "a b", "c."];

    private static Gpt Model(ulong seed) => TinyStoryModel.Random(Chars.VocabSize, seed) is var g
        ? Gpt.FromTensors(g.Config with { EosTokenId = Chars.EosId }, g.ToTensors()) : null!;

    [Theory]
    // Newcombe (1998), "Two-sided confidence intervals for the single proportion", Stat. Med. 17:857, Table I, method 3.
    [InlineData(81, 263, 0.2553, 0.3662)]
    [InlineData(15, 148, 0.0624, 0.1605)]
    [InlineData(0, 20, 0.0, 0.1611)]
    [InlineData(1, 29, 0.0061, 0.1718)]
    public void Given_published_cases_When_the_Wilson_interval_is_computed_Then_it_matches_Newcombe_to_4_places(int x, int n, double low, double high)
    {
        var (l, h) = WinRate.Wilson(x, n);
        Assert.Equal(low, l, 4);
        Assert.Equal(high, h, 4);
    }

    [Fact]
    public void Given_wins_losses_and_ties_When_the_win_rate_is_computed_Then_ties_count_half_and_skips_are_left_out()
    {
        var r = WinRate.FromCounts(wins: 3, losses: 1, ties: 2, skipped: 5);
        Assert.Equal(4.0 / 6, r.Rate, 12);
        Assert.Equal(WinRate.Wilson(4, 6), (r.Low, r.High));
        Assert.Equal(6, r.Decided);
        Assert.False(r.SignificantlyAboveHalf);
        Assert.True(WinRate.FromCounts(90, 10, 0).SignificantlyAboveHalf);
        Assert.Contains("-1", Assert.Throws<ArgumentException>(() => WinRate.FromCounts(-1, 0, 0)).Message);
    }

    [Fact]
    public void Given_two_responses_When_distinct_n_is_computed_Then_it_matches_a_hand_count()
    {
        string[] texts = ["The cat sat", "the cat ran"];
        // unigrams: the cat sat the cat ran → 4 distinct of 6; bigrams: "the cat" ×2, "cat sat", "cat ran" → 3 of 4.
        Assert.Equal(4.0 / 6, DistinctN.Compute(texts, 1), 12);
        Assert.Equal(3.0 / 4, DistinctN.Compute(texts, 2), 12);
        // Bigrams never span two responses: "a" + "b" has no bigram.
        Assert.Equal(0, DistinctN.Compute(["a", "b"], 2));
        Assert.Equal(1, DistinctN.Compute(["a b c d"], 3));
    }

    [Fact]
    public void Given_a_policy_equal_to_its_reference_When_sampled_Then_both_KL_estimates_are_near_zero_and_a_different_reference_gives_positive_k3()
    {
        var policy = Model(3);
        var evaluator = new PolicyEvaluator(new EvaluationOptions { MaxNewTokens = 12 });
        var same = evaluator.Sample(policy, policy, Chars, Prompts, new Tensors.Rng(1));
        Assert.All(same.KlK1, k => Assert.InRange(k, -1e-3, 1e-3));
        Assert.All(same.KlK3, k => Assert.InRange(k, 0, 1e-5));
        var other = evaluator.Sample(policy, Model(4), Chars, Prompts, new Tensors.Rng(1));
        // Same seed, same policy: the same responses; only the reference changed.
        Assert.Equal(same.Texts, other.Texts);
        Assert.True(other.KlK3.Average() > 0.01, $"k3 against a different random model: {other.KlK3.Average()}");
        Assert.All(other.KlK3, k => Assert.True(k >= 0));
    }

    private sealed class FirstPositionJudge : ILabeler
    {
        public string Name => "always-first";
        public Task<Answer> AnswerAsync(Query query, CancellationToken ct = default) => Task.FromResult(Answer.Prefer(0));
    }

    [Fact]
    public async Task Given_a_judge_that_always_picks_the_first_position_When_evaluating_Then_the_policy_wins_exactly_half()
    {
        var result = await new PolicyEvaluator(new EvaluationOptions { MaxNewTokens = 8 })
            .EvaluateAsync(Model(3), Model(4), Chars, Prompts, new FirstPositionJudge());
        Assert.Equal(4, result.WinRate.Wins);
        Assert.Equal(4, result.WinRate.Losses);
        Assert.Equal(0.5, result.WinRate.Rate);
    }

    private sealed class BabblingJudge : ILabeler
    {
        public string Name => "babbler";
        public Task<Answer> AnswerAsync(Query query, CancellationToken ct = default) =>
            Task.FromResult(Answer.Skip($"judge answer not understood: \"blah {query.Id}\""));
    }

    [Fact]
    public async Task Given_a_judge_whose_answers_are_all_skips_When_evaluating_Then_it_fails_naming_the_first_unparsed_answer()
    {
        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => new PolicyEvaluator(new EvaluationOptions { MaxNewTokens = 4 })
            .EvaluateAsync(Model(3), Model(4), Chars, Prompts, new BabblingJudge()));
        Assert.Equal($"evaluation: all {Prompts.Length} answers of judge \"babbler\" were skips, so there is no win rate; the first: judge answer not understood: \"blah 0\"", ex.Message);
    }

    [Fact]
    public void Given_unmeasured_figures_When_written_as_json_Then_they_are_null_with_a_reason_never_NaN_strings()
    {
        var options = new System.Text.Json.JsonSerializerOptions
        {
            PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower,
            Converters = { new FiniteOrNullJsonConverter() },
            DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
        };
        string winRate = System.Text.Json.JsonSerializer.Serialize(WinRate.FromCounts(0, 0, 0, 3), options);
        Assert.Contains("\"rate\":null", winRate);
        Assert.Contains("\"rate_reason\":\"no decided comparison (3 skipped)\"", winRate);
        string stats = System.Text.Json.JsonSerializer.Serialize(new ResponseStats(double.NaN, 0.5, 0, 0, 3, 1, 1), options);
        Assert.DoesNotContain("NaN", stats);
        Assert.Contains("\"mean_gold\":null,", stats);
        Assert.Contains("\"mean_gold_reason\":\"no gold scorer was given\"", stats);
        Assert.DoesNotContain("mean_reward_model_reason", stats);
    }

    [Fact]
    public async Task Given_a_gold_judge_preferring_longer_text_When_evaluating_Then_each_verdict_agrees_with_the_lengths_and_the_stats_are_filled()
    {
        static double Gold(string prompt, string response) => response.Length;
        var result = await new PolicyEvaluator(new EvaluationOptions { MaxNewTokens = 10, SamplesKept = Prompts.Length })
            .EvaluateAsync(Model(3), Model(4), Chars, Prompts, new GoldJudge(Gold), gold: Gold);
        Assert.Equal(Prompts.Length, result.Samples.Count);
        foreach (var s in result.Samples)
        {
            string expected = s.PolicyResponse.Length > s.BaselineResponse.Length ? "win" : s.PolicyResponse.Length < s.BaselineResponse.Length ? "loss" : "tie";
            Assert.Equal(expected, s.Verdict);
        }
        Assert.Equal(result.Samples.Count(s => s.Verdict == "win"), result.WinRate.Wins);
        Assert.Equal(result.Samples.Average(s => s.PolicyResponse.Length), result.Policy.MeanGold, 9);
        Assert.Equal(result.Samples.Average(s => s.BaselineResponse.Length), result.Baseline.MeanGold, 9);
        Assert.True(double.IsNaN(result.Policy.MeanRewardModel));
        // The baseline is its own reference here, so its KL is (numerically) zero.
        Assert.InRange(result.Baseline.KlK3, 0, 1e-5);
        Assert.InRange(result.Policy.MeanLength, 0, 10);
    }
}
