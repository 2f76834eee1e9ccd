// Drives a labeller against a store: take the next assignment, answer it, submit, until the budget is spent, the queue runs
// dry, or (a person at the terminal) the labeller stops. The time from hand-out to answer is stored with each judgment.
using System.Diagnostics;

namespace RlhfSharp.Feedback.Labelers;

public static class LabelingSession
{
    /// <summary>
    /// Answers up to <paramref name="maxJudgments"/> assignments as <paramref name="labelerId"/> with a program labeller
    /// (oracle or AI judge); returns how many were submitted (fewer when the queue runs dry).
    /// </summary>
    public static Task<int> RunAsync(IPreferenceStore store, long labelerId, ILabeler labeler, int maxJudgments,
        string? campaign = null, int overlap = 1, double goldRate = 0, CancellationToken ct = default) =>
        RunAsync(store, labelerId, async (query, c) => (Answer?)await labeler.AnswerAsync(query, c), maxJudgments, campaign, overlap, goldRate, ct);

    /// <summary>
    /// As above with <paramref name="answer"/> deciding each query; a null answer ends the session and leaves that
    /// assignment open (a person who quits). Returns how many judgments were submitted.
    /// </summary>
    public static async Task<int> RunAsync(IPreferenceStore store, long labelerId, Func<Query, CancellationToken, Task<Answer?>> answer, int maxJudgments,
        string? campaign = null, int overlap = 1, double goldRate = 0, CancellationToken ct = default)
    {
        int done = 0;
        while (done < maxJudgments && await store.NextAssignmentAsync(labelerId, campaign, overlap, goldRate, ct) is { } a)
        {
            var clock = Stopwatch.StartNew();
            if (await answer(a.Query, ct) is not { } given) break;
            await store.SubmitAsync(a.Id, labelerId, given, clock.Elapsed, ct: ct);
            done++;
        }
        return done;
    }

    /// <summary>
    /// The labeller named <paramref name="name"/>, added on first use: a program labeller keeps one identity across runs,
    /// so "never twice to one labeller" holds for it too.
    /// </summary>
    public static async Task<Labeler> FindOrAddLabelerAsync(IPreferenceStore store, string name, CancellationToken ct = default) =>
        (await store.GetLabelersAsync(ct)).FirstOrDefault(l => l.Name == name) ?? (await store.AddLabelerAsync(name, LabelerRole.Labeler, ct)).Labeler;
}
