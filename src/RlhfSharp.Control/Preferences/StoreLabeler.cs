// People as the loop's labeller: each query goes into a preference store (the one the labelling app serves) and the
// loop waits until someone's judgment for it arrives, polling the store; the oracle answers in-process instead.
using RlhfSharp.Feedback;
using RlhfSharp.Feedback.Labelers;

namespace RlhfSharp.Control.Preferences;

/// <param name="store">A migrated store the labelling app serves.</param>
/// <param name="poll">How often to look for the judgment.</param>
public sealed class StoreLabeler(IPreferenceStore store, TimeSpan poll) : ILabeler
{
    public string Name => "people";

    /// <summary>Called with the stored query id as soon as a query is waiting for people (for progress displays and tests).</summary>
    public Action<long>? OnWaiting { get; init; }

    public async Task<Answer> AnswerAsync(Query query, CancellationToken ct = default)
    {
        var ids = await store.AddQueriesAsync([new NewQuery(query.Kind, query.Prompt, query.Candidates, query.Campaign)], ct);
        long id = ids[0];
        OnWaiting?.Invoke(id);
        while (true)
        {
            var judgment = (await store.GetJudgmentsAsync(query.Campaign, ct)).FirstOrDefault(j => j.QueryId == id);
            if (judgment is not null) return judgment.Answer;
            await Task.Delay(poll, ct);
        }
    }
}
