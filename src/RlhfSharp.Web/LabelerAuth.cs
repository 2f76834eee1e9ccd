// Who is calling: a labeller token sent as "Authorization: Bearer ..." (scripts, load tests) or the HttpOnly session
// cookie set at sign-in (the pages). The cookie holds a random session id, never the token: the store keeps only the
// id's SHA-256 and its expiry (LabelingAppOptions.SessionLifetime, fixed from sign-in), and sign-out deletes it.
// Cookie-authenticated writes must also carry the X-Rlhf-Csrf header; see CheckForgery.
using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using RlhfSharp.Feedback;

namespace RlhfSharp.Web;

/// <summary>Resolves the calling labeller, caching look-ups briefly so a busy labeller does not hit the store per request.</summary>
internal sealed class LabelerAuth(IPreferenceStore store, TimeProvider clock)
{
    /// <summary>The session cookie: it holds a session id, HttpOnly and SameSite=Strict.</summary>
    public const string CookieName = "rlhf_session";

    /// <summary>
    /// The anti-forgery header. Why a header and not a form token: every page talks to the JSON API with fetch, and a
    /// cross-site page cannot add a custom header to a request without a CORS preflight, which this app never grants;
    /// SameSite=Strict already keeps the cookie off cross-site requests, so the two guard each other.
    /// </summary>
    public const string CsrfHeader = "X-Rlhf-Csrf";

    // Role, flag and revocation changes made on another app instance reach a cached labeller within this long (this
    // instance forgets at once); short enough for an admin, long enough for load.
    private static readonly TimeSpan CacheFor = TimeSpan.FromSeconds(5);
    private readonly ConcurrentDictionary<string, (Labeler Labeler, DateTimeOffset Until)> _cache = new();

    /// <summary>The caller, or a 401 naming what is missing. Writes made with the cookie are checked for forgery.</summary>
    public async Task<Labeler> RequireAsync(HttpContext ctx, bool write, CancellationToken ct)
    {
        var (secret, viaCookie) = ReadCredential(ctx);
        if (secret is null)
            throw new FeedbackException("Sign in first: send your labeller token as \"Authorization: Bearer <token>\" or sign in on the start page.", 401);
        if (write && viaCookie)
            CheckForgery(ctx);
        if (viaCookie)
            return await AuthenticateSessionAsync(secret, ct)
                ?? throw new FeedbackException("Your session has ended (signed out, expired or revoked): sign in again on the start page.", 401);
        return await AuthenticateAsync(secret, ct) ?? throw new FeedbackException("The labeller token is not known (it may have been mistyped or revoked).", 401);
    }

    /// <summary>The caller, who must have the admin role (403 otherwise).</summary>
    public async Task<Labeler> RequireAdminAsync(HttpContext ctx, bool write, CancellationToken ct)
    {
        var labeler = await RequireAsync(ctx, write, ct);
        if (labeler.Role != LabelerRole.Admin)
            throw new FeedbackException($"Labeller \"{labeler.Name}\" does not have the admin role this page needs.", 403);
        return labeler;
    }

    public Task<Labeler?> AuthenticateAsync(string token, CancellationToken ct) =>
        Cached("t:" + Hash(token), () => store.AuthenticateAsync(token, ct));

    private Task<Labeler?> AuthenticateSessionAsync(string sessionId, CancellationToken ct) =>
        Cached("s:" + Hash(sessionId), () => store.AuthenticateSessionAsync(sessionId, clock.GetUtcNow(), ct));

    private async Task<Labeler?> Cached(string key, Func<Task<Labeler?>> lookUp)
    {
        var now = clock.GetUtcNow();
        if (_cache.TryGetValue(key, out var hit) && hit.Until > now)
            return hit.Labeler;
        var labeler = await lookUp();
        if (labeler is null)
            _cache.TryRemove(key, out _);
        else
            _cache[key] = (labeler, now + CacheFor);
        return labeler;
    }

    /// <summary>Forgets cached look-ups, so a flag, role change or revocation shows at once on this instance.</summary>
    public void Forget() => _cache.Clear();

    /// <summary>Forgets one session at once (sign-out).</summary>
    public void ForgetSession(string sessionId) => _cache.TryRemove("s:" + Hash(sessionId), out _);

    /// <summary>The session id in the request's cookie, if any.</summary>
    public static string? SessionId(HttpContext ctx) =>
        ctx.Request.Cookies.TryGetValue(CookieName, out var cookie) && !string.IsNullOrEmpty(cookie) ? cookie : null;

    /// <summary>Refuses a cookie-carried write without the anti-forgery header or from another origin.</summary>
    public static void CheckForgery(HttpContext ctx)
    {
        if (!ctx.Request.Headers.ContainsKey(CsrfHeader))
            throw new FeedbackException($"Refused: a write with the session cookie must carry the {CsrfHeader} header (anti-forgery).", 403);
        var origin = ctx.Request.Headers.Origin.ToString();
        if (origin.Length > 0)
        {
            var expected = $"{ctx.Request.Scheme}://{ctx.Request.Host}";
            if (!string.Equals(origin, expected, StringComparison.OrdinalIgnoreCase))
                throw new FeedbackException($"Refused: request from origin {FeedbackLimits.Excerpt(origin, 100)}, but this app is {expected}.", 403);
        }
    }

    private static (string? Secret, bool ViaCookie) ReadCredential(HttpContext ctx)
    {
        var auth = ctx.Request.Headers.Authorization.ToString();
        if (auth.Length > 0)
        {
            const string Bearer = "Bearer ";
            if (!auth.StartsWith(Bearer, StringComparison.OrdinalIgnoreCase) || auth.Length == Bearer.Length)
                throw new FeedbackException("The Authorization header must be \"Bearer <labeller token>\".", 401);
            return (auth[Bearer.Length..].Trim(), false);
        }
        return SessionId(ctx) is string id ? (id, true) : (null, false);
    }

    private static string Hash(string secret) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(secret)));
}
