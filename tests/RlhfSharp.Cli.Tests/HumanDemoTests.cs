// `rlhf demo --human`'s labels stage end to end: a simulated person signs in to the real labelling app over HTTP on
// 127.0.0.1, answers some pairs, the run is stopped, resumed, finished, and the reward model learns what the person said.
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using RlhfSharp.Alignment;
using RlhfSharp.Alignment.Demo;
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Cli.Commands;
using RlhfSharp.Feedback;
using RlhfSharp.Feedback.Stores;
using RlhfSharp.Text.StoryWorld;
using RlhfSharp.Web;

namespace RlhfSharp.Cli.Tests;

public sealed class HumanDemoTests : IDisposable
{
    /// <summary>Smaller than the quick demo: these tests are about the labels stage; the later stages only have to run.</summary>
    internal static DemoConfig Small { get; } = DemoConfig.Quick with
    {
        PretrainDocuments = 600, VocabSize = 384, PretrainSteps = 30, SftExamples = 300, SftSteps = 30, MaxNewTokens = 16, RewardEpochs = 1,
        PpoSteps = 1, PpoBatchSize = 8, EvalPrompts = 8, SnapshotEvery = 1, OverOptimisationPrompts = 8, BestOfNMax = 2, BestOfNPrompts = 4,
        FrontierBetas = [], FrontierSteps = 1,
    };

    /// <summary>The web app on a free port of 127.0.0.1, as `rlhf demo --human` starts it.</summary>
    internal static Task<ILabelingFrontEnd> WebApp(IPreferenceStore store, string campaign, CancellationToken ct) =>
        LabelingApp.StartAsync(store, new LabelingAppOptions(Port: 0, Campaign: campaign), ct);

    private readonly string _dir = Path.Combine(Path.GetTempPath(), "rlhf-human-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    /// <summary>What the simulated person answered to one query.</summary>
    private sealed record Submitted(string Prompt, string First, string Second, string Kind, int? Preferred);

    /// <summary>
    /// A contrarian person: the first answer is a tie, the second a skip ("can't tell"), every other one prefers the sample
    /// the gold scorer rates lower — the opposite of the oracle, so a reward model that fits these judgments cannot be the
    /// oracle's. Stops after <paramref name="count"/> answers, then runs <paramref name="after"/>.
    /// </summary>
    private static async Task LabelAsync(Uri app, string token, int count, List<Submitted> log, Action? after = null)
    {
        using var http = new HttpClient { BaseAddress = app };
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        for (int i = 0; i < count; i++)
        {
            var next = await http.PostAsync("/api/assignments/next", null);
            Assert.Equal(HttpStatusCode.OK, next.StatusCode);
            var a = JsonNode.Parse(await next.Content.ReadAsStringAsync())!;
            string prompt = (string)a["query"]!["prompt"]!, first = (string)a["query"]!["candidates"]![0]!["content"]!, second = (string)a["query"]!["candidates"]![1]!["content"]!;
            int n = log.Count;
            JsonObject answer = n == 0 ? new() { ["kind"] = "tie" }
                : n == 1 ? new() { ["kind"] = "skip", ["skipReason"] = "can't tell" }
                : new() { ["kind"] = "preferred", ["preferred"] = Stories.GoldReward(first, prompt) <= Stories.GoldReward(second, prompt) ? 0 : 1 };
            var res = await http.PostAsJsonAsync("/api/judgments", new JsonObject { ["assignmentId"] = (long)a["assignmentId"]!, ["answer"] = answer, ["timeSpentMs"] = 1200 });
            Assert.Equal(HttpStatusCode.OK, res.StatusCode);
            log.Add(new Submitted(prompt, first, second, (string)answer["kind"]!, (int?)answer["preferred"]));
        }
        after?.Invoke();
    }

    [Fact]
    public async Task Given_a_stopped_labels_stage_When_resumed_with_another_number_of_judgments_Then_the_store_is_named_and_both_counts_given()
    {
        Directory.CreateDirectory(_dir);
        var pairs = Enumerable.Range(0, 4).Select(i => new DemoPair($"prompt {i}", $"left {i}", $"right {i}")).ToList();
        using (var stop = new CancellationTokenSource())
        {
            // The app comes up, nobody answers, the run is stopped (Ctrl-C).
            var first = new HumanDemoLabeler(new HumanLabelingOptions(WebApp, TimeSpan.FromMilliseconds(20), (_, _) => stop.Cancel()));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => first.LabelAsync(_dir, pairs, null, stop.Token));
        }
        var again = new HumanDemoLabeler(new HumanLabelingOptions(WebApp, TimeSpan.FromMilliseconds(20), (_, _) => Assert.Fail("the app must not start for a mismatched resume")));
        var ex = await Assert.ThrowsAsync<InvalidOperationException>(() => again.LabelAsync(_dir, [.. pairs.Take(3)], null, CancellationToken.None));
        Assert.Contains(HumanDemoLabeler.StoreFileName, ex.Message, StringComparison.Ordinal);
        Assert.Contains("holds 4 queries", ex.Message, StringComparison.Ordinal);
        Assert.Contains("asks for 3", ex.Message, StringComparison.Ordinal);
    }

    /// <summary>A person who fails (an HTTP refusal) would leave the stage waiting forever: their failure cancels the run.</summary>
    internal static Task CancelOnFailure(Task person, CancellationTokenSource run) =>
        person.ContinueWith(t =>
        {
            // The run may be over (its token source disposed) when the person fails late; then the failure surfaces
            // where the test awaits the person, not as an ObjectDisposedException from here.
            if (t.IsFaulted)
            {
                try { run.Cancel(); }
                catch (ObjectDisposedException) { }
            }
            return t;
        }, TaskScheduler.Default).Unwrap();

    /// <summary>Runs the pipeline; when it was cancelled because the person failed, throws the person's failure instead.</summary>
    internal static T RunSurfacingPersonFailure<T>(Func<T> run, Func<Task?> person)
    {
        try
        {
            return run();
        }
        catch (OperationCanceledException) when (person() is { IsFaulted: true } failed)
        {
            failed.GetAwaiter().GetResult();
            throw;
        }
    }

    private sealed class Recorder : IProgress<AlignmentProgress>
    {
        public List<AlignmentProgress> Reports { get; } = [];
        public void Report(AlignmentProgress value) { lock (Reports) Reports.Add(value); }
    }

    [Fact]
    public async Task Given_a_person_in_the_labelling_app_When_the_demo_is_stopped_and_resumed_Then_the_reward_model_learns_their_judgments()
    {
        const int Judgments = 16, BeforeStop = 5;
        // Enough reward epochs that a tiny reward model fits 16 pairs.
        var config = Small with { Pairs = Judgments, RewardEpochs = 25 };
        var log = new List<Submitted>();
        Task? person = null;

        // Given a person who answers 5 pairs, after which the run is stopped (Ctrl-C).
        using (var cts = new CancellationTokenSource())
        {
            var labeler = new HumanDemoLabeler(new HumanLabelingOptions(WebApp, TimeSpan.FromMilliseconds(50),
                (url, token) => person = Task.Run(() => LabelAsync(url, token, BeforeStop, log, cts.Cancel))));
            Assert.ThrowsAny<OperationCanceledException>(() => new DemoPipeline(config) { Labeler = labeler }.Run(_dir, resume: false, ct: cts.Token));
        }
        await person!;
        Assert.DoesNotContain("labels", File.ReadAllText(Path.Combine(_dir, DemoPipeline.StagesFileName)));

        // When the run is resumed with a new labeller token and the person answers the rest.
        var progress = new Recorder();
        DemoSummary summary;
        using (var guard = new CancellationTokenSource(TimeSpan.FromMinutes(3)))
        {
            var resumed = new HumanDemoLabeler(new HumanLabelingOptions(WebApp, TimeSpan.FromMilliseconds(50),
                (url, token) => person = CancelOnFailure(LabelAsync(url, token, Judgments - BeforeStop, log), guard)));
            summary = RunSurfacingPersonFailure(() => new DemoPipeline(config) { Labeler = resumed }.Run(_dir, resume: true, progress, guard.Token), () => person);
        }
        await person!;

        // Then the resumed stage started from the 5 judgments already in the store and waited for all 16.
        var labels = progress.Reports.Where(r => r.Stage == "labels" && r.Metrics.ContainsKey("labels/judgments")).ToList();
        Assert.Equal(BeforeStop, labels[0].Step);
        Assert.Equal(Judgments, labels[^1].Step);
        Assert.All(labels, r => Assert.Equal(Judgments, r.TotalSteps));
        Assert.Equal(Judgments, log.Select(s => s.Prompt + s.First + s.Second).Distinct().Count());

        // The preference file holds exactly what the person said: the tie as a tie, no line for the skip.
        var lines = PreferenceData.ReadJsonl(Path.Combine(_dir, "labels", "preferences.jsonl"));
        var expected = log.Where(s => s.Kind != "skip").Select(s => s.Kind == "tie" ? (s.Prompt, s.First, s.Second, true)
            : s.Preferred == 0 ? (s.Prompt, s.First, s.Second, false) : (s.Prompt, s.Second, s.First, false)).OrderBy(x => x.Item1 + x.Item2).ToList();
        Assert.Equal(expected, lines.Select(e => (e.Prompt, e.Responses[0], e.Responses[1], e.Tie)).OrderBy(x => x.Item1 + x.Item2).ToList());

        // And the reward model agrees with the person (who contradicts the gold scorer) on most of their choices.
        var rm = RewardEnsemble.Load(Path.Combine(_dir, "reward"));
        var choices = lines.Where(e => !e.Tie).ToList();
        double agree = choices.Count(e => rm.Score(e.Prompt, e.Responses[0]).Mean > rm.Score(e.Prompt, e.Responses[1]).Mean) / (double)choices.Count;
        Assert.True(agree >= 0.75, $"reward model agrees with the person on {agree:P0} of {choices.Count} choices");
        Assert.True(File.Exists(summary.Report));

        // The store in the run folder keeps every judgment (16 from two labellers), so a later run can audit them.
        await using var store = await SqlitePreferenceStore.OpenAsync(Path.Combine(_dir, HumanDemoLabeler.StoreFileName));
        var judgments = await store.GetJudgmentsAsync(HumanDemoLabeler.Campaign);
        Assert.Equal(Judgments, judgments.Count);
        Assert.Equal(2, judgments.Select(j => j.LabelerId).Distinct().Count());
    }
}
