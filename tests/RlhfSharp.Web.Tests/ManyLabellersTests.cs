// Many labellers, many instances (issue 22 part 4): Christiano et al.'s loop reads its judgments from one PostgreSQL
// database written by two labelling-app instances (two `rlhf label serve --pg` processes behind a load balancer, here two
// in-process apps each with its own connection pool), as `rlhf prefrl --labeler app --pg` runs it: the loop's
// StoreLabeler puts each query into the shared store and waits; labellers alternate between the instances over HTTP.
// Skipped, saying why, where RLHF_TEST_PG names no reachable server (CI starts one).
using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using RlhfSharp.Control.Preferences;
using RlhfSharp.Control.Rl;
using RlhfSharp.Feedback;
using RlhfSharp.Feedback.Stores;

namespace RlhfSharp.Web.Tests;

public sealed class ManyLabellersTests
{
    [PostgresFact]
    public async Task Given_two_app_instances_on_one_database_When_labellers_alternate_between_them_Then_the_loop_gets_every_label_once()
    {
        string schema = await PostgresServer.CreateSchemaAsync();
        try
        {
            string cs = PostgresServer.ConnectionStringFor(schema);
            // The loop's own store (prefrl --pg) and the two instances', three pools on one database.
            await using var loopStore = new PostgresPreferenceStore(cs);
            await loopStore.MigrateAsync();
            await using var first = await RunningApp.StartAsync(new PostgresPreferenceStore(cs), new LabelingAppOptions(Campaign: "prefrl"));
            await using var second = await RunningApp.StartAsync(new PostgresPreferenceStore(cs), new LabelingAppOptions(Campaign: "prefrl"));
            string[] tokens = [await first.AddLabelerAsync("ada"), await second.AddLabelerAsync("bob")];

            // Four labels: two before RL, two during it (CartPole, 512 steps: two PPO updates).
            var cfg = new PreferenceConfig
            {
                EnvId = "CartPole-v1",
                Ppo = PpoConfig.ForEnv("CartPole-v1") with { TotalSteps = 512 },
                Schedule = new LabelSchedule(Total: 4, PreRl: 2),
                InitialFitSteps = 10,
                RefitSteps = 5,
            };
            var labeler = new StoreLabeler(loopStore, TimeSpan.FromMilliseconds(50));
            var loop = Task.Run(() => PreferenceLoop.Run(cfg, labeler, seed: 3));

            // Labeller w takes its k-th assignment through instance (k + w) mod 2, as a round-robin balancer would, and answers
            // it through the same instance; a poll that finds nothing to do does not advance k. (Advancing on every request made
            // which instance served a judgment depend on how many empty polls came first: all four went through one instance in
            // about one run in eight.) With four judgments, one labeller answers at least two, through both instances.
            RunningApp[] instances = [first, second];
            var submittedVia = new int[2];
            var labellers = tokens.Select((token, w) => Task.Run(async () =>
            {
                var clients = instances.Select(i => i.Client(token)).ToArray();
                for (int k = 0; !loop.IsCompleted;)
                {
                    int via = (k + w) % 2;
                    var next = await clients[via].PostAsync("/api/assignments/next", null);
                    if (next.StatusCode == HttpStatusCode.NoContent)
                    {
                        await Task.Delay(50);
                        continue;
                    }
                    Assert.Equal(HttpStatusCode.OK, next.StatusCode);
                    var body = JsonDocument.Parse(await next.Content.ReadAsStringAsync()).RootElement;
                    long assignmentId = body.GetProperty("assignmentId").GetInt64(), queryId = body.GetProperty("query").GetProperty("id").GetInt64();
                    var res = await clients[via].PostAsJsonAsync("/api/judgments", new { assignmentId, queryId, answer = new { kind = "preferred", preferred = w }, timeSpentMs = 1 });
                    Assert.True(res.IsSuccessStatusCode, $"judgment through instance {via}: {(int)res.StatusCode}");
                    Interlocked.Increment(ref submittedVia[via]);
                    k++;
                }
                foreach (var c in clients) c.Dispose();
            })).ToArray();

            var result = await loop.WaitAsync(TimeSpan.FromMinutes(3));
            await Task.WhenAll(labellers);
            // Every label the loop asked for came back once, from whichever instance took it, and both instances took some.
            Assert.Equal(4, result.LabelsUsed);
            Assert.Equal(4, result.Comparisons.Count);
            var judgments = await loopStore.GetJudgmentsAsync("prefrl");
            Assert.Equal(4, judgments.Count);
            Assert.Equal(4, judgments.Select(j => j.QueryId).Distinct().Count());
            Assert.Equal(4, submittedVia.Sum());
            Assert.All(submittedVia, n => Assert.True(n > 0, $"an instance served no judgment: {string.Join(", ", submittedVia)}"));
            // Each comparison is the answer a labeller gave: ada always prefers the left clip (μ = 1), bob the right one (μ = 0).
            var labellerOf = (await loopStore.GetLabelersAsync()).ToDictionary(l => l.Id, l => l.Name);
            var expected = judgments.OrderBy(j => j.QueryId).Select(j => labellerOf[j.LabelerId] == "ada" ? 1f : 0f).ToArray();
            Assert.Equal(expected, result.Comparisons.Select(c => c.Mu).ToArray());
        }
        finally
        {
            await PostgresServer.DropSchemaAsync(schema);
        }
    }
}
