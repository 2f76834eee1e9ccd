// Serves the pages, scripts and styles embedded from wwwroot/ (no file system, no build step), with ETags.
using System.Reflection;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace RlhfSharp.Web;

internal sealed class EmbeddedPages
{
    private sealed record Asset(byte[] Bytes, string ContentType, string ETag);

    private readonly Dictionary<string, Asset> _assets;

    private EmbeddedPages(Dictionary<string, Asset> assets) => _assets = assets;

    /// <summary>The page routes and the file each one serves.</summary>
    private static readonly (string Route, string File)[] Pages =
    [
        ("/", "index.html"),
        ("/label", "label.html"),
        ("/instructions", "instructions.html"),
        ("/progress", "progress.html"),
        ("/admin", "admin.html"),
    ];

    public static EmbeddedPages Load()
    {
        var asm = typeof(EmbeddedPages).Assembly;
        var assets = new Dictionary<string, Asset>(StringComparer.Ordinal);
        foreach (var name in asm.GetManifestResourceNames().Where(n => n.StartsWith("wwwroot/", StringComparison.Ordinal)))
        {
            using var s = asm.GetManifestResourceStream(name)!;
            using var ms = new MemoryStream();
            s.CopyTo(ms);
            var bytes = ms.ToArray();
            var file = name["wwwroot/".Length..];
            assets[file] = new Asset(bytes, ContentTypeOf(file), "\"" + Convert.ToHexString(SHA256.HashData(bytes))[..16] + "\"");
        }
        foreach (var (_, file) in Pages)
            if (!assets.ContainsKey(file))
                throw new InvalidOperationException($"Embedded page wwwroot/{file} is missing from {asm.GetName().Name}.");
        return new EmbeddedPages(assets);
    }

    public void Map(WebApplication app)
    {
        foreach (var (route, file) in Pages)
            app.MapGet(route, (HttpContext ctx) => Serve(ctx, file));
        app.MapGet("/assets/{name}", (HttpContext ctx, string name) => Serve(ctx, name));
    }

    private IResult Serve(HttpContext ctx, string file)
    {
        if (!_assets.TryGetValue(file, out var asset))
            return Results.NotFound();
        ctx.Response.Headers.ETag = asset.ETag;
        ctx.Response.Headers.CacheControl = "no-cache";
        if (ctx.Request.Headers.IfNoneMatch.ToString() == asset.ETag)
            return Results.StatusCode(StatusCodes.Status304NotModified);
        return Results.Bytes(asset.Bytes, asset.ContentType);
    }

    private static string ContentTypeOf(string file) => Path.GetExtension(file) switch
    {
        ".html" => "text/html; charset=utf-8",
        ".css" => "text/css; charset=utf-8",
        ".js" => "text/javascript; charset=utf-8",
        ".svg" => "image/svg+xml",
        _ => "application/octet-stream",
    };
}
