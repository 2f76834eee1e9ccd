// The preference store written once in portable SQL over ADO.NET; SQLite and PostgreSQL subclasses supply
// the few things that differ (identity columns, how a transaction takes its locks, row-lock clauses).
using System.Data;
using System.Data.Common;
using System.Security.Cryptography;
using System.Text;

namespace RlhfSharp.Feedback.Stores;

public abstract class SqlPreferenceStore : IPreferenceStore
{
    private readonly Random _random;
    private readonly Lock _randomLock = new();

    /// <param name="seed">Seeds the draw that decides when a gold task is mixed in; null draws a fresh seed.</param>
    protected SqlPreferenceStore(int? seed)
    {
        // System.Random, not Tensors' Rng: Feedback must not depend on Tensors (docs/design.md's table).
        _random = seed is int s ? new Random(s) : new Random();
    }

    /// <summary>Opens a new connection (pooled by the provider); each operation uses its own.</summary>
    protected abstract Task<DbConnection> OpenAsync(CancellationToken ct);

    /// <summary>Begins a write transaction that will not deadlock on upgrade (SQLite: BEGIN IMMEDIATE).</summary>
    protected abstract Task<DbTransaction> BeginWriteAsync(DbConnection connection, CancellationToken ct);

    /// <summary>Column definition of an auto-assigned 64-bit primary key.</summary>
    protected abstract string IdColumn { get; }

    /// <summary>Appended to a SELECT that picks a row to hand out, so parallel app instances skip each other's picks.</summary>
    protected abstract string SkipLockedClause { get; }

    /// <summary>Appended to a SELECT of a row this transaction will change, so concurrent writers queue on it.</summary>
    protected abstract string RowLockClause { get; }

    /// <summary>Serialises concurrent migrations (PostgreSQL: an advisory lock; SQLite: the write lock already does).</summary>
    protected abstract Task LockMigrationsAsync(DbConnection connection, DbTransaction transaction, CancellationToken ct);

    /// <summary>The schema, one migration per version; a migration never changes once released.</summary>
    internal IReadOnlyList<(int Version, string Description, string Sql)> Migrations =>
    [
        (1, "labelers, queries, assignments, judgments", $"""
            CREATE TABLE labelers (id {IdColumn}, name TEXT NOT NULL, role TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE,
                flagged INTEGER NOT NULL DEFAULT 0, created_at BIGINT NOT NULL);
            CREATE TABLE queries (id {IdColumn}, kind TEXT NOT NULL, prompt TEXT NOT NULL, candidates TEXT NOT NULL,
                campaign TEXT NOT NULL, gold_answer TEXT NULL, created_at BIGINT NOT NULL);
            CREATE TABLE assignments (id {IdColumn}, query_id BIGINT NOT NULL REFERENCES queries(id),
                labeler_id BIGINT NOT NULL REFERENCES labelers(id), assigned_at BIGINT NOT NULL, UNIQUE (query_id, labeler_id));
            CREATE TABLE judgments (id {IdColumn}, assignment_id BIGINT NOT NULL UNIQUE REFERENCES assignments(id),
                query_id BIGINT NOT NULL, labeler_id BIGINT NOT NULL, answer TEXT NOT NULL, time_spent_ms BIGINT NOT NULL,
                created_at BIGINT NOT NULL);
            """),
        // v2 keeps the assignment count on the query row itself: a row lock then covers the overlap check
        // (PostgreSQL re-evaluates a locked row's WHERE clause, but not a sub-query over other tables).
        (2, "queue columns (is_gold, assigned_count) and indexes", """
            ALTER TABLE queries ADD COLUMN is_gold INTEGER NOT NULL DEFAULT 0;
            ALTER TABLE queries ADD COLUMN assigned_count INTEGER NOT NULL DEFAULT 0;
            UPDATE queries SET is_gold = CASE WHEN gold_answer IS NULL THEN 0 ELSE 1 END;
            UPDATE queries SET assigned_count = (SELECT COUNT(*) FROM assignments a WHERE a.query_id = queries.id);
            CREATE INDEX ix_queries_queue ON queries (campaign, is_gold, assigned_count, id);
            CREATE INDEX ix_assignments_labeler ON assignments (labeler_id);
            CREATE INDEX ix_judgments_query ON judgments (query_id);
            """),
        // v3: labeller security. A session id (hashed) stands in for the token in the cookie; revoked_at ends a token
        // and its sessions; the audit log keeps every admin action.
        (3, "sessions, labeller revocation, audit log", $"""
            ALTER TABLE labelers ADD COLUMN revoked_at BIGINT NULL;
            CREATE TABLE sessions (id_hash TEXT NOT NULL PRIMARY KEY, labeler_id BIGINT NOT NULL REFERENCES labelers(id),
                created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL);
            CREATE INDEX ix_sessions_labeler ON sessions (labeler_id);
            CREATE TABLE audit_log (id {IdColumn}, at BIGINT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
                target TEXT NOT NULL, detail TEXT NULL);
            """),
    ];

    public Task MigrateAsync(CancellationToken ct = default) => MigrateAsync(int.MaxValue, ct);

    /// <summary>Runs the migrations up to <paramref name="targetVersion"/>, each in its own transaction with its version row.</summary>
    internal async Task MigrateAsync(int targetVersion, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using (var tx = await BeginWriteAsync(connection, ct))
        {
            await LockMigrationsAsync(connection, tx, ct);
            await ExecuteAsync(connection, tx, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, description TEXT NOT NULL, applied_at BIGINT NOT NULL)", ct);
            await tx.CommitAsync(ct);
        }
        foreach (var (version, description, sql) in Migrations)
        {
            if (version > targetVersion) break;
            await using var tx = await BeginWriteAsync(connection, ct);
            await LockMigrationsAsync(connection, tx, ct);
            var applied = await ScalarAsync(connection, tx, "SELECT COUNT(*) FROM schema_version WHERE version = @v", ct, ("@v", version));
            if (Convert.ToInt64(applied) > 0) continue;
            await ExecuteAsync(connection, tx, sql, ct);
            await ExecuteAsync(connection, tx, "INSERT INTO schema_version (version, description, applied_at) VALUES (@v, @d, @t)", ct,
                ("@v", version), ("@d", description), ("@t", Now()));
            await tx.CommitAsync(ct);
        }
    }

    /// <summary>The versions recorded in the version table, ascending.</summary>
    public async Task<IReadOnlyList<int>> AppliedVersionsAsync(CancellationToken ct = default)
    {
        await using var connection = await OpenAsync(ct);
        var versions = new List<int>();
        await using var cmd = Command(connection, null, "SELECT version FROM schema_version ORDER BY version");
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct)) versions.Add(Convert.ToInt32(reader.GetValue(0)));
        return versions;
    }

    /// <summary>Runs raw SQL in one transaction (tests use it to build old-schema databases).</summary>
    internal async Task ExecuteRawAsync(string sql, CancellationToken ct = default)
    {
        await using var connection = await OpenAsync(ct);
        await using var tx = await BeginWriteAsync(connection, ct);
        await ExecuteAsync(connection, tx, sql, ct);
        await tx.CommitAsync(ct);
    }

    /// <summary>Runs one raw scalar query (tests use it to look at what is stored).</summary>
    internal async Task<object?> ScalarRawAsync(string sql, CancellationToken ct = default)
    {
        await using var connection = await OpenAsync(ct);
        return await ScalarAsync(connection, null, sql, ct);
    }

    public async Task<IReadOnlyList<long>> AddQueriesAsync(IReadOnlyList<NewQuery> queries, CancellationToken ct = default)
    {
        for (int i = 0; i < queries.Count; i++) ValidateNewQuery(queries[i], i);
        await using var connection = await OpenAsync(ct);
        await using var tx = await BeginWriteAsync(connection, ct);
        var ids = new List<long>(queries.Count);
        long now = Now();
        foreach (var q in queries)
        {
            var id = await ScalarAsync(connection, tx, """
                INSERT INTO queries (kind, prompt, candidates, campaign, gold_answer, created_at, is_gold, assigned_count)
                VALUES (@k, @p, @c, @camp, @g, @t, @ig, 0) RETURNING id
                """, ct,
                ("@k", KindName(q.Kind)), ("@p", q.Prompt), ("@c", FeedbackJson.Write(q.Candidates)), ("@camp", q.Campaign),
                ("@g", q.GoldAnswer is null ? null : FeedbackJson.Write(q.GoldAnswer)), ("@t", now), ("@ig", q.GoldAnswer is null ? 0 : 1));
            ids.Add(Convert.ToInt64(id));
        }
        await tx.CommitAsync(ct);
        return ids;
    }

    private static void ValidateNewQuery(NewQuery q, int index)
    {
        string where = $"query {index}";
        if (q.Prompt is null) throw new FeedbackException($"{where}: prompt is missing.");
        if (q.Candidates is null || q.Candidates.Count < 2)
            throw new FeedbackException($"{where}: candidates must hold at least 2 entries; got {q.Candidates?.Count ?? 0}.");
        for (int c = 0; c < q.Candidates.Count; c++)
            if (q.Candidates[c]?.Content is null) throw new FeedbackException($"{where}: candidates[{c}].content is missing.");
        if (string.IsNullOrWhiteSpace(q.Campaign)) throw new FeedbackException($"{where}: campaign must not be empty; got \"{q.Campaign}\".");
        if (q.GoldAnswer is not null)
        {
            try { q.GoldAnswer.Validate(q.Candidates.Count); }
            catch (ArgumentException ex) { throw new FeedbackException($"{where}: gold {ex.Message}"); }
        }
    }

    public async Task<Query?> GetQueryAsync(long id, CancellationToken ct = default)
    {
        await using var connection = await OpenAsync(ct);
        return await LoadQueryAsync(connection, null, id, ct);
    }

    public async Task<IReadOnlyList<Query>> GetQueriesAsync(string? campaign = null, CancellationToken ct = default)
    {
        await using var connection = await OpenAsync(ct);
        var sql = $"SELECT {QueryColumns} FROM queries" + (campaign is null ? "" : " WHERE campaign = @c") + " ORDER BY id";
        await using var cmd = Command(connection, null, sql, campaign is null ? [] : [("@c", campaign)]);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        var list = new List<Query>();
        while (await reader.ReadAsync(ct)) list.Add(ReadQuery(reader));
        return list;
    }

    public async Task<(Labeler Labeler, string Token)> AddLabelerAsync(string name, LabelerRole role, CancellationToken ct = default)
    {
        name = FeedbackLimits.CheckLabelerName(name);
        // 32 random bytes: guessing is hopeless, and only the SHA-256 is kept, so a leaked database leaks no token.
        string token = NewSecret();
        long now = Now();
        await using var connection = await OpenAsync(ct);
        await using var tx = await BeginWriteAsync(connection, ct);
        var id = Convert.ToInt64(await ScalarAsync(connection, tx,
            "INSERT INTO labelers (name, role, token_hash, flagged, created_at) VALUES (@n, @r, @h, 0, @t) RETURNING id", ct,
            ("@n", name), ("@r", RoleName(role)), ("@h", HashToken(token)), ("@t", now)));
        await tx.CommitAsync(ct);
        return (new Labeler(id, name, role, false, FromMillis(now)), token);
    }

    public async Task<Labeler?> AuthenticateAsync(string token, CancellationToken ct = default)
    {
        if (string.IsNullOrEmpty(token)) return null;
        await using var connection = await OpenAsync(ct);
        await using var cmd = Command(connection, null, $"SELECT {LabelerColumns} FROM labelers WHERE token_hash = @h AND revoked_at IS NULL", ("@h", HashToken(token)));
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? ReadLabeler(reader) : null;
    }

    public async Task<IReadOnlyList<Labeler>> GetLabelersAsync(CancellationToken ct = default)
    {
        await using var connection = await OpenAsync(ct);
        await using var cmd = Command(connection, null, $"SELECT {LabelerColumns} FROM labelers ORDER BY id");
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        var list = new List<Labeler>();
        while (await reader.ReadAsync(ct)) list.Add(ReadLabeler(reader));
        return list;
    }

    public async Task SetFlaggedAsync(long labelerId, bool flagged, CancellationToken ct = default)
    {
        await using var connection = await OpenAsync(ct);
        await using var tx = await BeginWriteAsync(connection, ct);
        // The labeller's row lock orders this against a NextAssignmentAsync of the same labeller on another instance.
        if (await ScalarAsync(connection, tx, "SELECT id FROM labelers WHERE id = @l" + RowLockClause, ct, ("@l", labelerId)) is null)
            throw new FeedbackException($"labeller {labelerId} does not exist.", 404);
        await ExecuteAsync(connection, tx, "UPDATE labelers SET flagged = @f WHERE id = @id", ct, ("@f", flagged ? 1 : 0), ("@id", labelerId));
        if (flagged) await ReleaseOpenAssignmentsAsync(connection, tx, "a.labeler_id = @l", ct, ("@l", labelerId));
        await tx.CommitAsync(ct);
    }

    public async Task RevokeLabelerAsync(long labelerId, CancellationToken ct = default)
    {
        await using var connection = await OpenAsync(ct);
        await using var tx = await BeginWriteAsync(connection, ct);
        if (await ScalarAsync(connection, tx, "SELECT id FROM labelers WHERE id = @l" + RowLockClause, ct, ("@l", labelerId)) is null)
            throw new FeedbackException($"labeller {labelerId} does not exist.", 404);
        await ExecuteAsync(connection, tx, "UPDATE labelers SET revoked_at = @t WHERE id = @l AND revoked_at IS NULL", ct, ("@t", Now()), ("@l", labelerId));
        await ExecuteAsync(connection, tx, "DELETE FROM sessions WHERE labeler_id = @l", ct, ("@l", labelerId));
        await ReleaseOpenAssignmentsAsync(connection, tx, "a.labeler_id = @l", ct, ("@l", labelerId));
        await tx.CommitAsync(ct);
    }

    public async Task<string> CreateSessionAsync(long labelerId, DateTimeOffset expiresAt, CancellationToken ct = default)
    {
        // Same strength as a token: 32 random bytes, and only the hash is kept, so a leaked database opens no session.
        string id = NewSecret();
        await using var connection = await OpenAsync(ct);
        await using var tx = await BeginWriteAsync(connection, ct);
        if (await ScalarAsync(connection, tx, "SELECT id FROM labelers WHERE id = @l AND revoked_at IS NULL", ct, ("@l", labelerId)) is null)
            throw new FeedbackException($"labeller {labelerId} does not exist or was revoked.", 401);
        long now = Now();
        await ExecuteAsync(connection, tx, "DELETE FROM sessions WHERE expires_at <= @t", ct, ("@t", now));
        await ExecuteAsync(connection, tx, "INSERT INTO sessions (id_hash, labeler_id, created_at, expires_at) VALUES (@h, @l, @c, @e)", ct,
            ("@h", HashToken(id)), ("@l", labelerId), ("@c", now), ("@e", expiresAt.ToUnixTimeMilliseconds()));
        await tx.CommitAsync(ct);
        return id;
    }

    public async Task<Labeler?> AuthenticateSessionAsync(string sessionId, DateTimeOffset now, CancellationToken ct = default)
    {
        if (string.IsNullOrEmpty(sessionId)) return null;
        await using var connection = await OpenAsync(ct);
        await using var cmd = Command(connection, null, $"""
            SELECT {PrefixedLabelerColumns} FROM sessions s JOIN labelers l ON l.id = s.labeler_id
            WHERE s.id_hash = @h AND s.expires_at > @now AND l.revoked_at IS NULL
            """, ("@h", HashToken(sessionId)), ("@now", now.ToUnixTimeMilliseconds()));
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? ReadLabeler(reader) : null;
    }

    public async Task DeleteSessionAsync(string sessionId, CancellationToken ct = default)
    {
        if (string.IsNullOrEmpty(sessionId)) return;
        await using var connection = await OpenAsync(ct);
        await using var tx = await BeginWriteAsync(connection, ct);
        await ExecuteAsync(connection, tx, "DELETE FROM sessions WHERE id_hash = @h", ct, ("@h", HashToken(sessionId)));
        await tx.CommitAsync(ct);
    }

    public async Task AppendAuditAsync(string actor, string action, string target, string? detail = null, CancellationToken ct = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(actor);
        ArgumentException.ThrowIfNullOrWhiteSpace(action);
        ArgumentNullException.ThrowIfNull(target);
        await using var connection = await OpenAsync(ct);
        await using var tx = await BeginWriteAsync(connection, ct);
        await ExecuteAsync(connection, tx, "INSERT INTO audit_log (at, actor, action, target, detail) VALUES (@t, @a, @x, @g, @d)", ct,
            ("@t", Now()), ("@a", actor), ("@x", action), ("@g", target), ("@d", detail));
        await tx.CommitAsync(ct);
    }

    public async Task<IReadOnlyList<AuditEntry>> GetAuditLogAsync(CancellationToken ct = default)
    {
        await using var connection = await OpenAsync(ct);
        await using var cmd = Command(connection, null, "SELECT id, at, actor, action, target, detail FROM audit_log ORDER BY id");
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        var list = new List<AuditEntry>();
        while (await reader.ReadAsync(ct))
            list.Add(new AuditEntry(Convert.ToInt64(reader.GetValue(0)), FromMillis(Convert.ToInt64(reader.GetValue(1))), reader.GetString(2),
                reader.GetString(3), reader.GetString(4), reader.IsDBNull(5) ? null : reader.GetString(5)));
        return list;
    }

    /// <inheritdoc />
    /// <remarks>
    /// Regular queries go out in id order. Gold tasks go to every labeller once (overlap does not apply to them) and
    /// only accompany regular work: when no regular query is left for this labeller the answer is null, even if
    /// unseen gold tasks remain. Under PostgreSQL the pick is made under row locks (FOR UPDATE SKIP LOCKED) and the
    /// labeller's row is locked, so overlap and never-twice hold across app instances.
    /// </remarks>
    public async Task<Assignment?> NextAssignmentAsync(long labelerId, string? campaign = null, int overlap = 1, double goldRate = 0, CancellationToken ct = default)
    {
        if (overlap < 1) throw new FeedbackException($"overlap must be at least 1; got {overlap}.");
        if (!(goldRate >= 0 && goldRate <= 1)) throw new FeedbackException($"goldRate must lie in [0, 1]; got {goldRate}.");
        bool wantGold;
        lock (_randomLock) wantGold = goldRate > 0 && _random.NextDouble() < goldRate;

        await using var connection = await OpenAsync(ct);
        await using var tx = await BeginWriteAsync(connection, ct);
        // Lock the labeller's row: two requests from one labeller then queue, and cannot open two assignments.
        bool flagged, revoked;
        await using (var who = Command(connection, tx, "SELECT flagged, revoked_at FROM labelers WHERE id = @l" + RowLockClause, ("@l", labelerId)))
        await using (var reader = await who.ExecuteReaderAsync(ct))
        {
            if (!await reader.ReadAsync(ct)) throw new FeedbackException($"labeller {labelerId} does not exist.", 404);
            flagged = Convert.ToInt64(reader.GetValue(0)) != 0;
            revoked = !reader.IsDBNull(1);
        }
        // A flagged labeller's answers are dropped at export; handing them work would only use up overlap slots.
        if (revoked) throw new FeedbackException($"labeller {labelerId} was revoked and gets no assignments.", 403);
        if (flagged) throw new FeedbackException($"labeller {labelerId} is flagged by quality control and gets no new assignments until an admin unflags them.", 403);

        string campaignFilter = campaign is null ? "" : " AND q.campaign = @c";
        var args = new List<(string, object?)> { ("@l", labelerId), ("@o", overlap) };
        if (campaign is not null) args.Add(("@c", campaign));

        var open = await ScalarAsync(connection, tx, $"""
            SELECT a.id FROM assignments a JOIN queries q ON q.id = a.query_id
            WHERE a.labeler_id = @l{campaignFilter} AND NOT EXISTS (SELECT 1 FROM judgments j WHERE j.assignment_id = a.id)
            ORDER BY a.id LIMIT 1
            """, ct, [.. args]);
        if (open is not null)
        {
            var existing = await LoadAssignmentAsync(connection, tx, Convert.ToInt64(open), ct);
            await tx.CommitAsync(ct);
            return existing;
        }

        string notMine = "NOT EXISTS (SELECT 1 FROM assignments a WHERE a.query_id = q.id AND a.labeler_id = @l)";
        string gold = $"SELECT q.id FROM queries q WHERE q.is_gold = 1 AND {notMine}{campaignFilter} ORDER BY q.id LIMIT 1{SkipLockedClause}";
        string regular = $"SELECT q.id FROM queries q WHERE q.is_gold = 0 AND q.assigned_count < @o AND {notMine}{campaignFilter} ORDER BY q.id LIMIT 1";
        object? picked = null;
        if (wantGold) picked = await ScalarAsync(connection, tx, gold, ct, [.. args]);
        picked ??= await ScalarAsync(connection, tx, regular + SkipLockedClause, ct, [.. args]);
        // Skipping locked rows finds nothing also when the last eligible queries are only being handed to someone
        // else right now; "nothing left" must be exact, so ask once more waiting on those locks (rechecked on release).
        if (picked is null && RowLockClause.Length > 0) picked = await ScalarAsync(connection, tx, regular + RowLockClause, ct, [.. args]);
        if (picked is null)
        {
            await tx.CommitAsync(ct);
            return null;
        }
        long queryId = Convert.ToInt64(picked);
        long now = Now();
        var assignmentId = Convert.ToInt64(await ScalarAsync(connection, tx,
            "INSERT INTO assignments (query_id, labeler_id, assigned_at) VALUES (@q, @l, @t) RETURNING id", ct,
            ("@q", queryId), ("@l", labelerId), ("@t", now)));
        await ExecuteAsync(connection, tx, "UPDATE queries SET assigned_count = assigned_count + 1 WHERE id = @q", ct, ("@q", queryId));
        // Built from what this transaction just wrote: one round trip fewer than reading the assignment back.
        var query = await LoadQueryAsync(connection, tx, queryId, ct) ?? throw new FeedbackException($"query {queryId} does not exist.", 404);
        await tx.CommitAsync(ct);
        return new Assignment(assignmentId, query with { GoldAnswer = null }, labelerId, FromMillis(now));
    }

    /// <summary>
    /// Hands back assignments that were opened before <paramref name="olderThan"/> ago and never answered (a labeller
    /// closed the tab), so their queries count toward overlap no more. Returns how many were released.
    /// </summary>
    public async Task<int> ReleaseStaleAssignmentsAsync(TimeSpan olderThan, CancellationToken ct = default)
    {
        if (olderThan < TimeSpan.Zero) throw new FeedbackException($"olderThan must not be negative; got {olderThan}.");
        long cutoff = Now() - (long)olderThan.TotalMilliseconds;
        await using var connection = await OpenAsync(ct);
        await using var tx = await BeginWriteAsync(connection, ct);
        int released = await ReleaseOpenAssignmentsAsync(connection, tx, "a.assigned_at < @cut", ct, ("@cut", cutoff));
        await tx.CommitAsync(ct);
        return released;
    }

    /// <summary>Deletes the unanswered assignments matching <paramref name="where"/> (over alias a) and gives their queries the slots back.</summary>
    private async Task<int> ReleaseOpenAssignmentsAsync(DbConnection connection, DbTransaction tx, string where, CancellationToken ct, params (string, object?)[] args)
    {
        var open = new List<(long Id, long QueryId)>();
        await using (var cmd = Command(connection, tx, $"""
            SELECT a.id, a.query_id FROM assignments a
            WHERE {where} AND NOT EXISTS (SELECT 1 FROM judgments j WHERE j.assignment_id = a.id) ORDER BY a.id
            """ + RowLockClause, args))
        await using (var reader = await cmd.ExecuteReaderAsync(ct))
            while (await reader.ReadAsync(ct)) open.Add((Convert.ToInt64(reader.GetValue(0)), Convert.ToInt64(reader.GetValue(1))));
        foreach (var (id, queryId) in open)
        {
            await ExecuteAsync(connection, tx, "DELETE FROM assignments WHERE id = @a", ct, ("@a", id));
            await ExecuteAsync(connection, tx, "UPDATE queries SET assigned_count = assigned_count - 1 WHERE id = @q", ct, ("@q", queryId));
        }
        return open.Count;
    }

    public async Task<Judgment> SubmitAsync(long assignmentId, long labelerId, Answer answer, TimeSpan timeSpent, long? queryId = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(answer);
        if (timeSpent < TimeSpan.Zero) throw new FeedbackException($"time spent must not be negative; got {timeSpent}.");
        await using var connection = await OpenAsync(ct);
        await using var tx = await BeginWriteAsync(connection, ct);
        long owner, assignedQuery;
        await using (var cmd = Command(connection, tx, "SELECT labeler_id, query_id FROM assignments WHERE id = @a" + RowLockClause, ("@a", assignmentId)))
        await using (var reader = await cmd.ExecuteReaderAsync(ct))
        {
            if (!await reader.ReadAsync(ct)) throw new FeedbackException($"assignment {assignmentId} does not exist.", 404);
            owner = Convert.ToInt64(reader.GetValue(0));
            assignedQuery = Convert.ToInt64(reader.GetValue(1));
        }
        if (owner != labelerId) throw new FeedbackException($"assignment {assignmentId} belongs to another labeller, not to labeller {labelerId}.", 403);
        // The page says which query it answered: a mismatch means it shows something else than it was handed.
        if (queryId is long said && said != assignedQuery)
            throw new FeedbackException($"queryId {said} does not match assignment {assignmentId}, which is for query {assignedQuery}.");
        var query = await LoadQueryAsync(connection, tx, assignedQuery, ct) ?? throw new FeedbackException($"query {assignedQuery} does not exist.", 404);
        try { answer.Validate(query.Candidates.Count); }
        catch (ArgumentException ex) { throw new FeedbackException($"assignment {assignmentId}: {ex.Message}"); }

        var previous = await LoadJudgmentsAsync(connection, tx, "WHERE j.assignment_id = @a", ct, ("@a", assignmentId));
        if (previous.Count > 0)
        {
            await tx.CommitAsync(ct);
            if (FeedbackJson.SameAnswer(previous[0].Answer, answer)) return previous[0];
            throw new FeedbackException($"assignment {assignmentId} was already answered ({FeedbackJson.Write(previous[0].Answer)}); a different second answer is refused.", 409);
        }
        long now = Now();
        long ms = (long)Math.Round(timeSpent.TotalMilliseconds);
        var id = Convert.ToInt64(await ScalarAsync(connection, tx, """
            INSERT INTO judgments (assignment_id, query_id, labeler_id, answer, time_spent_ms, created_at)
            VALUES (@a, @q, @l, @ans, @ms, @t) RETURNING id
            """, ct, ("@a", assignmentId), ("@q", assignedQuery), ("@l", labelerId), ("@ans", FeedbackJson.Write(answer)), ("@ms", ms), ("@t", now)));
        await tx.CommitAsync(ct);
        return new Judgment(id, assignedQuery, labelerId, answer, TimeSpan.FromMilliseconds(ms), FromMillis(now));
    }

    public async Task<IReadOnlyList<Judgment>> GetJudgmentsAsync(string? campaign = null, CancellationToken ct = default)
    {
        await using var connection = await OpenAsync(ct);
        return campaign is null
            ? await LoadJudgmentsAsync(connection, null, "", ct)
            : await LoadJudgmentsAsync(connection, null, "JOIN queries q ON q.id = j.query_id WHERE q.campaign = @c", ct, ("@c", campaign));
    }

    public virtual ValueTask DisposeAsync()
    {
        GC.SuppressFinalize(this);
        return ValueTask.CompletedTask;
    }

    // ---- reading rows ----

    private const string QueryColumns = "id, kind, prompt, candidates, campaign, gold_answer, created_at";
    private const string LabelerColumns = "id, name, role, flagged, created_at, revoked_at";
    private const string PrefixedLabelerColumns = "l.id, l.name, l.role, l.flagged, l.created_at, l.revoked_at";

    private static Query ReadQuery(DbDataReader r) => new(
        Convert.ToInt64(r.GetValue(0)), ParseKind(r.GetString(1)), r.GetString(2), FeedbackJson.ReadCandidates(r.GetString(3)),
        r.GetString(4), r.IsDBNull(5) ? null : FeedbackJson.ReadAnswer(r.GetString(5)), FromMillis(Convert.ToInt64(r.GetValue(6))));

    private static Labeler ReadLabeler(DbDataReader r) => new(
        Convert.ToInt64(r.GetValue(0)), r.GetString(1), ParseRole(r.GetString(2)), Convert.ToInt64(r.GetValue(3)) != 0,
        FromMillis(Convert.ToInt64(r.GetValue(4))), Revoked: !r.IsDBNull(5));

    private static async Task<Query?> LoadQueryAsync(DbConnection connection, DbTransaction? tx, long id, CancellationToken ct)
    {
        await using var cmd = Command(connection, tx, $"SELECT {QueryColumns} FROM queries WHERE id = @id", ("@id", id));
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        return await reader.ReadAsync(ct) ? ReadQuery(reader) : null;
    }

    private static async Task<Assignment> LoadAssignmentAsync(DbConnection connection, DbTransaction tx, long id, CancellationToken ct)
    {
        long queryId, labelerId, at;
        await using (var cmd = Command(connection, tx, "SELECT query_id, labeler_id, assigned_at FROM assignments WHERE id = @id", ("@id", id)))
        await using (var reader = await cmd.ExecuteReaderAsync(ct))
        {
            if (!await reader.ReadAsync(ct)) throw new FeedbackException($"assignment {id} does not exist.", 404);
            queryId = Convert.ToInt64(reader.GetValue(0));
            labelerId = Convert.ToInt64(reader.GetValue(1));
            at = Convert.ToInt64(reader.GetValue(2));
        }
        var query = await LoadQueryAsync(connection, tx, queryId, ct) ?? throw new FeedbackException($"query {queryId} does not exist.", 404);
        // Gold tasks are unannounced: the labeller's copy carries no gold answer (quality control reads it from the store).
        return new Assignment(id, query with { GoldAnswer = null }, labelerId, FromMillis(at));
    }

    private static async Task<List<Judgment>> LoadJudgmentsAsync(DbConnection connection, DbTransaction? tx, string where, CancellationToken ct, params (string, object?)[] args)
    {
        await using var cmd = Command(connection, tx,
            $"SELECT j.id, j.query_id, j.labeler_id, j.answer, j.time_spent_ms, j.created_at FROM judgments j {where} ORDER BY j.id", args);
        await using var reader = await cmd.ExecuteReaderAsync(ct);
        var list = new List<Judgment>();
        while (await reader.ReadAsync(ct))
            list.Add(new Judgment(Convert.ToInt64(reader.GetValue(0)), Convert.ToInt64(reader.GetValue(1)), Convert.ToInt64(reader.GetValue(2)),
                FeedbackJson.ReadAnswer(reader.GetString(3)), TimeSpan.FromMilliseconds(Convert.ToInt64(reader.GetValue(4))),
                FromMillis(Convert.ToInt64(reader.GetValue(5)))));
        return list;
    }

    // ---- small ADO helpers ----

    protected static DbCommand Command(DbConnection connection, DbTransaction? tx, string sql, params (string Name, object? Value)[] args)
    {
        var cmd = connection.CreateCommand();
        cmd.CommandText = sql;
        cmd.Transaction = tx;
        foreach (var (name, value) in args)
        {
            var p = cmd.CreateParameter();
            p.ParameterName = name;
            p.Value = value ?? DBNull.Value;
            if (value is null) p.DbType = DbType.String;
            cmd.Parameters.Add(p);
        }
        return cmd;
    }

    protected static async Task ExecuteAsync(DbConnection connection, DbTransaction? tx, string sql, CancellationToken ct, params (string, object?)[] args)
    {
        await using var cmd = Command(connection, tx, sql, args);
        await cmd.ExecuteNonQueryAsync(ct);
    }

    protected static async Task<object?> ScalarAsync(DbConnection connection, DbTransaction? tx, string sql, CancellationToken ct, params (string, object?)[] args)
    {
        await using var cmd = Command(connection, tx, sql, args);
        var value = await cmd.ExecuteScalarAsync(ct);
        return value is DBNull ? null : value;
    }

    /// <summary>32 random bytes as URL-safe base64 (43 characters): a labeller token or a session id.</summary>
    private static string NewSecret() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    internal static string HashToken(string token) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(token)));

    private static long Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
    private static DateTimeOffset FromMillis(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);

    private static string KindName(QueryKind kind) => kind == QueryKind.Clip ? "clip" : "text";
    private static QueryKind ParseKind(string s) => s switch
    {
        "text" => QueryKind.Text,
        "clip" => QueryKind.Clip,
        _ => throw new InvalidDataException($"queries.kind holds an unknown value \"{s}\"."),
    };
    private static string RoleName(LabelerRole role) => role == LabelerRole.Admin ? "admin" : "labeler";
    private static LabelerRole ParseRole(string s) => s switch
    {
        "labeler" => LabelerRole.Labeler,
        "admin" => LabelerRole.Admin,
        _ => throw new InvalidDataException($"labelers.role holds an unknown value \"{s}\"."),
    };
}
