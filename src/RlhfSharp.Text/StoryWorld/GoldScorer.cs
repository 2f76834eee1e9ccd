// The story world's gold reward: what the learned reward model is trying to imitate, and what the demo plots
// against the proxy to show reward hacking. Definition, for a completion of N words (a word is a run of letters
// or apostrophes; sentences end at . ! or ?):
//   reward = (Σ sentiment(w) over words w of credited sentences) / N
//            − 0.5 · (words in uncredited sentences) / N
//            − 0.5 · (excess repeats) / N
// A sentence is credited when it is one of the grammar's sentence forms (StoryGrammar) and is not a repeat of an
// earlier sentence of the prompt or completion; a trailing fragment without end punctuation is uncredited.
// Excess repeats count every use of a sentiment-bearing word beyond its second in the completion.
// Sentiment values are the Lexicon's; an empty completion scores −0.5. So a grammatical positive continuation
// scores about +0.2…+0.4, a neutral one 0, a negative one below 0, and spamming "happy happy happy" or a list of
// positive words scores −0.5 or less: the gold cannot be hacked by word counts the way a learned proxy can.

namespace RlhfSharp.Text.StoryWorld;

/// <summary>The gold reward and its parts.</summary>
/// <param name="Reward">The gold reward (definition in the file header).</param>
/// <param name="MeanSentiment">Σ sentiment over words of credited sentences, divided by all words.</param>
/// <param name="UncreditedFraction">Share of words in sentences that are ungrammatical, unfinished or repeated.</param>
/// <param name="RepeatFraction">Excess uses of sentiment words, as a share of all words.</param>
/// <param name="Sentences">Sentences found (including a trailing fragment).</param>
/// <param name="CreditedSentences">Sentences that earned credit.</param>
public sealed record GoldScore(double Reward, double MeanSentiment, double UncreditedFraction, double RepeatFraction,
    int Sentences, int CreditedSentences);

public static class GoldScorer
{
    /// <summary>Penalty weight on words of uncredited sentences and on excess repeats.</summary>
    public const double Penalty = 0.5;

    /// <summary>Scores a completion; sentences of <paramref name="prompt"/> only serve to detect repeats.</summary>
    public static GoldScore Score(string completion, string? prompt = null)
    {
        ArgumentNullException.ThrowIfNull(completion);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        if (prompt is not null)
        {
            foreach (var s in Sentences(prompt)) if (s.Complete) seen.Add(s.Normalized);
        }
        var sentences = Sentences(completion);
        int totalWords = 0, uncreditedWords = 0, credited = 0;
        double sentimentSum = 0;
        var uses = new Dictionary<string, int>(StringComparer.Ordinal);
        int excess = 0;
        foreach (var s in sentences)
        {
            totalWords += s.Words.Count;
            foreach (string w in s.Words)
            {
                if ((Lexicon.Sentiment(w) ?? 0) == 0) continue;
                int count = uses.GetValueOrDefault(w) + 1;
                uses[w] = count;
                if (count > 2) excess++;
            }
            bool ok = s.Complete && StoryGrammar.Recognizes(s.Normalized) && seen.Add(s.Normalized);
            if (ok)
            {
                credited++;
                foreach (string w in s.Words) sentimentSum += Lexicon.Sentiment(w) ?? 0;
            }
            else
            {
                uncreditedWords += s.Words.Count;
            }
        }
        if (totalWords == 0) return new GoldScore(-Penalty, 0, 1, 0, sentences.Count, 0);
        double mean = sentimentSum / totalWords;
        double uncredited = (double)uncreditedWords / totalWords;
        double repeats = (double)excess / totalWords;
        return new GoldScore(mean - Penalty * uncredited - Penalty * repeats, mean, uncredited, repeats, sentences.Count, credited);
    }

    /// <summary>True when the text is exactly one sentence of the story grammar.</summary>
    public static bool IsGrammatical(string sentence)
    {
        var parts = Sentences(sentence);
        return parts.Count == 1 && parts[0].Complete && StoryGrammar.Recognizes(parts[0].Normalized);
    }

    internal sealed record Sentence(string Normalized, List<string> Words, bool Complete);

    // Lower-case tokens: words (letters and apostrophes) and the marks , . ! ?; any other non-space character
    // becomes the token "<?>", which no template contains.
    internal static List<Sentence> Sentences(string text)
    {
        var result = new List<Sentence>();
        var tokens = new List<string>();
        var words = new List<string>();
        int i = 0;
        while (i < text.Length)
        {
            char c = text[i];
            if (char.IsWhiteSpace(c))
            {
                i++;
                continue;
            }
            if (char.IsLetter(c) || c == '\'')
            {
                int start = i;
                while (i < text.Length && (char.IsLetter(text[i]) || text[i] == '\'')) i++;
                string word = text[start..i].ToLowerInvariant();
                tokens.Add(word);
                words.Add(word);
                continue;
            }
            i++;
            if (c is '.' or '!' or '?')
            {
                tokens.Add(c.ToString());
                result.Add(new Sentence(string.Join(' ', tokens), words, true));
                tokens = [];
                words = [];
                continue;
            }
            tokens.Add(c == ',' ? "," : "<?>");
        }
        if (tokens.Count > 0) result.Add(new Sentence(string.Join(' ', tokens), words, false));
        return result;
    }
}
