// Programmatic checks on a story-world completion: named rules the gold scorer (GoldScorer) can verify, so that a
// constitution's principle can be decided by code instead of a critic model. Each names one thing the gold reward
// penalises or rewards:
//   proper-ending    the completion ends with a finished sentence (. ! ?); a trailing fragment is uncredited by the gold
//   grammatical      every sentence is one of the grammar's forms, finished, and not a repeat (no uncredited words)
//   no-spam-words    no sentiment-bearing word is used more than twice (the gold's excess-repeat penalty is zero)
//   no-repeats       no sentence repeats one of the prompt or an earlier one of the completion
//   positive         the credited sentences' sentiment sum is above zero (the gold's first term)
//   min-length       at least MinWords words (an empty or one-word answer scores −0.5 or little)
// A check returns null when the completion satisfies it, else one line saying what is violated.

namespace RlhfSharp.Text.StoryWorld;

public static class StoryChecks
{
    /// <summary>The checks' names, in the order of the file header.</summary>
    public static readonly IReadOnlyList<string> Names = ["proper-ending", "grammatical", "no-spam-words", "no-repeats", "positive", "min-length"];

    /// <summary>min-length's default word count.</summary>
    public const int DefaultMinWords = 5;

    /// <summary>
    /// Checks <paramref name="completion"/> (of <paramref name="prompt"/>, whose sentences count for repeats) against the
    /// rule <paramref name="name"/>: null when satisfied, else the violation in one line. An unknown name throws.
    /// </summary>
    public static string? Violation(string name, string completion, string? prompt = null, int minWords = DefaultMinWords)
    {
        ArgumentNullException.ThrowIfNull(completion);
        var sentences = GoldScorer.Sentences(completion);
        switch (name)
        {
            case "proper-ending":
                if (sentences.Count == 0) return "the response is empty";
                return sentences[^1].Complete ? null : $"the response ends in an unfinished sentence (\"{Clip(sentences[^1].Normalized)}\")";
            case "grammatical":
            {
                if (sentences.Count == 0) return "the response is empty";
                var seen = Seen(prompt);
                foreach (var s in sentences)
                {
                    if (!s.Complete) return $"unfinished sentence \"{Clip(s.Normalized)}\"";
                    if (!StoryGrammar.Recognizes(s.Normalized)) return $"ungrammatical sentence \"{Clip(s.Normalized)}\"";
                    if (!seen.Add(s.Normalized)) return $"repeated sentence \"{Clip(s.Normalized)}\"";
                }
                return null;
            }
            case "no-spam-words":
            {
                var uses = new Dictionary<string, int>(StringComparer.Ordinal);
                foreach (var w in sentences.SelectMany(s => s.Words))
                {
                    if ((Lexicon.Sentiment(w) ?? 0) == 0) continue;
                    int count = uses.GetValueOrDefault(w) + 1;
                    uses[w] = count;
                    if (count > 2) return $"the sentiment word \"{w}\" is used more than twice";
                }
                return null;
            }
            case "no-repeats":
            {
                var seen = Seen(prompt);
                foreach (var s in sentences)
                {
                    if (s.Complete && !seen.Add(s.Normalized)) return $"repeated sentence \"{Clip(s.Normalized)}\"";
                }
                return null;
            }
            case "positive":
            {
                var score = GoldScorer.Score(completion, prompt);
                return score.MeanSentiment > 0 ? null : $"the credited sentences' sentiment is {(score.MeanSentiment < 0 ? "negative" : "not positive")} ({score.MeanSentiment.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)} per word)";
            }
            case "min-length":
            {
                int words = sentences.Sum(s => s.Words.Count);
                return words >= minWords ? null : $"the response has {words} word{(words == 1 ? "" : "s")}, fewer than {minWords}";
            }
            default:
                throw new ArgumentException($"unknown check \"{name}\"; the checks are {string.Join(", ", Names)}.");
        }
    }

    private static HashSet<string> Seen(string? prompt)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        if (prompt is not null)
        {
            foreach (var s in GoldScorer.Sentences(prompt)) if (s.Complete) seen.Add(s.Normalized);
        }
        return seen;
    }

    private static string Clip(string s) => s.Length <= 60 ? s : s[..60] + "…";
}
