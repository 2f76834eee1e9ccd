// Expert iteration (Sampling/ExpertIteration): its SFT steps move every parameter tensor; a threshold no sample reaches
// keeps nothing and leaves the policy's bits as the SFT model's; the same seed gives the same bits; the best of each
// group is what it keeps (a reward that likes 'a' raises the kept samples' mean above the round's mean); a verifier with
// r_min = 1 keeps only passing samples; held-out figures are logged from round 0 with a collapse warning exactly when
// distinct-n falls under the fraction of round 0's; a pairwise judge's knockout keeps each group's best, whichever side it
// is shown on, and a judge that always says "the first" is not always the incumbent; a run stopped after a round and resumed equals the uninterrupted one.
using RlhfSharp.Alignment.Evaluation;
using RlhfSharp.Alignment.Ppo;
using RlhfSharp.Feedback;
using RlhfSharp.Feedback.Labelers;
using RlhfSharp.Alignment.Sampling;
using RlhfSharp.Models;
using RlhfSharp.Runs;
using RlhfSharp.TestSupport;
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

    private static readonly string[] HeldOut = ["the sun", "my friend", "at home"];

    [Fact]
    public void Given_a_verifier_and_r_min_1_When_trained_Then_every_kept_sample_passes_and_some_failing_best_was_dropped()
    {
        // A 0/1 verifier: the completion holds an 'e'. The best of N is kept only when it passes.
        static double Passes(string completion) => completion.Contains('e', StringComparison.Ordinal) ? 1 : 0;
        var verifier = new FunctionReward((_, r) => Passes(r));
        var config = Small with { Rounds = 3, SamplesPerPrompt = 2, MinReward = 1 };
        var result = new ExpertIteration(config).Train(TinySft(), Chars, Prompts, verifier);
        Assert.NotEmpty(result.Kept);
        Assert.All(result.Kept, k => Assert.Equal(1, Passes(k.Completion)));
        Assert.Equal(result.Kept.Count, (int)result.History[^1]["rft/dataset_size"]);
        Assert.True(result.History.Sum(r => r["rft/kept"]) < config.Rounds * config.PromptsPerRound, "every group had a passing sample: the threshold was never tested");
    }

    [Fact]
    public void Given_held_out_prompts_When_trained_Then_round_0_is_logged_and_a_collapse_warning_fires_exactly_below_the_fraction()
    {
        var warnings = new List<string>();
        var config = Small with { Rounds = 3, LearningRate = 3e-2f, SftStepsPerRound = 4, CollapseFraction = 0.9 };
        var result = new ExpertIteration(config).Train(TinySft(), Chars, Prompts, LikesA,
            new ExpertIteration.Options(HeldOut: HeldOut, Gold: (_, r) => r.Length, Warn: warnings.Add));
        Assert.Equal(config.Rounds + 1, result.History.Count);
        var zero = result.History[0];
        Assert.Equal(0, zero[MetricKeys.Kl], 6); // the SFT model against itself
        Assert.False(zero.ContainsKey("rft/kept"));
        int expected = 0;
        foreach (var round in result.History.Skip(1))
        {
            bool below = round[ExpertIteration.Distinct1Key] < 0.9 * zero[ExpertIteration.Distinct1Key] || round[ExpertIteration.Distinct2Key] < 0.9 * zero[ExpertIteration.Distinct2Key];
            Assert.Equal(below ? 1 : 0, round[ExpertIteration.CollapseKey]);
            Assert.True(round[MetricKeys.Kl] > 0, "the trained policy's KL from the SFT model is not positive");
            Assert.True(round.ContainsKey(ExpertIteration.GoldKey));
            expected += below ? 1 : 0;
        }
        Assert.True(expected > 0, "no round collapsed at lr 3e-2 towards 'a': the warning was never tested");
        Assert.Equal(expected, warnings.Count);
    }

    [Fact]
    public void Given_a_run_stopped_after_round_2_When_resumed_Then_weights_and_metrics_equal_the_uninterrupted_run()
    {
        var config = Small with { Rounds = 3, CollapseFraction = 0.99 };
        var options = new ExpertIteration.Options(HeldOut: HeldOut, Gold: (_, r) => r.Length);
        using var tmp = new TempDirectory();
        ExpertIterationResult straight, resumed;
        using (var run = RunDirectory.Open(Path.Combine(tmp.Path, "a"), resume: false))
            straight = new ExpertIteration(config).Train(TinySft(), Chars, Prompts, LikesA, options with { Run = run });
        using (var run = RunDirectory.Open(Path.Combine(tmp.Path, "b"), resume: false))
            new ExpertIteration(config with { Rounds = 2 }).Train(TinySft(), Chars, Prompts, LikesA, options with { Run = run });
        using (var run = RunDirectory.Open(Path.Combine(tmp.Path, "b"), resume: true))
            resumed = new ExpertIteration(config).Train(TinySft(), Chars, Prompts, LikesA, options with { Run = run });
        Assert.Equal(straight.Policy.Parameters, resumed.Policy.Parameters);
        Assert.Equal(straight.Kept, resumed.Kept);
        static string[] Rows(string dir) => [.. MetricsWriter.ReadAll(Path.Combine(dir, RunDirectory.MetricsFileName))
            .Select(m => string.Join(",", m.Values.Where(kv => !kv.Key.StartsWith("perf/", StringComparison.Ordinal)).Select(kv => $"{kv.Key}={kv.Value:R}")))];
        Assert.Equal([0L, 1L, 2L, 3L], MetricsWriter.ReadAll(Path.Combine(tmp.Path, "b", RunDirectory.MetricsFileName)).Select(m => m.Step));
        Assert.Equal(Rows(Path.Combine(tmp.Path, "a")), Rows(Path.Combine(tmp.Path, "b")));
    }

    private sealed class AlwaysFirst : ILabeler
    {
        public string Name => "first";

        public Task<Answer> AnswerAsync(Query query, CancellationToken ct = default) => Task.FromResult(Answer.Prefer(0));
    }

    [Fact]
    public void Given_a_pairwise_judge_When_it_knocks_out_each_group_Then_the_best_survives_and_the_sides_alternate()
    {
        // Two groups of 4; the gold judge prefers more 'a's.
        string[] responses = ["b", "aaa", "aa", "", "a", "bb", "aaaa", "c"];
        string[] prompts = [.. Enumerable.Repeat("p", 8)];
        var byGold = new JudgeKnockoutReward(new GoldJudge((_, r) => r.Count(c => c == 'a')), groupSize: 4);
        Assert.Equal([0f, 1, 0, 0, 0, 0, 1, 0], byGold.Score(prompts, responses, []));
        Assert.Equal(6, byGold.Judgments);
        // The champion is shown first against challengers 1 and 3, second against 2: "always the first" keeps the incumbent
        // in duels 1 and 3 and hands duel 2 to the challenger, so each group's third sample survives.
        var biased = new JudgeKnockoutReward(new AlwaysFirst(), groupSize: 4);
        Assert.Equal([0f, 0, 1, 0, 0, 0, 1, 0], biased.Score(prompts, responses, []));
        Assert.Throws<ArgumentException>(() => byGold.Score(prompts[..3], responses[..3], []));
        var silent = new JudgeKnockoutReward(new GoldJudge((_, _) => double.NaN), groupSize: 4);
        Assert.Contains("were skips", Assert.Throws<InvalidOperationException>(() => silent.Score(prompts, responses, [])).Message, StringComparison.Ordinal);
    }
}
