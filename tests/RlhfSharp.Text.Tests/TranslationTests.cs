// The toy translation task's language (Storish): deterministic, its lexicon a bijection, its word-order rules as stated in
// Translation's header, and invertible (back-translation recovers every English sentence).
using RlhfSharp.Text.StoryWorld;

namespace RlhfSharp.Text.Tests;

public sealed class TranslationTests
{
    private static string W(string english) => Translation.TargetLexicon[english];

    [Fact]
    public void Lexicon_IsABijectionOntoInventedWords_WithTheDeclaredManyToOneRules()
    {
        var lexicon = Translation.TargetLexicon;
        Assert.Equal(lexicon.Count, lexicon.Values.Distinct(StringComparer.Ordinal).Count());
        var english = Lexicon.Words.ToHashSet(StringComparer.Ordinal);
        Assert.All(lexicon.Values, w => Assert.Matches("^[a-z]+$", w));
        Assert.All(lexicon.Values, w => Assert.DoesNotContain(w, english));
        // Many-to-one: "an" has no entry of its own (it is "a"); a two-word verb is one word; names are copied.
        Assert.False(lexicon.ContainsKey("an"));
        Assert.True(lexicon.ContainsKey("gave away"));
        Assert.False(lexicon.ContainsKey("tom"));
    }

    [Fact]
    public void Translate_PutsNounsFirstAndVerbsLast_AsTheTemplateSays()
    {
        // "{char} found {object} near {place} and felt very {feeling} ." → "{char} {place} near {object} found and {feeling} very felt ."
        // with "the kind farmer" → farmer kind the, "an old key" → key old a, "the park" → park the.
        string expected = $"{W("farmer")} {W("kind")} {W("the")} {W("park")} {W("the")} {W("near")} {W("key")} {W("old")} {W("a")} {W("found")} "
            + $"{W("and")} {W("happy")} {W("very")} {W("felt")}.";
        Assert.Equal(expected, Translation.Translate("The kind farmer found an old key near the park and felt very happy."));
        // Names are copied; a two-word verb is one word: "{char} {objverb} {object} because {char} was {feeling} ."
        Assert.Equal($"Tom {W("ball")} {W("a")} {W("gave away")} {W("because")} Mia {W("sad")} {W("was")}.",
            Translation.Translate("Tom gave away a ball because Mia was sad."));
        Assert.Throws<FormatException>(() => Translation.Translate("Tom gave away a ball because Mia was purple."));
    }

    [Fact]
    public void Pairs_AreDeterministic_AndBackTranslationRecoversEveryEnglishSentence()
    {
        var pairs = Translation.Pairs(3, 400);
        Assert.Equal(pairs, Translation.Pairs(3, 400));
        Assert.NotEqual(pairs, Translation.Pairs(4, 400));
        Assert.All(pairs, p => Assert.Equal(p.English, Translation.BackTranslate(p.Storish)));
        // "a" and "an" are one Storish word, restored by the next English word's sound.
        Assert.Contains(pairs, p => p.English.Contains(" an ", StringComparison.Ordinal));
        Assert.Throws<FormatException>(() => Translation.BackTranslate("Tom was happy."));
    }
}
