// Quality control for a labelling campaign, as crowd platforms run it: accuracy on unannounced gold tasks,
// agreement between labellers, flagging those under a threshold, and aggregation by majority vote or Dawid–Skene.
namespace RlhfSharp.Feedback.Quality;

/// <summary>A labeller's record on gold tasks. Skips are not counted: "can't tell" is an honest answer.</summary>
public sealed record GoldAccuracy(long LabelerId, int Judged, int Correct)
{
    public double Accuracy => Judged == 0 ? double.NaN : Correct / (double)Judged;
}

/// <summary>Cohen's κ between two labellers on the queries both answered.</summary>
public sealed record PairAgreement(long LabelerA, long LabelerB, int SharedItems, double Kappa);

/// <summary>A campaign's quality at a glance (the admin page shows it).</summary>
/// <param name="Gold">Per labeller accuracy on gold tasks.</param>
/// <param name="Pairs">κ for every labeller pair sharing at least one query.</param>
/// <param name="Alpha">Krippendorff's α (nominal) over all non-gold queries of the campaign.</param>
public sealed record QualityReport(IReadOnlyList<GoldAccuracy> Gold, IReadOnlyList<PairAgreement> Pairs, double Alpha);

public static class QualityControl
{
    /// <summary>An answer as a nominal label: "0", "1"… for a preferred index, "tie", "rank:2,0,1"; null for a skip (missing).</summary>
    public static string? Category(Answer answer) => answer.Kind switch
    {
        AnswerKind.Preferred => answer.Preferred!.Value.ToString(System.Globalization.CultureInfo.InvariantCulture),
        AnswerKind.Tie => "tie",
        AnswerKind.Ranking => "rank:" + string.Join(",", answer.Ranking!),
        _ => null,
    };

    /// <summary>Whether a labeller's answer agrees with a gold answer; a ranking and a choice agree on the best candidate.</summary>
    public static bool Matches(Answer gold, Answer given)
    {
        int? Best(Answer a) => a.Kind == AnswerKind.Preferred ? a.Preferred : a.Kind == AnswerKind.Ranking ? a.Ranking![0] : null;
        if (gold.Kind == AnswerKind.Ranking && given.Kind == AnswerKind.Ranking) return gold.Ranking!.SequenceEqual(given.Ranking!);
        if (gold.Kind == AnswerKind.Tie || given.Kind == AnswerKind.Tie) return gold.Kind == given.Kind;
        return Best(gold) is int g && Best(given) == g;
    }

    public static IReadOnlyList<GoldAccuracy> GoldAccuracies(IEnumerable<Query> queries, IEnumerable<Judgment> judgments)
    {
        var gold = queries.Where(q => q.IsGold).ToDictionary(q => q.Id, q => q.GoldAnswer!);
        return [.. judgments.Where(j => gold.ContainsKey(j.QueryId) && j.Answer.Kind != AnswerKind.Skip)
            .GroupBy(j => j.LabelerId)
            .Select(g => new GoldAccuracy(g.Key, g.Count(), g.Count(j => Matches(gold[j.QueryId], j.Answer))))
            .OrderBy(a => a.LabelerId)];
    }

    public static IReadOnlyList<PairAgreement> PairwiseKappa(IEnumerable<Judgment> judgments)
    {
        var labels = judgments.Select(j => (j.QueryId, j.LabelerId, Label: Category(j.Answer)))
            .Where(t => t.Label is not null)
            .GroupBy(t => t.LabelerId)
            .ToDictionary(g => g.Key, g => g.GroupBy(t => t.QueryId).ToDictionary(q => q.Key, q => q.First().Label!));
        var ids = labels.Keys.Order().ToArray();
        var result = new List<PairAgreement>();
        for (int a = 0; a < ids.Length; a++)
            for (int b = a + 1; b < ids.Length; b++)
            {
                var shared = labels[ids[a]].Where(kv => labels[ids[b]].ContainsKey(kv.Key)).Select(kv => (kv.Value, labels[ids[b]][kv.Key])).ToList();
                if (shared.Count > 0) result.Add(new PairAgreement(ids[a], ids[b], shared.Count, Agreement.CohensKappa(shared)));
            }
        return result;
    }

    public static double Alpha(IEnumerable<Judgment> judgments) =>
        Agreement.KrippendorffAlphaNominal(judgments.Select(j => (j.QueryId, Label: Category(j.Answer)))
            .Where(t => t.Label is not null)
            .GroupBy(t => t.QueryId)
            .Select(g => (IReadOnlyList<string>)[.. g.Select(t => t.Label!)]));

    /// <summary>Per query, the label most labellers gave; null where the top labels tie (or all skipped).</summary>
    public static IReadOnlyDictionary<long, string?> MajorityVote(IEnumerable<Judgment> judgments) =>
        judgments.GroupBy(j => j.QueryId).ToDictionary(g => g.Key, g =>
        {
            var counts = g.Select(j => Category(j.Answer)).Where(c => c is not null).GroupBy(c => c!).Select(c => (c.Key, N: c.Count())).OrderByDescending(c => c.N).ToList();
            return counts.Count == 0 || (counts.Count > 1 && counts[0].N == counts[1].N) ? null : counts[0].Key;
        });

    /// <summary>Dawid–Skene over the judgments' nominal labels (skips left out).</summary>
    public static DawidSkeneResult DawidSkeneLabels(IEnumerable<Judgment> judgments, int maxIterations = 100) =>
        DawidSkene.Fit([.. judgments.Select(j => (j.QueryId, j.LabelerId, Label: Category(j.Answer))).Where(t => t.Label is not null).Select(t => (t.QueryId, t.LabelerId, t.Label!))], maxIterations);

    public static async Task<QualityReport> ReportAsync(IPreferenceStore store, string? campaign = null, CancellationToken ct = default)
    {
        var queries = await store.GetQueriesAsync(campaign, ct);
        var judgments = await store.GetJudgmentsAsync(campaign, ct);
        var gold = queries.Where(q => q.IsGold).Select(q => q.Id).ToHashSet();
        var regular = judgments.Where(j => !gold.Contains(j.QueryId)).ToList();
        return new QualityReport(GoldAccuracies(queries, judgments), PairwiseKappa(regular), Alpha(regular));
    }

    /// <summary>
    /// Flags every labeller whose gold accuracy is under <paramref name="minAccuracy"/> after at least
    /// <paramref name="minGold"/> gold judgments (and unflags those now above it). Returns the flagged ids.
    /// </summary>
    public static async Task<IReadOnlyList<long>> FlagAsync(IPreferenceStore store, double minAccuracy, int minGold = 5, string? campaign = null, CancellationToken ct = default)
    {
        if (!(minAccuracy >= 0 && minAccuracy <= 1)) throw new FeedbackException($"minimum accuracy must lie in [0, 1]; got {minAccuracy}.");
        var queries = await store.GetQueriesAsync(campaign, ct);
        var judgments = await store.GetJudgmentsAsync(campaign, ct);
        var flagged = new List<long>();
        foreach (var a in GoldAccuracies(queries, judgments).Where(a => a.Judged >= minGold))
        {
            bool flag = a.Accuracy < minAccuracy;
            await store.SetFlaggedAsync(a.LabelerId, flag, ct);
            if (flag) flagged.Add(a.LabelerId);
        }
        return flagged;
    }
}
