// A pairwise judge (an AI judge at a URL, the gold judge, the oracle) as expert iteration's selector: the N samples of a
// prompt meet in a knockout, the champion (sample 1 at first) against each next one in turn, its side alternating so a
// judge's position bias does not always favour the incumbent; the survivor scores 1, the rest 0 (a tie or skip keeps the
// champion). N − 1 judgments per prompt; a batch whose every answer was a skip (an unreachable or confused judge) is
// refused rather than silently keeping each prompt's first sample. Rows arrive as ExpertIteration lays them out: each prompt's N samples together.
using RlhfSharp.Alignment.Ppo;
using RlhfSharp.Feedback;
using RlhfSharp.Feedback.Labelers;

namespace RlhfSharp.Alignment.Sampling;

public sealed class JudgeKnockoutReward(ILabeler judge, int groupSize) : IRolloutReward
{
    /// <summary>Judgments asked so far, and how many came back as a tie or a skip (the champion stayed).</summary>
    public int Judgments { get; private set; }

    public int Undecided { get; private set; }

    public float[] Score(IReadOnlyList<string> prompts, IReadOnlyList<string> responses, IReadOnlyList<int[]> rows)
    {
        if (groupSize < 1 || responses.Count % groupSize != 0)
            throw new ArgumentException($"judge knockout: {responses.Count} responses do not split into groups of {groupSize}.");
        var scores = new float[responses.Count];
        int asked = 0, skipped = 0;
        string? firstSkip = null;
        for (int g = 0; g < responses.Count; g += groupSize)
        {
            int champion = g;
            for (int k = g + 1; k < g + groupSize; k++)
            {
                bool championFirst = (k - g) % 2 == 1;
                var a = new Candidate(responses[champion], "champion");
                var b = new Candidate(responses[k], "challenger");
                var query = new Query(Judgments, QueryKind.Text, prompts[g], championFirst ? [a, b] : [b, a], "rft", null, DateTimeOffset.UnixEpoch);
                var answer = Blocking.Run(() => judge.AnswerAsync(query));
                Judgments++;
                asked++;
                if (answer.Kind is not (AnswerKind.Preferred or AnswerKind.Ranking or AnswerKind.Tie))
                {
                    skipped++;
                    firstSkip ??= answer.SkipReason ?? answer.Kind.ToString();
                }
                int? preferred = answer.Kind switch
                {
                    AnswerKind.Preferred => answer.Preferred,
                    AnswerKind.Ranking => answer.Ranking is { Count: > 0 } r ? r[0] : null,
                    _ => null,
                };
                if (preferred is not (0 or 1)) { Undecided++; continue; }
                bool challengerWon = (preferred == 0) != championFirst;
                if (challengerWon) champion = k;
            }
            scores[champion] = 1;
        }
        if (asked > 0 && skipped == asked)
            throw new InvalidOperationException($"rft: all {asked} answers of judge \"{judge.Name}\" were skips, so no sample can be selected; the first: {firstSkip}");
        return scores;
    }
}
