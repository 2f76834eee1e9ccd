// The preference-store behaviour, written once and run against every store (SQLite file, PostgreSQL schema):
// round trips, migrations, overlap and never-twice, gold mixing, refusals, idempotent retries, concurrent writers.
using RlhfSharp.Feedback.Stores;

namespace RlhfSharp.Feedback.Tests;

public abstract class PreferenceStoreContractTests : IAsyncLifetime
{
    private readonly List<SqlPreferenceStore> _stores = [];

    /// <summary>A new, empty, un-migrated store of the kind under test (its own file or schema).</summary>
    protected abstract Task<SqlPreferenceStore> CreateEmptyStoreAsync(int? seed);

    /// <summary>A second store object on the same database, as a second app instance would open it.</summary>
    protected abstract SqlPreferenceStore OpenAnotherInstance(SqlPreferenceStore store);

    protected async Task<SqlPreferenceStore> NewStoreAsync(int? seed = 7, bool migrate = true)
    {
        var store = await CreateEmptyStoreAsync(seed);
        _stores.Add(store);
        if (migrate) await store.MigrateAsync();
        return store;
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public virtual async Task DisposeAsync()
    {
        foreach (var s in _stores) await s.DisposeAsync();
    }

    private static NewQuery Pair(string prompt, string campaign = "default", Answer? gold = null) =>
        new(QueryKind.Text, prompt, [new Candidate(prompt + " A", "sft"), new Candidate(prompt + " B", "ppo")], campaign, gold);

    [ServerFact]
    public async Task QueriesAndLabelersRoundTrip()
    {
        var store = await NewStoreAsync();
        var meta = new Dictionary<string, string> { ["seed"] = "3", ["true_return"] = "41.5" };
        var ids = await store.AddQueriesAsync([
            new NewQuery(QueryKind.Text, "Write a happy line.", [new("I love it", "sft"), new("Meh", "ppo-400", meta), new("Fine.")], "c1"),
            new NewQuery(QueryKind.Clip, "Which hopper moves right?", [new("<svg>1</svg>"), new("<svg>2</svg>")], "c2", Answer.Rank(1, 0)),
        ]);
        Assert.Equal(2, ids.Count);
        Assert.True(ids[1] > ids[0]);

        var q0 = await store.GetQueryAsync(ids[0]);
        Assert.NotNull(q0);
        Assert.Equal(QueryKind.Text, q0.Kind);
        Assert.Equal("Write a happy line.", q0.Prompt);
        Assert.Equal(["I love it", "Meh", "Fine."], q0.Candidates.Select(c => c.Content));
        Assert.Equal("ppo-400", q0.Candidates[1].Source);
        Assert.Equal("41.5", q0.Candidates[1].Metadata!["true_return"]);
        Assert.Null(q0.Candidates[2].Source);
        Assert.False(q0.IsGold);
        var q1 = await store.GetQueryAsync(ids[1]);
        Assert.Equal(QueryKind.Clip, q1!.Kind);
        Assert.Equal([1, 0], q1.GoldAnswer!.Ranking!);
        Assert.Null(await store.GetQueryAsync(ids[1] + 1000));
        Assert.Single(await store.GetQueriesAsync("c2"));
        Assert.Equal(2, (await store.GetQueriesAsync()).Count);

        var (ann, token) = await store.AddLabelerAsync("ann", LabelerRole.Admin);
        Assert.True(token.Length >= 40);
        Assert.Equal(ann, await store.AuthenticateAsync(token));
        Assert.Null(await store.AuthenticateAsync(token + "x"));
        Assert.Null(await store.AuthenticateAsync(""));
        // Only the hash is stored.
        Assert.Equal(0L, Convert.ToInt64(await store.ScalarRawAsync($"SELECT COUNT(*) FROM labelers WHERE token_hash = '{token}'")));
        Assert.Equal(1L, Convert.ToInt64(await store.ScalarRawAsync($"SELECT COUNT(*) FROM labelers WHERE token_hash = '{SqlPreferenceStore.HashToken(token)}'")));

        await store.SetFlaggedAsync(ann.Id, true);
        Assert.True((await store.GetLabelersAsync()).Single().Flagged);
        Assert.Equal(404, (await Assert.ThrowsAsync<FeedbackException>(() => store.SetFlaggedAsync(ann.Id + 99, true))).Status);
    }

    [ServerFact]
    public async Task AJudgmentRoundTripsWithItsAnswerAndTime()
    {
        var store = await NewStoreAsync();
        await store.AddQueriesAsync([new NewQuery(QueryKind.Text, "p", [new("a"), new("b"), new("c")])]);
        var (bob, _) = await store.AddLabelerAsync("bob", LabelerRole.Labeler);
        var a = await store.NextAssignmentAsync(bob.Id);
        var j = await store.SubmitAsync(a!.Id, bob.Id, Answer.Rank(2, 0, 1), TimeSpan.FromSeconds(12.5));
        var stored = Assert.Single(await store.GetJudgmentsAsync());
        Assert.Equal(j.Id, stored.Id);
        Assert.Equal([2, 0, 1], stored.Answer.Ranking!);
        Assert.Equal(AnswerKind.Ranking, stored.Answer.Kind);
        Assert.Equal(TimeSpan.FromSeconds(12.5), stored.TimeSpent);
        Assert.Equal(a.Query.Id, stored.QueryId);
        Assert.Empty(await store.GetJudgmentsAsync("other-campaign"));
    }

    [ServerFact]
    public async Task ABadQueryInABatchStoresNothing()
    {
        var store = await NewStoreAsync();
        var bad = new NewQuery(QueryKind.Text, "p", [new("only one")]);
        var ex = await Assert.ThrowsAsync<FeedbackException>(() => store.AddQueriesAsync([Pair("fine"), bad]));
        Assert.Contains("query 1", ex.Message);
        Assert.Contains("candidates", ex.Message);
        Assert.Empty(await store.GetQueriesAsync());
        var badGold = await Assert.ThrowsAsync<FeedbackException>(() => store.AddQueriesAsync([Pair("g", gold: Answer.Prefer(5))]));
        Assert.Contains("answer.preferred", badGold.Message);
    }

    [ServerFact]
    public async Task MigratingTwiceIsANoOp()
    {
        var store = await NewStoreAsync();
        await store.AddQueriesAsync([Pair("kept")]);
        await store.MigrateAsync();
        await store.MigrateAsync();
        Assert.Equal([1, 2, 3], await store.AppliedVersionsAsync());
        Assert.Equal("kept", Assert.Single(await store.GetQueriesAsync()).Prompt);
    }

    [ServerFact]
    public async Task AVersion1DatabaseUpgradesAndKeepsItsQueue()
    {
        var store = await NewStoreAsync(migrate: false);
        await store.MigrateAsync(1, default);
        Assert.Equal([1], await store.AppliedVersionsAsync());
        // A v1 database in use: one labeller, a regular query already handed out, a fresh one, and a gold task.
        await store.ExecuteRawAsync("""
            INSERT INTO labelers (name, role, token_hash, flagged, created_at) VALUES ('old', 'labeler', 'h1', 0, 1);
            INSERT INTO queries (kind, prompt, candidates, campaign, gold_answer, created_at)
                VALUES ('text', 'taken', '[{"content":"a"},{"content":"b"}]', 'default', NULL, 1);
            INSERT INTO queries (kind, prompt, candidates, campaign, gold_answer, created_at)
                VALUES ('text', 'fresh', '[{"content":"a"},{"content":"b"}]', 'default', NULL, 1);
            INSERT INTO queries (kind, prompt, candidates, campaign, gold_answer, created_at)
                VALUES ('text', 'gold', '[{"content":"a"},{"content":"b"}]', 'default', '{"kind":"preferred","preferred":1}', 1);
            INSERT INTO assignments (query_id, labeler_id, assigned_at)
                SELECT q.id, l.id, 1 FROM queries q, labelers l WHERE q.prompt = 'taken';
            INSERT INTO judgments (assignment_id, query_id, labeler_id, answer, time_spent_ms, created_at)
                SELECT a.id, a.query_id, a.labeler_id, '{"kind":"tie"}', 500, 1 FROM assignments a;
            """);
        await store.MigrateAsync();
        Assert.Equal([1, 2, 3], await store.AppliedVersionsAsync());

        Assert.True((await store.GetQueriesAsync()).Single(q => q.Prompt == "gold").IsGold);
        Assert.Equal(AnswerKind.Tie, Assert.Single(await store.GetJudgmentsAsync()).Answer.Kind);
        // v3 leaves existing labellers as they were: not revoked, no sessions, an empty audit log.
        Assert.False((await store.GetLabelersAsync()).Single(l => l.Name == "old").Revoked);
        Assert.Empty(await store.GetAuditLogAsync());
        // The backfilled counters drive the queue: with overlap 1 the taken query is not handed out again,
        // and the gold task is not handed out as regular work.
        var (newcomer, _) = await store.AddLabelerAsync("new", LabelerRole.Labeler);
        var a = await store.NextAssignmentAsync(newcomer.Id, overlap: 1);
        Assert.Equal("fresh", a!.Query.Prompt);
        await store.SubmitAsync(a.Id, newcomer.Id, Answer.Prefer(0), TimeSpan.Zero);
        Assert.Null(await store.NextAssignmentAsync(newcomer.Id, overlap: 1));
    }

    [ServerFact]
    public async Task EachQueryGoesToOverlapDistinctLabellersAndNeverTwiceToOne()
    {
        var store = await NewStoreAsync();
        await store.AddQueriesAsync([.. Enumerable.Range(0, 5).Select(i => Pair($"q{i}"))]);
        var labellers = new List<Labeler>();
        for (int i = 0; i < 4; i++) labellers.Add((await store.AddLabelerAsync($"l{i}", LabelerRole.Labeler)).Labeler);

        // Round-robin until everyone is out of work.
        bool any = true;
        while (any)
        {
            any = false;
            foreach (var l in labellers)
            {
                var a = await store.NextAssignmentAsync(l.Id, overlap: 3);
                if (a is null) continue;
                any = true;
                await store.SubmitAsync(a.Id, l.Id, Answer.Prefer(0), TimeSpan.FromSeconds(1));
            }
        }
        var judgments = await store.GetJudgmentsAsync();
        Assert.Equal(15, judgments.Count);
        foreach (var g in judgments.GroupBy(j => j.QueryId))
        {
            Assert.Equal(3, g.Count());
            Assert.Equal(3, g.Select(j => j.LabelerId).Distinct().Count());
        }
        Assert.Equal(judgments.Count, judgments.Select(j => (j.QueryId, j.LabelerId)).Distinct().Count());
    }

    [ServerFact]
    public async Task AnOpenAssignmentIsReturnedAgain()
    {
        var store = await NewStoreAsync();
        await store.AddQueriesAsync([Pair("one"), Pair("two"), Pair("other", "elsewhere")]);
        var (l, _) = await store.AddLabelerAsync("l", LabelerRole.Labeler);
        var first = await store.NextAssignmentAsync(l.Id, "default");
        var again = await store.NextAssignmentAsync(l.Id, "default");
        Assert.Equal(first!.Id, again!.Id);
        Assert.Equal("one", again.Query.Prompt);
        // Another campaign's queue is separate.
        Assert.Equal("other", (await store.NextAssignmentAsync(l.Id, "elsewhere"))!.Query.Prompt);
        await store.SubmitAsync(first.Id, l.Id, Answer.Tie(), TimeSpan.Zero);
        Assert.Equal("two", (await store.NextAssignmentAsync(l.Id, "default"))!.Query.Prompt);
        Assert.Equal(404, (await Assert.ThrowsAsync<FeedbackException>(() => store.NextAssignmentAsync(l.Id + 50))).Status);
        await Assert.ThrowsAsync<FeedbackException>(() => store.NextAssignmentAsync(l.Id, overlap: 0));
        await Assert.ThrowsAsync<FeedbackException>(() => store.NextAssignmentAsync(l.Id, goldRate: 1.5));
    }

    [ServerFact]
    public async Task GoldTasksAreMixedInAtTheRequestedRate()
    {
        var store = await NewStoreAsync(seed: 11);
        await store.AddQueriesAsync([.. Enumerable.Range(0, 40).Select(i => Pair($"gold{i}", gold: Answer.Prefer(i % 2)))]);
        await store.AddQueriesAsync([.. Enumerable.Range(0, 200).Select(i => Pair($"q{i}"))]);
        var (l, _) = await store.AddLabelerAsync("l", LabelerRole.Labeler);
        int gold = 0;
        var seen = new HashSet<long>();
        for (int i = 0; i < 100; i++)
        {
            var a = await store.NextAssignmentAsync(l.Id, goldRate: 0.2);
            Assert.True(seen.Add(a!.Query.Id), "a query was handed to the same labeller twice");
            Assert.False(a.Query.IsGold); // unannounced: the labeller's copy never says
            if ((await store.GetQueryAsync(a.Query.Id))!.IsGold) gold++;
            await store.SubmitAsync(a.Id, l.Id, Answer.Prefer(0), TimeSpan.Zero);
        }
        // Binomial(100, 0.2): mean 20, sd 4; [8, 32] is a 3-sigma band.
        Assert.InRange(gold, 8, 32);

        var (m, _) = await store.AddLabelerAsync("m", LabelerRole.Labeler);
        for (int i = 0; i < 30; i++)
        {
            var a = await store.NextAssignmentAsync(m.Id, goldRate: 0, overlap: 2);
            Assert.False((await store.GetQueryAsync(a!.Query.Id))!.IsGold);
            await store.SubmitAsync(a.Id, m.Id, Answer.Prefer(1), TimeSpan.Zero);
        }
    }

    [ServerFact]
    public async Task SubmissionsAreRefusedWithTheRightStatusAndRetriesAreIdempotent()
    {
        var store = await NewStoreAsync();
        await store.AddQueriesAsync([Pair("p")]);
        var (l, _) = await store.AddLabelerAsync("l", LabelerRole.Labeler);
        var (other, _) = await store.AddLabelerAsync("other", LabelerRole.Labeler);
        var a = await store.NextAssignmentAsync(l.Id);

        Assert.Equal(404, (await Assert.ThrowsAsync<FeedbackException>(() => store.SubmitAsync(a!.Id + 77, l.Id, Answer.Prefer(0), TimeSpan.Zero))).Status);
        var foreign = await Assert.ThrowsAsync<FeedbackException>(() => store.SubmitAsync(a!.Id, other.Id, Answer.Prefer(0), TimeSpan.Zero));
        Assert.Equal(403, foreign.Status);
        var malformed = await Assert.ThrowsAsync<FeedbackException>(() => store.SubmitAsync(a!.Id, l.Id, Answer.Prefer(2), TimeSpan.Zero));
        Assert.Equal(400, malformed.Status);
        Assert.Contains("answer.preferred", malformed.Message);
        Assert.Equal(400, (await Assert.ThrowsAsync<FeedbackException>(() => store.SubmitAsync(a!.Id, l.Id, Answer.Prefer(0), TimeSpan.FromSeconds(-1)))).Status);
        Assert.Empty(await store.GetJudgmentsAsync());

        var first = await store.SubmitAsync(a!.Id, l.Id, Answer.Skip("both off-topic"), TimeSpan.FromSeconds(3));
        var retry = await store.SubmitAsync(a.Id, l.Id, Answer.Skip("both off-topic"), TimeSpan.FromSeconds(9));
        Assert.Equal(first.Id, retry.Id);
        Assert.Equal(TimeSpan.FromSeconds(3), retry.TimeSpent);
        var conflict = await Assert.ThrowsAsync<FeedbackException>(() => store.SubmitAsync(a.Id, l.Id, Answer.Prefer(1), TimeSpan.Zero));
        Assert.Equal(409, conflict.Status);
        Assert.Single(await store.GetJudgmentsAsync());
    }

    [ServerFact]
    public async Task ConcurrentWritersLoseAndDuplicateNothing()
    {
        var store = await NewStoreAsync();
        const int queries = 60, overlap = 2, workers = 6;
        await store.AddQueriesAsync([.. Enumerable.Range(0, queries).Select(i => Pair($"q{i}"))]);
        var labellers = new List<Labeler>();
        for (int i = 0; i < workers; i++) labellers.Add((await store.AddLabelerAsync($"w{i}", LabelerRole.Labeler)).Labeler);

        int submitted = 0;
        var tasks = labellers.Select(l => Task.Run(async () =>
        {
            while (await store.NextAssignmentAsync(l.Id, overlap: overlap) is { } a)
            {
                await store.SubmitAsync(a.Id, l.Id, Answer.Prefer((int)(a.Query.Id % 2)), TimeSpan.FromMilliseconds(5));
                // A client retrying after a lost response must not create a second judgment.
                await store.SubmitAsync(a.Id, l.Id, Answer.Prefer((int)(a.Query.Id % 2)), TimeSpan.FromMilliseconds(5));
                Interlocked.Increment(ref submitted);
            }
        })).ToArray();
        await Task.WhenAll(tasks);

        var judgments = await store.GetJudgmentsAsync();
        Assert.Equal(queries * overlap, submitted);
        Assert.Equal(queries * overlap, judgments.Count);
        Assert.Equal(judgments.Count, judgments.Select(j => (j.QueryId, j.LabelerId)).Distinct().Count());
        Assert.All(judgments.GroupBy(j => j.QueryId), g => Assert.Equal(overlap, g.Count()));
    }

    [ServerFact]
    public async Task TwoInstancesSharingOneDatabaseKeepOverlapAndNeverTwice()
    {
        var first = await NewStoreAsync();
        var second = OpenAnotherInstance(first);
        _stores.Add(second);
        await second.MigrateAsync(); // a second instance starting up migrates too: a no-op
        await first.AddQueriesAsync([.. Enumerable.Range(0, 40).Select(i => Pair($"q{i}"))]);
        var labellers = new List<Labeler>();
        for (int i = 0; i < 6; i++) labellers.Add((await first.AddLabelerAsync($"w{i}", LabelerRole.Labeler)).Labeler);

        // Each labeller alternates between the two instances, as a load balancer would send them.
        var tasks = labellers.Select((l, w) => Task.Run(async () =>
        {
            for (int n = 0; ; n++)
            {
                var via = (n + w) % 2 == 0 ? first : second;
                var a = await via.NextAssignmentAsync(l.Id, overlap: 3);
                if (a is null) break;
                await ((n + w) % 2 == 0 ? second : first).SubmitAsync(a.Id, l.Id, Answer.Prefer(0), TimeSpan.Zero);
            }
        })).ToArray();
        await Task.WhenAll(tasks);
        var judgments = await second.GetJudgmentsAsync();
        Assert.Equal(120, judgments.Count);
        Assert.Equal(120, judgments.Select(j => (j.QueryId, j.LabelerId)).Distinct().Count());
        Assert.All(judgments.GroupBy(j => j.QueryId), g => Assert.Equal(3, g.Count()));
        Assert.Equal([1, 2, 3], await second.AppliedVersionsAsync());
    }

    [ServerFact]
    public async Task NothingLeftMeansNothingLeftEvenWhileOthersHoldTheLastQueries()
    {
        // Many labellers, few queries, high overlap: at the tail most candidates are locked by someone else's pick.
        // A labeller told "nothing left" stops for good, so every query must still reach its full overlap.
        for (int round = 0; round < 3; round++)
        {
            var store = await NewStoreAsync();
            await store.AddQueriesAsync([.. Enumerable.Range(0, 6).Select(i => Pair($"q{i}"))]);
            var labellers = new List<Labeler>();
            for (int i = 0; i < 10; i++) labellers.Add((await store.AddLabelerAsync($"w{i}", LabelerRole.Labeler)).Labeler);
            await Task.WhenAll(labellers.Select(l => Task.Run(async () =>
            {
                while (await store.NextAssignmentAsync(l.Id, overlap: 5) is { } a)
                    await store.SubmitAsync(a.Id, l.Id, Answer.Prefer(0), TimeSpan.Zero);
            })));
            var judgments = await store.GetJudgmentsAsync();
            Assert.Equal(30, judgments.Count);
            Assert.All(judgments.GroupBy(j => j.QueryId), g => Assert.Equal(5, g.Select(j => j.LabelerId).Distinct().Count()));
        }
    }

    [ServerFact]
    public async Task StaleOpenAssignmentsAreReleasedToOthers()
    {
        var store = await NewStoreAsync();
        await store.AddQueriesAsync([Pair("only")]);
        var (gone, _) = await store.AddLabelerAsync("gone", LabelerRole.Labeler);
        var (next, _) = await store.AddLabelerAsync("next", LabelerRole.Labeler);
        var abandoned = await store.NextAssignmentAsync(gone.Id);
        Assert.Null(await store.NextAssignmentAsync(next.Id)); // overlap 1: taken
        Assert.Equal(0, await store.ReleaseStaleAssignmentsAsync(TimeSpan.FromHours(1)));
        await Task.Delay(20);
        Assert.Equal(1, await store.ReleaseStaleAssignmentsAsync(TimeSpan.FromMilliseconds(1)));
        var handedOn = await store.NextAssignmentAsync(next.Id);
        Assert.Equal(abandoned!.Query.Id, handedOn!.Query.Id);
        Assert.Equal(404, (await Assert.ThrowsAsync<FeedbackException>(() => store.SubmitAsync(abandoned.Id, gone.Id, Answer.Tie(), TimeSpan.Zero))).Status);
        await store.SubmitAsync(handedOn.Id, next.Id, Answer.Tie(), TimeSpan.Zero);
        Assert.Single(await store.GetJudgmentsAsync());
    }

    [ServerFact]
    public async Task StatsCountTheQueue()
    {
        var store = await NewStoreAsync();
        await store.AddQueriesAsync([Pair("a"), Pair("b"), Pair("c"), Pair("g", gold: Answer.Prefer(0))]);
        var (l, _) = await store.AddLabelerAsync("l", LabelerRole.Labeler);
        var x = await store.NextAssignmentAsync(l.Id, overlap: 2);
        await store.SubmitAsync(x!.Id, l.Id, Answer.Prefer(1), TimeSpan.FromSeconds(4));
        var y = await store.NextAssignmentAsync(l.Id, overlap: 2);
        await store.SubmitAsync(y!.Id, l.Id, Answer.Skip("can't tell"), TimeSpan.FromSeconds(8));
        var stats = await store.GetStatsAsync(overlap: 1);
        Assert.Equal(new CampaignStats(3, 1, 2, 1, 2, 1, 1, 2, 6.0), stats);
        Assert.Equal(3, (await store.GetStatsAsync(overlap: 2)).QueueDepth);
    }

    // ---- labeller security (issue #17 part 3) ----

    [ServerFact]
    public async Task ARevokedLabellersTokenAndSessionsStopWorkingAndTheirOpenWorkIsHandedBack()
    {
        var store = await NewStoreAsync();
        await store.AddQueriesAsync([Pair("only")]);
        var (eve, token) = await store.AddLabelerAsync("eve", LabelerRole.Labeler);
        var (bob, _) = await store.AddLabelerAsync("bob", LabelerRole.Labeler);
        var session = await store.CreateSessionAsync(eve.Id, DateTimeOffset.UtcNow.AddHours(12));
        Assert.Equal(eve.Id, (await store.AuthenticateSessionAsync(session, DateTimeOffset.UtcNow))!.Id);
        Assert.NotNull(await store.NextAssignmentAsync(eve.Id));
        Assert.Null(await store.NextAssignmentAsync(bob.Id)); // overlap 1: eve holds the only query

        await store.RevokeLabelerAsync(eve.Id);
        Assert.Null(await store.AuthenticateAsync(token));
        Assert.Null(await store.AuthenticateSessionAsync(session, DateTimeOffset.UtcNow));
        Assert.True((await store.GetLabelersAsync()).Single(l => l.Id == eve.Id).Revoked);
        Assert.Equal(403, (await Assert.ThrowsAsync<FeedbackException>(() => store.NextAssignmentAsync(eve.Id))).Status);
        Assert.Equal(401, (await Assert.ThrowsAsync<FeedbackException>(() => store.CreateSessionAsync(eve.Id, DateTimeOffset.UtcNow.AddHours(1)))).Status);
        Assert.Equal("only", (await store.NextAssignmentAsync(bob.Id))!.Query.Prompt);
        await store.RevokeLabelerAsync(eve.Id); // twice: no error
        Assert.Equal(404, (await Assert.ThrowsAsync<FeedbackException>(() => store.RevokeLabelerAsync(eve.Id + 99))).Status);
    }

    [ServerFact]
    public async Task ASessionIsStoredHashedExpiresAndEndsAtSignOut()
    {
        var store = await NewStoreAsync();
        var (ann, token) = await store.AddLabelerAsync("ann", LabelerRole.Labeler);
        var t0 = DateTimeOffset.UtcNow;
        var session = await store.CreateSessionAsync(ann.Id, t0.AddHours(12));
        Assert.NotEqual(token, session);
        Assert.True(session.Length >= 40);
        Assert.Null(await store.AuthenticateAsync(session)); // a session id is not a token
        Assert.Null(await store.AuthenticateSessionAsync(token, t0)); // nor the other way round
        Assert.Equal(0L, Convert.ToInt64(await store.ScalarRawAsync($"SELECT COUNT(*) FROM sessions WHERE id_hash = '{session}'")));
        Assert.Equal(ann.Id, (await store.AuthenticateSessionAsync(session, t0.AddHours(11.9)))!.Id);
        Assert.Null(await store.AuthenticateSessionAsync(session, t0.AddHours(12)));

        var second = await store.CreateSessionAsync(ann.Id, t0.AddHours(12));
        await store.DeleteSessionAsync(second);
        Assert.Null(await store.AuthenticateSessionAsync(second, t0));
        Assert.NotNull(await store.AuthenticateSessionAsync(session, t0)); // the other session is untouched
        await store.DeleteSessionAsync("not-a-session");
    }

    [ServerFact]
    public async Task AFlaggedLabellerGetsNoNewWorkAndTheirOpenAssignmentGoesToSomeoneElseUntilUnflagged()
    {
        var store = await NewStoreAsync();
        await store.AddQueriesAsync([Pair("q1"), Pair("q2")]);
        var (mal, _) = await store.AddLabelerAsync("mal", LabelerRole.Labeler);
        var (bob, _) = await store.AddLabelerAsync("bob", LabelerRole.Labeler);
        var held = await store.NextAssignmentAsync(mal.Id, overlap: 1);
        Assert.Equal("q1", held!.Query.Prompt);

        await store.SetFlaggedAsync(mal.Id, true);
        var refused = await Assert.ThrowsAsync<FeedbackException>(() => store.NextAssignmentAsync(mal.Id, overlap: 1));
        Assert.Equal(403, refused.Status);
        Assert.Contains("flagged", refused.Message);
        // The overlap slot mal held is free again: bob gets q1 first.
        Assert.Equal("q1", (await store.NextAssignmentAsync(bob.Id, overlap: 1))!.Query.Prompt);
        Assert.Equal(404, (await Assert.ThrowsAsync<FeedbackException>(() => store.SubmitAsync(held.Id, mal.Id, Answer.Tie(), TimeSpan.Zero))).Status);

        await store.SetFlaggedAsync(mal.Id, false);
        Assert.Equal("q2", (await store.NextAssignmentAsync(mal.Id, overlap: 1))!.Query.Prompt);
    }

    [ServerFact]
    public async Task AJudgmentWhoseQueryIdIsNotTheAssignmentsIsRefusedNamingTheField()
    {
        var store = await NewStoreAsync();
        var ids = await store.AddQueriesAsync([Pair("q1"), Pair("q2")]);
        var (ann, _) = await store.AddLabelerAsync("ann", LabelerRole.Labeler);
        var a = await store.NextAssignmentAsync(ann.Id);
        var ex = await Assert.ThrowsAsync<FeedbackException>(() => store.SubmitAsync(a!.Id, ann.Id, Answer.Prefer(0), TimeSpan.Zero, queryId: ids[1]));
        Assert.Equal(400, ex.Status);
        Assert.Contains("queryId", ex.Message);
        Assert.Empty(await store.GetJudgmentsAsync());
        Assert.Equal(ids[0], (await store.SubmitAsync(a!.Id, ann.Id, Answer.Prefer(0), TimeSpan.Zero, queryId: ids[0])).QueryId);
    }

    [ServerFact]
    public async Task NamesAndSkipReasonsHaveLengthLimitsNamedInTheRefusal()
    {
        var store = await NewStoreAsync();
        var longName = await Assert.ThrowsAsync<FeedbackException>(() => store.AddLabelerAsync(new string('n', 10_000), LabelerRole.Labeler));
        Assert.Contains("name", longName.Message);
        Assert.Contains(FeedbackLimits.LabelerName.ToString(System.Globalization.CultureInfo.InvariantCulture), longName.Message);
        Assert.True(longName.Message.Length < 200, longName.Message);
        Assert.Contains("control", (await Assert.ThrowsAsync<FeedbackException>(() => store.AddLabelerAsync("a\u001b[2Jb", LabelerRole.Labeler))).Message);
        var (ok, _) = await store.AddLabelerAsync("  " + new string('n', FeedbackLimits.LabelerName) + " ", LabelerRole.Labeler);
        Assert.Equal(FeedbackLimits.LabelerName, ok.Name.Length);

        await store.AddQueriesAsync([Pair("q")]);
        var a = await store.NextAssignmentAsync(ok.Id);
        var longReason = await Assert.ThrowsAsync<FeedbackException>(() => store.SubmitAsync(a!.Id, ok.Id, Answer.Skip(new string('r', 5_000)), TimeSpan.Zero));
        Assert.Contains("skip_reason", longReason.Message);
        Assert.Contains(FeedbackLimits.SkipReason.ToString(System.Globalization.CultureInfo.InvariantCulture), longReason.Message);
        Assert.True(longReason.Message.Length < 200, longReason.Message);
    }

    [ServerFact]
    public async Task TheAuditLogKeepsWhoDidWhatToWhomAndWhen()
    {
        var store = await NewStoreAsync();
        var before = DateTimeOffset.UtcNow.AddSeconds(-1);
        await store.AppendAuditAsync("cli:root", "revoke", "\"eve\" (#3)");
        await store.AppendAuditAsync("admin \"ann\" (#1)", "flag", "\"mal\" (#2)", "gold 1/4");
        var log = await store.GetAuditLogAsync();
        Assert.Equal(["revoke", "flag"], log.Select(e => e.Action));
        Assert.Equal("cli:root", log[0].Actor);
        Assert.Equal("\"mal\" (#2)", log[1].Target);
        Assert.Equal("gold 1/4", log[1].Detail);
        Assert.Null(log[0].Detail);
        Assert.All(log, e => Assert.InRange(e.At, before, DateTimeOffset.UtcNow.AddSeconds(1)));
    }
}

public sealed class SqlitePreferenceStoreTests : PreferenceStoreContractTests
{
    private readonly TempDirectory _dir = new();

    public static string? SkipReason => null;

    protected override Task<SqlPreferenceStore> CreateEmptyStoreAsync(int? seed) =>
        Task.FromResult<SqlPreferenceStore>(new SqlitePreferenceStore(_dir.File($"store-{Guid.NewGuid():N}.db"), seed: seed));

    protected override SqlPreferenceStore OpenAnotherInstance(SqlPreferenceStore store) =>
        new SqlitePreferenceStore(((SqlitePreferenceStore)store).Path);

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        _dir.Dispose();
    }

    [Fact]
    public async Task TheFileIsInWalMode()
    {
        var store = await NewStoreAsync();
        Assert.Equal("wal", (string?)await store.ScalarRawAsync("PRAGMA journal_mode"));
    }

    [Fact]
    public async Task DurableMeansSynchronousFullAndTheDefaultIsNormal()
    {
        var store = await NewStoreAsync();
        Assert.Equal(1L, Convert.ToInt64(await store.ScalarRawAsync("PRAGMA synchronous"))); // NORMAL
        await using var durable = new SqlitePreferenceStore(((SqlitePreferenceStore)store).Path, durable: true);
        Assert.True(durable.Durable);
        Assert.Equal(2L, Convert.ToInt64(await durable.ScalarRawAsync("PRAGMA synchronous"))); // FULL
        Assert.Equal("wal", (string?)await durable.ScalarRawAsync("PRAGMA journal_mode"));
    }

    [Fact]
    public async Task AFileThatIsNotADatabaseIsNamedInTheError()
    {
        var path = _dir.File("junk.db");
        await File.WriteAllBytesAsync(path, [.. Enumerable.Range(0, 4096).Select(i => (byte)(i * 37))]);
        var ex = await Assert.ThrowsAsync<FeedbackException>(() => SqlitePreferenceStore.OpenAsync(path));
        Assert.Contains(path, ex.Message);
        Assert.Contains("not a database", ex.Message);
    }

    [Fact]
    public async Task SeveralInstancesStartingAtOnceMigrateAFreshFileOnce()
    {
        var path = _dir.File("race.db");
        var stores = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => SqlitePreferenceStore.OpenAsync(path))));
        Assert.Equal([1, 2, 3], await stores[0].AppliedVersionsAsync());
        Assert.Equal(3L, Convert.ToInt64(await stores[3].ScalarRawAsync("SELECT COUNT(*) FROM schema_version")));
        foreach (var s in stores) await s.DisposeAsync();
    }

    [Fact]
    public async Task TwoStoreObjectsOnOneFileShareIt()
    {
        var path = _dir.File("shared.db");
        await using var a = await SqlitePreferenceStore.OpenAsync(path);
        await using var b = await SqlitePreferenceStore.OpenAsync(path);
        await a.AddQueriesAsync([new NewQuery(QueryKind.Text, "p", [new("x"), new("y")])]);
        Assert.Equal("p", Assert.Single(await b.GetQueriesAsync()).Prompt);
    }
}

public sealed class PostgresPreferenceStoreTests : PreferenceStoreContractTests
{
    private readonly List<string> _schemas = [];

    public static string? SkipReason => PostgresServer.SkipReason;

    protected override async Task<SqlPreferenceStore> CreateEmptyStoreAsync(int? seed)
    {
        var schema = await PostgresServer.CreateSchemaAsync();
        _schemas.Add(schema);
        return new PostgresPreferenceStore(PostgresServer.ConnectionStringFor(schema), seed);
    }

    protected override SqlPreferenceStore OpenAnotherInstance(SqlPreferenceStore store) =>
        new PostgresPreferenceStore(PostgresServer.ConnectionStringFor(_schemas[^1]));

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        foreach (var s in _schemas) await PostgresServer.DropSchemaAsync(s);
    }
}

public sealed class PostgresConnectionErrorTests
{
    [Fact]
    public async Task AnUnreachableServerIsA503NamingPostgreSql()
    {
        // Port 1 on the loopback: nothing listens, so the connection is refused at once (no server needed).
        await using var store = new PostgresPreferenceStore("Host=127.0.0.1;Port=1;Username=x;Password=y;Database=z;Timeout=3");
        var ex = await Assert.ThrowsAsync<FeedbackException>(() => store.MigrateAsync());
        Assert.Equal(503, ex.Status);
        Assert.Contains("PostgreSQL store: cannot connect", ex.Message);
    }

    [Fact]
    public void AMalformedConnectionStringIsRefused() =>
        Assert.Contains("connection string", Assert.Throws<FeedbackException>(() => new PostgresPreferenceStore("Host=127.0.0.1;Bogus Key=1")).Message);
}
