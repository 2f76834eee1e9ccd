// Drives a program labeller (oracle or AI judge) against a store: take the next assignment, answer it, submit.
using System.Diagnostics;

namespace RlhfSharp.Feedback.Labelers;

public static class LabelingSession
{
    /// <summary>
    /// Answers up to <paramref name="maxJudgments"/> assignments as <paramref name="labelerId"/>; returns how many were
    /// submitted (fewer when the queue runs dry).
    /// </summary>
    public static async Task<int> RunAsync(IPreferenceStore store, long labelerId, ILabeler labeler, int maxJudgments,
        string? campaign = null, int overlap = 1, double goldRate = 0, CancellationToken ct = default)
    {
        int done = 0;
        while (done < maxJudgments && await store.NextAssignmentAsync(labelerId, campaign, overlap, goldRate, ct) is { } a)
        {
            var clock = Stopwatch.StartNew();
            var answer = await labeler.AnswerAsync(a.Query, ct);
            await store.SubmitAsync(a.Id, labelerId, answer, clock.Elapsed, ct);
            done++;
        }
        return done;
    }
}
