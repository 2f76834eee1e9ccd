// VADER-style scores checked against arithmetic done by hand from vader_lexicon.txt and the rules, and against
// the compound values vaderSentiment's own README prints for its example sentences.
using RlhfSharp.Feedback.Labelers;

namespace RlhfSharp.Feedback.Tests;

public sealed class VaderSentimentTests
{
    private static readonly Lazy<VaderSentiment> Vader = new(() => VaderSentiment.Load(Repository.Data("sentiment", "vader_lexicon.txt")));

    private static double Norm(double x) => x / Math.Sqrt(x * x + 15);

    [Fact]
    public void TheLexiconLoadsAndHoldsTheValuesTheHandComputationsUse()
    {
        var v = Vader.Value;
        // 7,517 lines, 14 tokens listed twice (the later line wins, as in the Python dict): 7,503 entries.
        Assert.Equal(7503, v.LexiconSize);
        Assert.Equal(1.9, v.Valence("good"));
        Assert.Equal(-2.5, v.Valence("horrible"));
        Assert.Equal(1.7, v.Valence("smart"));
        Assert.Equal(2.2, v.Valence("handsome"));
        Assert.Equal(1.9, v.Valence("funny"));
        foreach (var neutral in new[] { "the", "book", "was", "very", "not", "but", "food", "service", "is", "and" })
            Assert.Null(v.Valence(neutral));
    }

    [Fact]
    public void PlainNegatedBoostedCappedSentencesMatchHandArithmetic()
    {
        var v = Vader.Value;
        // "good" alone: 1.9 → 1.9/√(1.9²+15) = 1.9/4.31393 = 0.44043. pos = (1.9+1)/(2.9+3 neutral) = 0.49153.
        var plain = v.Score("The book was good.");
        Assert.Equal(0.44043, plain.Compound, 4);
        Assert.Equal(2.9 / 5.9, plain.Positive, 6);
        Assert.Equal(3 / 5.9, plain.Neutral, 6);
        Assert.Equal(0, plain.Negative);
        // "not" right before: 1.9 × −0.74 = −1.406 → −1.406/4.12030 = −0.34124.
        Assert.Equal(-0.34124, v.Compound("The book was not good"), 4);
        // "very" booster: 1.9 + 0.293 = 2.193; one "!" adds 0.292 → 2.485/4.60165 = 0.54002.
        Assert.Equal(0.54002, v.Compound("The book was very good!"), 4);
        // ALL CAPS among lower-case words: 1.9 + 0.733 = 2.633 → 2.633/4.68323 = 0.56222.
        Assert.Equal(0.56222, v.Compound("The book was GOOD"), 4);
        // "but": before ×0.5, after ×1.5: 0.95 − 3.75 = −2.8 → −2.8/4.77912 = −0.58588.
        Assert.Equal(-0.58588, v.Compound("The food was good but the service was horrible"), 4);
        // Exclamation marks count at most four: 1.9 + 4 × 0.292 = 3.068.
        Assert.Equal(Norm(3.068), v.Compound("The book was good!!!!!!"), 6);
        Assert.Equal(0, v.Compound("The book was a book."));
        Assert.Equal(0, v.Compound(""));
    }

    [Fact]
    public void TheReadmeExamplesScoreAsPublished()
    {
        var v = Vader.Value;
        // Compound values printed in cjhutto/vaderSentiment's README for its example sentences.
        Assert.Equal(0.8316, v.Compound("VADER is smart, handsome, and funny."), 4);
        Assert.Equal(0.8439, v.Compound("VADER is smart, handsome, and funny!"), 4);
        Assert.Equal(0.8545, v.Compound("VADER is very smart, handsome, and funny."), 4);
        Assert.Equal(0.9227, v.Compound("VADER is VERY SMART, handsome, and FUNNY."), 4);
        Assert.Equal(0.9342, v.Compound("VADER is VERY SMART, handsome, and FUNNY!!!"), 4);
        Assert.Equal(-0.7424, v.Compound("VADER is not smart, handsome, nor funny."), 4);
        Assert.Equal(0.431, v.Compound("At least it isn't a horrible book."), 3);
    }

    [Fact]
    public void ABadLexiconLineIsNamed()
    {
        using var dir = new TempDirectory();
        var path = dir.File("lex.txt");
        File.WriteAllLines(path, ["good\t1.9\t0.5", "bad\tminus"]);
        var ex = Assert.Throws<InvalidDataException>(() => VaderSentiment.Load(path));
        Assert.Contains($"{path}:2", ex.Message);
    }
}
