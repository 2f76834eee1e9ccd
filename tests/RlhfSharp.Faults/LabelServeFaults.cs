// The labelling app under load, killed: `rlhf label serve` on a SQLite store serves concurrent labellers (each asks
// for its next assignment and answers it over the JSON API with its bearer token) while the server is killed with
// SIGKILL at random moments and started again on the same store. Every judgment the server acknowledged (a 200 with
// its id) must be in the store afterwards, exactly once, and no query may get more judgments than the overlap, nor
// one labeller two judgments of one query. Clients whose request died with the server retry once it is back.
using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using RlhfSharp.Feedback;
using RlhfSharp.Feedback.Stores;
using RlhfSharp.Golden;

namespace RlhfSharp.Faults;

/// <summary>What the labelling run went through.</summary>
/// <param name="Kills">SIGKILLs of the server while labellers were working.</param>
/// <param name="Acknowledged">Judgments the server answered 200 to.</param>
/// <param name="Stored">Judgments in the store at the end.</param>
/// <param name="Mismatch">Null when every acknowledged judgment is stored once and the overlap held; else what failed.</param>
public sealed record LabelServeOutcome(int Kills, int Acknowledged, int Stored, string? Mismatch, double Seconds)
{
    public bool Matched => Mismatch is null;
}

public static class LabelServeFaults
{
    private const int Overlap = 2;

    public static LabelServeOutcome Run(string dir, int kills, int labelers, int queries, Random random, Action<string>? log = null)
    {
        var clock = Stopwatch.StartNew();
        Directory.CreateDirectory(dir);
        string db = Path.Combine(dir, $"labels-{Guid.NewGuid():N}.db");
        var tokens = new List<string>();
        var store = SqlitePreferenceStore.OpenAsync(db).GetAwaiter().GetResult();
        {
            for (int i = 0; i < labelers; i++) tokens.Add(store.AddLabelerAsync($"labeller{i}", LabelerRole.Labeler).GetAwaiter().GetResult().Token);
            store.AddQueriesAsync([.. Enumerable.Range(0, queries).Select(q => new NewQuery(QueryKind.Text, $"prompt {q}",
                [new Candidate($"first answer {q}"), new Candidate($"second answer {q}")]))]).GetAwaiter().GetResult();
            store.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        int port = FreePort();
        var baseAddress = new Uri($"http://127.0.0.1:{port}");
        Process? server = null;
        void StartServer()
        {
            server = ResumeJobs.Start(dir, ["label", "serve", "--db", db, "--port", port.ToString(), "--host", "127.0.0.1", "--overlap", Overlap.ToString()]);
            _ = server.StandardError.ReadToEndAsync();
            _ = server.StandardOutput.ReadToEndAsync();
        }
        StartServer();

        var acknowledged = new System.Collections.Concurrent.ConcurrentBag<(long Id, long QueryId, int Labeler)>();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(4));
        var workers = Enumerable.Range(0, labelers).Select(i => Task.Run(async () =>
        {
            using var http = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromSeconds(20) };
            http.DefaultRequestHeaders.Authorization = new("Bearer", tokens[i]);
            while (!cts.IsCancellationRequested)
            {
                try
                {
                    using var next = await http.PostAsync("/api/assignments/next", null, cts.Token);
                    if (next.StatusCode == HttpStatusCode.NoContent) return; // nothing left for this labeller
                    next.EnsureSuccessStatusCode();
                    using var assignment = JsonDocument.Parse(await next.Content.ReadAsStringAsync(cts.Token));
                    long assignmentId = assignment.RootElement.GetProperty("assignmentId").GetInt64();
                    long queryId = assignment.RootElement.GetProperty("query").GetProperty("id").GetInt64();
                    using var submit = await http.PostAsJsonAsync("/api/judgments",
                        new { assignmentId, queryId, answer = new { kind = "preferred", preferred = (int)(queryId % 2) }, timeSpentMs = 100 }, cts.Token);
                    if (submit.IsSuccessStatusCode)
                    {
                        using var judgment = JsonDocument.Parse(await submit.Content.ReadAsStringAsync(cts.Token));
                        acknowledged.Add((judgment.RootElement.GetProperty("id").GetInt64(), queryId, i));
                    }
                }
                catch (Exception ex) when (ex is HttpRequestException or IOException or TaskCanceledException && !cts.IsCancellationRequested)
                {
                    await Task.Delay(50); // the server is down (killed): ask again once it is back
                }
            }
        })).ToArray();

        int done = 0;
        for (int k = 0; k < kills && !workers.All(w => w.IsCompleted); k++)
        {
            // Once the server answers again, a random moment measured in acknowledged judgments (not in time: a fast
            // machine finishes the whole load within a few hundred milliseconds), drawn from this kill's share of the
            // judgments still to come, so that every kill falls while labellers are still working.
            int before = acknowledged.Count, remaining = queries * Overlap - before;
            int target = before + 1 + random.Next(Math.Max(1, remaining / (kills - k + 1)));
            var wait = Stopwatch.StartNew();
            while (acknowledged.Count < target && !workers.All(w => w.IsCompleted) && wait.Elapsed < TimeSpan.FromSeconds(60)) Thread.Sleep(1);
            if (workers.All(w => w.IsCompleted)) break;
            server!.Kill();
            server.WaitForExit();
            server.Dispose();
            done++;
            log?.Invoke($"label-serve: SIGKILL {done} with {acknowledged.Count} judgments acknowledged");
            Thread.Sleep(random.Next(300));
            StartServer();
        }
        bool finished = Task.WaitAll(workers, TimeSpan.FromMinutes(4));
        server!.Kill();
        server.WaitForExit();
        server.Dispose();

        var check = SqlitePreferenceStore.OpenAsync(db).GetAwaiter().GetResult();
        var stored = check.GetJudgmentsAsync().GetAwaiter().GetResult();
        var labelerIds = check.GetLabelersAsync().GetAwaiter().GetResult().ToDictionary(l => l.Name, l => l.Id);
        check.DisposeAsync().AsTask().GetAwaiter().GetResult();
        var byId = stored.ToDictionary(j => j.Id);
        string? mismatch = null;
        foreach (var (id, queryId, labeler) in acknowledged)
        {
            if (!byId.TryGetValue(id, out var j)) { mismatch = $"acknowledged judgment {id} (query {queryId}) is not in the store"; break; }
            if (j.QueryId != queryId || j.LabelerId != labelerIds[$"labeller{labeler}"]) { mismatch = $"judgment {id} is stored for another query or labeller"; break; }
        }
        if (mismatch is null && stored.GroupBy(j => (j.QueryId, j.LabelerId)).FirstOrDefault(g => g.Count() > 1) is { } twice)
            mismatch = $"labeller {twice.Key.LabelerId} judged query {twice.Key.QueryId} {twice.Count()} times";
        if (mismatch is null && stored.GroupBy(j => j.QueryId).FirstOrDefault(g => g.Count() > Overlap) is { } over)
            mismatch = $"query {over.Key} has {over.Count()} judgments, more than the overlap {Overlap}";
        if (mismatch is null && !finished) mismatch = $"the labellers did not finish within 4 minutes ({stored.Count} judgments stored)";
        return new LabelServeOutcome(done, acknowledged.Count, stored.Count, mismatch, clock.Elapsed.TotalSeconds);
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
