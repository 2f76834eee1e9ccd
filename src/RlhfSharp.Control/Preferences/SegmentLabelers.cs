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

    /// <summary>Returns closer than this are the same to the oracle (float rounding of equal sums, not a judgment).</summary>
    public const double OracleTieThreshold = 1e-6;

    /// <summary>
    /// The synthetic labeller of the paper: true segment return, Bradley–Terry choice, ε random answers — and a tie when the
    /// two returns are equal, as a person seeing two clips that both keep the pole up would say. Without the tie a good
    /// CartPole policy's clips (all of full return) are labelled by coin flips; disagreement selection asks exactly those
    /// pairs, and the predictor fits the noise into spurious shaping that PPO then exploited (true return 500 → 130).
    /// </summary>
    public static OracleLabeler Oracle(double epsilon, int seed) =>
        new(GoldScorers.FromMetadata(TrueReturnKey), new OracleOptions(Temperature: 1, Epsilon: epsilon, TieThreshold: OracleTieThreshold, Seed: seed));
}
