// A VADER-style rule-based sentiment scorer (Hutto & Gilbert, ICWSM 2014), used as a gold scorer for the
// mock-sentiment task (Ziegler et al. 2019). Our own code after cjhutto/vaderSentiment's vaderSentiment.py;
// the constants below are that file's, and so are its n-gram rules: SPECIAL_CASES idioms ("the bomb", "kiss of death")
// and the two-word dampeners "kind of", "sort of", "just enough" (_special_idioms_check, applied only when the third word
// back exists and is not a lexicon word, as there). Differences: no emoji lexicon, and the "but" rule weighs each word by
// its position (the original looks values up by equality, which mis-weights repeated scores).
using System.Globalization;

namespace RlhfSharp.Feedback.Labelers;

/// <summary>Sentiment scores of one text, as VADER reports them.</summary>
/// <param name="Compound">Sum of adjusted valences, normalised into [−1, 1] by x/√(x²+15).</param>
/// <param name="Positive">Share of positive weight, in [0, 1].</param>
/// <param name="Negative">Share of negative weight, in [0, 1].</param>
/// <param name="Neutral">Share of neutral words, in [0, 1].</param>
public sealed record SentimentScores(double Compound, double Positive, double Negative, double Neutral);

public sealed class VaderSentiment
{
    // vaderSentiment.py: "empirically derived mean sentiment intensity rating increase for booster words".
    public const double BoosterIncrement = 0.293;
    public const double BoosterDecrement = -0.293;
    // vaderSentiment.py: rating increase for an ALL-CAPS word among words that are not all caps.
    public const double CapsIncrement = 0.733;
    // vaderSentiment.py: a negated word's valence is multiplied by this.
    public const double NegationScalar = -0.74;
    // vaderSentiment.py: each "!" (at most 4) adds 0.292; 2–3 "?" add 0.18 each, more add 0.96.
    public const double ExclamationIncrement = 0.292;
    public const double QuestionIncrement = 0.18;
    public const double QuestionCap = 0.96;
    // vaderSentiment.py normalize(): alpha approximates the maximum expected raw sum.
    public const double NormalizeAlpha = 15;

    private static readonly HashSet<string> Negations = new(StringComparer.Ordinal)
    {
        "aint", "arent", "cannot", "cant", "couldnt", "darent", "didnt", "doesnt", "ain't", "aren't", "can't", "couldn't",
        "daren't", "didn't", "doesn't", "dont", "hadnt", "hasnt", "havent", "isnt", "mightnt", "mustnt", "neither", "don't",
        "hadn't", "hasn't", "haven't", "isn't", "mightn't", "mustn't", "neednt", "needn't", "never", "none", "nope", "nor",
        "not", "nothing", "nowhere", "oughtnt", "shant", "shouldnt", "uhuh", "wasnt", "werent", "oughtn't", "shan't",
        "shouldn't", "uh-uh", "wasn't", "weren't", "without", "wont", "wouldnt", "won't", "wouldn't", "rarely", "seldom", "despite",
    };

    private static readonly string[] Boosters =
    [
        "absolutely", "amazingly", "awfully", "completely", "considerable", "considerably", "decidedly", "deeply", "effing",
        "enormous", "enormously", "entirely", "especially", "exceptional", "exceptionally", "extreme", "extremely", "fabulously",
        "flipping", "flippin", "frackin", "fracking", "fricking", "frickin", "frigging", "friggin", "fully", "fuckin", "fucking",
        "fuggin", "fugging", "greatly", "hella", "highly", "hugely", "incredible", "incredibly", "intensely", "major", "majorly",
        "more", "most", "particularly", "purely", "quite", "really", "remarkably", "so", "substantially", "thoroughly", "total",
        "totally", "tremendous", "tremendously", "uber", "unbelievably", "unusually", "utter", "utterly", "very",
    ];

    private static readonly string[] Dampeners =
    [
        "almost", "barely", "hardly", "kinda", "kindof", "kind-of", "less", "little", "marginal", "marginally", "occasional",
        "occasionally", "partly", "scarce", "scarcely", "slight", "slightly", "somewhat", "sorta", "sortof", "sort-of",
    ];

    // vaderSentiment.py SPECIAL_CASES: idioms containing lexicon words; the idiom's value replaces the word's.
    private static readonly Dictionary<string, double> SpecialCases = new(StringComparer.Ordinal)
    {
        ["the shit"] = 3, ["the bomb"] = 3, ["bad ass"] = 1.5, ["badass"] = 1.5, ["bus stop"] = 0.0, ["yeah right"] = -2,
        ["kiss of death"] = -1.5, ["to die for"] = 3, ["beating heart"] = 3.1, ["broken heart"] = -2.9,
    };

    // vaderSentiment.py BOOSTER_DICT's multi-word entries: no single token matches them; _special_idioms_check adds them.
    private static readonly Dictionary<string, double> MultiWordBoosters = new(StringComparer.Ordinal)
    {
        ["just enough"] = BoosterDecrement, ["kind of"] = BoosterDecrement, ["sort of"] = BoosterDecrement,
    };

    private static readonly Dictionary<string, double> BoosterScores = Boosters.Select(b => (b, BoosterIncrement))
        .Concat(Dampeners.Select(d => (d, BoosterDecrement))).ToDictionary(p => p.Item1, p => p.Item2, StringComparer.Ordinal);

    private readonly Dictionary<string, double> _lexicon;

    public VaderSentiment(IReadOnlyDictionary<string, double> lexicon) => _lexicon = new(lexicon, StringComparer.Ordinal);

    /// <summary>Number of lexicon entries.</summary>
    public int LexiconSize => _lexicon.Count;

    /// <summary>The lexicon valence of a (lower-case) token, or null.</summary>
    public double? Valence(string token) => _lexicon.TryGetValue(token, out var v) ? v : null;

    /// <summary>Loads a lexicon in vader_lexicon.txt's form: token TAB mean-valence [TAB std TAB ratings].</summary>
    public static VaderSentiment Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"VADER lexicon {path} not found.", path);
        var lex = new Dictionary<string, double>(StringComparer.Ordinal);
        int lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (line.Length == 0) continue;
            var parts = line.Split('\t');
            if (parts.Length < 2 || !double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var v))
                throw new InvalidDataException($"{path}:{lineNo}: expected \"token<TAB>valence\"; got \"{line}\".");
            lex[parts[0]] = v;
        }
        return new VaderSentiment(lex);
    }

    /// <summary>The compound score in [−1, 1]: the gold scorer for "more positive is better".</summary>
    public double Compound(string text) => Score(text).Compound;

    /// <summary>A gold scorer for the oracle labeller: a candidate's compound sentiment.</summary>
    public Func<string, Candidate, double> AsGoldScorer() => (_, candidate) => Compound(candidate.Content);

    public SentimentScores Score(string text)
    {
        var words = Tokens(text);
        var lower = words.Select(w => w.ToLowerInvariant()).ToArray();
        bool capDifferential = CapDifferential(words);
        var sentiments = new double[words.Length];
        for (int i = 0; i < words.Length; i++)
        {
            // Boosters and "kind of" carry no valence of their own; they modify the word they precede.
            if (BoosterScores.ContainsKey(lower[i])) continue;
            if (lower[i] == "kind" && i + 1 < words.Length && lower[i + 1] == "of") continue;
            sentiments[i] = WordValence(words, lower, i, capDifferential);
        }
        // The contrastive "but": what comes before counts half, what comes after one and a half.
        int but = Array.IndexOf(lower, "but");
        if (but >= 0)
            for (int i = 0; i < sentiments.Length; i++)
                if (i < but) sentiments[i] *= 0.5;
                else if (i > but) sentiments[i] *= 1.5;
        return Aggregate(sentiments, text);
    }

    private double WordValence(string[] words, string[] lower, int i, bool capDifferential)
    {
        if (!_lexicon.TryGetValue(lower[i], out double valence)) return 0;
        // "no" directly before another lexicon word negates that word and carries no valence itself.
        if (lower[i] == "no" && i + 1 < words.Length && _lexicon.ContainsKey(lower[i + 1])) valence = 0;
        if ((i > 0 && lower[i - 1] == "no") || (i > 1 && lower[i - 2] == "no")
            || (i > 2 && lower[i - 3] == "no" && (lower[i - 1] == "or" || lower[i - 1] == "nor")))
            valence = _lexicon[lower[i]] * NegationScalar;
        if (capDifferential && IsUpper(words[i])) valence += valence > 0 ? CapsIncrement : -CapsIncrement;

        // Up to three preceding words boost, dampen or negate; farther words count less (×0.95, ×0.9).
        for (int back = 0; back < 3; back++)
        {
            int j = i - (back + 1);
            if (j < 0 || _lexicon.ContainsKey(lower[j])) continue;
            double s = BoosterScalar(words[j], lower[j], valence, capDifferential);
            if (back == 1) s *= 0.95;
            if (back == 2) s *= 0.9;
            valence += s;
            valence = NegationCheck(valence, lower, back, i);
            if (back == 2) valence = SpecialIdiomsCheck(valence, lower, i);
        }
        // "least" before a word negates it, unless "at least" / "very least".
        if (i > 1 && !_lexicon.ContainsKey(lower[i - 1]) && lower[i - 1] == "least")
        {
            if (lower[i - 2] != "at" && lower[i - 2] != "very") valence *= NegationScalar;
        }
        else if (i > 0 && !_lexicon.ContainsKey(lower[i - 1]) && lower[i - 1] == "least")
            valence *= NegationScalar;
        return valence;
    }

    /// <summary>
    /// vaderSentiment.py _special_idioms_check for word <paramref name="i"/> (i ≥ 3): the first SPECIAL_CASES idiom among
    /// "w[i−1] w[i]", "w[i−2] w[i−1] w[i]", "w[i−2] w[i−1]", "w[i−3] w[i−2] w[i−1]", "w[i−3] w[i−2]" sets the valence, then
    /// "w[i] w[i+1]" and "w[i] w[i+1] w[i+2]" may override it; finally each of "w[i−3] w[i−2] w[i−1]", "w[i−3] w[i−2]",
    /// "w[i−2] w[i−1]" that is a two-word booster adds its value (−0.293, whatever the valence's sign, as there).
    /// </summary>
    private static double SpecialIdiomsCheck(double valence, string[] lower, int i)
    {
        string onezero = $"{lower[i - 1]} {lower[i]}";
        string twoonezero = $"{lower[i - 2]} {lower[i - 1]} {lower[i]}";
        string twoone = $"{lower[i - 2]} {lower[i - 1]}";
        string threetwoone = $"{lower[i - 3]} {lower[i - 2]} {lower[i - 1]}";
        string threetwo = $"{lower[i - 3]} {lower[i - 2]}";
        foreach (var seq in new[] { onezero, twoonezero, twoone, threetwoone, threetwo })
            if (SpecialCases.TryGetValue(seq, out double idiom))
            {
                valence = idiom;
                break;
            }
        if (lower.Length - 1 > i && SpecialCases.TryGetValue($"{lower[i]} {lower[i + 1]}", out double zeroone)) valence = zeroone;
        if (lower.Length - 1 > i + 1 && SpecialCases.TryGetValue($"{lower[i]} {lower[i + 1]} {lower[i + 2]}", out double zeroonetwo)) valence = zeroonetwo;
        foreach (var ngram in new[] { threetwoone, threetwo, twoone })
            if (MultiWordBoosters.TryGetValue(ngram, out double b)) valence += b;
        return valence;
    }

    private static double BoosterScalar(string word, string lower, double valence, bool capDifferential)
    {
        if (!BoosterScores.TryGetValue(lower, out double scalar)) return 0;
        if (valence < 0) scalar = -scalar;
        if (capDifferential && IsUpper(word)) scalar += valence > 0 ? CapsIncrement : -CapsIncrement;
        return scalar;
    }

    private static double NegationCheck(double valence, string[] lower, int back, int i)
    {
        bool Neg(int j) => Negations.Contains(lower[j]) || lower[j].Contains("n't", StringComparison.Ordinal);
        switch (back)
        {
            case 0:
                return Neg(i - 1) ? valence * NegationScalar : valence;
            case 1:
                // "never so good" and "never this good" intensify rather than negate; "without doubt" is not a negation.
                if (lower[i - 2] == "never" && (lower[i - 1] == "so" || lower[i - 1] == "this")) return valence * 1.25;
                if (lower[i - 2] == "without" && lower[i - 1] == "doubt") return valence;
                return Neg(i - 2) ? valence * NegationScalar : valence;
            default:
                if ((lower[i - 3] == "never" && (lower[i - 2] == "so" || lower[i - 2] == "this")) || lower[i - 1] == "so" || lower[i - 1] == "this")
                    return valence * 1.25;
                if (lower[i - 3] == "without" && (lower[i - 2] == "doubt" || lower[i - 1] == "doubt")) return valence;
                return Neg(i - 3) ? valence * NegationScalar : valence;
        }
    }

    private static SentimentScores Aggregate(double[] sentiments, string text)
    {
        if (sentiments.Length == 0) return new SentimentScores(0, 0, 0, 0);
        double sum = sentiments.Sum();
        double emphasis = PunctuationEmphasis(text);
        if (sum > 0) sum += emphasis;
        else if (sum < 0) sum -= emphasis;
        double compound = Math.Clamp(sum / Math.Sqrt(sum * sum + NormalizeAlpha), -1, 1);

        // Each sentiment-bearing word counts its valence plus one, so it outweighs a neutral word (which counts one).
        double pos = 0, neg = 0;
        int neutral = 0;
        foreach (var s in sentiments)
        {
            if (s > 0) pos += s + 1;
            if (s < 0) neg += s - 1;
            if (s == 0) neutral++;
        }
        if (pos > Math.Abs(neg)) pos += emphasis;
        else if (pos < Math.Abs(neg)) neg -= emphasis;
        double total = pos + Math.Abs(neg) + neutral;
        return new SentimentScores(compound, Math.Abs(pos / total), Math.Abs(neg / total), Math.Abs(neutral / total));
    }

    internal static double PunctuationEmphasis(string text)
    {
        int bangs = Math.Min(4, text.Count(c => c == '!'));
        int questions = text.Count(c => c == '?');
        double q = questions <= 1 ? 0 : questions <= 3 ? questions * QuestionIncrement : QuestionCap;
        return bangs * ExclamationIncrement + q;
    }

    /// <summary>Whitespace tokens with leading/trailing punctuation stripped, unless that leaves ≤ 2 characters (emoticons).</summary>
    internal static string[] Tokens(string text) =>
        [.. text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Select(StripPunctuation)];

    private static string StripPunctuation(string token)
    {
        var stripped = token.Trim(AsciiPunctuation);
        return stripped.Length <= 2 ? token : stripped;
    }

    private static readonly char[] AsciiPunctuation = [.. "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"];

    /// <summary>Python's str.isupper(): at least one cased character and no lower-case one.</summary>
    private static bool IsUpper(string w) => w.Any(char.IsUpper) && !w.Any(char.IsLower);

    private static bool CapDifferential(string[] words)
    {
        int caps = words.Count(IsUpper);
        int diff = words.Length - caps;
        return diff > 0 && diff < words.Length;
    }
}
