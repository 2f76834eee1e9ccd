// VADER's n-gram rules, equal to cjhutto/vaderSentiment's vaderSentiment.py: _special_idioms_check (SPECIAL_CASES idioms
// replace a word's valence; the two-word dampeners "kind of"/"sort of" add B_DECR = −0.293) and where it applies (only
// when the third word back exists and is not a lexicon word). A small lexicon keeps each hand computation short;
// compound = x / √(x² + 15).
using RlhfSharp.Feedback.Labelers;

namespace RlhfSharp.Feedback.Tests;

public sealed class VaderIdiomTests
{
    private static readonly VaderSentiment Vader = new(new Dictionary<string, double>
    {
        ["good"] = 1.9, ["bad"] = -2.5, ["bomb"] = -2.2, ["broken"] = -2.1, ["kiss"] = 1.8, ["death"] = -2.9,
    });

    private static double N(double x) => x / Math.Sqrt(x * x + 15);

    // "good" (i = 6): the words 1–3 back ("of", "kind", "only") are no boosters, so 1.9 stands; i > 2 and "only" is not a
    // lexicon word, so _special_idioms_check runs: no SPECIAL_CASES match; twoone "kind of" is a booster n-gram:
    // 1.9 − 0.293 = 1.607; "kind" before "of" scores 0. compound = 1.607/√(1.607² + 15) = 0.383245.
    [Fact]
    public void KindOf_DampensTheNextWord()
    {
        Assert.Equal(N(1.9 - 0.293), Vader.Compound("The book was only kind of good."), 12);
        Assert.Equal(0.383245, Vader.Compound("The book was only kind of good."), 6);
    }

    // "bad" (i = 3), "It" not a lexicon word: twoone "sort of" adds B_DECR without the sign flip single boosters get:
    // −2.5 − 0.293 = −2.793; compound = −0.584919.
    [Fact]
    public void SortOf_AddsTheDecrementWhateverTheSign()
    {
        Assert.Equal(-0.584919, Vader.Compound("It was sort of bad"), 6);
    }

    // At i = 2 the check does not run (the reference requires i > 2): "kind of good" scores plain 1.9 → 0.440225.
    [Fact]
    public void TheNGramRuleNeedsThreeWordsBefore()
    {
        Assert.Equal(N(1.9), Vader.Compound("kind of good"), 12);
    }

    // "bomb" (i = 4; "party" 3 back is no lexicon word): onezero "the bomb" is a SPECIAL_CASES idiom, valence 3 instead of
    // −2.2: compound = 3/√24 = 0.612372.
    [Fact]
    public void TheBomb_IsPositive()
    {
        Assert.Equal(0.612372, Vader.Compound("This party is the bomb"), 6);
    }

    // "broken" (i = 3): zeroone "broken heart" (the word and the next) overrides: −2.9; compound = −2.9/√23.41 = −0.599373.
    [Fact]
    public void BrokenHeart_LooksAhead()
    {
        Assert.Equal(-0.599373, Vader.Compound("I have a broken heart"), 6);
    }

    // "kiss" (i = 3): zeroonetwo "kiss of death" → −1.5 (instead of +1.8). "death" (i = 5): "the" 3 back is no lexicon
    // word, so the check runs: twoonezero "kiss of death" → −1.5 (instead of −2.9). Sum −3: compound = −3/√24 = −0.612372.
    [Fact]
    public void KissOfDeath_ReplacesBothLexiconWords()
    {
        Assert.Equal(-0.612372, Vader.Compound("That was the kiss of death"), 6);
    }
}
