// The toy translation task of RL on a metric: story-world English sentences into "Storish", a deterministic synthetic
// language with its own lexicon and word order, so a reference translation exists for every sentence and BLEU/chrF can
// score a model's output against it. Storish, by rule:
//   1. Lexicon: one invented lower-case word per English unit (Translation.TargetLexicon), a bijection, with two many-to-one
//      rules: "a" and "an" are one article (English picks the form by the next word's sound), and a two-word verb
//      ("gave away", "threw away", "sat down") is one word. Names are copied unchanged.
//   2. Noun phrases put the noun first: "the kind farmer" → FARMER KIND THE, "a shiny key" → KEY SHINY A.
//   3. Verb-final clauses with postpositions (SOV): each sentence template has its Storish form (TargetForms), e.g.
//      "{char} found {object} near {place} and felt very {feeling} ." → "{char} {place} near {object} found and {feeling} very felt .".
//   Weather clauses ("the sun was shining") are idioms translated word by word. Punctuation is kept, written as in English.
// Back-translation (Storish → English) inverts all three rules, so tests check the language is invertible.
using System.Text;
using System.Text.RegularExpressions;

namespace RlhfSharp.Text.StoryWorld;

/// <summary>One English sentence and its Storish reference translation.</summary>
public sealed record TranslationPair(string English, string Storish);

public static class Translation
{
    // Separate streams: sentences for training pairs, for RL prompts and for held-out prompts.
    private const ulong SentenceStream = 0x7A5E11E5UL, LexiconSeed = 0x5704_1E5BUL;

    /// <summary>The Storish form of each template (same order as StoryGrammar.Templates): slots {slot#k}, k the slot's occurrence in the English form.</summary>
    internal static readonly string[] TargetForms =
    [
        "{time#0} one , {char#0} {object#0} with {place#0} to went .",
        "{char#0} {place#0} in {place#1} to next lived .",
        "{time#0} that on , {place#0} over {weather#0} .",
        "{char#0} {place#0} near {object#0} found and {feeling#0} very felt .",
        "{char#0} {place#0} at {char#1} {social#0} , and then they together {intr#0} .",
        "{char#0} {object#0} saw when , {char#1} {intr#0} and {intr#1} .",
        "{char#0} {object#0} {objverb#0} because {char#1} {feeling#0} was .",
        "later , {weather#0} , so {place#0} at everyone {feeling#0} felt .",
        "then {char#0} {intr#0} because {theobject#0} so {objadj#0} was .",
        "end the in , {char#0} that it {dayadj#0} day a was said .",
        "night that , {char#0} {feeling#0} and {feeling#1} feeling home went .",
    ];

    private static readonly Lazy<(Dictionary<string, string> Forward, Dictionary<string, string> Backward)> Lexicons = new(BuildLexicon);

    /// <summary>English unit (lower case; "a" stands for "a"/"an"; two-word verbs are one unit) → Storish word. Names are not in it: they are copied.</summary>
    public static IReadOnlyDictionary<string, string> TargetLexicon => Lexicons.Value.Forward;

    /// <summary>English → Storish: the names are copied, every other word goes through <see cref="Lexicon"/>, rearranged by the template's Storish form.</summary>
    public static string Translate(string english)
    {
        var (template, slots) = Parse(english);
        var target = new List<string>();
        foreach (string part in TargetForms[template].Split(' '))
        {
            if (SlotRef(part) is { } slot) target.AddRange(TranslateSlot(slot.Name, slots[(slot.Name, slot.Index)]));
            else target.Add(Word(part));
        }
        return Render(target, capitalise: false);
    }

    /// <summary>English of a Storish sentence made by <see cref="Translate"/> (the inverse); throws when it is not Storish.</summary>
    public static string BackTranslate(string storish)
    {
        string normalized = Normalize(storish, lowerNames: false);
        for (int t = 0; t < TargetForms.Length; t++)
        {
            var match = TargetRecognizers.Value[t].Match(normalized);
            if (!match.Success) continue;
            var english = new List<string>();
            var seen = new Dictionary<string, int>();
            foreach (string part in StoryGrammar.Templates[t].Form.Split(' '))
            {
                if (!part.StartsWith('{'))
                {
                    english.Add(part);
                    continue;
                }
                string slot = part[1..^1];
                int k = seen.GetValueOrDefault(slot);
                seen[slot] = k + 1;
                english.AddRange(BackTranslateSlot(slot, match.Groups[GroupName(slot, k)].Value.Split(' ')));
            }
            return Render(english, capitalise: true);
        }
        throw new FormatException($"not a Storish sentence: \"{storish}\".");
    }

    /// <summary>n story-world sentences (every sentence of consecutive stories) with their translations; same seed, same pairs.</summary>
    public static IReadOnlyList<TranslationPair> Pairs(ulong seed, int n)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        var result = new List<TranslationPair>(n);
        foreach (string sentence in Stories.Sentences(seed ^ SentenceStream, n)) result.Add(new TranslationPair(sentence, Translate(sentence)));
        return result;
    }

    /// <summary>The prompt a model continues with the translation: "Translate: ENGLISH\n".</summary>
    public static string Prompt(string english) => $"Translate: {english}\n";

    // ---- Parsing English: which template, and the words each slot occurrence holds.

    private static readonly Lazy<Regex[]> SourceRecognizers = new(() => [.. StoryGrammar.Templates.Select(t => Recognizer(t.Form, StoryGrammar.SlotPattern,
        part => part == "a" ? "(?:a|an)" : Regex.Escape(part.ToLowerInvariant())))]);

    private static readonly Lazy<Regex[]> TargetRecognizers = new(() => [.. TargetForms.Select(f => Recognizer(f, TargetSlotPattern, part => Regex.Escape(Word(part))))]);

    private static (int Template, Dictionary<(string, int), string[]> Slots) Parse(string english)
    {
        string normalized = Normalize(english, lowerNames: true);
        for (int t = 0; t < StoryGrammar.Templates.Length; t++)
        {
            var match = SourceRecognizers.Value[t].Match(normalized);
            if (!match.Success) continue;
            var slots = new Dictionary<(string, int), string[]>();
            var seen = new Dictionary<string, int>();
            foreach (string part in StoryGrammar.Templates[t].Form.Split(' ').Where(p => p.StartsWith('{')))
            {
                string slot = part[1..^1];
                int k = seen.GetValueOrDefault(slot);
                seen[slot] = k + 1;
                slots[(slot, k)] = match.Groups[GroupName(slot, k)].Value.Split(' ');
            }
            return (t, slots);
        }
        throw new FormatException($"not a story-world sentence (no template matches): \"{english}\".");
    }

    // A template as a regex whose slot occurrences are named groups, its other words matched by `literal`.
    private static Regex Recognizer(string form, Func<string, string> slotPattern, Func<string, string> literal)
    {
        var seen = new Dictionary<string, int>();
        var parts = form.Split(' ').Select(part =>
        {
            if (SlotRef(part) is { } r) return $"(?<{GroupName(r.Name, r.Index)}>{slotPattern(r.Name)})";
            if (part.StartsWith('{'))
            {
                string slot = part[1..^1];
                int k = seen.GetValueOrDefault(slot);
                seen[slot] = k + 1;
                return $"(?<{GroupName(slot, k)}>{slotPattern(slot)})";
            }
            return literal(part);
        });
        return new Regex("^" + string.Join(" ", parts) + "$", RegexOptions.CultureInvariant);
    }

    private static string GroupName(string slot, int k) => $"{slot}{k}";

    private static (string Name, int Index)? SlotRef(string part)
    {
        if (!part.StartsWith('{') || !part.Contains('#')) return null;
        string[] s = part[1..^1].Split('#');
        return (s[0], int.Parse(s[1], System.Globalization.CultureInfo.InvariantCulture));
    }

    // Lower case (names too when parsing English, whose patterns are lower case), punctuation split off as its own token.
    private static string Normalize(string sentence, bool lowerNames)
    {
        var sb = new StringBuilder();
        foreach (char c in sentence.Trim())
        {
            if (c is ',' or '.' or '!' or '?') sb.Append(' ').Append(c).Append(' ');
            else sb.Append(c);
        }
        var words = sb.ToString().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return string.Join(' ', words.Select(w => lowerNames || !IsName(w) ? w.ToLowerInvariant() : w));
    }

    private static bool IsName(string word) => Lexicon.Names.Any(n => n.Text == word);

    // ---- Slot fillers, both directions.

    private static IEnumerable<string> TranslateSlot(string slot, string[] words) => slot switch
    {
        // Rule 2: the noun first, then its adjective, then the article.
        "char" when words.Length == 1 => [NameCase(words[0])],
        "char" or "place" or "object" or "theobject" => words.Reverse().Select(Word),
        // Rule 1: a two-word verb is one unit; a weather clause is word by word.
        "social" or "objverb" or "intr" => [Word(string.Join(' ', words))],
        _ => words.Select(Word),
    };

    private static IEnumerable<string> BackTranslateSlot(string slot, string[] words) => slot switch
    {
        "char" when words.Length == 1 && char.IsUpper(words[0][0]) => [words[0]],
        "char" or "place" or "object" or "theobject" => words.Reverse().Select(EnglishWord),
        "social" or "objverb" or "intr" => EnglishWord(words[0]).Split(' '),
        _ => words.Select(EnglishWord),
    };

    private static string NameCase(string lowerName) => Lexicon.Names.First(n => n.Text.Equals(lowerName, StringComparison.OrdinalIgnoreCase)).Text;

    private static string Word(string english)
    {
        if (english is "," or "." or "!" or "?") return english;
        string unit = english == "an" ? "a" : english;
        return Lexicons.Value.Forward.TryGetValue(unit, out string? w) ? w : throw new FormatException($"\"{english}\" is not a story-world word.");
    }

    private static string EnglishWord(string storish)
    {
        if (storish is "," or "." or "!" or "?") return storish;
        return Lexicons.Value.Backward.TryGetValue(storish, out string? w) ? w : throw new FormatException($"\"{storish}\" is not a Storish word.");
    }

    // The Storish pattern of a slot: the English alternatives translated, in Storish order.
    private static string TargetSlotPattern(string slot)
    {
        string Alt(IEnumerable<string> englishUnits) =>
            "(?:" + string.Join("|", englishUnits.Select(u => Regex.Escape(Word(u.ToLowerInvariant()))).Distinct().OrderByDescending(s => s.Length)) + ")";
        string Words(IEnumerable<LexiconEntry> entries) => Alt(entries.Select(e => e.Text));
        string the = Regex.Escape(Word("the")), a = Regex.Escape(Word("a"));
        string names = "(?:" + string.Join("|", Lexicon.Names.Select(n => Regex.Escape(n.Text))) + ")";
        return slot switch
        {
            "char" => $"(?:{names}|{Words(Lexicon.Creatures)}(?: {Words(Lexicon.CharacterAdjectives)})? {the})",
            "place" => $"{Words(Lexicon.PlaceNouns)}(?: {Words(Lexicon.PlaceAdjectives)})? {the}",
            "object" => $"{Words(Lexicon.ObjectNouns)}(?: {Words(Lexicon.ObjectAdjectives)})? {a}",
            "theobject" => $"{Words(Lexicon.ObjectNouns)} {the}",
            "time" => Words(Lexicon.Times),
            "feeling" => Words(Lexicon.Feelings),
            "social" => Words(Lexicon.SocialVerbs),
            "objverb" => Words(Lexicon.ObjectVerbs),
            "intr" => Words(Lexicon.Intransitives),
            "dayadj" => Words(Lexicon.DayAdjectives),
            "objadj" => Words(Lexicon.ObjectAdjectives),
            "weather" => "(?:" + string.Join("|", Lexicon.Weather.Select(e => string.Join(' ', e.Text.Split(' ').Select(w => Regex.Escape(Word(w)))))) + ")",
            _ => throw new InvalidOperationException($"Unknown story-grammar slot {{{slot}}}."),
        };
    }

    // Words joined by spaces, no space before punctuation; English sentences start with a capital.
    private static string Render(List<string> words, bool capitalise)
    {
        if (capitalise)
            for (int i = 0; i + 1 < words.Count; i++)
                if (words[i] is "a" or "an") words[i] = "aeiou".Contains(words[i + 1][0]) ? "an" : "a";
        var sb = new StringBuilder();
        foreach (string w in words)
        {
            if (sb.Length > 0 && w is not ("," or "." or "!" or "?")) sb.Append(' ');
            sb.Append(w);
        }
        if (capitalise && sb.Length > 0) sb[0] = char.ToUpperInvariant(sb[0]);
        return sb.ToString();
    }

    // ---- The lexicon: invented words from a fixed seed, one per English unit, never an English story word.

    private static (Dictionary<string, string>, Dictionary<string, string>) BuildLexicon()
    {
        var names = new HashSet<string>(Lexicon.Names.Select(n => n.Text.ToLowerInvariant()), StringComparer.Ordinal);
        var phrasalVerbs = Lexicon.SocialVerbs.Concat(Lexicon.ObjectVerbs).Concat(Lexicon.Intransitives).Select(e => e.Text).Where(t => t.Contains(' '));
        var units = Lexicon.Words.Where(w => !names.Contains(w) && w != "an").Concat(phrasalVerbs).Distinct().Order(StringComparer.Ordinal).ToList();
        var english = new HashSet<string>(Lexicon.Words, StringComparer.Ordinal);
        const string consonants = "bdfgklmnprstvz", vowels = "aeiou";
        var rng = new StoryRng(LexiconSeed);
        var forward = new Dictionary<string, string>(StringComparer.Ordinal);
        var backward = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string unit in units)
        {
            // Short English words get one syllable (CV or CVC), longer ones two or three.
            int syllables = unit.Length <= 3 ? 1 : unit.Length <= 6 ? 2 : 3;
            string word;
            do
            {
                var sb = new StringBuilder();
                for (int s = 0; s < syllables; s++) sb.Append(consonants[rng.NextInt(consonants.Length)]).Append(vowels[rng.NextInt(vowels.Length)]);
                if (rng.NextDouble() < 0.4) sb.Append(consonants[rng.NextInt(consonants.Length)]);
                word = sb.ToString();
            } while (backward.ContainsKey(word) || english.Contains(word));
            forward[unit] = word;
            backward[word] = unit;
        }
        return (forward, backward);
    }
}
