// The labelling API over real HTTP on 127.0.0.1: authentication, roles, anti-forgery, refusals, idempotent retries,
// size limits. Written once against IPreferenceStore; each store gets a subclass that runs the same tests.
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using RlhfSharp.Feedback;

namespace RlhfSharp.Web.Tests;

public abstract class LabelingApiTests
{
    /// <summary>A fresh, empty store for one test.</summary>
    private protected abstract IPreferenceStore CreateStore();

    private Task<RunningApp> StartAsync(LabelingAppOptions? options = null, TimeProvider? clock = null) => RunningApp.StartAsync(CreateStore(), options, clock);

    private static StringContent JsonContent(string json) => new(json, Encoding.UTF8, "application/json");

    private static async Task<string> ErrorOf(HttpResponseMessage res) =>
        JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement.GetProperty("error").GetString()!;

    private static async Task<JsonElement> Body(HttpResponseMessage res) =>
        JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement.Clone();

    private static async Task<(long AssignmentId, long QueryId)> NextAsync(HttpClient c)
    {
        var res = await c.PostAsync("/api/assignments/next", null);
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        var b = await Body(res);
        return (b.GetProperty("assignmentId").GetInt64(), b.GetProperty("query").GetProperty("id").GetInt64());
    }

    private static Task<HttpResponseMessage> SubmitAsync(HttpClient c, long assignmentId, object answer, long? queryId = null) =>
        c.PostAsJsonAsync("/api/judgments", new { assignmentId, queryId, answer, timeSpentMs = 1234 });

    [Fact]
    public async Task Given_no_token_When_asking_for_work_Then_401_with_a_message()
    {
        await using var app = await StartAsync();
        using var anon = app.Client();
        var res = await anon.PostAsync("/api/assignments/next", null);
        Assert.Equal(HttpStatusCode.Unauthorized, res.StatusCode);
        Assert.Contains("Sign in", await ErrorOf(res));

        using var wrong = app.Client("not-a-real-token");
        var res2 = await wrong.PostAsJsonAsync("/api/judgments", new { assignmentId = 1, answer = new { kind = "tie" } });
        Assert.Equal(HttpStatusCode.Unauthorized, res2.StatusCode);
        Assert.Contains("not known", await ErrorOf(res2));
        Assert.Empty(await app.Store.GetJudgmentsAsync());
    }

    [Fact]
    public async Task Given_a_labeller_When_judging_Then_the_judgment_is_stored_and_an_identical_retry_returns_it()
    {
        await using var app = await StartAsync();
        await app.AddPairsAsync(2);
        using var c = app.Client(await app.AddLabelerAsync("ada"));

        var (assignment, query) = await NextAsync(c);
        var first = await SubmitAsync(c, assignment, new { kind = "preferred", preferred = 1 }, query);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        var firstId = (await Body(first)).GetProperty("id").GetInt64();

        var retry = await SubmitAsync(c, assignment, new { kind = "preferred", preferred = 1 }, query);
        Assert.Equal(HttpStatusCode.OK, retry.StatusCode);
        Assert.Equal(firstId, (await Body(retry)).GetProperty("id").GetInt64());

        var different = await SubmitAsync(c, assignment, new { kind = "preferred", preferred = 0 }, query);
        Assert.Equal(HttpStatusCode.Conflict, different.StatusCode);
        Assert.False(string.IsNullOrWhiteSpace(await ErrorOf(different)));

        var stored = Assert.Single(await app.Store.GetJudgmentsAsync());
        Assert.Equal(query, stored.QueryId);
        Assert.Equal(AnswerKind.Preferred, stored.Answer.Kind);
        Assert.Equal(1, stored.Answer.Preferred);
        Assert.Equal(1234, stored.TimeSpent.TotalMilliseconds, 3);

        // The retry did not count twice: one judgment made, one of the two queries still needs an answer.
        var progress = await Body(await c.GetAsync("/api/progress"));
        Assert.Equal(1, progress.GetProperty("judged").GetInt32());
        Assert.Equal(1, progress.GetProperty("answersNeeded").GetInt32());
        Assert.Equal(1.234, progress.GetProperty("medianSeconds").GetDouble(), 3);
    }

    [Fact]
    public async Task Given_someone_elses_or_an_unknown_assignment_When_submitting_Then_refused_with_4xx_and_nothing_stored()
    {
        await using var app = await StartAsync();
        await app.AddPairsAsync(2);
        using var ada = app.Client(await app.AddLabelerAsync("ada"));
        using var bob = app.Client(await app.AddLabelerAsync("bob"));
        var (adaAssignment, adaQuery) = await NextAsync(ada);

        var stolen = await SubmitAsync(bob, adaAssignment, new { kind = "tie" });
        Assert.Equal(HttpStatusCode.Forbidden, stolen.StatusCode);

        var unknown = await SubmitAsync(bob, 999_999, new { kind = "tie" });
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);

        var unknownQuery = await SubmitAsync(ada, adaAssignment, new { kind = "tie" }, queryId: 424_242);
        Assert.Equal(HttpStatusCode.NotFound, unknownQuery.StatusCode);
        Assert.Contains("424242", await ErrorOf(unknownQuery));

        var outOfRange = await SubmitAsync(ada, adaAssignment, new { kind = "preferred", preferred = 5 }, adaQuery);
        Assert.Equal(HttpStatusCode.BadRequest, outOfRange.StatusCode);
        Assert.Contains("preferred", await ErrorOf(outOfRange));

        var badKind = await SubmitAsync(ada, adaAssignment, new { kind = "maybe" });
        Assert.Equal(HttpStatusCode.BadRequest, badKind.StatusCode);
        Assert.Contains("maybe", await ErrorOf(badKind));

        var skipWithoutReason = await SubmitAsync(ada, adaAssignment, new { kind = "skip" });
        Assert.Equal(HttpStatusCode.BadRequest, skipWithoutReason.StatusCode);

        var noAssignment = await ada.PostAsJsonAsync("/api/judgments", new { answer = new { kind = "tie" } });
        Assert.Equal(HttpStatusCode.BadRequest, noAssignment.StatusCode);
        Assert.Contains("assignmentId", await ErrorOf(noAssignment));

        var negativeTime = await ada.PostAsJsonAsync("/api/judgments", new { assignmentId = adaAssignment, answer = new { kind = "tie" }, timeSpentMs = -5 });
        Assert.Equal(HttpStatusCode.BadRequest, negativeTime.StatusCode);
        Assert.Contains("-5", await ErrorOf(negativeTime));

        var notJson = await ada.PostAsync("/api/judgments", JsonContent("{\"assignmentId\": \"seven\""));
        Assert.Equal(HttpStatusCode.BadRequest, notJson.StatusCode);
        Assert.Contains("assignmentId", await ErrorOf(notJson));

        var wrongType = await ada.PostAsync("/api/judgments", new StringContent("assignmentId=1", Encoding.UTF8, "application/x-www-form-urlencoded"));
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, wrongType.StatusCode);

        Assert.Empty(await app.Store.GetJudgmentsAsync());
    }

    [Fact]
    public async Task Given_a_body_over_the_limit_When_posting_Then_413_with_a_message_whether_or_not_its_length_is_declared()
    {
        await using var app = await StartAsync(new LabelingAppOptions(MaxRequestBodyBytes: 4096));
        await app.AddPairsAsync(1);
        var token = await app.AddLabelerAsync("ada");
        using var c = app.Client(token);
        var (assignment, _) = await NextAsync(c);
        var huge = JsonSerializer.Serialize(new { assignmentId = assignment, answer = new { kind = "skip", skipReason = new string('x', 10_000) } });

        var declared = await c.PostAsync("/api/judgments", JsonContent(huge));
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, declared.StatusCode);
        Assert.Contains("4096", await ErrorOf(declared));

        // Chunked: no Content-Length, so only Kestrel's own limit can stop it while reading.
        var chunked = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(huge)));
        chunked.Headers.ContentType = new("application/json");
        var req = new HttpRequestMessage(HttpMethod.Post, "/api/judgments") { Content = chunked };
        req.Headers.TransferEncodingChunked = true;
        // A fresh connection: the server closes one whose oversized body it refused to read.
        using var c2 = app.Client(token);
        var streamed = await c2.SendAsync(req);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, streamed.StatusCode);
        Assert.Contains("4096", await ErrorOf(streamed));

        Assert.Empty(await app.Store.GetJudgmentsAsync());
    }

    [Fact]
    public async Task Given_the_session_cookie_When_writing_without_the_csrf_header_or_from_another_origin_Then_403()
    {
        await using var app = await StartAsync();
        await app.AddPairsAsync(1);
        var token = await app.AddLabelerAsync("ada");
        using var c = app.Client();

        // Sign-in itself is forgery-checked (login CSRF).
        var noHeader = await c.PostAsJsonAsync("/api/session", new { token });
        Assert.Equal(HttpStatusCode.Forbidden, noHeader.StatusCode);

        var signIn = new HttpRequestMessage(HttpMethod.Post, "/api/session") { Content = JsonContent(JsonSerializer.Serialize(new { token })) };
        signIn.Headers.Add("X-Rlhf-Csrf", "1");
        var ok = await c.SendAsync(signIn);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        var setCookie = Assert.Single(ok.Headers.GetValues("Set-Cookie"));
        Assert.Contains("httponly", setCookie, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=strict", setCookie, StringComparison.OrdinalIgnoreCase);
        var cookie = setCookie.Split(';')[0];

        HttpRequestMessage WithCookie(HttpMethod m, string path, bool csrf, string? origin = null)
        {
            var r = new HttpRequestMessage(m, path);
            r.Headers.Add("Cookie", cookie);
            if (csrf) r.Headers.Add("X-Rlhf-Csrf", "1");
            if (origin is not null) r.Headers.Add("Origin", origin);
            return r;
        }

        Assert.Equal(HttpStatusCode.OK, (await c.SendAsync(WithCookie(HttpMethod.Get, "/api/me", csrf: false))).StatusCode);
        var forged = await c.SendAsync(WithCookie(HttpMethod.Post, "/api/assignments/next", csrf: false));
        Assert.Equal(HttpStatusCode.Forbidden, forged.StatusCode);
        Assert.Contains("X-Rlhf-Csrf", await ErrorOf(forged));
        var crossSite = await c.SendAsync(WithCookie(HttpMethod.Post, "/api/assignments/next", csrf: true, origin: "http://evil.example"));
        Assert.Equal(HttpStatusCode.Forbidden, crossSite.StatusCode);
        Assert.Contains("evil.example", await ErrorOf(crossSite));
        var sameSite = await c.SendAsync(WithCookie(HttpMethod.Post, "/api/assignments/next", csrf: true, origin: app.Address.GetLeftPart(UriPartial.Authority)));
        Assert.Equal(HttpStatusCode.OK, sameSite.StatusCode);

        // Sign-out is a write too; it expires the cookie.
        Assert.Equal(HttpStatusCode.Forbidden, (await c.SendAsync(WithCookie(HttpMethod.Delete, "/api/session", csrf: false))).StatusCode);
        var signOut = await c.SendAsync(WithCookie(HttpMethod.Delete, "/api/session", csrf: true));
        Assert.Equal(HttpStatusCode.NoContent, signOut.StatusCode);
        Assert.Contains("expires=Thu, 01 Jan 1970", Assert.Single(signOut.Headers.GetValues("Set-Cookie")), StringComparison.OrdinalIgnoreCase);

        var badToken = new HttpRequestMessage(HttpMethod.Post, "/api/session") { Content = JsonContent("{\"token\":\"nope\"}") };
        badToken.Headers.Add("X-Rlhf-Csrf", "1");
        Assert.Equal(HttpStatusCode.Unauthorized, (await c.SendAsync(badToken)).StatusCode);
    }

    [Fact]
    public async Task Given_roles_When_calling_admin_endpoints_Then_only_admins_pass_and_flags_show_in_the_stats()
    {
        await using var app = await StartAsync();
        await app.AddPairsAsync(3);
        using var labeller = app.Client(await app.AddLabelerAsync("ada"));
        using var admin = app.Client(await app.AddLabelerAsync("root", LabelerRole.Admin));

        var refused = await labeller.GetAsync("/api/admin/stats");
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Contains("admin", await ErrorOf(refused));
        Assert.Equal(HttpStatusCode.Forbidden, (await labeller.PostAsJsonAsync("/api/admin/labelers", new { name = "mallory", role = "admin" })).StatusCode);
        Assert.Equal(2, (await app.Store.GetLabelersAsync()).Count);

        var (a, _) = await NextAsync(labeller);
        Assert.Equal(HttpStatusCode.OK, (await SubmitAsync(labeller, a, new { kind = "preferred", preferred = 0 })).StatusCode);

        var stats = await Body(await admin.GetAsync("/api/admin/stats"));
        Assert.Equal(3, stats.GetProperty("queries").GetInt32());
        Assert.Equal(1, stats.GetProperty("judgments").GetInt32());
        Assert.Equal(2, stats.GetProperty("queue").GetProperty("answersNeeded").GetInt32());

        var adaId = (await app.Store.GetLabelersAsync()).Single(l => l.Name == "ada").Id;
        Assert.Equal(HttpStatusCode.NoContent, (await admin.PostAsJsonAsync($"/api/admin/labelers/{adaId}/flag", new { flagged = true })).StatusCode);
        Assert.True((await app.Store.GetLabelersAsync()).Single(l => l.Id == adaId).Flagged);
        var after = await Body(await admin.GetAsync("/api/admin/stats"));
        Assert.True(after.GetProperty("labelers").EnumerateArray().Single(l => l.GetProperty("name").GetString() == "ada").GetProperty("flagged").GetBoolean());
        Assert.Equal(HttpStatusCode.NotFound, (await admin.PostAsJsonAsync("/api/admin/labelers/777/flag", new { flagged = true })).StatusCode);

        var created = await admin.PostAsJsonAsync("/api/admin/labelers", new { name = "cy" });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var newToken = (await Body(created)).GetProperty("token").GetString()!;
        using var cy = app.Client(newToken);
        Assert.Equal("cy", (await Body(await cy.GetAsync("/api/me"))).GetProperty("name").GetString());
    }

    [Fact]
    public async Task Given_overlap_two_When_labellers_ask_Then_each_query_goes_to_two_distinct_labellers_and_never_twice_to_one()
    {
        await using var app = await StartAsync(new LabelingAppOptions(Overlap: 2));
        await app.AddPairsAsync(3);
        var clients = new List<HttpClient>();
        for (var i = 0; i < 3; i++) clients.Add(app.Client(await app.AddLabelerAsync($"l{i}")));
        try
        {
            var seen = new Dictionary<int, List<long>>();
            for (var i = 0; i < 3; i++)
            {
                seen[i] = [];
                while (true)
                {
                    var res = await clients[i].PostAsync("/api/assignments/next", null);
                    if (res.StatusCode == HttpStatusCode.NoContent) break;
                    var b = await Body(res);
                    var again = await Body(await clients[i].PostAsync("/api/assignments/next", null));
                    // An unanswered assignment comes back again instead of a new one.
                    Assert.Equal(b.GetProperty("assignmentId").GetInt64(), again.GetProperty("assignmentId").GetInt64());
                    seen[i].Add(b.GetProperty("query").GetProperty("id").GetInt64());
                    Assert.Equal(HttpStatusCode.OK, (await SubmitAsync(clients[i], b.GetProperty("assignmentId").GetInt64(), new { kind = "tie" })).StatusCode);
                }
            }
            foreach (var list in seen.Values)
                Assert.Equal(list.Count, list.Distinct().Count());
            var judgments = await app.Store.GetJudgmentsAsync();
            Assert.Equal(6, judgments.Count);
            Assert.All(judgments.GroupBy(j => j.QueryId), g => Assert.Equal(2, g.Select(j => j.LabelerId).Distinct().Count()));
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }
    }

    [Fact]
    public async Task Given_a_query_When_handed_out_Then_the_labeller_sees_no_source_model_and_no_gold_answer()
    {
        await using var app = await StartAsync(new LabelingAppOptions(GoldRate: 1));
        await app.Store.AddQueriesAsync([new NewQuery(QueryKind.Text, "Say hi", [new Candidate("hi", "secret-model-a"), new Candidate("yo", "secret-model-b")], GoldAnswer: Answer.Prefer(0))]);
        using var c = app.Client(await app.AddLabelerAsync("ada"));
        var raw = await (await c.PostAsync("/api/assignments/next", null)).Content.ReadAsStringAsync();
        Assert.Contains("Say hi", raw);
        Assert.DoesNotContain("secret-model", raw);
        Assert.DoesNotContain("gold", raw, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Given_the_app_When_fetching_pages_Then_each_is_served_with_a_strict_content_security_policy()
    {
        await using var app = await StartAsync();
        using var c = app.Client();
        foreach (var path in new[] { "/", "/label", "/instructions", "/progress", "/admin", "/assets/app.css", "/assets/label.js" })
        {
            var res = await c.GetAsync(path);
            Assert.Equal(HttpStatusCode.OK, res.StatusCode);
            Assert.Contains("script-src 'self'", res.Headers.GetValues("Content-Security-Policy").Single());
            Assert.Equal("nosniff", res.Headers.GetValues("X-Content-Type-Options").Single());
        }
        Assert.Equal("text/html", (await c.GetAsync("/label")).Content.Headers.ContentType!.MediaType);
        Assert.Equal("text/javascript", (await c.GetAsync("/assets/label.js")).Content.Headers.ContentType!.MediaType);
        Assert.Equal(HttpStatusCode.NotFound, (await c.GetAsync("/assets/nope.js")).StatusCode);
        // Pages carry an ETag; a revalidation with it gets 304 and no body.
        var etag = (await c.GetAsync("/assets/app.css")).Headers.ETag!;
        var revalidate = new HttpRequestMessage(HttpMethod.Get, "/assets/app.css");
        revalidate.Headers.IfNoneMatch.Add(etag);
        Assert.Equal(HttpStatusCode.NotModified, (await c.SendAsync(revalidate)).StatusCode);
        var unknownApi = await c.GetAsync("/api/nothing-here");
        Assert.Equal(HttpStatusCode.NotFound, unknownApi.StatusCode);
        Assert.Contains("/api/nothing-here", await ErrorOf(unknownApi));
    }

    // ---- labeller security (issue #17 part 3) ----

    /// <summary>Signs in through the page's endpoint; returns the Set-Cookie header and the "name=value" cookie to send back.</summary>
    private static async Task<(string SetCookie, string Cookie)> SignInAsync(HttpClient c, string token)
    {
        var signIn = new HttpRequestMessage(HttpMethod.Post, "/api/session") { Content = JsonContent(JsonSerializer.Serialize(new { token })) };
        signIn.Headers.Add("X-Rlhf-Csrf", "1");
        var res = await c.SendAsync(signIn);
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        var setCookie = Assert.Single(res.Headers.GetValues("Set-Cookie"));
        return (setCookie, setCookie.Split(';')[0]);
    }

    private static HttpRequestMessage WithCookie(HttpMethod method, string path, string cookie, HttpContent? content = null)
    {
        var r = new HttpRequestMessage(method, path) { Content = content };
        r.Headers.Add("Cookie", cookie);
        r.Headers.Add("X-Rlhf-Csrf", "1");
        return r;
    }

    [Fact]
    public async Task Given_a_sign_in_When_reading_the_cookie_Then_it_holds_a_session_id_not_the_token_and_sign_out_ends_the_session_for_good()
    {
        await using var app = await StartAsync();
        var token = await app.AddLabelerAsync("ada");
        using var c = app.Client();
        var (setCookie, cookie) = await SignInAsync(c, token);
        // Issue #17: the cookie held the raw permanent token.
        Assert.DoesNotContain(token, setCookie);
        Assert.DoesNotContain("secure", setCookie, StringComparison.OrdinalIgnoreCase); // loopback: off by default
        Assert.Contains("max-age=43200", setCookie, StringComparison.OrdinalIgnoreCase); // 12 h
        Assert.Equal(HttpStatusCode.OK, (await c.SendAsync(WithCookie(HttpMethod.Get, "/api/me", cookie))).StatusCode);

        var signOut = await c.SendAsync(WithCookie(HttpMethod.Post, "/api/logout", cookie));
        Assert.Equal(HttpStatusCode.NoContent, signOut.StatusCode);
        // A copy of the cookie kept from before sign-out is worthless now.
        var replay = await c.SendAsync(WithCookie(HttpMethod.Get, "/api/me", cookie));
        Assert.Equal(HttpStatusCode.Unauthorized, replay.StatusCode);
        Assert.Contains("session has ended", await ErrorOf(replay));
        using var bearer = app.Client(token);
        Assert.Equal(HttpStatusCode.OK, (await bearer.GetAsync("/api/me")).StatusCode);
    }

    [Fact]
    public async Task Given_a_session_When_12_hours_pass_Then_it_has_expired()
    {
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        await using var app = await StartAsync(clock: clock);
        var token = await app.AddLabelerAsync("ada");
        using var c = app.Client();
        var (_, cookie) = await SignInAsync(c, token);
        clock.Advance(TimeSpan.FromHours(11.9));
        Assert.Equal(HttpStatusCode.OK, (await c.SendAsync(WithCookie(HttpMethod.Get, "/api/me", cookie))).StatusCode);
        clock.Advance(TimeSpan.FromHours(0.2));
        Assert.Equal(HttpStatusCode.Unauthorized, (await c.SendAsync(WithCookie(HttpMethod.Get, "/api/me", cookie))).StatusCode);
    }

    [Fact]
    public async Task Given_secure_cookies_on_When_signing_in_Then_the_cookie_carries_the_Secure_flag()
    {
        await using var app = await StartAsync(new LabelingAppOptions(SecureCookies: true));
        var token = await app.AddLabelerAsync("ada");
        using var c = app.Client();
        var (setCookie, _) = await SignInAsync(c, token);
        Assert.Contains("secure", setCookie.Split(';').Select(p => p.Trim().ToLowerInvariant()));
    }

    [Fact]
    public async Task Given_an_admin_When_revoking_a_labeller_Then_their_token_and_session_fail_with_401_and_the_audit_log_says_who_did_it()
    {
        await using var app = await StartAsync();
        await app.AddPairsAsync(2);
        var adaToken = await app.AddLabelerAsync("ada");
        using var ada = app.Client(adaToken);
        using var admin = app.Client(await app.AddLabelerAsync("root", LabelerRole.Admin));
        using var browser = app.Client();
        var (_, cookie) = await SignInAsync(browser, adaToken);
        await NextAsync(ada);
        var adaId = (await app.Store.GetLabelersAsync()).Single(l => l.Name == "ada").Id;
        var rootId = (await app.Store.GetLabelersAsync()).Single(l => l.Name == "root").Id;

        Assert.Equal(HttpStatusCode.Forbidden, (await ada.PostAsync($"/api/admin/labelers/{adaId}/revoke", null)).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await admin.PostAsync($"/api/admin/labelers/{rootId}/revoke", null)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await admin.PostAsync("/api/admin/labelers/777/revoke", null)).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await admin.PostAsync($"/api/admin/labelers/{adaId}/revoke", null)).StatusCode);

        Assert.Equal(HttpStatusCode.Unauthorized, (await ada.PostAsync("/api/assignments/next", null)).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await browser.SendAsync(WithCookie(HttpMethod.Get, "/api/me", cookie))).StatusCode);
        var relogin = new HttpRequestMessage(HttpMethod.Post, "/api/session") { Content = JsonContent(JsonSerializer.Serialize(new { token = adaToken })) };
        relogin.Headers.Add("X-Rlhf-Csrf", "1");
        Assert.Equal(HttpStatusCode.Unauthorized, (await browser.SendAsync(relogin)).StatusCode);
        var stats = await Body(await admin.GetAsync("/api/admin/stats"));
        Assert.True(stats.GetProperty("labelers").EnumerateArray().Single(l => l.GetProperty("name").GetString() == "ada").GetProperty("revoked").GetBoolean());

        var audit = (await Body(await admin.GetAsync("/api/admin/audit"))).EnumerateArray().ToList();
        var entry = Assert.Single(audit, e => e.GetProperty("action").GetString() == "revoke");
        Assert.Equal($"admin \"root\" (#{rootId})", entry.GetProperty("actor").GetString());
        Assert.Equal($"\"ada\" (#{adaId})", entry.GetProperty("target").GetString());
        Assert.Equal(HttpStatusCode.Forbidden, (await app.Client(await app.AddLabelerAsync("bo")).GetAsync("/api/admin/audit")).StatusCode);
    }

    [Fact]
    public async Task Given_a_flagged_labeller_When_asking_for_work_Then_refused_until_an_admin_unflags_them_and_their_slot_goes_to_another()
    {
        await using var app = await StartAsync(new LabelingAppOptions(Overlap: 1));
        await app.AddPairsAsync(2);
        using var mal = app.Client(await app.AddLabelerAsync("mal"));
        using var bob = app.Client(await app.AddLabelerAsync("bob"));
        using var admin = app.Client(await app.AddLabelerAsync("root", LabelerRole.Admin));
        var (_, heldQuery) = await NextAsync(mal);
        var malId = (await app.Store.GetLabelersAsync()).Single(l => l.Name == "mal").Id;

        Assert.Equal(HttpStatusCode.NoContent, (await admin.PostAsJsonAsync($"/api/admin/labelers/{malId}/flag", new { flagged = true })).StatusCode);
        // Issue #17: a flagged labeller still got new assignments, using up overlap slots whose answers export then drops.
        var refused = await mal.PostAsync("/api/assignments/next", null);
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Contains("flagged", await ErrorOf(refused));
        Assert.Equal(heldQuery, (await NextAsync(bob)).QueryId);

        Assert.Equal(HttpStatusCode.NoContent, (await admin.PostAsJsonAsync($"/api/admin/labelers/{malId}/flag", new { flagged = false })).StatusCode);
        Assert.NotEqual(heldQuery, (await NextAsync(mal)).QueryId);
        var actions = (await app.Store.GetAuditLogAsync()).Select(e => e.Action).ToList();
        Assert.Equal(["flag", "unflag"], actions);
    }

    [Fact]
    public async Task Given_a_judgment_whose_queryId_is_not_its_assignments_When_submitting_Then_400_naming_queryId_and_nothing_stored()
    {
        await using var app = await StartAsync();
        var ids = await app.AddPairsAsync(2);
        using var c = app.Client(await app.AddLabelerAsync("ada"));
        var (assignment, query) = await NextAsync(c);
        var other = ids.Single(i => i != query);
        var res = await SubmitAsync(c, assignment, new { kind = "preferred", preferred = 0 }, other);
        Assert.Equal(HttpStatusCode.BadRequest, res.StatusCode);
        var error = await ErrorOf(res);
        Assert.Contains("queryId", error);
        Assert.Contains(other.ToString(System.Globalization.CultureInfo.InvariantCulture), error);
        Assert.Empty(await app.Store.GetJudgmentsAsync());
    }

    [Fact]
    public async Task Given_oversized_fields_When_posting_Then_400_names_the_field_and_the_limit_and_never_echoes_the_input()
    {
        await using var app = await StartAsync();
        await app.AddPairsAsync(1);
        using var admin = app.Client(await app.AddLabelerAsync("root", LabelerRole.Admin));
        using var c = app.Client(await app.AddLabelerAsync("ada"));
        var (assignment, _) = await NextAsync(c);

        async Task<string> Refused(HttpResponseMessage res, params string[] mentions)
        {
            var raw = await res.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.BadRequest, res.StatusCode);
            Assert.True(raw.Length < 600, $"{raw.Length} characters came back: {raw[..Math.Min(200, raw.Length)]}");
            foreach (var m in mentions) Assert.Contains(m, raw);
            return raw;
        }

        await Refused(await admin.PostAsJsonAsync("/api/admin/labelers", new { name = new string('n', 10_000) }), "name", "64");
        await Refused(await admin.PostAsJsonAsync("/api/admin/labelers", new { name = "x", role = new string('r', 20_000) }), "role");
        await Refused(await SubmitAsync(c, assignment, new { kind = "skip", skipReason = new string('s', 5_000) }), "skip_reason", "500");
        // Issue #17: a bad ranking came back whole in the 400.
        await Refused(await SubmitAsync(c, assignment, new { kind = "ranking", ranking = Enumerable.Range(0, 5_000).ToArray() }), "ranking", "5000 entries");
        await Refused(await SubmitAsync(c, assignment, new { kind = new string('k', 20_000) }), "answer.kind");
        Assert.Equal(2, (await app.Store.GetLabelersAsync()).Count);
        Assert.Empty(await app.Store.GetJudgmentsAsync());
    }
}

/// <summary>The API tests against the in-memory test double.</summary>
public sealed class InMemoryLabelingApiTests : LabelingApiTests
{
    private protected override IPreferenceStore CreateStore() => new InMemoryPreferenceStore();
}

/// <summary>A clock the test moves by hand (sessions expire on it).</summary>
internal sealed class ManualClock(DateTimeOffset start) : TimeProvider
{
    private DateTimeOffset _now = start;

    public override DateTimeOffset GetUtcNow() => _now;

    public void Advance(TimeSpan by) => _now += by;
}
