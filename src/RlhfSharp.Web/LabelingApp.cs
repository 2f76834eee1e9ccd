// The labelling web app: Kestrel on 127.0.0.1 (unless told otherwise), a JSON API over an IPreferenceStore, and
// plain HTML/CSS/JS pages embedded in this assembly that use only that API. No build step, no CDN.
using System.Net;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using RlhfSharp.Feedback;

namespace RlhfSharp.Web;

/// <summary>Builds the labelling app. Start it with <c>StartAsync</c>/<c>RunAsync</c>; the caller owns the store.</summary>
public static class LabelingApp
{
    /// <summary>
    /// A ready-to-start app serving <paramref name="store"/>. The store must already be migrated.
    /// Logging is off unless <paramref name="logging"/> adds providers (library code never prints).
    /// </summary>
    public static WebApplication Build(IPreferenceStore store, LabelingAppOptions options, IDashboardStatistics? statistics = null,
        TimeProvider? clock = null, Action<ILoggingBuilder>? logging = null)
    {
        ArgumentNullException.ThrowIfNull(store);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        var address = ParseHost(options.Host);
        clock ??= TimeProvider.System;
        statistics ??= new StoreDashboardStatistics();

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        logging?.Invoke(builder.Logging);
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(address, options.Port);
            k.Limits.MaxRequestBodySize = options.MaxRequestBodyBytes;
            k.AddServerHeader = false;
        });
        var app = builder.Build();
        var auth = new LabelerAuth(store, clock);
        var pages = EmbeddedPages.Load();

        app.Use(async (ctx, next) =>
        {
            SetSecurityHeaders(ctx.Response);
            try
            {
                await next(ctx);
            }
            catch (Exception ex) when (!ctx.Response.HasStarted && ToRefusal(ex, options) is (int status, string message))
            {
                ctx.Response.Clear();
                SetSecurityHeaders(ctx.Response);
                await WriteJson(ctx, status, new ErrorDto(Bounded(message)));
            }
        });

        MapApi(app, store, options, statistics, clock, auth);
        pages.Map(app);
        return app;
    }

    /// <summary>
    /// Builds and starts the app over <paramref name="store"/> (already migrated) as a <see cref="ILabelingFrontEnd"/>:
    /// what a caller below the web needs. Disposing the result stops the app.
    /// </summary>
    public static async Task<ILabelingFrontEnd> StartAsync(IPreferenceStore store, LabelingAppOptions options, CancellationToken ct = default)
    {
        var app = Build(store, options);
        try
        {
            await app.StartAsync(ct);
        }
        catch
        {
            await app.DisposeAsync();
            throw;
        }
        return new StartedApp(app);
    }

    private sealed class StartedApp(WebApplication app) : ILabelingFrontEnd
    {
        public Uri Address { get; } = BoundAddress(app);

        public CancellationToken Stopping => app.Lifetime.ApplicationStopping;

        public async ValueTask DisposeAsync()
        {
            await app.StopAsync(CancellationToken.None);
            await app.DisposeAsync();
        }
    }

    /// <summary>The "http://host:port" the started app listens on (the real port when <see cref="LabelingAppOptions.Port"/> was 0).</summary>
    public static Uri BoundAddress(WebApplication app)
    {
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses;
        var first = addresses?.FirstOrDefault() ?? throw new InvalidOperationException("The labelling app has no address yet: call StartAsync first.");
        return new Uri(first);
    }

    private static void MapApi(WebApplication app, IPreferenceStore store, LabelingAppOptions options, IDashboardStatistics statistics, TimeProvider clock, LabelerAuth auth)
    {
        var limit = options.MaxRequestBodyBytes;

        app.MapGet("/healthz", () => Results.Text("ok"));

        // Sign-in: the token buys a server-side session; the HttpOnly, SameSite=Strict cookie holds only the session's
        // random id, so the permanent token never sits in a browser, and sign-out or revocation ends the session for good.
        app.MapPost("/api/session", async (HttpContext ctx, CancellationToken ct) =>
        {
            LabelerAuth.CheckForgery(ctx);
            var body = await JsonBody.ReadAsync<SignInRequest>(ctx, limit, ct);
            if (string.IsNullOrWhiteSpace(body.Token))
                throw new FeedbackException("token is required: paste the labeller token you were given.", 400);
            var token = body.Token.Trim();
            if (token.Length > FeedbackLimits.Token)
                throw new FeedbackException($"token must be at most {FeedbackLimits.Token} characters; got {token.Length}.", 400);
            var labeler = await auth.AuthenticateAsync(token, ct)
                ?? throw new FeedbackException("The labeller token is not known (it may have been mistyped or revoked).", 401);
            var sessionId = await store.CreateSessionAsync(labeler.Id, clock.GetUtcNow() + LabelingAppOptions.SessionLifetime, ct);
            ctx.Response.Cookies.Append(LabelerAuth.CookieName, sessionId, new CookieOptions
            {
                HttpOnly = true,
                SameSite = SameSiteMode.Strict,
                Secure = options.CookiesAreSecure,
                Path = "/",
                MaxAge = LabelingAppOptions.SessionLifetime,
            });
            return Json(LabelerDto.From(labeler));
        });

        // Sign-out deletes the session in the store (a copied cookie is then worthless) and expires the cookie.
        async Task<IResult> SignOut(HttpContext ctx, CancellationToken ct)
        {
            LabelerAuth.CheckForgery(ctx);
            if (LabelerAuth.SessionId(ctx) is string sessionId)
            {
                await store.DeleteSessionAsync(sessionId, ct);
                auth.ForgetSession(sessionId);
            }
            ctx.Response.Cookies.Delete(LabelerAuth.CookieName, new CookieOptions { Path = "/", Secure = options.CookiesAreSecure, HttpOnly = true, SameSite = SameSiteMode.Strict });
            return Results.NoContent();
        }
        app.MapDelete("/api/session", SignOut);
        app.MapPost("/api/logout", SignOut);

        app.MapGet("/api/me", async (HttpContext ctx, CancellationToken ct) =>
            Json(LabelerDto.From(await auth.RequireAsync(ctx, write: false, ct))));

        // Handing out a query creates an assignment, so it is a POST (and forgery-checked like any write).
        app.MapPost("/api/assignments/next", async (HttpContext ctx, CancellationToken ct) =>
        {
            var me = await auth.RequireAsync(ctx, write: true, ct);
            var next = await store.NextAssignmentAsync(me.Id, options.Campaign, options.Overlap, options.GoldRate, ct);
            return next is null ? Results.NoContent() : Json(AssignmentDto.From(next));
        });

        app.MapPost("/api/judgments", async (HttpContext ctx, CancellationToken ct) =>
        {
            var me = await auth.RequireAsync(ctx, write: true, ct);
            var body = await JsonBody.ReadAsync<SubmitRequest>(ctx, limit, ct);
            if (body.AssignmentId is not long assignmentId)
                throw new FeedbackException("assignmentId is required: the id that came with the query.", 400);
            if (body.Answer is null)
                throw new FeedbackException("answer is required: {\"kind\":\"preferred\",\"preferred\":0}, a ranking, a tie or a skip with a reason.", 400);
            var timeSpentMs = body.TimeSpentMs ?? 0;
            if (timeSpentMs is < 0 or > 86_400_000)
                throw new FeedbackException($"timeSpentMs must be in 0..86400000 (one day); got {timeSpentMs}.", 400);
            var answer = body.Answer.ToAnswer();
            if (body.QueryId is long queryId && await store.GetQueryAsync(queryId, ct) is null)
                throw new FeedbackException($"query {queryId} is not known.", 404);
            // The store refuses (400, naming queryId) a queryId that is not the assignment's query.
            var judgment = await store.SubmitAsync(assignmentId, me.Id, answer, TimeSpan.FromMilliseconds(timeSpentMs), body.QueryId, ct);
            return Json(JudgmentDto.From(judgment));
        });

        app.MapGet("/api/progress", async (HttpContext ctx, CancellationToken ct) =>
        {
            var me = await auth.RequireAsync(ctx, write: false, ct);
            var queries = await store.GetQueriesAsync(options.Campaign, ct);
            var judgments = await store.GetJudgmentsAsync(options.Campaign, ct);
            return Json(StoreDashboardStatistics.Progress(me, queries, judgments, options, clock.GetUtcNow()));
        });

        app.MapGet("/api/admin/stats", async (HttpContext ctx, CancellationToken ct) =>
        {
            await auth.RequireAdminAsync(ctx, write: false, ct);
            return Json(await statistics.ComputeAsync(store, options, clock.GetUtcNow(), ct));
        });

        app.MapPost("/api/admin/labelers", async (HttpContext ctx, CancellationToken ct) =>
        {
            var admin = await auth.RequireAdminAsync(ctx, write: true, ct);
            var body = await JsonBody.ReadAsync<AddLabelerRequest>(ctx, limit, ct);
            if (string.IsNullOrWhiteSpace(body.Name))
                throw new FeedbackException("name is required for a new labeller.", 400);
            var role = body.Role?.Trim().ToLowerInvariant() switch
            {
                null or "" or "labeler" or "labeller" => LabelerRole.Labeler,
                "admin" => LabelerRole.Admin,
                _ => throw new FeedbackException($"role must be \"labeler\" or \"admin\"; got \"{FeedbackLimits.Excerpt(body.Role)}\".", 400),
            };
            var (labeler, token) = await store.AddLabelerAsync(body.Name, role, ct);
            await store.AppendAuditAsync(Actor(admin), "add-labeler", labeler.Display, role == LabelerRole.Admin ? "role admin" : "role labeler", ct);
            return Json(new AddLabelerResponse(LabelerDto.From(labeler), token), StatusCodes.Status201Created);
        });

        app.MapPost("/api/admin/labelers/{id}/flag", async (HttpContext ctx, string id, CancellationToken ct) =>
        {
            var admin = await auth.RequireAdminAsync(ctx, write: true, ct);
            var target = await FindLabelerAsync(store, id, ct);
            var body = await JsonBody.ReadAsync<FlagRequest>(ctx, limit, ct);
            if (body.Flagged is not bool flagged)
                throw new FeedbackException("flagged is required: true or false.", 400);
            await store.SetFlaggedAsync(target.Id, flagged, ct);
            await store.AppendAuditAsync(Actor(admin), flagged ? "flag" : "unflag", target.Display, null, ct);
            auth.Forget();
            return Results.NoContent();
        });

        // Revocation: the labeller's token and every session fail with 401 from now on; their judgments stay.
        app.MapPost("/api/admin/labelers/{id}/revoke", async (HttpContext ctx, string id, CancellationToken ct) =>
        {
            var admin = await auth.RequireAdminAsync(ctx, write: true, ct);
            var target = await FindLabelerAsync(store, id, ct);
            if (target.Id == admin.Id)
                throw new FeedbackException("An admin cannot revoke their own access here (nobody might be left to undo it); use `rlhf label revoke NAME`.", 400);
            await store.RevokeLabelerAsync(target.Id, ct);
            await store.AppendAuditAsync(Actor(admin), "revoke", target.Display, null, ct);
            auth.Forget();
            return Results.NoContent();
        });

        app.MapGet("/api/admin/audit", async (HttpContext ctx, CancellationToken ct) =>
        {
            await auth.RequireAdminAsync(ctx, write: false, ct);
            return Json((await store.GetAuditLogAsync(ct)).Select(AuditDto.From).ToList());
        });

        app.Map("/api/{**rest}", (HttpContext ctx) =>
            throw new FeedbackException($"No API endpoint {ctx.Request.Method} {ctx.Request.Path}.", 404));
    }

    /// <summary>How an admin appears in the audit log.</summary>
    private static string Actor(Labeler admin) => $"admin \"{admin.Name}\" (#{admin.Id})";

    private static async Task<Labeler> FindLabelerAsync(IPreferenceStore store, string id, CancellationToken ct)
    {
        if (!long.TryParse(id, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var labelerId))
            throw new FeedbackException($"labeller id must be a whole number; got \"{FeedbackLimits.Excerpt(id)}\".", 400);
        return (await store.GetLabelersAsync(ct)).FirstOrDefault(l => l.Id == labelerId)
            ?? throw new FeedbackException($"labeller {labelerId} is not known.", 404);
    }

    /// <summary>
    /// The last guard on what a refusal says: messages quote caller input only as bounded excerpts, and this cuts
    /// anything that still grew long, so a 400 never carries a request body back.
    /// </summary>
    internal static string Bounded(string message, int max = 500) => message.Length <= max ? message : message[..max] + "…";

    /// <summary>The status and message a refused request gets; null for an unexpected failure (a 500 from the host).</summary>
    private static (int, string)? ToRefusal(Exception ex, LabelingAppOptions options) => ex switch
    {
        FeedbackException f => (f.Status, f.Message),
        BadHttpRequestException { StatusCode: StatusCodes.Status413PayloadTooLarge } =>
            (413, $"Request body is larger than the limit of {options.MaxRequestBodyBytes} bytes."),
        BadHttpRequestException b => (b.StatusCode, b.Message),
        ArgumentException a => (400, a.Message),
        KeyNotFoundException k => (404, k.Message),
        _ => null,
    };

    private static IResult Json<T>(T value, int status = StatusCodes.Status200OK) => Results.Json(value, ApiJson.Options, statusCode: status);

    private static async Task WriteJson<T>(HttpContext ctx, int status, T value)
    {
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json; charset=utf-8";
        await JsonSerializer.SerializeAsync(ctx.Response.Body, value, ApiJson.Options);
    }

    // Scripts and styles only from this app; clips arrive as data: images (an SVG inside <img> runs no script).
    private static void SetSecurityHeaders(HttpResponse r)
    {
        r.Headers["Content-Security-Policy"] =
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
            "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
        r.Headers["X-Content-Type-Options"] = "nosniff";
        r.Headers["Referrer-Policy"] = "no-referrer";
        r.Headers["X-Frame-Options"] = "DENY";
    }

    private static IPAddress ParseHost(string host)
    {
        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase))
            return IPAddress.Loopback;
        return IPAddress.TryParse(host, out var ip) ? ip
            : throw new ArgumentException($"host must be an IP address (e.g. 127.0.0.1 or 0.0.0.0) or \"localhost\"; got \"{host}\".");
    }
}
