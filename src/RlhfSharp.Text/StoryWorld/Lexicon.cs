// The story world's vocabulary: word classes for the grammar's slots, each word with the sentiment value this
// project assigns it (−1 most negative … +1 most positive; most words are 0). The gold scorer reads these values.
namespace RlhfSharp.Text.StoryWorld;

/// <summary>A word (or fixed phrase) a slot can produce, with its per-word sentiment.</summary>
public sealed record LexiconEntry(string Text, double Sentiment);

public static class Lexicon
{
    public static readonly LexiconEntry[] Names = Neutral("Tom", "Mia", "Sam", "Lily", "Ben", "Anna", "Max", "Zoe", "Leo", "Emma", "Jack", "Rosa");

    public static readonly LexiconEntry[] Creatures = Neutral("farmer", "baker", "king", "queen", "dog", "cat", "fox", "bird", "rabbit",
        "teacher", "doctor", "girl", "boy", "sailor", "giant", "princess");

    public static readonly LexiconEntry[] CharacterAdjectives =
    [
        new("kind", 0.7), new("friendly", 0.6), new("gentle", 0.5), new("brave", 0.5), new("cheerful", 0.7), new("clever", 0.4),
        new("cruel", -0.9), new("grumpy", -0.5), new("mean", -0.7), new("lazy", -0.4), new("rude", -0.7), new("selfish", -0.6),
        new("old", 0), new("little", 0), new("young", 0), new("tall", 0), new("sleepy", 0),
    ];

    public static readonly LexiconEntry[] PlaceNouns =
    [
        .. Neutral("park", "forest", "village", "beach", "garden", "castle", "market", "river", "school", "kitchen", "hill",
            "meadow", "library", "harbor", "farm", "bakery", "cave"),
        new("swamp", -0.3), new("ruins", -0.3),
    ];

    public static readonly LexiconEntry[] PlaceAdjectives =
    [
        new("sunny", 0.6), new("lovely", 0.8), new("peaceful", 0.7), new("quiet", 0.2), new("green", 0.1),
        new("dark", -0.4), new("muddy", -0.4), new("gloomy", -0.6), new("noisy", -0.3),
        new("busy", 0), new("big", 0), new("small", 0),
    ];

    public static readonly LexiconEntry[] ObjectNouns = Neutral("ball", "book", "cake", "kite", "box", "lamp", "map", "key", "flower",
        "apple", "letter", "boat", "hat", "coin", "drum", "basket", "toy", "pie", "shell", "umbrella");

    public static readonly LexiconEntry[] ObjectAdjectives =
    [
        new("shiny", 0.5), new("beautiful", 0.8), new("delicious", 0.8), new("warm", 0.4), new("sweet", 0.6), new("golden", 0.5),
        new("bright", 0.5), new("lovely", 0.8),
        new("broken", -0.6), new("rotten", -0.8), new("dirty", -0.5), new("ugly", -0.7), new("wet", -0.2), new("smelly", -0.6),
        new("red", 0), new("blue", 0), new("green", 0), new("round", 0), new("wooden", 0), new("small", 0), new("big", 0),
        new("old", 0), new("tiny", 0), new("heavy", -0.1),
    ];

    public static readonly LexiconEntry[] Times = Neutral("morning", "day", "evening", "afternoon", "night");

    public static readonly LexiconEntry[] Feelings =
    [
        new("happy", 0.8), new("glad", 0.7), new("proud", 0.6), new("calm", 0.4), new("excited", 0.6), new("joyful", 0.9),
        new("grateful", 0.8), new("curious", 0.2), new("surprised", 0.1),
        new("sad", -0.7), new("angry", -0.7), new("scared", -0.6), new("lonely", -0.6), new("tired", -0.3), new("upset", -0.6),
        new("miserable", -0.9), new("bored", -0.3),
    ];

    /// <summary>Past-tense verbs taking a character as object.</summary>
    public static readonly LexiconEntry[] SocialVerbs =
    [
        new("helped", 0.6), new("hugged", 0.8), new("thanked", 0.7), new("praised", 0.7), new("visited", 0.1),
        new("met", 0), new("followed", 0), new("called", 0), new("watched", 0),
        new("teased", -0.5), new("pushed", -0.6), new("scolded", -0.6), new("ignored", -0.5), new("blamed", -0.6), new("chased", -0.2),
    ];

    /// <summary>Past-tense verbs taking an object.</summary>
    public static readonly LexiconEntry[] ObjectVerbs =
    [
        new("found", 0.1), new("carried", 0), new("opened", 0), new("painted", 0.2), new("bought", 0.1), new("cleaned", 0.2),
        new("shared", 0.7), new("fixed", 0.4), new("gave away", 0.3),
        new("dropped", -0.3), new("lost", -0.6), new("broke", -0.7), new("hid", -0.1), new("threw away", -0.3),
    ];

    /// <summary>Past-tense intransitive verbs.</summary>
    public static readonly LexiconEntry[] Intransitives =
    [
        new("laughed", 0.7), new("smiled", 0.7), new("danced", 0.6), new("sang", 0.5), new("cheered", 0.7), new("rested", 0.2),
        new("waited", 0), new("walked", 0), new("sat down", 0), new("nodded", 0),
        new("cried", -0.7), new("shouted", -0.4), new("sighed", -0.3), new("frowned", -0.5), new("trembled", -0.5), new("screamed", -0.7),
    ];

    /// <summary>Adjectives for "it was a ___ day".</summary>
    public static readonly LexiconEntry[] DayAdjectives =
    [
        new("wonderful", 1.0), new("great", 0.8), new("perfect", 0.9), new("good", 0.6), new("nice", 0.6),
        new("strange", -0.1), new("long", -0.1), new("ordinary", 0), new("busy", 0),
        new("terrible", -0.9), new("awful", -0.9), new("bad", -0.6), new("horrible", -1.0),
    ];

    /// <summary>Weather clauses; their words carry their own sentiment (listed in <see cref="PhraseWords"/>).</summary>
    public static readonly LexiconEntry[] Weather = Neutral(
        "the sun was shining", "the sky was clear and blue", "it was warm and sunny", "a soft breeze was blowing",
        "the clouds were gray", "it was quiet and still",
        "a cold wind was blowing", "dark clouds filled the sky", "it was raining hard", "a storm was coming");

    /// <summary>Sentiment of words that only appear inside phrases or templates (all others default to 0).</summary>
    public static readonly LexiconEntry[] PhraseWords =
    [
        new("sun", 0.4), new("shining", 0.5), new("clear", 0.3), new("soft", 0.3), new("breeze", 0.3), new("still", 0.1),
        new("cold", -0.4), new("raining", -0.4), new("storm", -0.7), new("clouds", -0.2), new("gray", -0.2),
    ];

    /// <summary>Words that only the templates use (all sentiment 0).</summary>
    public static readonly string[] TemplateWords =
    [
        "one", "went", "to", "the", "with", "a", "an", "on", "that", "over", "near", "and", "felt", "very", "then", "they",
        "together", "at", "when", "saw", "because", "was", "later", "so", "everyone", "in", "end", "said", "it", "day",
        "night", "home", "feeling", "lived", "is", "sky", "were", "filled", "wind", "blowing", "hard", "coming", "warm",
        "sunny", "quiet", "blue", "gave", "away", "threw", "sat", "down", "next",
    ];

    private static readonly Dictionary<string, double> SentimentByWord = BuildSentiments();

    private static LexiconEntry[] Neutral(params string[] words) => words.Select(w => new LexiconEntry(w, 0)).ToArray();

    private static Dictionary<string, double> BuildSentiments()
    {
        var map = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (string w in TemplateWords) map[w] = 0;
        // Phrase entries are split into words; a multi-word verb ("gave away") puts its value on its first word.
        foreach (var cls in new[] { Names, Creatures, CharacterAdjectives, PlaceNouns, PlaceAdjectives, ObjectNouns, ObjectAdjectives, Times,
                     Feelings, SocialVerbs, ObjectVerbs, Intransitives, DayAdjectives, Weather, PhraseWords })
        {
            foreach (var e in cls)
            {
                string[] parts = e.Text.ToLowerInvariant().Split(' ');
                for (int k = 0; k < parts.Length; k++)
                {
                    string w = parts[k];
                    double value = k == 0 ? e.Sentiment : 0;
                    // A word listed twice (e.g. "lovely" for places and objects) must carry one value.
                    if (map.TryGetValue(w, out double v) && v != 0 && value != 0 && v != value)
                        throw new InvalidOperationException($"Lexicon word \"{w}\" has two sentiments: {v} and {value}.");
                    if (!map.ContainsKey(w) || value != 0) map[w] = value;
                }
            }
        }
        return map;
    }

    /// <summary>Every word of the story world (lower case).</summary>
    public static IReadOnlyCollection<string> Words => SentimentByWord.Keys;

    /// <summary>The sentiment of a lower-case word, or null if it is not in the story world.</summary>
    public static double? Sentiment(string word) => SentimentByWord.TryGetValue(word, out double v) ? v : null;
}
