// The one interface behind which judgments live: SQLite (a file, the default) and PostgreSQL (many
// labellers and app instances sharing one database) implement it and pass the same test suite.
namespace RlhfSharp.Feedback;

public interface IPreferenceStore : IAsyncDisposable
{
    /// <summary>Creates or upgrades the schema (a version table records which migrations ran).</summary>
    Task MigrateAsync(CancellationToken ct = default);

    /// <summary>Adds queries in one transaction: all are stored or none. Returns their ids in order.</summary>
    Task<IReadOnlyList<long>> AddQueriesAsync(IReadOnlyList<NewQuery> queries, CancellationToken ct = default);

    Task<Query?> GetQueryAsync(long id, CancellationToken ct = default);

    /// <summary>Adds a labeller and returns it with its token, which is shown once and stored only as a hash.</summary>
    Task<(Labeler Labeler, string Token)> AddLabelerAsync(string name, LabelerRole role, CancellationToken ct = default);

    /// <summary>The labeller a token belongs to, or null for an unknown or revoked token.</summary>
    Task<Labeler?> AuthenticateAsync(string token, CancellationToken ct = default);

    /// <summary>
    /// Opens a sign-in session for the labeller and returns its id: 32 random bytes, shown once (the session cookie holds
    /// it); the store keeps only its SHA-256 and <paramref name="expiresAt"/>. Expired sessions are deleted here.
    /// </summary>
    Task<string> CreateSessionAsync(long labelerId, DateTimeOffset expiresAt, CancellationToken ct = default);

    /// <summary>The labeller a session id belongs to, or null when it is unknown, signed out, expired at <paramref name="now"/>, or its labeller revoked.</summary>
    Task<Labeler?> AuthenticateSessionAsync(string sessionId, DateTimeOffset now, CancellationToken ct = default);

    /// <summary>Ends a session (sign-out); an unknown id is not an error.</summary>
    Task DeleteSessionAsync(string sessionId, CancellationToken ct = default);

    /// <summary>
    /// Revokes the labeller: their token and every session stop working at once (401), and their open (unanswered)
    /// assignments are handed back. Their judgments stay. Revoking twice is not an error; an unknown id is a 404.
    /// </summary>
    Task RevokeLabelerAsync(long labelerId, CancellationToken ct = default);

    /// <summary>Appends one admin action to the audit log (its Id and At are assigned by the store).</summary>
    Task AppendAuditAsync(string actor, string action, string target, string? detail = null, CancellationToken ct = default);

    /// <summary>The audit log, oldest first.</summary>
    Task<IReadOnlyList<AuditEntry>> GetAuditLogAsync(CancellationToken ct = default);

    /// <summary>
    /// Hands the labeller their next query: one they have not been assigned before, from queries that still
    /// need answers (fewer than <paramref name="overlap"/> labellers), gold tasks mixed in at <paramref name="goldRate"/>.
    /// Returns the labeller's open assignment again if they have one. Null when nothing is left.
    /// Gold tasks are unannounced: the assignment's query never carries the gold answer (read it with GetQueryAsync).
    /// A flagged or revoked labeller is refused (403): no new work until an admin unflags them.
    /// </summary>
    Task<Assignment?> NextAssignmentAsync(long labelerId, string? campaign = null, int overlap = 1, double goldRate = 0, CancellationToken ct = default);

    /// <summary>
    /// Stores the answer to an assignment. Refused (<see cref="FeedbackException"/>) for an unknown assignment, one that
    /// belongs to another labeller, a malformed answer, or (400) a <paramref name="queryId"/> that is not the assignment's
    /// query; a second submission of the same assignment returns the first judgment unchanged (idempotent on retry) when
    /// the answer is the same, and is refused when it differs.
    /// </summary>
    Task<Judgment> SubmitAsync(long assignmentId, long labelerId, Answer answer, TimeSpan timeSpent, long? queryId = null, CancellationToken ct = default);

    Task<IReadOnlyList<Judgment>> GetJudgmentsAsync(string? campaign = null, CancellationToken ct = default);

    Task<IReadOnlyList<Query>> GetQueriesAsync(string? campaign = null, CancellationToken ct = default);

    Task<IReadOnlyList<Labeler>> GetLabelersAsync(CancellationToken ct = default);

    /// <summary>Flags or unflags a labeller. Flagging also hands back their open assignments, so no overlap slot waits on them.</summary>
    Task SetFlaggedAsync(long labelerId, bool flagged, CancellationToken ct = default);
}

/// <summary>A refused feedback operation, with a message a labeller or operator can act on and an HTTP-like status.</summary>
public sealed class FeedbackException(string message, int status = 400) : Exception(message)
{
    /// <summary>
    /// 400 bad input, 401 unknown token, 403 not allowed (e.g. another labeller's assignment), 404 unknown id,
    /// 409 conflicting second answer, 413 too large; 500 the store cannot be opened, 502 an upstream service (the AI
    /// judge) refused the request, 503 a server (PostgreSQL, the AI judge) is unreachable or kept failing.
    /// </summary>
    public int Status { get; } = status;
}
