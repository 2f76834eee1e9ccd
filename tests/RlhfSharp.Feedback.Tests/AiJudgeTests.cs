// The AI judge against a real HTTP server on 127.0.0.1 that speaks /v1/chat/completions with a scripted judge:
// both orders asked, position bias cancelled, unreadable replies skipped, failures retried, timeouts honoured.
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using RlhfSharp.Feedback.Labelers;

namespace RlhfSharp.Feedback.Tests;

/// <summary>A minimal OpenAI-compatible chat server: each request's user message goes to a script that replies.</summary>
internal sealed class ScriptedChatServer : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly Func<string, int, Task<(int Status, string Content)>> _script;
    private readonly Task _loop;
    private int _requests;

    public ScriptedChatServer(Func<string, int, Task<(int Status, string Content)>> script)
    {
        _script = script;
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        BaseUrl = $"http://127.0.0.1:{port}/v1";
        _listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        _listener.Start();
        _loop = Task.Run(LoopAsync);
    }

    public string BaseUrl { get; }
    public int Requests => Volatile.Read(ref _requests);
    public List<string> Authorizations { get; } = [];
    public List<string> Models { get; } = [];

    /// <summary>Sent as the Retry-After header with every 429 when set.</summary>
    public string? RetryAfter { get; set; }

    private async Task LoopAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext ctx;
            try { ctx = await _listener.GetContextAsync(); }
            catch (Exception) { return; }
            _ = Task.Run(() => HandleAsync(ctx));
        }
    }

    private async Task HandleAsync(HttpListenerContext ctx)
    {
        int n = Interlocked.Increment(ref _requests);
        try
        {
            using var reader = new StreamReader(ctx.Request.InputStream, Encoding.UTF8);
            var body = JsonNode.Parse(await reader.ReadToEndAsync())!;
            lock (Authorizations)
            {
                Authorizations.Add(ctx.Request.Headers["Authorization"] ?? "");
                Models.Add((string)body["model"]!);
            }
            bool rightPath = ctx.Request.Url!.AbsolutePath == "/v1/chat/completions" && ctx.Request.HttpMethod == "POST";
            var user = body["messages"]!.AsArray().Last(m => (string)m!["role"]! == "user")!;
            var (status, content) = rightPath ? await _script((string)user["content"]!, n) : (404, "no such route");
            var reply = status == 200
                ? new JsonObject
                {
                    ["id"] = $"chatcmpl-{n}", ["object"] = "chat.completion", ["created"] = 0, ["model"] = (string)body["model"]!,
                    ["choices"] = new JsonArray(new JsonObject
                    {
                        ["index"] = 0, ["finish_reason"] = "stop",
                        ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = content },
                    }),
                    ["usage"] = new JsonObject { ["prompt_tokens"] = 1, ["completion_tokens"] = 1, ["total_tokens"] = 2 },
                }
                : new JsonObject { ["error"] = new JsonObject { ["message"] = content, ["type"] = "server_error" } };
            var bytes = Encoding.UTF8.GetBytes(reply.ToJsonString());
            ctx.Response.StatusCode = status;
            if (status == 429 && RetryAfter is { } after) ctx.Response.AddHeader("Retry-After", after);
            ctx.Response.ContentType = "application/json";
            await ctx.Response.OutputStream.WriteAsync(bytes);
            ctx.Response.Close();
        }
        catch (Exception)
        {
            // The client gave up (a timeout test); nothing to answer.
            try { ctx.Response.Abort(); } catch (ObjectDisposedException) { }
        }
    }

    public void Dispose()
    {
        _listener.Stop();
        _listener.Close();
        _loop.Wait(TimeSpan.FromSeconds(5));
    }
}

public sealed class AiJudgeTests
{
    private static readonly Query Pair = new(1, QueryKind.Text, "Say something nice.",
        [new("You are wonderful."), new("Go away.")], "default", null, DateTimeOffset.UnixEpoch);

    /// <summary>The response number whose text contains "wonderful", as a sensible judge would answer.</summary>
    private static string PickNice(string user)
    {
        var parts = user.Split("Response ");
        for (int i = 1; i < parts.Length; i++)
            if (parts[i].Contains("wonderful", StringComparison.Ordinal)) return parts[i][..1];
        return "tie";
    }

    private static AiJudge Judge(ScriptedChatServer server, int retries = 2, double timeoutSeconds = 5) =>
        new(new AiJudgeOptions(server.BaseUrl, "judge-model", ApiKeyVariable: null, Timeout: TimeSpan.FromSeconds(timeoutSeconds),
            MaxRetries: retries, InitialBackoff: TimeSpan.FromMilliseconds(20)));

    [Fact]
    public async Task AConsistentJudgeIsAskedInBothOrdersAndPicksTheSameCandidate()
    {
        var prompts = new List<string>();
        using var server = new ScriptedChatServer((user, _) => { lock (prompts) prompts.Add(user); return Task.FromResult((200, PickNice(user))); });
        var answer = await Judge(server).AnswerAsync(Pair);
        Assert.Equal(0, answer.Preferred);
        Assert.Equal(2, server.Requests);
        // Both orders were shown: "wonderful" once as response 1, once as response 2.
        Assert.Single(prompts, p => p.IndexOf("wonderful", StringComparison.Ordinal) < p.IndexOf("Go away", StringComparison.Ordinal));
        Assert.Single(prompts, p => p.IndexOf("wonderful", StringComparison.Ordinal) > p.IndexOf("Go away", StringComparison.Ordinal));
        Assert.All(server.Models, m => Assert.Equal("judge-model", m));

        var swapped = Pair with { Candidates = [Pair.Candidates[1], Pair.Candidates[0]] };
        Assert.Equal(1, (await Judge(server).AnswerAsync(swapped)).Preferred);
    }

    [Fact]
    public async Task APositionBiasedJudgeCancelsToATie()
    {
        using var server = new ScriptedChatServer((_, _) => Task.FromResult((200, "1")));
        Assert.Equal(AnswerKind.Tie, (await Judge(server).AnswerAsync(Pair)).Kind);
    }

    [Fact]
    public async Task AnUnreadableReplyBecomesASkipWithTheReply()
    {
        using var server = new ScriptedChatServer((_, _) => Task.FromResult((200, "Both have merit; 1 or 2 depending on taste.")));
        var answer = await Judge(server).AnswerAsync(Pair);
        Assert.Equal(AnswerKind.Skip, answer.Kind);
        Assert.Contains("1 or 2 depending on taste", answer.SkipReason);
    }

    [Fact]
    public async Task A429WithRetryAfter_IsWaitedOutAsTheServerAsks()
    {
        using var server = new ScriptedChatServer((user, n) => Task.FromResult(n == 1 ? (429, "slow down") : (200, PickNice(user)))) { RetryAfter = "1" };
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var answer = await Judge(server).AnswerAsync(Pair);
        Assert.Equal(0, answer.Preferred);
        Assert.Equal(3, server.Requests);
        // The back-off alone would wait 10–20 ms; the server asked for 1 s.
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(0.95), $"retried after {clock.Elapsed.TotalMilliseconds:F0} ms");
    }

    [Fact]
    public void RetryDelay_IsRetryAfterCapped_ElseEqualJitterExponential()
    {
        var b = TimeSpan.FromMilliseconds(100);
        // attempt 3: d = 100·2² = 400 ms, waited d/2 + U·d/2 ∈ [200, 400).
        Assert.Equal(TimeSpan.FromMilliseconds(200), AiJudge.RetryDelay(3, b, null, 0));
        Assert.Equal(TimeSpan.FromMilliseconds(300), AiJudge.RetryDelay(3, b, null, 0.5));
        Assert.Equal(TimeSpan.FromSeconds(2), AiJudge.RetryDelay(1, b, TimeSpan.FromSeconds(2), 0.9));
        Assert.Equal(AiJudge.MaxRetryAfter, AiJudge.RetryDelay(1, b, TimeSpan.FromHours(1), 0));
        var now = new DateTimeOffset(2026, 12, 3, 12, 0, 0, TimeSpan.Zero);
        Assert.Equal(TimeSpan.FromSeconds(30), AiJudge.ParseRetryAfter("Thu, 03 Dec 2026 12:00:30 GMT", now));
        Assert.Equal(TimeSpan.FromSeconds(2.5), AiJudge.ParseRetryAfter("2.5", now));
        Assert.Null(AiJudge.ParseRetryAfter("soon", now));
    }

    [Theory]
    [InlineData("2", 2, 1)]
    [InlineData(" 1", 2, 0)] // our models' chat replies begin with GPT-2's leading-space token
    [InlineData(" 2\n", 2, 1)]
    [InlineData(" Response 1 ", 2, 0)]
    [InlineData("TIE", 2, -1)]
    [InlineData("3", 2, null)]
    [InlineData("1 or 2", 2, null)]
    [InlineData("", 2, null)]
    [InlineData("99999999999999999999", 2, null)]
    public void VerdictsParseStrictly(string reply, int count, int? expected) =>
        Assert.Equal(expected, AiJudge.ParseVerdict(reply, count));

    [Fact]
    public async Task ServerErrorsAreRetriedWithBackOff()
    {
        using var server = new ScriptedChatServer((user, n) => Task.FromResult(n <= 2 ? (503, "overloaded") : (200, PickNice(user))));
        var answer = await Judge(server, retries: 2).AnswerAsync(Pair);
        Assert.Equal(0, answer.Preferred);
        Assert.Equal(4, server.Requests); // two failures, then one success per order
    }

    [Fact]
    public async Task ASlowServerTimesOutAndTheFailureNamesTheEndpoint()
    {
        using var server = new ScriptedChatServer(async (_, _) => { await Task.Delay(3000); return (200, "1"); });
        var ex = await Assert.ThrowsAsync<FeedbackException>(() => Judge(server, retries: 1, timeoutSeconds: 0.3).AnswerAsync(Pair));
        Assert.Contains(server.BaseUrl, ex.Message);
        Assert.Contains("2 attempts", ex.Message);
        Assert.Equal(2, server.Requests);
    }

    [Fact]
    public async Task TheApiKeyComesFromTheNamedVariable()
    {
        const string Variable = "RLHF_TEST_JUDGE_KEY";
        Assert.Contains(Variable, Assert.Throws<ArgumentException>(() => new AiJudge(new AiJudgeOptions("http://127.0.0.1:1/v1", "m", Variable))).Message);
        Environment.SetEnvironmentVariable(Variable, "sk-test-123");
        try
        {
            using var server = new ScriptedChatServer((user, _) => Task.FromResult((200, PickNice(user))));
            await new AiJudge(new AiJudgeOptions(server.BaseUrl, "m", Variable)).AnswerAsync(Pair);
            Assert.All(server.Authorizations, a => Assert.Equal("Bearer sk-test-123", a));
        }
        finally { Environment.SetEnvironmentVariable(Variable, null); }
    }
}

public sealed class AiJudgeSessionTests
{
    [Fact]
    public async Task TheJudgeLabelsAStoreEndToEnd()
    {
        using var dir = new TempDirectory();
        await using var store = await Stores.SqlitePreferenceStore.OpenAsync(dir.File("rlaif.db"));
        await store.AddQueriesAsync([
            new NewQuery(QueryKind.Text, "Be kind.", [new("Go away."), new("You are wonderful.")]),
            new NewQuery(QueryKind.Text, "Be kind.", [new("You are wonderful, truly."), new("Whatever.")]),
            new NewQuery(QueryKind.Text, "Be kind.", [new("Hmm."), new("Meh.")]),
        ]);
        // The scripted judge prefers the response mentioning "wonderful" and cannot decide otherwise.
        using var server = new ScriptedChatServer((user, _) =>
        {
            var parts = user.Split("Response ");
            for (int i = 1; i < parts.Length; i++)
                if (parts[i].Contains("wonderful", StringComparison.Ordinal)) return Task.FromResult((200, parts[i][..1]));
            return Task.FromResult((200, "I cannot say."));
        });
        var judge = new AiJudge(new AiJudgeOptions(server.BaseUrl, "judge", ApiKeyVariable: null, MaxRetries: 0));
        var (me, _) = await store.AddLabelerAsync(judge.Name, LabelerRole.Labeler);
        Assert.Equal(3, await LabelingSession.RunAsync(store, me.Id, judge, 10));
        var answers = (await store.GetJudgmentsAsync()).Select(j => j.Answer).ToList();
        Assert.Equal(1, answers[0].Preferred);
        Assert.Equal(0, answers[1].Preferred);
        Assert.Equal(AnswerKind.Skip, answers[2].Kind);
        Assert.Contains("I cannot say.", answers[2].SkipReason);
        Assert.Equal(6, server.Requests);
    }
}
