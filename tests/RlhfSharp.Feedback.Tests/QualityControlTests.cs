// Agreement, aggregation and flagging checked against values computed by hand (arithmetic in the comments)
// and against Krippendorff's own worked example.
using RlhfSharp.Feedback.Quality;

namespace RlhfSharp.Feedback.Tests;

public sealed class QualityControlTests
{
    [Fact]
    public void CohensKappaOnATwoByTwoTable()
    {
        // 50 items: both "yes" 20, A yes/B no 5, A no/B yes 10, both "no" 15.
        // p_o = 35/50 = 0.7; p_A(yes) = 25/50 = 0.5, p_B(yes) = 30/50 = 0.6;
        // p_e = 0.5·0.6 + 0.5·0.4 = 0.5; κ = (0.7 − 0.5)/(1 − 0.5) = 0.4.
        var pairs = Enumerable.Repeat(("yes", "yes"), 20).Concat(Enumerable.Repeat(("yes", "no"), 5))
            .Concat(Enumerable.Repeat(("no", "yes"), 10)).Concat(Enumerable.Repeat(("no", "no"), 15)).ToList();
        Assert.Equal(0.4, Agreement.CohensKappa(pairs), 12);
        Assert.Equal(1.0, Agreement.CohensKappa([("a", "a"), ("b", "b")]), 12);
        Assert.True(double.IsNaN(Agreement.CohensKappa([("a", "a"), ("a", "a")])));
    }

    [Fact]
    public void KrippendorffAlphaOnTwoBinaryRaters()
    {
        // Krippendorff (2011) §A: A = 0100000010, B = 1110010000 over 10 units.
        // Coincidences: five 0–0 units → o00 = 10; one 1–1 unit → o11 = 2; four mixed units → o01 = o10 = 4.
        // n0 = 14, n1 = 6, n = 20. α = 1 − (n − 1)(o01 + o10)/(2·n0·n1) = 1 − 19·8/168 = 0.095238.
        string[] a = ["0", "1", "0", "0", "0", "0", "0", "0", "1", "0"], b = ["1", "1", "1", "0", "0", "1", "0", "0", "0", "0"];
        var units = a.Zip(b, (x, y) => (IReadOnlyList<string>)[x, y]);
        Assert.Equal(1 - 19.0 * 8 / 168, Agreement.KrippendorffAlphaNominal(units), 12);
    }

    [Fact]
    public void KrippendorffAlphaOnHisFourObserverExampleWithMissingValues()
    {
        // Krippendorff (2011) §C: 4 observers, 12 units, values 1..5, missing marked "."; published α_nominal = 0.743.
        string[] rows =
        [
            "1 2 3 3 2 1 4 1 2 . . .",
            "1 2 3 3 2 2 4 1 2 5 . 3",
            ". 3 3 3 2 3 4 2 2 5 1 .",
            "1 2 3 3 2 4 4 1 2 5 1 .",
        ];
        var grid = rows.Select(r => r.Split(' ')).ToArray();
        var units = Enumerable.Range(0, 12).Select(u => (IReadOnlyList<string>)[.. grid.Select(r => r[u]).Where(v => v != ".")]);
        Assert.Equal(0.743, Agreement.KrippendorffAlphaNominal(units), 3);
    }

    [Fact]
    public void DawidSkeneOneIterationMatchesHandComputation()
    {
        // Items 1..4 labelled by a, b, c (ids 1, 2, 3):
        //   1: 0 0 1    2: 1 1 1    3: 0 0 0    4: 1 0 1
        // Majority start: items 1, 3 → class 0; items 2, 4 → class 1. Priors (0.5, 0.5).
        // Confusions with one added to every count (smoothing 1, two labels per row → denominators 2 + 2):
        //   a: class 0 → (3/4, 1/4), class 1 → (1/4, 3/4)
        //   b: class 0 → (3/4, 1/4), class 1 → (2/4, 2/4)
        //   c: class 0 → (2/4, 2/4), class 1 → (1/4, 3/4)
        // E-step, item 4 (1 0 1): class 0: .5·.25·.75·.5 = .046875; class 1: .5·.75·.5·.75 = .140625 → P(1) = .75.
        //         item 1 (0 0 1): class 0: .5·.75·.75·.5 = .140625; class 1: .5·.25·.5·.75 = .046875 → P(0) = .75.
        //         item 2 (1 1 1): class 0: .5·.25·.25·.5 = .015625; class 1: .5·.75·.5·.75 = .140625 → P(1) = .9.
        var labels = new List<(long, long, string)>
        {
            (1, 1, "0"), (1, 2, "0"), (1, 3, "1"),
            (2, 1, "1"), (2, 2, "1"), (2, 3, "1"),
            (3, 1, "0"), (3, 2, "0"), (3, 3, "0"),
            (4, 1, "1"), (4, 2, "0"), (4, 3, "1"),
        };
        var r = DawidSkene.Fit(labels, maxIterations: 1, smoothing: 1);
        Assert.Equal(["0", "1"], r.Classes);
        Assert.Equal(0.75, r.Posteriors[4][1], 12);
        Assert.Equal(0.75, r.Posteriors[1][0], 12);
        Assert.Equal(0.9, r.Posteriors[2][1], 12);
        Assert.Equal(0.5, r.Confusions[2][1, 0], 12);
        Assert.Equal(0.25, r.Confusions[3][1, 0], 12);
        Assert.Equal([0.5, 0.5], r.Priors);
    }

    [Fact]
    public void DawidSkeneBeatsMajorityVoteWhenLabellersDifferInQuality()
    {
        // Labellers 1 and 2 are right 90% of the time, 3 always answers the opposite, 4 and 5 answer at random.
        // EM learns 3's inverted confusion matrix and uses it; a majority vote cannot.
        var draw = new Random(4);
        string S(int v) => v.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var truth = Enumerable.Range(0, 300).Select(_ => draw.Next(2)).ToArray();
        var judgments = new List<Judgment>();
        for (int i = 0; i < truth.Length; i++)
        {
            int t = truth[i];
            int[] given = [draw.NextDouble() < 0.9 ? t : 1 - t, draw.NextDouble() < 0.9 ? t : 1 - t, 1 - t, draw.Next(2), draw.Next(2)];
            for (int j = 0; j < given.Length; j++) judgments.Add(J(judgments.Count, i, j + 1, Answer.Prefer(given[j])));
        }
        var r = QualityControl.DawidSkeneLabels(judgments);
        var mv = QualityControl.MajorityVote(judgments);
        int dsRight = Enumerable.Range(0, truth.Length).Count(i => r.Label(i) == S(truth[i]));
        int mvRight = Enumerable.Range(0, truth.Length).Count(i => mv[i] == S(truth[i]));
        Assert.True(dsRight >= 0.97 * truth.Length, $"Dawid–Skene recovered {dsRight}/{truth.Length}");
        Assert.True(mvRight <= 0.9 * truth.Length, $"majority vote recovered {mvRight}/{truth.Length}");
        Assert.True(r.Confusions[3][0, 1] > 0.95 && r.Confusions[3][1, 0] > 0.95, "the adversary's inverted confusion matrix");
    }

    private static Judgment J(long id, long query, long labeller, Answer a) => new(id, query, labeller, a, TimeSpan.Zero, DateTimeOffset.UnixEpoch);

    [Fact]
    public void MajorityVoteAndCategories()
    {
        var js = new[]
        {
            J(1, 10, 1, Answer.Prefer(0)), J(2, 10, 2, Answer.Prefer(0)), J(3, 10, 3, Answer.Prefer(1)),
            J(4, 11, 1, Answer.Prefer(0)), J(5, 11, 2, Answer.Tie()),
            J(6, 12, 1, Answer.Skip("?")),
        };
        var mv = QualityControl.MajorityVote(js);
        Assert.Equal("0", mv[10]);
        Assert.Null(mv[11]);
        Assert.Null(mv[12]);
        Assert.Equal("rank:2,0,1", QualityControl.Category(Answer.Rank(2, 0, 1)));
        Assert.True(QualityControl.Matches(Answer.Prefer(2), Answer.Rank(2, 1, 0)));
        Assert.False(QualityControl.Matches(Answer.Tie(), Answer.Prefer(0)));
    }

    [Fact]
    public async Task GoldAccuracyFlagsTheCarelessAndExportLeavesThemOut()
    {
        using var dir = new TempDirectory();
        await using var store = await Stores.SqlitePreferenceStore.OpenAsync(dir.File("qc.db"));
        await store.AddQueriesAsync([.. Enumerable.Range(0, 10).Select(i => new NewQuery(QueryKind.Text, $"g{i}", [new("a"), new("b")], GoldAnswer: Answer.Prefer(i % 2)))]);
        await store.AddQueriesAsync([.. Enumerable.Range(0, 10).Select(i => new NewQuery(QueryKind.Text, $"q{i}", [new("a"), new("b")]))]);
        var (good, _) = await store.AddLabelerAsync("good", LabelerRole.Labeler);
        var (bad, _) = await store.AddLabelerAsync("bad", LabelerRole.Labeler);
        // good answers gold right and regular queries "0"; bad answers everything "0": right on 5 of 10 gold tasks.
        foreach (var l in new[] { good, bad })
            while (await store.NextAssignmentAsync(l.Id, overlap: 2, goldRate: 1) is { } a)
            {
                var gold = (await store.GetQueryAsync(a.Query.Id))!.GoldAnswer;
                await store.SubmitAsync(a.Id, l.Id, gold is not null && l == good ? gold : Answer.Prefer(0), TimeSpan.Zero);
            }

        var report = await QualityControl.ReportAsync(store);
        Assert.Equal([1.0, 0.5], report.Gold.Select(g => g.Accuracy));
        Assert.Equal([10, 10], report.Gold.Select(g => g.Judged));
        // Both said "0" on every regular query: perfect observed agreement, but p_e = 1, so κ is undefined.
        Assert.True(double.IsNaN(Assert.Single(report.Pairs).Kappa));

        Assert.Equal([bad.Id], await QualityControl.FlagAsync(store, minAccuracy: 0.8, minGold: 5));
        Assert.True((await store.GetLabelersAsync()).Single(l => l.Id == bad.Id).Flagged);
        var sw = new StringWriter();
        Assert.Equal(10, await Jsonl.ExportAsync(store, sw, new ExportOptions(ExcludeFlagged: true)));
    }

    [Fact]
    public void DawidSkeneKeepsGoldItemsAtTheirTrueLabelAndFitsConfusionsAgainstThem()
    {
        // Items 1..4 are gold with truth "a"; both labellers say "b" on all of them, and "b" on item 5 (not gold).
        // Unanchored, EM takes "b" as the truth and rates both perfect. Clamped, gold items stay one-hot "a", each
        // labeller's row for true "a" says "b" (accuracy ~0), and their "b" on item 5 then says nothing either way.
        var labels = new List<(long, long, string)>();
        foreach (long item in new long[] { 1, 2, 3, 4, 5 }) { labels.Add((item, 1, "b")); labels.Add((item, 2, "b")); }
        var free = DawidSkene.Fit(labels);
        Assert.Equal(["b"], free.Classes);
        var gold = new Dictionary<long, string> { [1] = "a", [2] = "a", [3] = "a", [4] = "a", [99] = "a" };
        var r = DawidSkene.Fit(labels, gold: gold);
        Assert.Equal(["a", "b"], r.Classes);
        foreach (long item in new long[] { 1, 2, 3, 4 }) Assert.Equal([1.0, 0.0], r.Posteriors[item]);
        Assert.False(r.Posteriors.ContainsKey(99)); // gold nobody labelled takes no part
        Assert.True(r.Confusions[1][0, 1] > 0.99, $"P(says b | a) = {r.Confusions[1][0, 1]}");
        Assert.True(r.Priors[0] > 0.75, $"P(a) = {r.Priors[0]}");
    }
}
