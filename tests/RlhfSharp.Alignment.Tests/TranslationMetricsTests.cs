// BLEU and chrF against values worked by hand from their definitions (TranslationMetrics' header, after sacreBLEU 2.x), and
// the metric reward of RL on a metric.
using RlhfSharp.Alignment.Evaluation;
using RlhfSharp.Alignment.Ppo;

namespace RlhfSharp.Alignment.Tests;

public sealed class TranslationMetricsTests
{
    [Fact]
    public void Bleu_OfAOneWordSubstitution_IsTheGeometricMeanOfTheHandCountedPrecisions()
    {
        // hyp "the cat sat on the mat", ref "the cat is on the mat" (6 tokens each, BP = 1):
        //   1-grams: the×2, cat, on, mat match → 5/6;  2-grams: "the cat", "on the", "the mat" → 3/5;
        //   3-grams: "on the mat" → 1/4;  4-grams: none of 3 → exp smoothing, first zero order: 1/(2·3).
        // BLEU = 100 · (5/6 · 3/5 · 1/4 · 1/6)^(1/4).
        double expected = 100 * Math.Pow(5.0 / 6 * 3.0 / 5 * 1.0 / 4 * 1.0 / 6, 0.25);
        Assert.Equal(expected, TranslationMetrics.SentenceBleu("the cat sat on the mat", "the cat is on the mat"), 9);
        Assert.Equal(100, TranslationMetrics.SentenceBleu("the cat is on the mat", "the cat is on the mat"), 9);
    }

    [Fact]
    public void Bleu_OfAShortHypothesis_UsesTheEffectiveOrderAndTheBrevityPenalty()
    {
        // hyp "the cat" (c = 2), ref of 6 tokens: p1 = 2/2, p2 = 1/1, no 3-grams → effective order 2;
        // BP = exp(1 − 6/2) = e^−2, so BLEU = 100 · e^−2.
        Assert.Equal(100 * Math.Exp(-2), TranslationMetrics.SentenceBleu("the cat", "the cat is on the mat"), 9);
    }

    [Fact]
    public void Bleu_TakesTheClosestReferenceLength_AndClipsCountsByTheBestReference()
    {
        // hyp "the the the" against refs "the cat" (r = 2) and "the the dog eats" (r = 4): |3−2| = |3−4|, the shorter
        // (2) wins, so BP = 1. Unigram "the" ×3 is clipped at its largest count in one reference, 2 → p1 = 2/3;
        // bigram "the the" ×2 clipped at 1 → p2 = 1/2; trigram "the the the" 0/1 → 1/(2·1).
        double expected = 100 * Math.Pow(2.0 / 3 * 1.0 / 2 * 1.0 / 2, 1.0 / 3);
        Assert.Equal(expected, TranslationMetrics.SentenceBleu("the the the", "the cat", "the the dog eats"), 9);
        Assert.Equal(0, TranslationMetrics.SentenceBleu("dog", "cat"));
        Assert.Equal(0, TranslationMetrics.SentenceBleu("", "cat"));
    }

    [Fact]
    public void Tokenize13a_SplitsPunctuationButNotDecimalNumbersOrApostrophes()
    {
        // 13a's symbol class runs from space to '&', then '(' to '+': the apostrophe (0x27) is not in it.
        Assert.Equal(["Mia", "has", "3.5", "apples", ",", "Tom's", "!"], TranslationMetrics.Tokenize13a("Mia has 3.5 apples, Tom's!"));
        Assert.Equal(["a", "&", "b", "\""], TranslationMetrics.Tokenize13a("a &amp; b&quot;"));
    }

    [Fact]
    public void Chrf_AveragesPrecisionAndRecallOverTheOrdersBothSidesHave()
    {
        // hyp "a b" → "ab", ref "abc": n=1: P = 2/2, R = 2/3; n=2: P = 1/1, R = 1/2; n ≥ 3: the hypothesis has none.
        // chrP = 1, chrR = (2/3 + 1/2)/2 = 7/12; chrF2 = 100 · 5 · (7/12) / (4 + 7/12) = 100 · 7/11.
        Assert.Equal(100.0 * 7 / 11, TranslationMetrics.SentenceChrf("a b", "abc"), 9);
        Assert.Equal(100, TranslationMetrics.SentenceChrf("the cat", "thecat"), 9);
        Assert.Equal(0, TranslationMetrics.SentenceChrf("xyz", "abc"));
    }

    [Fact]
    public void Bleu_ExpSmoothing_HalvesAgainForEachFurtherOrderWithoutAMatch()
    {
        // hyp "a b c d e", ref "a b x y z" (c = r = 5, BP = 1): p1 = 2/5, p2 = "a b" 1/4; p3 0 of 3 → 1/(2·3);
        // p4 0 of 2 → 1/(4·2) (sentence_bleu's default "exp": the k-th order without a match counts 1/(2^k · total)).
        double expected = 100 * Math.Pow(2.0 / 5 * 1.0 / 4 * 1.0 / 6 * 1.0 / 8, 0.25);
        Assert.Equal(expected, TranslationMetrics.SentenceBleu("a b c d e", "a b x y z"), 9);
    }

    [Fact]
    public void Bleu_OfAHypothesisWithControlCharacters_CountsItsTokensAsTheyAre()
    {
        // A sampled response may hold any character (U+0001 once joined n-gram keys and made a unigram look like a bigram,
        // an index past order 4). hyp tokens ["a\u0001b", "c"], ref ["a", "b", "c"]: p1 = 1/2, p2 = 0 of 1 → 1/(2·1);
        // effective order 2; BP = exp(1 − 3/2).
        Assert.Equal(100 * Math.Exp(-0.5) * Math.Sqrt(1.0 / 2 * 1.0 / 2), TranslationMetrics.SentenceBleu("a\u0001b c", "a b c"), 9);
        Assert.Equal(0, TranslationMetrics.SentenceBleu("\u0001\u0001\u0001\u0001\u0001 x", "y"));
    }

    [Fact]
    public void CorpusBleu_SumsTheCountsOfAllSentencesBeforeOneScore_WithAllFourOrders()
    {
        // Sentence 1 as above: matches [5, 3, 1, 0] of [6, 5, 4, 3], c = r = 6. Sentence 2 "a dog" vs "a dog runs":
        // matches [2, 1, 0, 0] of [2, 1, 0, 0], c = 2, r = 3. Sums: [7, 4, 1, 0] of [8, 6, 4, 3], c = 8, r = 9;
        // BP = exp(1 − 9/8); p4 = 1/(2·3). No effective order: sentence 2 alone would stop at order 2.
        double expected = 100 * Math.Exp(1 - 9.0 / 8) * Math.Pow(7.0 / 8 * 4.0 / 6 * 1.0 / 4 * 1.0 / 6, 0.25);
        Assert.Equal(expected, TranslationMetrics.CorpusBleu(["the cat sat on the mat", "a dog"], [["the cat is on the mat"], ["a dog runs"]]), 9);
    }

    [Fact]
    public void Chrf_UsesCharacterSixGrams_AndWeighsRecallTwiceAsMuch()
    {
        // hyp "abcdefgh", ref "abcdefxh": per order n = 1..6 matched/total is the same both ways: 7/8, 5/7, 4/6, 3/5, 2/4,
        // 1/3; a 7th order (0 of 2) would lower it, so this pins n = 6. With P = R, chrF = 100 · P.
        double p = (7.0 / 8 + 5.0 / 7 + 4.0 / 6 + 3.0 / 5 + 2.0 / 4 + 1.0 / 3) / 6;
        Assert.Equal(100 * p, TranslationMetrics.SentenceChrf("abcdefgh", "abcdefxh"), 9);
        // hyp "ab", ref "abcd": chrP = 1, chrR = (2/4 + 1/3)/2 = 5/12; β = 2 gives 5·(5/12)/(4 + 5/12) = 25/53 (β = 1 would give 10/17).
        Assert.Equal(100.0 * 25 / 53, TranslationMetrics.SentenceChrf("ab", "abcd"), 9);
    }

    [Fact]
    public void CorpusChrf_SumsEachOrdersCountsOverSentences()
    {
        // "a b"/"abc": n=1 (hyp 2, ref 3, match 2), n=2 (1, 2, 1), n=3 (0, 1, 0). "xy"/"xz": n=1 (2, 2, 1), n=2 (1, 1, 0).
        // Sums: n=1 (4, 5, 3), n=2 (2, 3, 1), n=3 has no hypothesis n-gram. chrP = (3/4 + 1/2)/2 = 5/8, chrR = (3/5 + 1/3)/2 = 7/15;
        // chrF2 = 5·(5/8)(7/15) / (4·5/8 + 7/15) = 175/356.
        Assert.Equal(100.0 * 175 / 356, TranslationMetrics.CorpusChrf(["a b", "xy"], ["abc", "xz"]), 9);
    }

    [Fact]
    public void ReferenceMetricReward_IsTheMetricOverAHundred_AgainstThePromptsOwnReferences()
    {
        var references = new Dictionary<string, IReadOnlyList<string>> { ["p1"] = ["the cat is on the mat"], ["p2"] = ["abcd", "ab"] };
        var bleu = new ReferenceMetricReward(TranslationMetric.Bleu, references);
        var chrf = new ReferenceMetricReward(TranslationMetric.Chrf, references);
        float[] scores = bleu.Score(["p1", "p1"], ["the cat sat on the mat ", "the cat is on the mat"], [[], []]);
        Assert.Equal((float)(TranslationMetrics.SentenceBleu("the cat sat on the mat", "the cat is on the mat") / 100), scores[0]);
        Assert.Equal(1f, scores[1]);
        // chrF with two references takes the better one: "ab" matches the second exactly.
        Assert.Equal(1f, chrf.Score(["p2"], ["ab"], [[]])[0]);
        var error = Assert.Throws<KeyNotFoundException>(() => bleu.Score(["p3"], ["x"], [[]]));
        Assert.Contains("\"p3\"", error.Message);
    }
}
