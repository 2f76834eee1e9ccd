// `rlhf demo --human`'s labels stage: the SFT sample pairs go into a SQLite preference store in the run folder, the
// labelling app serves them on 127.0.0.1 with a fresh labeller token, and the stage waits until every pair is judged.
using RlhfSharp.Alignment;
using RlhfSharp.Alignment.Demo;
using RlhfSharp.Feedback;
using RlhfSharp.Feedback.Stores;
using RlhfSharp.Web;

namespace RlhfSharp.Cli.Commands;

/// <summary>How people label the demo's pairs.</summary>
/// <param name="Port">Port of the labelling app on 127.0.0.1; 0 picks a free one.</param>
/// <param name="Poll">How often the store is read for new judgments.</param>
/// <param name="OnReady">Called once the app listens, with its address and the new labeller's token (shown only this once).</param>
internal sealed record HumanLabelingOptions(int Port, TimeSpan Poll, Action<Uri, string> OnReady);

/// <summary>People as the demo's labeller, through the labelling app over a store that survives a stop and --resume.</summary>
internal sealed class HumanDemoLabeler(HumanLabelingOptions options) : IDemoLabeler
{
    /// <summary>The store's file in the run folder (beside the stage folders, so a restarted labels stage keeps it).</summary>
    public const string StoreFileName = "feedback.db";

    /// <summary>The campaign the demo's queries belong to.</summary>
    public const string Campaign = "demo";

    public async Task<IReadOnlyList<string>> LabelAsync(string runDir, IReadOnlyList<DemoPair> pairs, IProgress<AlignmentProgress>? progress, CancellationToken ct)
    {
        string path = Path.Combine(runDir, StoreFileName);
        await using var store = await SqlitePreferenceStore.OpenAsync(path, ct: ct);
        // A resumed run finds its queries (and the judgments already given) in the store and asks only for the rest.
        var stored = await store.GetQueriesAsync(Campaign, ct);
        if (stored.Count == 0)
            await store.AddQueriesAsync([.. pairs.Select(p => new NewQuery(QueryKind.Text, p.Prompt, [new Candidate(p.First, "sft"), new Candidate(p.Second, "sft")], Campaign))], ct);
        else if (stored.Count != pairs.Count)
            throw new InvalidOperationException($"{path}: holds {stored.Count} queries of campaign '{Campaign}' but this run asks for {pairs.Count} judgments; resume with the --judgments it started with.");
        int needed = pairs.Count;

        var labelers = await store.GetLabelersAsync(ct);
        var (_, token) = await store.AddLabelerAsync($"labeller {labelers.Count + 1}", LabelerRole.Labeler, ct);
        var app = LabelingApp.Build(store, new LabelingAppOptions(Port: options.Port, Campaign: Campaign));
        await app.StartAsync(ct);
        // The web host also answers SIGINT/SIGTERM (by stopping itself); either way the wait ends as a cancellation.
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct, app.Lifetime.ApplicationStopping);
        try
        {
            options.OnReady(LabelingApp.BoundAddress(app), token);
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
        finally
        {
            await app.StopAsync(CancellationToken.None);
            await app.DisposeAsync();
        }
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
