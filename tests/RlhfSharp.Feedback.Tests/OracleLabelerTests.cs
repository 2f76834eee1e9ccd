// The oracle labeller: agreement with the gold scorer at steep temperature, ε-noise, Bradley–Terry odds, ties, rankings.
using RlhfSharp.Feedback.Labelers;

namespace RlhfSharp.Feedback.Tests;

public sealed class OracleLabelerTests
{
    /// <summary>Fraction of clear pairs (|Δ| ≥ 0.5) on which the oracle picks the higher-scoring candidate.</summary>
    private static double Agreement(OracleOptions options, int pairs = 4000)
    {
        var oracle = new OracleLabeler((_, _) => 0, options);
        var draw = new Random(99);
        int agree = 0;
        for (int n = 0; n < pairs; n++)
        {
            double a = draw.NextDouble() * 4 - 2, b = a + (draw.Next(2) == 0 ? 1 : -1) * (0.5 + draw.NextDouble());
            var answer = oracle.Choose([a, b]);
            if (answer.Preferred == (a > b ? 0 : 1)) agree++;
        }
        return agree / (double)pairs;
    }

    [Fact]
    public void SteepTemperatureWithoutNoiseAgreesOnClearPairs() =>
        Assert.True(Agreement(new OracleOptions(Temperature: 0.05, Epsilon: 0)) >= 0.99);

    [Fact]
    public void TenPercentNoiseAgreesAboutNinetyFivePercent()
    {
        // A random answer is right half the time: 0.9 + 0.1 × 0.5 = 0.95; 4000 draws give sd ≈ 0.0034.
        Assert.InRange(Agreement(new OracleOptions(Temperature: 0.05, Epsilon: 0.1, Seed: 3)), 0.935, 0.965);
    }

    [Fact]
    public void UnitTemperatureFollowsBradleyTerryOdds()
    {
        var oracle = new OracleLabeler((_, c) => c.Content == "good" ? 1.0 : 0.0, new OracleOptions(Temperature: 1, Seed: 5));
        var q = new Query(1, QueryKind.Text, "p", [new("good"), new("meh")], "default", null, DateTimeOffset.UnixEpoch);
        int first = Enumerable.Range(0, 8000).Count(_ => oracle.Answer(q).Preferred == 0);
        // σ(1 − 0) = 0.7311; sd of the mean over 8000 is 0.005.
        Assert.InRange(first / 8000.0, 0.7311 - 0.02, 0.7311 + 0.02);
    }

    [Fact]
    public void CloseScoresTieAndRankingsArePermutationsInScoreOrder()
    {
        var ties = new OracleLabeler((_, _) => 0, new OracleOptions(Temperature: 0.01, TieThreshold: 0.1));
        Assert.Equal(AnswerKind.Tie, ties.Choose([0.50, 0.55]).Kind);
        Assert.Equal(1, ties.Choose([0.50, 0.75]).Preferred);

        var ranker = new OracleLabeler((_, _) => 0, new OracleOptions(Temperature: 0.01, Rank: true));
        Assert.Equal([2, 0, 3, 1], ranker.Choose([0.5, -1, 2, 0]).Ranking!);
        var noisy = new OracleLabeler((_, _) => 0, new OracleOptions(Epsilon: 1, Rank: true, Seed: 2));
        for (int i = 0; i < 50; i++) noisy.Choose([1, 2, 3, 4]).Validate(4);
    }

    [Fact]
    public void SameSeedSameAnswers()
    {
        var o1 = new OracleLabeler((_, _) => 0, new OracleOptions(Epsilon: 0.3, Seed: 42));
        var o2 = new OracleLabeler((_, _) => 0, new OracleOptions(Epsilon: 0.3, Seed: 42));
        var s = new double[] { 0.2, 0.1, 0.4 };
        Assert.Equal(Enumerable.Range(0, 100).Select(_ => o1.Choose(s).Preferred), Enumerable.Range(0, 100).Select(_ => o2.Choose(s).Preferred));
        Assert.Throws<ArgumentException>(() => new OracleLabeler((_, _) => 0, new OracleOptions(Temperature: 0)));
    }

    [Fact]
    public async Task TheOracleLabelsAStoreWithVaderAsItsGoldScorer()
    {
        using var dir = new TempDirectory();
        await using var store = await Stores.SqlitePreferenceStore.OpenAsync(dir.File("s.db"));
        var vader = VaderSentiment.Load(Repository.Data("sentiment", "vader_lexicon.txt"));
        await store.AddQueriesAsync([
            new NewQuery(QueryKind.Text, "Review:", [new("What a horrible, sad film."), new("I love this wonderful film!")]),
            new NewQuery(QueryKind.Text, "Review:", [new("Great acting, great story."), new("Boring and bad.")]),
        ]);
        var (me, _) = await store.AddLabelerAsync("oracle", LabelerRole.Labeler);
        var oracle = new OracleLabeler(vader.AsGoldScorer(), new OracleOptions(Temperature: 0.01));
        Assert.Equal(2, await LabelingSession.RunAsync(store, me.Id, oracle, 10));
        Assert.Equal([1, 0], (await store.GetJudgmentsAsync()).Select(j => j.Answer.Preferred!.Value));
    }

    [Fact]
    public async Task Given_a_person_who_answers_twice_then_quits_When_the_session_runs_Then_two_judgments_are_stored_and_the_third_query_stays_theirs()
    {
        using var dir = new TempDirectory();
        await using var store = await Stores.SqlitePreferenceStore.OpenAsync(dir.File("s.db"));
        await store.AddQueriesAsync([.. Enumerable.Range(0, 4).Select(i => new NewQuery(QueryKind.Text, $"p{i}", [new("a"), new("b")]))]);
        var (me, _) = await store.AddLabelerAsync("person", LabelerRole.Labeler);
        var shown = new List<string>();

        int done = await LabelingSession.RunAsync(store, me.Id, (query, _) =>
        {
            shown.Add(query.Prompt);
            return Task.FromResult(shown.Count <= 2 ? Answer.Prefer(1) : null);
        }, maxJudgments: int.MaxValue);

        Assert.Equal(2, done);
        Assert.Equal(3, shown.Count);
        Assert.Equal(2, (await store.GetJudgmentsAsync()).Count);
        // The assignment left open by quitting is handed back to the same person next time.
        Assert.Equal(shown[2], (await store.NextAssignmentAsync(me.Id))!.Query.Prompt);
        Assert.Equal(me.Id, (await LabelingSession.FindOrAddLabelerAsync(store, "person")).Id);
    }
}

public sealed class GoldScorerTests
{
    [Fact]
    public void MetadataScoresDriveTheOracleOnClips()
    {
        var clips = new Query(1, QueryKind.Clip, "Which hopper moves right?",
            [new("<svg/>", "ppo", new Dictionary<string, string> { ["true_return"] = "12.5" }),
             new("<svg></svg>", "random", new Dictionary<string, string> { ["true_return"] = "-3" })], "default", null, DateTimeOffset.UnixEpoch);
        var oracle = new OracleLabeler(GoldScorers.FromMetadata("true_return"), new OracleOptions(Temperature: 0.01));
        Assert.Equal(0, oracle.Answer(clips).Preferred);
        var missing = clips with { Candidates = [new("<svg/>", "x"), new("<svg/>", "y")] };
        Assert.Contains("true_return", Assert.Throws<ArgumentException>(() => oracle.Answer(missing)).Message);
    }
}
