// BLEU and chrF against values worked by hand from their definitions (TranslationMetrics' header, after sacreBLEU 2.x).
using RlhfSharp.Alignment.Evaluation;

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
}
