// Reads a JSON request body under the app's size limit, turning every way it can be wrong into a clear 4xx.
using System.Text.Json;
using Microsoft.AspNetCore.Http;
using RlhfSharp.Feedback;

namespace RlhfSharp.Web;

internal static class JsonBody
{
    public static async Task<T> ReadAsync<T>(HttpContext ctx, long limit, CancellationToken ct) where T : class
    {
        var request = ctx.Request;
        // Refuse by the declared length before reading a byte; Kestrel's own limit catches chunked bodies that lie.
        if (request.ContentLength > limit)
            throw new FeedbackException($"Request body of {request.ContentLength} bytes is larger than the limit of {limit} bytes.", 413);
        if (!request.HasJsonContentType())
            throw new FeedbackException($"Content-Type must be application/json; got \"{request.ContentType}\".", 415);
        T? value;
        try
        {
            value = await JsonSerializer.DeserializeAsync<T>(request.Body, ApiJson.Options, ct);
        }
        catch (JsonException ex)
        {
            var where = ex.Path is { Length: > 0 } p ? $" at {FeedbackLimits.Excerpt(p, 80)}" : "";
            throw new FeedbackException($"Request body is not valid JSON for {typeof(T).Name}{where} (line {ex.LineNumber + 1}, byte {ex.BytePositionInLine + 1}).", 400);
        }
        return value ?? throw new FeedbackException($"Request body must be a JSON object ({typeof(T).Name}); got null.", 400);
    }
}
