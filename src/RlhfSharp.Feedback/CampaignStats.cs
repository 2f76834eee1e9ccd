// Counts an admin page or a progress line shows: queue depth, throughput, labellers. Computed from the
// IPreferenceStore contract alone, so it works the same on every store.
namespace RlhfSharp.Feedback;

/// <summary>A campaign's progress.</summary>
/// <param name="Queries">Regular (non-gold) queries.</param>
/// <param name="GoldQueries">Gold tasks.</param>
/// <param name="Judgments">All judgments, gold included.</param>
/// <param name="Skips">Judgments that are skips.</param>
/// <param name="Complete">Regular queries holding at least <c>overlap</c> judgments.</param>
/// <param name="QueueDepth">Regular queries still needing judgments (Queries − Complete).</param>
/// <param name="ActiveLabelers">Labellers with at least one judgment.</param>
/// <param name="JudgmentsLastHour">Judgments created in the hour before <c>now</c>.</param>
/// <param name="MedianSecondsPerJudgment">Median time spent per judgment, NaN when there are none.</param>
public sealed record CampaignStats(int Queries, int GoldQueries, int Judgments, int Skips, int Complete, int QueueDepth,
    int ActiveLabelers, int JudgmentsLastHour, double MedianSecondsPerJudgment);

public static class PreferenceStoreStats
{
    public static async Task<CampaignStats> GetStatsAsync(this IPreferenceStore store, string? campaign = null, int overlap = 1,
        DateTimeOffset? now = null, CancellationToken ct = default)
    {
        if (overlap < 1) throw new FeedbackException($"overlap must be at least 1; got {overlap}.");
        var queries = await store.GetQueriesAsync(campaign, ct);
        var judgments = await store.GetJudgmentsAsync(campaign, ct);
        var perQuery = judgments.GroupBy(j => j.QueryId).ToDictionary(g => g.Key, g => g.Count());
        var regular = queries.Where(q => !q.IsGold).ToList();
        int complete = regular.Count(q => perQuery.GetValueOrDefault(q.Id) >= overlap);
        var t = now ?? DateTimeOffset.UtcNow;
        var times = judgments.Select(j => j.TimeSpent.TotalSeconds).Order().ToArray();
        double median = times.Length == 0 ? double.NaN
            : times.Length % 2 == 1 ? times[times.Length / 2] : (times[times.Length / 2 - 1] + times[times.Length / 2]) / 2;
        return new CampaignStats(regular.Count, queries.Count - regular.Count, judgments.Count,
            judgments.Count(j => j.Answer.Kind == AnswerKind.Skip), complete, regular.Count - complete,
            judgments.Select(j => j.LabelerId).Distinct().Count(), judgments.Count(j => j.CreatedAt > t.AddHours(-1) && j.CreatedAt <= t), median);
    }
}
