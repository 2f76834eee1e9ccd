// A deterministic judge from a gold scorer: the candidate with the higher true reward wins, equal rewards tie.
// The oracle (OracleLabeler) is the noisy, Bradley–Terry version of the same scorer.
using RlhfSharp.Feedback;
using RlhfSharp.Feedback.Labelers;

namespace RlhfSharp.Alignment.Evaluation;

/// <param name="gold">(prompt, response) → true reward, higher is better.</param>
/// <param name="tieTolerance">Rewards closer than this count as a tie.</param>
public sealed class GoldJudge(Func<string, string, double> gold, double tieTolerance = 1e-9) : ILabeler
{
    public string Name => "gold";

    public Task<Answer> AnswerAsync(Query query, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(query);
        if (query.Candidates.Count != 2) throw new ArgumentException($"gold judge: query {query.Id} has {query.Candidates.Count} candidates; it compares pairs.");
        double a = gold(query.Prompt, query.Candidates[0].Content), b = gold(query.Prompt, query.Candidates[1].Content);
        if (double.IsNaN(a) || double.IsNaN(b)) return Task.FromResult(Answer.Skip($"gold scorer returned NaN ({a}, {b})"));
        return Task.FromResult(Math.Abs(a - b) <= tieTolerance ? Answer.Tie() : Answer.Prefer(a > b ? 0 : 1));
    }
}
