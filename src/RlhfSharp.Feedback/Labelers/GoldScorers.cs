// Ready-made gold scorers for the oracle: a candidate's sentiment (VaderSentiment.AsGoldScorer) or a number its
// producer stored in its metadata, such as a clip's true return (Christiano et al.'s synthetic labels).
using System.Globalization;

namespace RlhfSharp.Feedback.Labelers;

public static class GoldScorers
{
    /// <summary>Scores a candidate by the number stored under <paramref name="key"/> in its metadata (invariant culture).</summary>
    public static Func<string, Candidate, double> FromMetadata(string key) => (_, candidate) =>
    {
        if (candidate.Metadata is null || !candidate.Metadata.TryGetValue(key, out var text))
            throw new ArgumentException($"gold scorer: candidate metadata has no \"{key}\" (source {candidate.Source ?? "unknown"}).");
        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v)
            ? v
            : throw new ArgumentException($"gold scorer: metadata \"{key}\" is not a number: \"{text}\".");
    };
}
