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

/// <summary>
/// Dawid–Skene accuracy per labeller, Σ_c P(true = c)·P(says c | true = c), for the labellers the data identifies (see
/// <see cref="QualityControl.EstimateAccuracies"/>), and one warning per thing that makes an estimate unreliable.
/// </summary>
public sealed record AccuracyEstimates(IReadOnlyDictionary<long, double> Accuracy, IReadOnlyList<string> Warnings);

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

    /// <summary>Dawid–Skene over the judgments' nominal labels (skips left out); <paramref name="gold"/> (query → true label) clamps gold items.</summary>
    public static DawidSkeneResult DawidSkeneLabels(IEnumerable<Judgment> judgments, int maxIterations = 100, IReadOnlyDictionary<long, string>? gold = null) =>
        DawidSkene.Fit([.. judgments.Select(j => (j.QueryId, j.LabelerId, Label: Category(j.Answer))).Where(t => t.Label is not null).Select(t => (t.QueryId, t.LabelerId, t.Label!))],
            maxIterations, gold: gold);

    /// <summary>Gold answers a labeller needs before gold alone identifies their Dawid–Skene accuracy.</summary>
    public const int MinGoldAnchors = 5;

    /// <summary>Non-gold items a labeller must share with two or more others before agreement alone identifies their accuracy.</summary>
    public const int MinTriangulatedItems = 8;

    /// <summary>
    /// Dawid–Skene accuracies anchored by gold: every non-skip judgment takes part, gold tasks with their true label
    /// clamped. The rule for when the data identifies labeller j's accuracy (otherwise it is left out, with a warning):
    /// (a) anchored: j gave at least <see cref="MinGoldAnchors"/> non-skip gold answers; or
    /// (b) triangulated: at least <see cref="MinTriangulatedItems"/> non-gold items that two or more other labellers also
    ///     answered (two labellers alone cannot say which of them is right; three views of an item are what identify a
    ///     latent-class model), and those items do not all carry one same label (when everyone always gives one answer,
    ///     nothing shows how a labeller answers the other class, and everyone looks perfect).
    /// A campaign with no gold answers at all also gets a warning: agreement alone makes a bloc that shares a bias look
    /// accurate. <paramref name="names"/> (optional) names labellers in the warnings.
    /// </summary>
    public static AccuracyEstimates EstimateAccuracies(IReadOnlyList<Query> queries, IReadOnlyList<Judgment> judgments,
        IReadOnlyDictionary<long, string>? names = null)
    {
        var goldLabels = queries.Where(q => q.IsGold && Category(q.GoldAnswer!) is not null).ToDictionary(q => q.Id, q => Category(q.GoldAnswer!)!);
        // One label per (labeller, query): the first, should a store hold two.
        var labelled = judgments.OrderBy(j => j.Id).Where(j => Category(j.Answer) is not null)
            .GroupBy(j => (j.LabelerId, j.QueryId)).Select(g => g.First()).ToList();
        var warnings = new List<string>();
        var accuracy = new Dictionary<long, double>();
        if (labelled.Count == 0) return new AccuracyEstimates(accuracy, warnings);

        var regularByItem = labelled.Where(j => !goldLabels.ContainsKey(j.QueryId)).GroupBy(j => j.QueryId)
            .ToDictionary(g => g.Key, g => g.Select(j => (j.LabelerId, Label: Category(j.Answer)!)).ToList());
        string Name(long id) => names is not null && names.TryGetValue(id, out var n) ? $"labeller \"{n}\" (#{id})" : $"labeller #{id}";
        var identified = new HashSet<long>();
        foreach (var labeler in labelled.Select(j => j.LabelerId).Distinct().Order())
        {
            int goldAnswers = labelled.Count(j => j.LabelerId == labeler && goldLabels.ContainsKey(j.QueryId));
            var triangulated = regularByItem.Values.Where(ls => ls.Any(l => l.LabelerId == labeler) && ls.Count(l => l.LabelerId != labeler) >= 2).ToList();
            bool oneLabel = triangulated.SelectMany(ls => ls.Select(l => l.Label)).Distinct().Count() < 2;
            if (goldAnswers >= MinGoldAnchors || (triangulated.Count >= MinTriangulatedItems && !oneLabel))
            {
                identified.Add(labeler);
                continue;
            }
            warnings.Add(triangulated.Count >= MinTriangulatedItems
                ? $"{Name(labeler)}: accuracy not identifiable: {goldAnswers} gold answers (needs {MinGoldAnchors}), and all {triangulated.Count} items shared with two or more others carry one same label, so agreement cannot measure accuracy."
                : $"{Name(labeler)}: accuracy not identifiable: {goldAnswers} gold answers (needs {MinGoldAnchors}) and {triangulated.Count} items shared with two or more others (needs {MinTriangulatedItems}).");
        }
        if (identified.Count > 0 && goldLabels.Count == 0)
            warnings.Insert(0, "No gold tasks: Dawid–Skene accuracies rest on agreement alone, so labellers who share a bias look accurate; mix gold tasks in (--gold-rate).");
        if (identified.Count == 0) return new AccuracyEstimates(accuracy, warnings);

        var ds = DawidSkeneLabels(labelled, gold: goldLabels);
        foreach (var (labeler, confusion) in ds.Confusions)
        {
            if (!identified.Contains(labeler)) continue;
            double a = 0;
            for (var c = 0; c < ds.Classes.Count; c++) a += ds.Priors[c] * confusion[c, c];
            accuracy[labeler] = a;
        }
        return new AccuracyEstimates(accuracy, warnings);
    }

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
    /// <paramref name="minGold"/> gold judgments (and unflags those now above it). Each change is written to the audit
    /// log under <paramref name="actor"/>. Returns the ids flagged now.
    /// </summary>
    public static async Task<IReadOnlyList<long>> FlagAsync(IPreferenceStore store, double minAccuracy, int minGold = 5, string? campaign = null,
        string actor = "quality-control", CancellationToken ct = default)
    {
        if (!(minAccuracy >= 0 && minAccuracy <= 1)) throw new FeedbackException($"minimum accuracy must lie in [0, 1]; got {minAccuracy}.");
        var queries = await store.GetQueriesAsync(campaign, ct);
        var judgments = await store.GetJudgmentsAsync(campaign, ct);
        var labelers = (await store.GetLabelersAsync(ct)).ToDictionary(l => l.Id);
        var flagged = new List<long>();
        foreach (var a in GoldAccuracies(queries, judgments).Where(a => a.Judged >= minGold))
        {
            bool flag = a.Accuracy < minAccuracy;
            if (flag) flagged.Add(a.LabelerId);
            var who = labelers[a.LabelerId];
            if (who.Flagged == flag) continue;
            await store.SetFlaggedAsync(a.LabelerId, flag, ct);
            await store.AppendAuditAsync(actor, flag ? "flag" : "unflag", who.Display,
                $"gold accuracy {a.Correct}/{a.Judged} against threshold {minAccuracy.ToString(System.Globalization.CultureInfo.InvariantCulture)}", ct);
        }
        return flagged;
    }
}
