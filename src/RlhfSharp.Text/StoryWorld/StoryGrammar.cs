// The story world's grammar: sentence templates whose slots draw from the Lexicon. One definition serves both
// directions: generation (slots filled at random, words biased toward the story's mood) and recognition
// (each template compiles to a regex over lower-case tokens), so everything generated is grammatical by construction.
using System.Text;
using System.Text.RegularExpressions;

namespace RlhfSharp.Text.StoryWorld;

/// <summary>Where a sentence form may appear in a story.</summary>
internal enum SentenceRole { Opening, Middle, Ending }

internal sealed record SentenceTemplate(SentenceRole Role, string Form);

internal static class StoryGrammar
{
    // {slot} names: char, place, object, theobject, time, feeling, social, objverb, intr, dayadj, weather, objadj.
    public static readonly SentenceTemplate[] Templates =
    [
        new(SentenceRole.Opening, "One {time} , {char} went to {place} with {object} ."),
        new(SentenceRole.Opening, "{char} lived in {place} next to {place} ."),
        new(SentenceRole.Opening, "On that {time} , {weather} over {place} ."),
        new(SentenceRole.Middle, "{char} found {object} near {place} and felt very {feeling} ."),
        new(SentenceRole.Middle, "{char} {social} {char} at {place} , and then they {intr} together ."),
        new(SentenceRole.Middle, "When {char} saw {object} , {char} {intr} and {intr} ."),
        new(SentenceRole.Middle, "{char} {objverb} {object} because {char} was {feeling} ."),
        new(SentenceRole.Middle, "Later , {weather} , so everyone at {place} felt {feeling} ."),
        new(SentenceRole.Middle, "Then {char} {intr} because {theobject} was so {objadj} ."),
        new(SentenceRole.Ending, "In the end , {char} said that it was a {dayadj} day ."),
        new(SentenceRole.Ending, "That night , {char} went home feeling {feeling} and {feeling} ."),
    ];

    private static readonly Regex[] Recognizers = Templates.Select(t => new Regex("^" + Pattern(t.Form) + "$",
        RegexOptions.CultureInvariant)).ToArray();

    private static string Alternatives(IEnumerable<LexiconEntry> entries) =>
        "(?:" + string.Join("|", entries.Select(e => Regex.Escape(e.Text.ToLowerInvariant())).Distinct().OrderByDescending(s => s.Length)) + ")";

    internal static string SlotPattern(string slot) => slot switch
    {
        "char" => $"(?:{Alternatives(Lexicon.Names)}|the (?:{Alternatives(Lexicon.CharacterAdjectives)} )?{Alternatives(Lexicon.Creatures)})",
        "place" => $"the (?:{Alternatives(Lexicon.PlaceAdjectives)} )?{Alternatives(Lexicon.PlaceNouns)}",
        "object" => $"(?:a|an) (?:{Alternatives(Lexicon.ObjectAdjectives)} )?{Alternatives(Lexicon.ObjectNouns)}",
        "theobject" => $"the {Alternatives(Lexicon.ObjectNouns)}",
        "time" => Alternatives(Lexicon.Times),
        "feeling" => Alternatives(Lexicon.Feelings),
        "social" => Alternatives(Lexicon.SocialVerbs),
        "objverb" => Alternatives(Lexicon.ObjectVerbs),
        "intr" => Alternatives(Lexicon.Intransitives),
        "dayadj" => Alternatives(Lexicon.DayAdjectives),
        "weather" => Alternatives(Lexicon.Weather),
        "objadj" => Alternatives(Lexicon.ObjectAdjectives),
        _ => throw new InvalidOperationException($"Unknown story-grammar slot {{{slot}}}."),
    };

    // The article "a" in a template also accepts "an" (Render picks the one the next word needs).
    private static string Pattern(string form) => string.Join(" ", form.Split(' ').Select(part =>
        part.StartsWith('{') ? SlotPattern(part[1..^1]) : part == "a" ? "(?:a|an)" : Regex.Escape(part.ToLowerInvariant())));

    /// <summary>True when the lower-case tokens (words and , . ! ? separated by single spaces) form one template sentence.</summary>
    public static bool Recognizes(string normalizedSentence) => Recognizers.Any(r => r.IsMatch(normalizedSentence));

    /// <summary>
    /// Fills a template; words are drawn with weight exp(3·mood·sentiment), so mood +1 favours positive words.
    /// Half of the character slots name the story's <paramref name="protagonist"/>, so stories keep a subject.
    /// </summary>
    public static string Generate(SentenceTemplate template, StoryRng rng, int mood, IReadOnlyList<string>? protagonist = null)
    {
        var words = new List<string>();
        var used = new Dictionary<string, string>();
        foreach (string part in template.Form.Split(' '))
        {
            if (!part.StartsWith('{'))
            {
                words.Add(part);
                continue;
            }
            string slot = part[1..^1];
            // A slot used twice in one sentence gets two different fillers ("Tom helped Mia", "glad and proud").
            List<string> phrase = Fill(slot, rng, mood, protagonist);
            for (int attempt = 0; attempt < 10 && used.TryGetValue(slot, out string? before) && before == string.Join(' ', phrase); attempt++)
                phrase = Fill(slot, rng, mood, null);
            used[slot] = string.Join(' ', phrase);
            words.AddRange(phrase);
        }
        return Render(words);
    }

    private static List<string> Fill(string slot, StoryRng rng, int mood, IReadOnlyList<string>? protagonist)
    {
        var phrase = new List<string>();
        switch (slot)
        {
            case "char":
                if (protagonist is not null && rng.NextDouble() < 0.5)
                {
                    phrase.AddRange(protagonist);
                }
                else
                {
                    phrase.AddRange(Character(rng, mood));
                }
                break;
            case "place":
                phrase.Add("the");
                if (rng.NextDouble() < 0.5) phrase.Add(Pick(Lexicon.PlaceAdjectives, rng, mood));
                phrase.Add(Pick(Lexicon.PlaceNouns, rng, mood));
                break;
            case "object":
                {
                    string adjective = rng.NextDouble() < 0.6 ? Pick(Lexicon.ObjectAdjectives, rng, mood) : "";
                    string noun = Pick(Lexicon.ObjectNouns, rng, mood);
                    string next = adjective.Length > 0 ? adjective : noun;
                    phrase.Add("aeiou".Contains(next[0]) ? "an" : "a");
                    if (adjective.Length > 0) phrase.Add(adjective);
                    phrase.Add(noun);
                    break;
                }
            case "theobject":
                phrase.Add("the");
                phrase.Add(Pick(Lexicon.ObjectNouns, rng, mood));
                break;
            case "time": phrase.Add(Pick(Lexicon.Times, rng, mood)); break;
            case "feeling": phrase.Add(Pick(Lexicon.Feelings, rng, mood)); break;
            case "social": phrase.Add(Pick(Lexicon.SocialVerbs, rng, mood)); break;
            case "objverb": phrase.Add(Pick(Lexicon.ObjectVerbs, rng, mood)); break;
            case "intr": phrase.Add(Pick(Lexicon.Intransitives, rng, mood)); break;
            case "dayadj": phrase.Add(Pick(Lexicon.DayAdjectives, rng, mood)); break;
            case "weather": phrase.Add(Pick(Lexicon.Weather, rng, mood)); break;
            case "objadj": phrase.Add(Pick(Lexicon.ObjectAdjectives, rng, mood)); break;
            default: throw new InvalidOperationException($"Unknown story-grammar slot {{{slot}}}.");
        }
        return phrase;
    }

    /// <summary>A character phrase: a name, or "the" + optional adjective + creature.</summary>
    public static List<string> Character(StoryRng rng, int mood)
    {
        if (rng.NextDouble() < 0.5) return [Pick(Lexicon.Names, rng, mood)];
        var words = new List<string> { "the" };
        if (rng.NextDouble() < 0.6) words.Add(Pick(Lexicon.CharacterAdjectives, rng, mood));
        words.Add(Pick(Lexicon.Creatures, rng, mood));
        return words;
    }

    // Joins tokens: "a" or "an" as the next word needs, no space before punctuation, the first letter capitalised.
    private static string Render(List<string> words)
    {
        for (int i = 0; i + 1 < words.Count; i++)
        {
            if (words[i] is "a" or "an") words[i] = "aeiou".Contains(words[i + 1][0]) ? "an" : "a";
        }
        var sb = new StringBuilder();
        foreach (string w in words)
        {
            if (sb.Length > 0 && w is not ("," or "." or "!" or "?")) sb.Append(' ');
            sb.Append(w);
        }
        sb[0] = char.ToUpperInvariant(sb[0]);
        return sb.ToString();
    }

    // Cumulative weights per (word class, mood), computed once: the classes are static arrays.
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(LexiconEntry[], int), double[]> Weights = new();

    private static string Pick(LexiconEntry[] entries, StoryRng rng, int mood)
    {
        if (mood == 0) return entries[rng.NextInt(entries.Length)].Text;
        double[] weights = Weights.GetOrAdd((entries, mood),
            static key => key.Item1.Select(e => Math.Exp(3.0 * key.Item2 * PhraseSentiment(e))).ToArray());
        double u = rng.NextDouble() * weights.Sum();
        for (int i = 0; i < entries.Length; i++)
        {
            u -= weights[i];
            if (u < 0) return entries[i].Text;
        }
        return entries[^1].Text;
    }

    // A phrase's sentiment is the mean over its words (weather clauses carry sentiment only in their words).
    private static double PhraseSentiment(LexiconEntry e)
    {
        if (e.Sentiment != 0 || !e.Text.Contains(' ')) return e.Sentiment;
        var parts = e.Text.ToLowerInvariant().Split(' ');
        return parts.Average(w => Lexicon.Sentiment(w) ?? 0);
    }
}

/// <summary>SplitMix64 (Steele et al. 2014): a tiny seeded generator so the story world needs nothing but the BCL
/// and gives the same text on every platform and .NET version (System.Random's seeded sequence is not promised).</summary>
internal sealed class StoryRng(ulong seed)
{
    private ulong _state = seed;

    public ulong NextUInt64()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    public int NextInt(int n) => (int)(NextDouble() * n);
}
