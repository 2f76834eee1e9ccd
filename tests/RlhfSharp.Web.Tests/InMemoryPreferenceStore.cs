// A complete in-memory IPreferenceStore used only as a test double: it follows every rule the interface documents
// (overlap, never twice to one labeller, open assignment returned again, gold rate, idempotent identical retry,
// 4xx refusals, flagged labellers refused work, sessions with expiry, revocation, the audit log), so the web app's
// tests check the app and not a stub.
using System.Security.Cryptography;
using System.Text;
using RlhfSharp.Feedback;

namespace RlhfSharp.Web.Tests;

internal sealed class InMemoryPreferenceStore(int seed = 1) : IPreferenceStore
{
    private sealed record StoredLabeler(Labeler Labeler, string TokenHash);

    private readonly Lock _lock = new();
    private readonly List<Query> _queries = [];
    private readonly List<StoredLabeler> _labelers = [];
    private readonly Dictionary<long, Assignment> _assignments = [];
    private readonly Dictionary<long, Judgment> _judgmentByAssignment = [];
    private readonly List<Judgment> _judgments = [];
    private readonly Random _rng = new(seed);
    private long _nextAssignment = 1;
    private readonly Dictionary<string, (long LabelerId, DateTimeOffset ExpiresAt)> _sessions = [];
    private readonly List<AuditEntry> _audit = [];

    public Task MigrateAsync(CancellationToken ct = default) => Task.CompletedTask;

    public Task<IReadOnlyList<long>> AddQueriesAsync(IReadOnlyList<NewQuery> queries, CancellationToken ct = default)
    {
        lock (_lock)
        {
            // Validate all first: one bad query stores none.
            for (var i = 0; i < queries.Count; i++)
            {
                if (queries[i].Candidates.Count < 2)
                    throw new FeedbackException($"queries[{i}] needs at least 2 candidates; got {queries[i].Candidates.Count}.");
                queries[i].GoldAnswer?.Validate(queries[i].Candidates.Count);
            }
            var ids = new List<long>();
            foreach (var q in queries)
            {
                var id = _queries.Count + 1;
                _queries.Add(new Query(id, q.Kind, q.Prompt, q.Candidates, q.Campaign, q.GoldAnswer, DateTimeOffset.UtcNow));
                ids.Add(id);
            }
            return Task.FromResult<IReadOnlyList<long>>(ids);
        }
    }

    public Task<Query?> GetQueryAsync(long id, CancellationToken ct = default)
    {
        lock (_lock)
            return Task.FromResult(id >= 1 && id <= _queries.Count ? _queries[(int)id - 1] : null);
    }

    public Task<(Labeler Labeler, string Token)> AddLabelerAsync(string name, LabelerRole role, CancellationToken ct = default)
    {
        name = FeedbackLimits.CheckLabelerName(name);
        var token = Convert.ToHexString(RandomNumberGenerator.GetBytes(16)).ToLowerInvariant();
        lock (_lock)
        {
            var labeler = new Labeler(_labelers.Count + 1, name, role, false, DateTimeOffset.UtcNow);
            _labelers.Add(new StoredLabeler(labeler, Hash(token)));
            return Task.FromResult((labeler, token));
        }
    }

    public Task<Labeler?> AuthenticateAsync(string token, CancellationToken ct = default)
    {
        var h = Hash(token);
        lock (_lock)
            return Task.FromResult(_labelers.FirstOrDefault(l => l.TokenHash == h && !l.Labeler.Revoked)?.Labeler);
    }

    public Task<string> CreateSessionAsync(long labelerId, DateTimeOffset expiresAt, CancellationToken ct = default)
    {
        var id = Convert.ToHexString(RandomNumberGenerator.GetBytes(32)).ToLowerInvariant();
        lock (_lock)
        {
            if (_labelers[RequireLabeler(labelerId)].Labeler.Revoked) throw new FeedbackException($"labeller {labelerId} was revoked.", 401);
            _sessions[Hash(id)] = (labelerId, expiresAt);
        }
        return Task.FromResult(id);
    }

    public Task<Labeler?> AuthenticateSessionAsync(string sessionId, DateTimeOffset now, CancellationToken ct = default)
    {
        lock (_lock)
        {
            if (!_sessions.TryGetValue(Hash(sessionId), out var s) || s.ExpiresAt <= now) return Task.FromResult<Labeler?>(null);
            var l = _labelers[RequireLabeler(s.LabelerId)].Labeler;
            return Task.FromResult(l.Revoked ? null : l);
        }
    }

    public Task DeleteSessionAsync(string sessionId, CancellationToken ct = default)
    {
        lock (_lock) _sessions.Remove(Hash(sessionId));
        return Task.CompletedTask;
    }

    public Task RevokeLabelerAsync(long labelerId, CancellationToken ct = default)
    {
        lock (_lock)
        {
            var i = RequireLabeler(labelerId);
            _labelers[i] = _labelers[i] with { Labeler = _labelers[i].Labeler with { Revoked = true } };
            foreach (var key in _sessions.Where(kv => kv.Value.LabelerId == labelerId).Select(kv => kv.Key).ToList()) _sessions.Remove(key);
            ReleaseOpen(labelerId);
        }
        return Task.CompletedTask;
    }

    public Task AppendAuditAsync(string actor, string action, string target, string? detail = null, CancellationToken ct = default)
    {
        lock (_lock) _audit.Add(new AuditEntry(_audit.Count + 1, DateTimeOffset.UtcNow, actor, action, target, detail));
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<AuditEntry>> GetAuditLogAsync(CancellationToken ct = default)
    {
        lock (_lock) return Task.FromResult<IReadOnlyList<AuditEntry>>([.. _audit]);
    }

    private void ReleaseOpen(long labelerId)
    {
        foreach (var id in _assignments.Values.Where(a => a.LabelerId == labelerId && !_judgmentByAssignment.ContainsKey(a.Id)).Select(a => a.Id).ToList())
            _assignments.Remove(id);
    }

    public Task<Assignment?> NextAssignmentAsync(long labelerId, string? campaign = null, int overlap = 1, double goldRate = 0, CancellationToken ct = default)
    {
        lock (_lock)
        {
            var me = _labelers[RequireLabeler(labelerId)].Labeler;
            if (me.Revoked || me.Flagged)
                throw new FeedbackException($"labeller {labelerId} is {(me.Revoked ? "revoked" : "flagged")} and gets no new assignments.", 403);
            var mine = _assignments.Values.Where(a => a.LabelerId == labelerId).ToList();
            var open = mine.Where(a => !_judgmentByAssignment.ContainsKey(a.Id)).OrderBy(a => a.Id).FirstOrDefault();
            if (open is not null)
                return Task.FromResult<Assignment?>(open);
            var seen = mine.Select(a => a.Query.Id).ToHashSet();
            var assignedCount = _assignments.Values.GroupBy(a => a.Query.Id).ToDictionary(g => g.Key, g => g.Count());
            var candidates = _queries.Where(q => (campaign is null || q.Campaign == campaign) && !seen.Contains(q.Id)).ToList();
            var gold = candidates.Where(q => q.IsGold).ToList();
            var regular = candidates.Where(q => !q.IsGold && assignedCount.GetValueOrDefault(q.Id) < overlap).ToList();
            Query? pick = null;
            if (gold.Count > 0 && (regular.Count == 0 ? goldRate > 0 : _rng.NextDouble() < goldRate))
                pick = gold[0];
            pick ??= regular.FirstOrDefault();
            if (pick is null)
                return Task.FromResult<Assignment?>(null);
            // Gold tasks are unannounced: the handed-out query never carries its gold answer.
            var assignment = new Assignment(_nextAssignment++, pick with { GoldAnswer = null }, labelerId, DateTimeOffset.UtcNow);
            _assignments[assignment.Id] = assignment;
            return Task.FromResult<Assignment?>(assignment);
        }
    }

    public Task<Judgment> SubmitAsync(long assignmentId, long labelerId, Answer answer, TimeSpan timeSpent, long? queryId = null, CancellationToken ct = default)
    {
        lock (_lock)
        {
            if (!_assignments.TryGetValue(assignmentId, out var assignment))
                throw new FeedbackException($"assignment {assignmentId} is not known.", 404);
            if (assignment.LabelerId != labelerId)
                throw new FeedbackException($"assignment {assignmentId} belongs to another labeller.", 403);
            if (queryId is long said && said != assignment.Query.Id)
                throw new FeedbackException($"queryId {said} does not match assignment {assignmentId}, which is for query {assignment.Query.Id}.", 400);
            try
            {
                answer.Validate(assignment.Query.Candidates.Count);
            }
            catch (ArgumentException ex)
            {
                throw new FeedbackException(ex.Message, 400);
            }
            if (_judgmentByAssignment.TryGetValue(assignmentId, out var first))
            {
                if (SameAnswer(first.Answer, answer))
                    return Task.FromResult(first);
                throw new FeedbackException($"assignment {assignmentId} was already answered with a different answer.", 409);
            }
            var judgment = new Judgment(_judgments.Count + 1, assignment.Query.Id, labelerId, answer, timeSpent, DateTimeOffset.UtcNow);
            _judgments.Add(judgment);
            _judgmentByAssignment[assignmentId] = judgment;
            return Task.FromResult(judgment);
        }
    }

    public Task<IReadOnlyList<Judgment>> GetJudgmentsAsync(string? campaign = null, CancellationToken ct = default)
    {
        lock (_lock)
            return Task.FromResult<IReadOnlyList<Judgment>>(_judgments.Where(j => campaign is null || _queries[(int)j.QueryId - 1].Campaign == campaign).ToList());
    }

    public Task<IReadOnlyList<Query>> GetQueriesAsync(string? campaign = null, CancellationToken ct = default)
    {
        lock (_lock)
            return Task.FromResult<IReadOnlyList<Query>>(_queries.Where(q => campaign is null || q.Campaign == campaign).ToList());
    }

    public Task<IReadOnlyList<Labeler>> GetLabelersAsync(CancellationToken ct = default)
    {
        lock (_lock)
            return Task.FromResult<IReadOnlyList<Labeler>>(_labelers.Select(l => l.Labeler).ToList());
    }

    public Task SetFlaggedAsync(long labelerId, bool flagged, CancellationToken ct = default)
    {
        lock (_lock)
        {
            var i = RequireLabeler(labelerId);
            _labelers[i] = _labelers[i] with { Labeler = _labelers[i].Labeler with { Flagged = flagged } };
            if (flagged) ReleaseOpen(labelerId);
            return Task.CompletedTask;
        }
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private int RequireLabeler(long id)
    {
        var i = _labelers.FindIndex(l => l.Labeler.Id == id);
        return i >= 0 ? i : throw new FeedbackException($"labeller {id} is not known.", 404);
    }

    private static bool SameAnswer(Answer a, Answer b) =>
        a.Kind == b.Kind && a.Preferred == b.Preferred && a.SkipReason == b.SkipReason
        && (a.Ranking ?? []).SequenceEqual(b.Ranking ?? []);

    private static string Hash(string token) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(token)));
}
