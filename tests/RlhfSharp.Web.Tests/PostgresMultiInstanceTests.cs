// Labelling at scale, as docs/design.md plans it: two app instances over one PostgreSQL database, labellers switching
// between them on every request. Overlap and "never twice to one labeller" must hold across instances.
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using RlhfSharp.Feedback;
using RlhfSharp.Feedback.Stores;

namespace RlhfSharp.Web.Tests;

[Collection("load")]
public sealed class PostgresMultiInstanceTests
{
    [PostgresFact]
    public async Task Given_two_instances_over_one_database_When_20_labellers_alternate_between_them_Then_overlap_holds_and_nothing_is_duplicated()
    {
        const int Labelers = 20, Queries = 150, Overlap = 2;
        var schema = await PostgresServer.CreateSchemaAsync();
        try
        {
            var cs = PostgresServer.ConnectionStringFor(schema);
            var options = new LabelingAppOptions(Overlap: Overlap);
            await using var a = await RunningApp.StartAsync(new PostgresPreferenceStore(cs), options);
            await using var b = await RunningApp.StartAsync(new PostgresPreferenceStore(cs), options);
            await a.AddPairsAsync(Queries);
            var tokens = new List<string>();
            for (var i = 0; i < Labelers; i++) tokens.Add(await a.AddLabelerAsync($"pg-{i}"));

            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(90));
            async Task Labeller(int index)
            {
                using var ca = a.Client(tokens[index]);
                using var cb = b.Client(tokens[index]);
                var turn = index;
                while (true)
                {
                    var c = turn++ % 2 == 0 ? ca : cb;
                    var next = await c.PostAsync("/api/assignments/next", null, deadline.Token);
                    if (next.StatusCode == HttpStatusCode.NoContent) return;
                    Assert.Equal(HttpStatusCode.OK, next.StatusCode);
                    var assignmentId = JsonDocument.Parse(await next.Content.ReadAsStringAsync(deadline.Token)).RootElement.GetProperty("assignmentId").GetInt64();
                    // Answer on the other instance than the one that handed the query out.
                    var other = c == ca ? cb : ca;
                    var res = await other.PostAsJsonAsync("/api/judgments", new { assignmentId, answer = new { kind = "tie" }, timeSpentMs = 10 }, deadline.Token);
                    Assert.Equal(HttpStatusCode.OK, res.StatusCode);
                }
            }
            await Task.WhenAll(Enumerable.Range(0, Labelers).Select(i => Task.Run(() => Labeller(i))));

            var judgments = await a.Store.GetJudgmentsAsync();
            Assert.Equal(Queries * Overlap, judgments.Count);
            Assert.Equal(judgments.Count, judgments.Select(j => (j.QueryId, j.LabelerId)).Distinct().Count());
            Assert.All(judgments.GroupBy(j => j.QueryId), g => Assert.Equal(Overlap, g.Count()));
        }
        finally
        {
            await PostgresServer.DropSchemaAsync(schema);
        }
    }
}
