// Load on 127.0.0.1: 50 concurrent labellers submit 2,000 judgments over HTTP (1,000 queries, overlap 2), some
// retrying a submission. None may be lost or duplicated; p50/p95 latency is printed, not asserted (a benchmark).
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using RlhfSharp.Feedback;
using Xunit.Abstractions;

namespace RlhfSharp.Web.Tests;

/// <summary>Load tests run alone, not beside the browser tests, so their latency figures measure the app.</summary>
[CollectionDefinition("load", DisableParallelization = true)]
public sealed class LoadCollection;

[Collection("load")]
public abstract class LoadTests(ITestOutputHelper output)
{
    private const int Labelers = 50;
    private const int Queries = 1000;
    private const int Overlap = 2;

    private protected abstract IPreferenceStore CreateStore();

    private protected abstract string StoreName { get; }

    [Fact]
    public async Task Given_50_concurrent_labellers_When_they_submit_2000_judgments_Then_none_is_lost_or_duplicated()
    {
        await using var app = await RunningApp.StartAsync(CreateStore(), new LabelingAppOptions(Overlap: Overlap));
        await app.AddPairsAsync(Queries);
        var tokens = new List<string>();
        for (var i = 0; i < Labelers; i++) tokens.Add(await app.AddLabelerAsync($"load-{i}"));

        using var client = app.Client();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        var latenciesMs = new ConcurrentBag<double>();
        var seenJudgmentIds = new ConcurrentDictionary<long, long>();
        var clock = Stopwatch.StartNew();

        async Task<HttpResponseMessage> Timed(Func<Task<HttpResponseMessage>> send)
        {
            var t = Stopwatch.GetTimestamp();
            var res = await send();
            latenciesMs.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
            return res;
        }

        async Task Labeller(int index)
        {
            var auth = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", tokens[index]);
            var rng = new Random(index);
            while (!deadline.IsCancellationRequested)
            {
                using var nextReq = new HttpRequestMessage(HttpMethod.Post, "/api/assignments/next") { Headers = { Authorization = auth } };
                var next = await Timed(() => client.SendAsync(nextReq, deadline.Token));
                if (next.StatusCode == HttpStatusCode.NoContent) return;
                Assert.Equal(HttpStatusCode.OK, next.StatusCode);
                var body = JsonDocument.Parse(await next.Content.ReadAsStringAsync(deadline.Token)).RootElement;
                var assignmentId = body.GetProperty("assignmentId").GetInt64();
                var answer = new { kind = "preferred", preferred = rng.Next(2) };
                var tries = rng.NextDouble() < 0.05 ? 2 : 1; // a client that lost the response retries the same answer
                long? firstId = null;
                for (var t = 0; t < tries; t++)
                {
                    using var submitReq = new HttpRequestMessage(HttpMethod.Post, "/api/judgments")
                    {
                        Headers = { Authorization = auth },
                        Content = JsonContent.Create(new { assignmentId, answer, timeSpentMs = 100 }),
                    };
                    var res = await Timed(() => client.SendAsync(submitReq, deadline.Token));
                    Assert.Equal(HttpStatusCode.OK, res.StatusCode);
                    var id = JsonDocument.Parse(await res.Content.ReadAsStringAsync(deadline.Token)).RootElement.GetProperty("id").GetInt64();
                    Assert.True(firstId is null || firstId == id, $"a retry of assignment {assignmentId} made a second judgment {id} (first {firstId})");
                    firstId = id;
                }
                Assert.True(seenJudgmentIds.TryAdd(firstId!.Value, assignmentId), $"judgment {firstId} was returned for two assignments");
            }
        }

        await Task.WhenAll(Enumerable.Range(0, Labelers).Select(i => Task.Run(() => Labeller(i))));
        var elapsed = clock.Elapsed;
        Assert.False(deadline.IsCancellationRequested, "the load test ran out of its time bound");

        var judgments = await app.Store.GetJudgmentsAsync();
        Assert.Equal(Queries * Overlap, judgments.Count);
        Assert.Equal(Queries * Overlap, seenJudgmentIds.Count);
        Assert.Equal(judgments.Select(j => j.Id).Order(), seenJudgmentIds.Keys.Order());
        Assert.Equal(judgments.Count, judgments.Select(j => (j.QueryId, j.LabelerId)).Distinct().Count());
        Assert.All(judgments.GroupBy(j => j.QueryId), g => Assert.Equal(Overlap, g.Count()));

        var sorted = latenciesMs.Order().ToArray();
        double P(double q) => sorted[(int)Math.Min(sorted.Length - 1, Math.Floor(q * sorted.Length))];
        var line = string.Create(CultureInfo.InvariantCulture,
            $"load ({StoreName}): {judgments.Count} judgments by {Labelers} labellers, {sorted.Length} requests in {elapsed.TotalSeconds:F1} s " +
            $"({sorted.Length / elapsed.TotalSeconds:F0} req/s); latency p50 {P(0.50):F1} ms, p95 {P(0.95):F1} ms, max {sorted[^1]:F1} ms");
        output.WriteLine(line);
        File.AppendAllText(Path.Combine(AppContext.BaseDirectory, "load-test.txt"), line + Environment.NewLine);
    }
}

[Collection("load")]
public sealed class InMemoryLoadTests(ITestOutputHelper output) : LoadTests(output)
{
    private protected override IPreferenceStore CreateStore() => new InMemoryPreferenceStore();

    private protected override string StoreName => "in-memory";
}
