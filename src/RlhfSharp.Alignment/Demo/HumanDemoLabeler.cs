// `rlhf demo --human`'s labels stage: the SFT sample pairs go into a SQLite preference store in the run folder, a labelling
// front end (the web app, started by the caller's Serve function) shows them on 127.0.0.1 with a fresh labeller token,
// and the stage waits until every pair is judged. A stopped run keeps the store; --resume asks only for the rest.
// Many labellers: with OpenSharedStore (`demo --human --pg`), the pairs go to a shared PostgreSQL store instead, served by
// any number of `rlhf label serve --pg` instances; no front end is started here and judgments from any instance count.
using System.Text.Json;
using RlhfSharp.Feedback;
using RlhfSharp.Feedback.Stores;

namespace RlhfSharp.Alignment.Demo;

/// <summary>How people label the demo's pairs.</summary>
/// <param name="Serve">Starts the labelling front end over the store for the given campaign (the CLI passes the web app's LabelingApp.StartAsync).</param>
/// <param name="Poll">How often the store is read for new judgments.</param>
/// <param name="OnReady">Called once the front end listens, with its address and the new labeller's token (shown only this once).</param>
public sealed record HumanLabelingOptions(
    Func<IPreferenceStore, string, CancellationToken, Task<ILabelingFrontEnd>> Serve, TimeSpan Poll, Action<Uri, string> OnReady)
{
    /// <summary>Opens (and migrates) the shared store the labelling instances serve; null keeps the run folder's SQLite file and its own front end.</summary>
    public Func<CancellationToken, Task<SqlPreferenceStore>>? OpenSharedStore { get; init; }
}

/// <summary>People as the demo's labeller, through the labelling app over a store that survives a stop and --resume.</summary>
public sealed class HumanDemoLabeler(HumanLabelingOptions options) : IDemoLabeler
{
    /// <summary>The store's file in the run folder (beside the stage folders, so a restarted labels stage keeps it).</summary>
    public const string StoreFileName = "feedback.db";

    /// <summary>The campaign the demo's queries belong to.</summary>
    public const string Campaign = "demo";

    public async Task<IReadOnlyList<string>> LabelAsync(string runDir, IReadOnlyList<DemoPair> pairs, IProgress<AlignmentProgress>? progress, CancellationToken ct)
    {
        bool shared = options.OpenSharedStore is not null;
        string path = shared ? "the shared store" : Path.Combine(runDir, StoreFileName);
        await using SqlPreferenceStore store = shared ? await options.OpenSharedStore!(ct) : await SqlitePreferenceStore.OpenAsync(path, ct: ct);
        // A resumed run finds its queries (and the judgments already given) in the store and asks only for the rest.
        var stored = await store.GetQueriesAsync(Campaign, ct);
        if (stored.Count == 0)
            await store.AddQueriesAsync([.. pairs.Select(p => new NewQuery(QueryKind.Text, p.Prompt, [new Candidate(p.First, "sft"), new Candidate(p.Second, "sft")], Campaign))], ct);
        else if (stored.Count != pairs.Count)
            throw new InvalidOperationException($"{path}: holds {stored.Count} queries of campaign '{Campaign}' but this run asks for {pairs.Count} judgments; resume with the --judgments it started with.");
        int needed = pairs.Count;

        ILabelingFrontEnd? app = null;
        if (!shared)
        {
            var labelers = await store.GetLabelersAsync(ct);
            var (_, token) = await store.AddLabelerAsync($"labeller {labelers.Count + 1}", LabelerRole.Labeler, ct);
            app = await options.Serve(store, Campaign, ct);
            options.OnReady(app.Address, token);
        }
        await using var frontEnd = app;
        // The front end may stop by itself (the web host answers SIGINT/SIGTERM); either way the wait ends as a cancellation.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct, app?.Stopping ?? CancellationToken.None);
        while (true)
        {
            stop.Token.ThrowIfCancellationRequested();
            var judgments = await store.GetJudgmentsAsync(Campaign, ct);
            int answered = judgments.Select(j => j.QueryId).Distinct().Count();
            progress?.Report(new AlignmentProgress("labels", answered, needed, new Dictionary<string, double> { ["labels/judgments"] = answered }));
            if (answered >= needed) return await PreferenceLinesAsync(store, ct);
            await Task.Delay(options.Poll, stop.Token);
        }
    }

    /// <summary>
    /// Refuses to resume <paramref name="runDir"/> without people when its labels stage was started with --human and is not
    /// finished: the oracle would label every pair and the judgments people already gave would be silently set aside.
    /// </summary>
    public static void RefuseResumeWithoutPeople(string runDir)
    {
        string store = Path.Combine(runDir, StoreFileName);
        if (!File.Exists(store)) return;
        string stagesPath = Path.Combine(runDir, DemoPipeline.StagesFileName);
        var done = File.Exists(stagesPath) ? JsonSerializer.Deserialize<List<string>>(File.ReadAllText(stagesPath)) ?? [] : [];
        if (!done.Contains("labels"))
            throw new ArgumentException($"demo: {runDir} was labelling with --human ({store} holds the judgments so far) and its labels stage is not finished; resume it with --human (and the same --judgments).");
    }

    /// <summary>Every judgment of an unflagged labeller as TRL pair lines: a choice is chosen/rejected, a tie keeps "tie": true, a skip ("can't tell") none.</summary>
    private static async Task<IReadOnlyList<string>> PreferenceLinesAsync(IPreferenceStore store, CancellationToken ct)
    {
        var queries = (await store.GetQueriesAsync(Campaign, ct)).ToDictionary(q => q.Id);
        var flagged = (await store.GetLabelersAsync(ct)).Where(l => l.Flagged).Select(l => l.Id).ToHashSet();
        var export = new ExportOptions(ExportFormat.Pairs, Campaign, IncludeTies: true);
        return [.. (await store.GetJudgmentsAsync(Campaign, ct)).Where(j => !flagged.Contains(j.LabelerId))
            .SelectMany(j => Jsonl.Lines(queries[j.QueryId], j.Answer, export)).Select(o => o.ToJsonString())];
    }
}
