// What the admin dashboard and the labeller's progress page show, computed in one place from the store's records.
// Agreement (Cohen's kappa, Krippendorff's alpha) and gold matching come from RlhfSharp.Feedback.Quality, so the
// dashboard and `rlhf label report` never disagree; another IDashboardStatistics can replace all of it.
using RlhfSharp.Feedback;
using RlhfSharp.Feedback.Quality;

namespace RlhfSharp.Web;

/// <summary>Computes the admin dashboard's numbers. Swap the implementation passed to <see cref="LabelingApp.Build"/> to change them.</summary>
public interface IDashboardStatistics
{
    Task<DashboardStats> ComputeAsync(IPreferenceStore store, LabelingAppOptions options, DateTimeOffset now, CancellationToken ct);
}

/// <summary>The dashboard: totals, throughput, queue depth, agreement, per-labeller quality.</summary>
/// <param name="Campaign">The campaign reported, or null for all.</param>
/// <param name="Queries">Stored queries, gold included.</param>
/// <param name="GoldQueries">Gold tasks among them.</param>
/// <param name="Judgments">Stored judgments.</param>
/// <param name="Throughput">Judgments over time.</param>
/// <param name="Queue">What is still to be answered.</param>
/// <param name="Agreement">How often labellers on the same query agree.</param>
/// <param name="Labelers">One row per labeller.</param>
/// <param name="Warnings">What makes the estimated accuracies unreliable (no gold, labellers the data cannot identify).</param>
public sealed record DashboardStats(
    string? Campaign, int Queries, int GoldQueries, int Judgments,
    ThroughputStats Throughput, QueueStats Queue, AgreementStats Agreement, IReadOnlyList<LabelerStats> Labelers,
    IReadOnlyList<string> Warnings);

/// <param name="LastHour">Judgments created in the last 60 minutes.</param>
/// <param name="Last24Hours">Judgments created in the last 24 hours.</param>
/// <param name="PerHour">Judgments in each of the last 12 whole hours, oldest first (the dashboard's bar chart).</param>
/// <param name="MedianSecondsPerJudgment">Median time a labeller spent on one judgment; null before any.</param>
public sealed record ThroughputStats(int LastHour, int Last24Hours, IReadOnlyList<int> PerHour, double? MedianSecondsPerJudgment);

/// <param name="OpenQueries">Non-gold queries with fewer than Overlap judgments.</param>
/// <param name="AnswersNeeded">Judgments still needed to give every non-gold query Overlap answers.</param>
/// <param name="Overlap">Answers wanted per query.</param>
public sealed record QueueStats(int OpenQueries, int AnswersNeeded, int Overlap);

/// <param name="PairsCompared">Pairs of judgments by different labellers on the same non-gold query, skips left out.</param>
/// <param name="PercentAgreement">Fraction of those pairs with the same answer; null when none.</param>
/// <param name="KrippendorffAlpha">Krippendorff's alpha (nominal) over the campaign's non-gold queries; null when undefined.</param>
/// <param name="Pairs">Cohen's kappa for each labeller pair that shares at least one query.</param>
public sealed record AgreementStats(int PairsCompared, double? PercentAgreement, double? KrippendorffAlpha, IReadOnlyList<LabelerPairAgreement> Pairs);

/// <param name="Items">Queries both answered (skips left out).</param>
/// <param name="Agreement">Observed agreement p_o.</param>
/// <param name="Kappa">Cohen's kappa (p_o − p_e)/(1 − p_e); null when undefined (p_e = 1: both always gave one same answer).</param>
public sealed record LabelerPairAgreement(long LabelerA, long LabelerB, int Items, double Agreement, double? Kappa);

/// <param name="GoldAnswered">Gold tasks answered (skips left out).</param>
/// <param name="GoldAccuracy">Fraction of those matching the gold answer (<see cref="QualityControl.Matches"/>); null before any.</param>
/// <param name="EstimatedAccuracy">
/// Accuracy estimated by Dawid–Skene over all answers, gold tasks clamped to their true labels:
/// Σ_c P(true = c)·P(says c | true = c). Null where the data cannot identify it (<see cref="QualityControl.EstimateAccuracies"/>;
/// the dashboard's warnings say why).
/// </param>
/// <param name="SuggestFlag">Gold accuracy is below the threshold with enough gold answers, and not yet flagged.</param>
/// <param name="Revoked">The labeller's token and sessions were revoked.</param>
public sealed record LabelerStats(
    long Id, string Name, string Role, bool Flagged, int Judgments, int Skips, int GoldAnswered, int GoldCorrect,
    double? GoldAccuracy, double? EstimatedAccuracy, double? MedianSeconds, DateTimeOffset? LastJudgmentAt, bool SuggestFlag, bool Revoked = false);

/// <summary>The labeller's own progress page.</summary>
/// <param name="Judged">Judgments this labeller has made (in the campaign).</param>
/// <param name="Skipped">Of which skips.</param>
/// <param name="LastHour">Made in the last hour.</param>
/// <param name="MedianSeconds">Median seconds per judgment; null before any.</param>
/// <param name="AnswersNeeded">Judgments the whole campaign still needs.</param>
public sealed record ProgressStats(LabelerDto Labeler, int Judged, int Skipped, int LastHour, double? MedianSeconds, int AnswersNeeded, int CampaignJudgments);

/// <summary>The default: loads queries, judgments and labellers from the store and computes everything in memory.</summary>
public sealed class StoreDashboardStatistics : IDashboardStatistics
{
    public async Task<DashboardStats> ComputeAsync(IPreferenceStore store, LabelingAppOptions options, DateTimeOffset now, CancellationToken ct)
    {
        var queries = await store.GetQueriesAsync(options.Campaign, ct);
        var judgments = await store.GetJudgmentsAsync(options.Campaign, ct);
        var labelers = await store.GetLabelersAsync(ct);
        return Compute(queries, judgments, labelers, options, now);
    }

    /// <summary>The pure computation, so tests can check it against hand-computed tables.</summary>
    public static DashboardStats Compute(IReadOnlyList<Query> queries, IReadOnlyList<Judgment> judgments, IReadOnlyList<Labeler> labelers, LabelingAppOptions options, DateTimeOffset now)
    {
        var byId = queries.ToDictionary(q => q.Id);
        var perHour = new int[12];
        foreach (var j in judgments)
        {
            var hoursAgo = (int)Math.Floor((now - j.CreatedAt).TotalHours);
            if (hoursAgo is >= 0 and < 12)
                perHour[11 - hoursAgo]++;
        }
        var throughput = new ThroughputStats(
            judgments.Count(j => now - j.CreatedAt <= TimeSpan.FromHours(1)),
            judgments.Count(j => now - j.CreatedAt <= TimeSpan.FromHours(24)),
            perHour,
            Median(judgments.Select(j => j.TimeSpent.TotalSeconds)));

        var answersPerQuery = judgments.GroupBy(j => j.QueryId).ToDictionary(g => g.Key, g => g.Count());
        int open = 0, needed = 0;
        foreach (var q in queries.Where(q => !q.IsGold))
        {
            var missing = options.Overlap - answersPerQuery.GetValueOrDefault(q.Id);
            if (missing > 0) { open++; needed += missing; }
        }

        var regular = judgments.Where(j => byId.TryGetValue(j.QueryId, out var q) && !q.IsGold).ToList();
        var estimates = QualityControl.EstimateAccuracies(queries, judgments, labelers.ToDictionary(l => l.Id, l => l.Name));
        var estimated = estimates.Accuracy;
        var rows = labelers.Select(l =>
        {
            var mine = judgments.Where(j => j.LabelerId == l.Id).ToList();
            var gold = mine.Where(j => j.Answer.Kind != AnswerKind.Skip && byId.TryGetValue(j.QueryId, out var q) && q.IsGold).ToList();
            var correct = gold.Count(j => QualityControl.Matches(byId[j.QueryId].GoldAnswer!, j.Answer));
            double? accuracy = gold.Count == 0 ? null : (double)correct / gold.Count;
            var suggest = !l.Flagged && gold.Count >= options.MinGoldForFlag && accuracy < options.FlagAccuracyBelow;
            return new LabelerStats(l.Id, l.Name, l.Role == LabelerRole.Admin ? "admin" : "labeler", l.Flagged, mine.Count,
                mine.Count(j => j.Answer.Kind == AnswerKind.Skip), gold.Count, correct, accuracy, estimated.TryGetValue(l.Id, out var est) ? est : null,
                Median(mine.Select(j => j.TimeSpent.TotalSeconds)), mine.Count == 0 ? null : mine.Max(j => j.CreatedAt), suggest, l.Revoked);
        }).ToList();

        return new DashboardStats(options.Campaign, queries.Count, queries.Count(q => q.IsGold), judgments.Count, throughput,
            new QueueStats(open, needed, options.Overlap), Agreement(regular), rows, estimates.Warnings);
    }

    /// <summary>A labeller's own numbers.</summary>
    public static ProgressStats Progress(Labeler me, IReadOnlyList<Query> queries, IReadOnlyList<Judgment> judgments, LabelingAppOptions options, DateTimeOffset now)
    {
        var mine = judgments.Where(j => j.LabelerId == me.Id).ToList();
        var answersPerQuery = judgments.GroupBy(j => j.QueryId).ToDictionary(g => g.Key, g => g.Count());
        var needed = queries.Where(q => !q.IsGold).Sum(q => Math.Max(0, options.Overlap - answersPerQuery.GetValueOrDefault(q.Id)));
        return new ProgressStats(LabelerDto.From(me), mine.Count, mine.Count(j => j.Answer.Kind == AnswerKind.Skip),
            mine.Count(j => now - j.CreatedAt <= TimeSpan.FromHours(1)), Median(mine.Select(j => j.TimeSpent.TotalSeconds)), needed, judgments.Count);
    }

    /// <summary>
    /// Agreement among labellers who answered the same query, answers compared as <see cref="QualityControl.Category"/>
    /// labels (skips say nothing and are left out). Pass non-gold judgments: gold tasks measure accuracy instead.
    /// </summary>
    public static AgreementStats Agreement(IReadOnlyList<Judgment> judgments)
    {
        // labeller -> query -> label; should a store hold two answers by one labeller, the first counts.
        var labels = judgments.OrderBy(j => j.Id).Where(j => QualityControl.Category(j.Answer) is not null)
            .GroupBy(j => j.LabelerId)
            .ToDictionary(g => g.Key, g => g.GroupBy(j => j.QueryId).ToDictionary(q => q.Key, q => QualityControl.Category(q.First().Answer)!));
        int compared = 0, agreed = 0;
        var pairs = new List<LabelerPairAgreement>();
        foreach (var p in QualityControl.PairwiseKappa(judgments))
        {
            var A = labels[p.LabelerA];
            var B = labels[p.LabelerB];
            var same = A.Count(kv => B.TryGetValue(kv.Key, out var b) && b == kv.Value);
            compared += p.SharedItems;
            agreed += same;
            pairs.Add(new LabelerPairAgreement(p.LabelerA, p.LabelerB, p.SharedItems, (double)same / p.SharedItems, Finite(p.Kappa)));
        }
        return new AgreementStats(compared, compared == 0 ? null : (double)agreed / compared,
            compared == 0 ? null : Finite(QualityControl.Alpha(judgments)), pairs);
    }

    private static double? Finite(double x) => double.IsFinite(x) ? x : null;

    private static double? Median(IEnumerable<double> values)
    {
        var v = values.Order().ToArray();
        if (v.Length == 0) return null;
        return v.Length % 2 == 1 ? v[v.Length / 2] : (v[v.Length / 2 - 1] + v[v.Length / 2]) / 2;
    }
}
