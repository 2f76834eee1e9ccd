// `rlhf demo --human --pg`'s labels stage with many labellers (issue 22 part 4): the pairs go to one PostgreSQL database
// that two labelling-app instances serve (two `rlhf label serve --pg` processes behind a load balancer); labellers
// alternate between the instances over HTTP, and the stage returns every pair judged once, whichever instance took it.
// Skipped, saying why, where RLHF_TEST_PG names no reachable server (CI starts one).
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using RlhfSharp.Alignment.Demo;
using RlhfSharp.Feedback;
using RlhfSharp.Feedback.Stores;

namespace RlhfSharp.Cli.Tests;

public sealed class HumanDemoSharedStoreTests
{
    [PostgresFact]
    public async Task Given_two_app_instances_on_one_database_When_labellers_alternate_Then_the_labels_stage_gets_every_pair_once()
    {
        string schema = await PostgresServer.CreateSchemaAsync();
        try
        {
            string cs = PostgresServer.ConnectionStringFor(schema);
            DemoPair[] pairs = [.. Enumerable.Range(0, 6).Select(i => new DemoPair($"prompt {i}", $"left {i}", $"right {i}"))];
            var labeler = new HumanDemoLabeler(new HumanLabelingOptions(
                (_, _, _) => throw new InvalidOperationException("with a shared store the labels stage starts no app of its own"), TimeSpan.FromMilliseconds(50), (_, _) => { })
            {
                OpenSharedStore = async ct =>
                {
                    var store = new PostgresPreferenceStore(cs);
                    await store.MigrateAsync(ct);
                    return store;
                },
            });
            var stage = Task.Run(() => labeler.LabelAsync(Path.GetTempPath(), pairs, null, CancellationToken.None));

            await using var firstStore = new PostgresPreferenceStore(cs);
            await using var secondStore = new PostgresPreferenceStore(cs);
            await firstStore.MigrateAsync();
            await secondStore.MigrateAsync();
            string[] tokens = [(await firstStore.AddLabelerAsync("ada", LabelerRole.Labeler)).Token, (await secondStore.AddLabelerAsync("bob", LabelerRole.Labeler)).Token];
            await using var first = await HumanDemoTests.WebApp(firstStore, HumanDemoLabeler.Campaign, CancellationToken.None);
            await using var second = await HumanDemoTests.WebApp(secondStore, HumanDemoLabeler.Campaign, CancellationToken.None);
            Uri[] instances = [first.Address, second.Address];

            // Labeller w takes its k-th assignment through instance (k + w) mod 2 (round robin) and answers through the same one;
            // an empty poll does not advance k, so both instances serve judgments whatever the timing (a labeller with two or
            // more answers uses both). Ada prefers the left response, bob the right.
            var submittedVia = new int[2];
            var labellers = tokens.Select((token, w) => Task.Run(async () =>
            {
                var clients = instances.Select(a => new HttpClient { BaseAddress = a }).ToArray();
                foreach (var c in clients) c.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
                for (int k = 0; !stage.IsCompleted;)
                {
                    int via = (k + w) % 2;
                    var next = await clients[via].PostAsync("/api/assignments/next", null);
                    if (next.StatusCode == HttpStatusCode.NoContent)
                    {
                        await Task.Delay(50);
                        continue;
                    }
                    Assert.Equal(HttpStatusCode.OK, next.StatusCode);
                    var a = JsonNode.Parse(await next.Content.ReadAsStringAsync())!;
                    var answer = new JsonObject { ["kind"] = "preferred", ["preferred"] = w };
                    var res = await clients[via].PostAsJsonAsync("/api/judgments", new { assignmentId = (long)a["assignmentId"]!, queryId = (long)a["query"]!["id"]!, answer, timeSpentMs = 1 });
                    Assert.True(res.IsSuccessStatusCode, $"judgment through instance {via}: {(int)res.StatusCode}");
                    Interlocked.Increment(ref submittedVia[via]);
                    k++;
                }
                foreach (var c in clients) c.Dispose();
            })).ToArray();

            var lines = await stage.WaitAsync(TimeSpan.FromMinutes(2));
            await Task.WhenAll(labellers);
            // Every pair once, as a TRL pair line whose chosen side is the one its labeller prefers; both instances served some.
            Assert.Equal(6, lines.Count);
            Assert.Equal(6, submittedVia.Sum());
            Assert.All(submittedVia, n => Assert.True(n > 0, $"an instance served no judgment: {string.Join(", ", submittedVia)}"));
            var prompts = lines.Select(l => (string)JsonNode.Parse(l)!["prompt"]!).ToList();
            Assert.Equal(pairs.Select(p => p.Prompt).Order(), prompts.Order());
            Assert.All(lines, l =>
            {
                var o = JsonNode.Parse(l)!;
                Assert.True((string)o["chosen"]! is var c && (c.StartsWith("left", StringComparison.Ordinal) || c.StartsWith("right", StringComparison.Ordinal)));
                Assert.NotEqual((string)o["chosen"]!, (string)o["rejected"]!);
            });
            var judgments = await firstStore.GetJudgmentsAsync(HumanDemoLabeler.Campaign);
            var names = (await firstStore.GetLabelersAsync()).ToDictionary(l => l.Id, l => l.Name);
            var queries = (await firstStore.GetQueriesAsync(HumanDemoLabeler.Campaign)).ToDictionary(q => q.Id);
            foreach (var j in judgments)
            {
                string chosen = (string)lines.Select(l => JsonNode.Parse(l)!).Single(o => (string)o["prompt"]! == queries[j.QueryId].Prompt)["chosen"]!;
                Assert.StartsWith(names[j.LabelerId] == "ada" ? "left" : "right", chosen);
            }
        }
        finally
        {
            await PostgresServer.DropSchemaAsync(schema);
        }
    }
}
