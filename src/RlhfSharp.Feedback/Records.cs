// The records of human feedback: what is asked (a query with 2..K candidates), who answers (a labeller)
// and what they said (a judgment). Candidates arrive as text or as clips; no model code lives here.
namespace RlhfSharp.Feedback;

/// <summary>What the candidates of a query are: text completions or animated clips of an agent.</summary>
public enum QueryKind
{
    Text,
    Clip,
}

/// <summary>One thing to compare. For a clip, <see cref="Content"/> is the clip itself (an animated SVG document).</summary>
/// <param name="Content">The completion text, or the clip's SVG.</param>
/// <param name="Source">Which model or policy produced it (e.g. "sft", "ppo-step-400").</param>
/// <param name="Metadata">Free-form facts kept with the candidate (seed, segment start, true return...).</param>
public sealed record Candidate(string Content, string? Source = null, IReadOnlyDictionary<string, string>? Metadata = null);

/// <summary>A query before it is stored.</summary>
/// <param name="Kind">Text or clip.</param>
/// <param name="Prompt">The prompt (text) or the context shown above the clips.</param>
/// <param name="Candidates">Two or more candidates, shown in this order.</param>
/// <param name="Campaign">The batch or campaign the query belongs to (labelling, reports and export filter on it).</param>
/// <param name="GoldAnswer">The known answer when this is a gold task (mixed in unannounced to measure labellers).</param>
public sealed record NewQuery(QueryKind Kind, string Prompt, IReadOnlyList<Candidate> Candidates, string Campaign = "default", Answer? GoldAnswer = null);

/// <summary>A stored query.</summary>
public sealed record Query(long Id, QueryKind Kind, string Prompt, IReadOnlyList<Candidate> Candidates, string Campaign, Answer? GoldAnswer, DateTimeOffset CreatedAt)
{
    public bool IsGold => GoldAnswer is not null;
}

/// <summary>The forms an answer takes.</summary>
public enum AnswerKind
{
    /// <summary>One candidate is preferred over all others (pairwise choice or best-of-K).</summary>
    Preferred,
    /// <summary>A full ranking of the candidates, best first (InstructGPT's K-wise ranking).</summary>
    Ranking,
    /// <summary>Equally good (Christiano et al.: counts ½ for each side).</summary>
    Tie,
    /// <summary>No answer ("can't tell", unreadable, off-topic); the reason is kept.</summary>
    Skip,
}

/// <summary>A labeller's answer to a query.</summary>
/// <param name="Kind">Which form of answer this is.</param>
/// <param name="Preferred">For <see cref="AnswerKind.Preferred"/>: the index of the chosen candidate.</param>
/// <param name="Ranking">For <see cref="AnswerKind.Ranking"/>: candidate indices, best first, each exactly once.</param>
/// <param name="SkipReason">For <see cref="AnswerKind.Skip"/>: why.</param>
public sealed record Answer(AnswerKind Kind, int? Preferred = null, IReadOnlyList<int>? Ranking = null, string? SkipReason = null)
{
    public static Answer Prefer(int index) => new(AnswerKind.Preferred, Preferred: index);
    public static Answer Rank(params int[] bestFirst) => new(AnswerKind.Ranking, Ranking: bestFirst);
    public static Answer Tie() => new(AnswerKind.Tie);
    public static Answer Skip(string reason) => new(AnswerKind.Skip, SkipReason: reason);

    /// <summary>Throws unless this answer is well-formed for a query with <paramref name="candidateCount"/> candidates.</summary>
    public void Validate(int candidateCount)
    {
        switch (Kind)
        {
            case AnswerKind.Preferred:
                if (Preferred is not int p || p < 0 || p >= candidateCount)
                    throw new ArgumentException($"answer.preferred must be an index in 0..{candidateCount - 1}; got {Preferred?.ToString() ?? "nothing"}.");
                break;
            case AnswerKind.Ranking:
                if (Ranking is null || Ranking.Count != candidateCount || Ranking.Distinct().Count() != candidateCount || Ranking.Any(i => i < 0 || i >= candidateCount))
                    throw new ArgumentException($"answer.ranking must list each of the {candidateCount} candidate indices exactly once; got {RankingExcerpt(Ranking)}.");
                break;
            case AnswerKind.Tie:
                break;
            case AnswerKind.Skip:
                if (string.IsNullOrWhiteSpace(SkipReason))
                    throw new ArgumentException("answer.skip_reason is required when skipping.");
                if (SkipReason.Length > FeedbackLimits.SkipReason)
                    throw new ArgumentException($"answer.skip_reason must be at most {FeedbackLimits.SkipReason} characters; got {SkipReason.Length}.");
                break;
            default:
                throw new ArgumentException($"answer.kind {Kind} is not known.");
        }
    }

    // A refusal quotes at most 8 indices of a ranking: a 10,000-entry array must not come back in the reply.
    private static string RankingExcerpt(IReadOnlyList<int>? ranking) => ranking is null ? "nothing"
        : ranking.Count <= 8 ? $"[{string.Join(",", ranking)}]"
        : $"[{string.Join(",", ranking.Take(8))},…] ({ranking.Count} entries)";
}

/// <summary>What a labeller may do: labellers judge; admins also see the dashboard and manage labellers.</summary>
public enum LabelerRole
{
    Labeler,
    Admin,
}

/// <summary>A person (or a program: the oracle, an AI judge) who answers queries. Only a hash of the token is stored.</summary>
/// <param name="Revoked">The token and every session of this labeller were revoked: they can no longer sign in.</param>
public sealed record Labeler(long Id, string Name, LabelerRole Role, bool Flagged, DateTimeOffset CreatedAt, bool Revoked = false)
{
    /// <summary>How the audit log and messages name a labeller: "ann" (#3).</summary>
    public string Display => $"\"{Name}\" (#{Id})";
}

/// <summary>One admin action, as the audit log keeps it: who did what to whom, and when.</summary>
/// <param name="Actor">Who: admin "root" (#2) from the web, "cli:USER" from the command line, "quality-control".</param>
/// <param name="Action">What: add-labeler, flag, unflag, revoke.</param>
/// <param name="Target">To whom: the labeller, as "ann" (#3).</param>
/// <param name="Detail">Anything else worth keeping (the role given, the gold accuracy behind a flag).</param>
public sealed record AuditEntry(long Id, DateTimeOffset At, string Actor, string Action, string Target, string? Detail);

/// <summary>One query handed to one labeller; a judgment answers exactly one assignment.</summary>
public sealed record Assignment(long Id, Query Query, long LabelerId, DateTimeOffset AssignedAt);

/// <summary>A stored answer.</summary>
public sealed record Judgment(long Id, long QueryId, long LabelerId, Answer Answer, TimeSpan TimeSpent, DateTimeOffset CreatedAt);
