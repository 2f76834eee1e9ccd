// The dashboard's numbers against hand-computed tables: Cohen's kappa, percent agreement, gold accuracy, queue depth,
// throughput buckets and flag suggestions.
using RlhfSharp.Feedback;
using RlhfSharp.Feedback.Quality;

namespace RlhfSharp.Web.Tests;

public sealed class DashboardStatisticsTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 22, 12, 0, 0, TimeSpan.Zero);

    private static Query Q(long id, Answer? gold = null) =>
        new(id, QueryKind.Text, $"p{id}", [new Candidate("a"), new Candidate("b")], "default", gold, Now);

    private static Judgment J(long id, long query, long labeler, Answer a, double minutesAgo = 1, double seconds = 2) =>
        new(id, query, labeler, a, TimeSpan.FromSeconds(seconds), Now - TimeSpan.FromMinutes(minutesAgo));

    [Fact]
    public void Given_two_labellers_on_four_queries_When_computing_agreement_Then_kappa_matches_the_hand_computation()
    {
        // A: 0,0,1,1   B: 0,1,1,1   p_o = 3/4; p_e = .5*.25 + .5*.75 = .5; kappa = (.75-.5)/(1-.5) = .5
        var judgments = new List<Judgment>
        {
            J(1, 1, 10, Answer.Prefer(0)), J(2, 2, 10, Answer.Prefer(0)), J(3, 3, 10, Answer.Prefer(1)), J(4, 4, 10, Answer.Prefer(1)),
            J(5, 1, 20, Answer.Prefer(0)), J(6, 2, 20, Answer.Prefer(1)), J(7, 3, 20, Answer.Prefer(1)), J(8, 4, 20, Answer.Prefer(1)),
            J(9, 5, 20, Answer.Skip("can't tell")), J(10, 5, 10, Answer.Prefer(0)),
        };
        var a = StoreDashboardStatistics.Agreement(judgments);
        var pair = Assert.Single(a.Pairs);
        Assert.Equal((10L, 20L, 4), (pair.LabelerA, pair.LabelerB, pair.Items));
        Assert.Equal(0.75, pair.Agreement, 12);
        Assert.Equal(0.5, pair.Kappa!.Value, 12);
        Assert.Equal(4, a.PairsCompared);
        Assert.Equal(0.75, a.PercentAgreement!.Value, 12);
        // Krippendorff's alpha (nominal), by hand: coincidences from units {0,0} {0,1} {1,1} {1,1} (unit 5 has one value):
        // o00 = 2, o01 = o10 = 1, o11 = 4; n0 = 3, n1 = 5, n = 8; alpha = 1 - (n-1) * (o01+o10) / (n0*n1 + n1*n0) = 1 - 7*2/30.
        Assert.Equal(1 - 14.0 / 30, a.KrippendorffAlpha!.Value, 12);
    }

    [Fact]
    public void Given_perfect_agreement_on_one_category_When_computing_kappa_Then_it_is_undefined_not_NaN()
    {
        var a = StoreDashboardStatistics.Agreement([J(1, 1, 1, Answer.Tie()), J(2, 1, 2, Answer.Tie())]);
        Assert.Null(Assert.Single(a.Pairs).Kappa);
        Assert.Equal(1.0, a.PercentAgreement);
    }

    [Fact]
    public void Given_gold_tasks_and_an_overlap_When_computing_the_dashboard_Then_accuracy_queue_throughput_and_flags_are_right()
    {
        var queries = new[] { Q(1), Q(2), Q(3), Q(4, Answer.Prefer(0)), Q(5, Answer.Prefer(1)), Q(6, Answer.Rank(1, 0)) };
        var labelers = new[]
        {
            new Labeler(1, "good", LabelerRole.Labeler, false, Now),
            new Labeler(2, "bad", LabelerRole.Labeler, false, Now),
            new Labeler(3, "flagged", LabelerRole.Labeler, true, Now),
        };
        var judgments = new List<Judgment>
        {
            // good: 3/3 on gold (a choice matches a gold ranking's best candidate), plus two regular answers
            J(1, 4, 1, Answer.Prefer(0), 5, 1), J(2, 5, 1, Answer.Prefer(1), 5, 3), J(3, 6, 1, Answer.Prefer(1), 90, 5),
            J(4, 1, 1, Answer.Prefer(0), 150, 7), J(5, 2, 1, Answer.Tie(), 30, 9),
            // bad: 1/3 on gold, a skip on gold left out, one regular answer
            J(6, 4, 2, Answer.Prefer(1), 1, 2), J(7, 5, 2, Answer.Prefer(1), 1, 2), J(8, 6, 2, Answer.Tie(), 1, 2),
            J(9, 4, 2, Answer.Skip("unreadable"), 1, 2), J(10, 1, 2, Answer.Prefer(0), 1, 2),
        };
        var s = StoreDashboardStatistics.Compute(queries, judgments, labelers, new LabelingAppOptions(Overlap: 2, MinGoldForFlag: 3, FlagAccuracyBelow: 0.7), Now);

        Assert.Equal((6, 3, 10), (s.Queries, s.GoldQueries, s.Judgments));
        // Regular queries: q1 has 2 answers, q2 has 1, q3 has 0 -> open 2, answers needed 1 + 2 = 3.
        Assert.Equal(new QueueStats(2, 3, 2), s.Queue);
        var good = s.Labelers.Single(l => l.Name == "good");
        Assert.Equal((3, 3, 1.0, false), (good.GoldAnswered, good.GoldCorrect, good.GoldAccuracy!.Value, good.SuggestFlag));
        Assert.Equal(5.0, good.MedianSeconds);
        var bad = s.Labelers.Single(l => l.Name == "bad");
        Assert.Equal((3, 1, 1), (bad.GoldAnswered, bad.GoldCorrect, bad.Skips));
        Assert.Equal(1.0 / 3, bad.GoldAccuracy!.Value, 12);
        Assert.True(bad.SuggestFlag);
        var flagged = s.Labelers.Single(l => l.Name == "flagged");
        Assert.True(flagged.Flagged);
        Assert.False(flagged.SuggestFlag);
        Assert.Null(flagged.GoldAccuracy);
        // Minutes ago: 5,5,90,150,30,1,1,1,1,1 -> 8 within the hour; buckets: hour 0 holds 8, hour 1 holds 1, hour 2 holds 1.
        Assert.Equal(8, s.Throughput.LastHour);
        Assert.Equal(10, s.Throughput.Last24Hours);
        Assert.Equal([0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 8], s.Throughput.PerHour);
        Assert.Equal(2.0, s.Throughput.MedianSecondsPerJudgment);
    }

    [Fact]
    public void Given_three_careful_labellers_and_one_who_flips_half_When_estimating_without_gold_Then_Dawid_Skene_separates_them()
    {
        // Truth alternates 0,1 over 8 queries; labellers 1..3 always give it; labeller 4 flips queries 0,1,4,5
        // (two of each class), so its accuracy is 1/2 by construction and the others' is 1.
        var judgments = new List<Judgment>();
        long id = 1;
        for (var q = 0; q < 8; q++)
        {
            var truth = q % 2;
            for (long l = 1; l <= 3; l++) judgments.Add(J(id++, q + 1, l, Answer.Prefer(truth)));
            var flipped = q is 0 or 1 or 4 or 5;
            judgments.Add(J(id++, q + 1, 4, Answer.Prefer(flipped ? 1 - truth : truth)));
        }
        judgments.Add(J(id, 99, 5, Answer.Prefer(0))); // alone on its query: nothing to estimate from
        var est = QualityControl.EstimateAccuracies([], judgments).Accuracy;
        Assert.All(new long[] { 1, 2, 3 }, l => Assert.True(est[l] > 0.95, $"labeller {l}: {est[l]}"));
        Assert.InRange(est[4], 0.4, 0.6);
        Assert.False(est.ContainsKey(5));
    }

    [Fact]
    public void Given_a_bloc_at_25_percent_on_gold_When_estimating_Then_Dawid_Skene_anchored_by_gold_agrees_with_gold()
    {
        // Issue #17: two labellers who share a bias out-voted a careful one, so the dashboard showed the bloc near 100%
        // and the careful labeller near 25%, against their gold record. 20 gold and 20 regular queries, truth alternating
        // 0,1. "ann" (1) always gives the truth; the bloc (2, 3) gives it on the first 5 of each 20 and the other side
        // on the rest: gold accuracy 5/20 = 25% for each of them, 100% for ann. Anchored by gold, the estimate must say so.
        var queries = Enumerable.Range(1, 40).Select(i => Q(i, i <= 20 ? Answer.Prefer(i % 2) : null)).ToList();
        var judgments = new List<Judgment>();
        long id = 1;
        for (var q = 1; q <= 40; q++)
        {
            var truth = q % 2;
            var blocRight = (q - 1) % 20 < 5;
            judgments.Add(J(id++, q, 1, Answer.Prefer(truth)));
            foreach (var bloc in new long[] { 2, 3 }) judgments.Add(J(id++, q, bloc, Answer.Prefer(blocRight ? truth : 1 - truth)));
        }
        var labelers = new[] { new Labeler(1, "ann", LabelerRole.Labeler, false, Now), new Labeler(2, "bo", LabelerRole.Labeler, false, Now), new Labeler(3, "cy", LabelerRole.Labeler, false, Now) };
        var s = StoreDashboardStatistics.Compute(queries, judgments, labelers, new LabelingAppOptions(Overlap: 3), Now);
        foreach (var row in s.Labelers)
        {
            Assert.NotNull(row.EstimatedAccuracy);
            // Within 0.15, not exactly: a bloc below chance is informative by inversion to Dawid–Skene, so on the five
            // regular queries where all three give the truth it doubts the truth a little (ann ≈ 0.91, bloc ≈ 0.16;
            // unanchored it was bloc ≈ 1.0, ann ≈ 0.25).
            Assert.True(Math.Abs(row.EstimatedAccuracy!.Value - row.GoldAccuracy!.Value) < 0.15, $"{row.Name}: gold {row.GoldAccuracy}, estimated {row.EstimatedAccuracy}");
        }
        Assert.Equal(0.25, s.Labelers.Single(r => r.Name == "bo").GoldAccuracy);
        Assert.Empty(s.Warnings);
    }

    [Fact]
    public void Given_data_that_cannot_identify_accuracies_When_estimating_Then_no_number_is_shown_and_a_warning_says_why()
    {
        var labelers = new[] { new Labeler(1, "ann", LabelerRole.Labeler, false, Now), new Labeler(2, "bo", LabelerRole.Labeler, false, Now), new Labeler(3, "cy", LabelerRole.Labeler, false, Now) };
        var options = new LabelingAppOptions(Overlap: 3);
        long id = 1;

        // Two labellers, no gold, 12 shared queries: either could be the one who is right.
        var pairQueries = Enumerable.Range(1, 12).Select(i => Q(i)).ToList();
        var pair = pairQueries.SelectMany(q => new[] { J(id++, q.Id, 1, Answer.Prefer((int)q.Id % 2)), J(id++, q.Id, 2, Answer.Prefer(0)) }).ToList();
        var s = StoreDashboardStatistics.Compute(pairQueries, pair, labelers, options, Now);
        Assert.All(s.Labelers.Take(2), r => Assert.Null(r.EstimatedAccuracy));
        Assert.Contains(s.Warnings, w => w.Contains("\"ann\"") && w.Contains("not identifiable") && w.Contains($"needs {QualityControl.MinTriangulatedItems}"));

        // Three labellers who all always answer 0 on 10 queries: agreement is perfect and says nothing.
        var same = pairQueries.Take(10).SelectMany(q => new long[] { 1, 2, 3 }.Select(l => J(id++, q.Id, l, Answer.Prefer(0)))).ToList();
        s = StoreDashboardStatistics.Compute(pairQueries, same, labelers, options, Now);
        Assert.All(s.Labelers, r => Assert.Null(r.EstimatedAccuracy));
        Assert.Contains(s.Warnings, w => w.Contains("\"cy\"") && w.Contains("one same label"));

        // Three labellers who disagree now and then on 10 queries: identified by agreement, but without gold that rests
        // on agreement alone, which the dashboard says.
        var mixed = pairQueries.Take(10).SelectMany(q => new long[] { 1, 2, 3 }.Select(l => J(id++, q.Id, l, Answer.Prefer(l == 3 && q.Id <= 2 ? 1 - (int)q.Id % 2 : (int)q.Id % 2)))).ToList();
        s = StoreDashboardStatistics.Compute(pairQueries, mixed, labelers, options, Now);
        Assert.All(s.Labelers, r => Assert.NotNull(r.EstimatedAccuracy));
        Assert.StartsWith("No gold tasks", Assert.Single(s.Warnings));
    }
}
