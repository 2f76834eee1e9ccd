// Who answers "which clip is better?" in the loop: anything implementing Feedback's ILabeler sees a Clip query whose two
// candidates carry the segment (animated SVG when a renderer exists) and its true return in metadata ("true_return"), so
// Feedback's OracleLabeler with GoldScorers.FromMetadata("true_return") is Christiano et al.'s synthetic labeller.
using System.Globalization;
using RlhfSharp.Control.Clips;
using RlhfSharp.Feedback;
using RlhfSharp.Feedback.Labelers;

namespace RlhfSharp.Control.Preferences;

public static class SegmentQueries
{
    /// <summary>Metadata key of a candidate's true segment return.</summary>
    public const string TrueReturnKey = "true_return";

    /// <summary>A Clip query for a pair; with <paramref name="render"/> the candidates' Content is each segment's animated SVG.</summary>
    public static NewQuery ToQuery(Trajectory first, Trajectory second, bool render, string campaign)
    {
        Candidate Make(Trajectory s, string side) => new(
            render ? ClipRenderers.For(s.EnvId).RenderAnimated(s, caption: side) : $"{s.EnvId} segment of {s.Length} steps",
            "prefrl",
            new Dictionary<string, string> { [TrueReturnKey] = s.Return.ToString("R", CultureInfo.InvariantCulture) });
        return new NewQuery(QueryKind.Clip, "Which clip is closer to the goal?", [Make(first, "left"), Make(second, "right")], campaign);
    }

    /// <summary>μ (mass on the first) for an answer; null for a skip ("can't tell" is not a tie and teaches nothing).</summary>
    public static float? Mu(Answer answer) => answer.Kind switch
    {
        AnswerKind.Preferred => answer.Preferred == 0 ? 1f : 0f,
        AnswerKind.Ranking => answer.Ranking![0] == 0 ? 1f : 0f,
        AnswerKind.Tie => 0.5f,
        _ => null,
    };

    /// <summary>The synthetic labeller of the paper: true segment return, Bradley–Terry choice, ε random answers.</summary>
    public static OracleLabeler Oracle(double epsilon, int seed) =>
        new(GoldScorers.FromMetadata(TrueReturnKey), new OracleOptions(Temperature: 1, Epsilon: epsilon, Seed: seed));
}
