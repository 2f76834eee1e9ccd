// The JSON shapes of the labelling API (camelCase on the wire). Labellers see candidates blind: no source model,
// no metadata and no gold answer, so nothing in the response hints at which side "should" win.
using System.Text.Json;
using System.Text.Json.Serialization;
using RlhfSharp.Feedback;

namespace RlhfSharp.Web;

/// <summary>POST /api/session body.</summary>
public sealed record SignInRequest(string? Token);

/// <summary>Who is signed in.</summary>
public sealed record LabelerDto(long Id, string Name, string Role, bool Flagged, bool Revoked = false)
{
    public static LabelerDto From(Labeler l) => new(l.Id, l.Name, l.Role == LabelerRole.Admin ? "admin" : "labeler", l.Flagged, l.Revoked);
}

/// <summary>GET /api/admin/audit: one admin action.</summary>
public sealed record AuditDto(long Id, DateTimeOffset At, string Actor, string Action, string Target, string? Detail)
{
    public static AuditDto From(AuditEntry e) => new(e.Id, e.At, e.Actor, e.Action, e.Target, e.Detail);
}

/// <summary>An answer on the wire: kind is "preferred", "ranking", "tie" or "skip".</summary>
public sealed record AnswerDto(string? Kind, int? Preferred = null, IReadOnlyList<int>? Ranking = null, string? SkipReason = null)
{
    public static AnswerDto From(Answer a) => new(a.Kind.ToString().ToLowerInvariant(), a.Preferred, a.Ranking, a.SkipReason);

    /// <summary>The store's answer, or a 400 naming the field when the kind is missing or unknown.</summary>
    public Answer ToAnswer() => Kind?.Trim().ToLowerInvariant() switch
    {
        "preferred" => new Answer(AnswerKind.Preferred, Preferred: Preferred),
        "ranking" => new Answer(AnswerKind.Ranking, Ranking: Ranking),
        "tie" => new Answer(AnswerKind.Tie),
        "skip" => new Answer(AnswerKind.Skip, SkipReason: SkipReason),
        null => throw new FeedbackException("answer.kind is required: one of preferred, ranking, tie, skip."),
        _ => throw new FeedbackException($"answer.kind must be one of preferred, ranking, tie, skip; got \"{FeedbackLimits.Excerpt(Kind)}\"."),
    };
}

/// <summary>A candidate as the labeller sees it: its content only.</summary>
public sealed record CandidateDto(string Content);

/// <summary>A query as the labeller sees it.</summary>
public sealed record QueryDto(long Id, string Kind, string Prompt, IReadOnlyList<CandidateDto> Candidates, string Campaign);

/// <summary>POST /api/assignments/next response: the assignment to answer and its query.</summary>
public sealed record AssignmentDto(long AssignmentId, QueryDto Query, DateTimeOffset AssignedAt)
{
    public static AssignmentDto From(Assignment a) => new(
        a.Id,
        new QueryDto(a.Query.Id, a.Query.Kind == QueryKind.Clip ? "clip" : "text", a.Query.Prompt,
            [.. a.Query.Candidates.Select(c => new CandidateDto(c.Content))], a.Query.Campaign),
        a.AssignedAt);
}

/// <summary>POST /api/judgments body. QueryId is optional; when given it must be the assignment's query (400 otherwise).</summary>
public sealed record SubmitRequest(long? AssignmentId, long? QueryId, AnswerDto? Answer, long? TimeSpentMs);

/// <summary>A stored judgment.</summary>
public sealed record JudgmentDto(long Id, long QueryId, long LabelerId, AnswerDto Answer, long TimeSpentMs, DateTimeOffset CreatedAt)
{
    public static JudgmentDto From(Judgment j) => new(j.Id, j.QueryId, j.LabelerId, AnswerDto.From(j.Answer), (long)j.TimeSpent.TotalMilliseconds, j.CreatedAt);
}

/// <summary>POST /api/admin/labelers/{id}/flag body.</summary>
public sealed record FlagRequest(bool? Flagged);

/// <summary>POST /api/admin/labelers body.</summary>
public sealed record AddLabelerRequest(string? Name, string? Role);

/// <summary>The new labeller and its token, shown once.</summary>
public sealed record AddLabelerResponse(LabelerDto Labeler, string Token);

/// <summary>Every refusal: one message a person can act on.</summary>
public sealed record ErrorDto(string Error);

/// <summary>The serializer settings every endpoint uses.</summary>
public static class ApiJson
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.Strict,
    };
}
