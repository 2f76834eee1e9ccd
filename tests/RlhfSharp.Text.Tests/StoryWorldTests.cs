// The story world: determinism, grammar sanity of everything generated, and the gold scorer's ordering.
using System.Text.RegularExpressions;
using RlhfSharp.Text.StoryWorld;

namespace RlhfSharp.Text.Tests;

public sealed class StoryWorldTests
{
    [Fact]
    public void SameSeed_SameText_OtherSeed_OtherText()
    {
        Assert.Equal(Stories.Corpus(5, 50), Stories.Corpus(5, 50));
        Assert.NotEqual(Stories.Corpus(5, 50), Stories.Corpus(6, 50));
        Assert.Equal(Stories.Demonstrations(5, 20), Stories.Demonstrations(5, 20));
        Assert.Equal(Stories.Prompts(5, 20), Stories.Prompts(5, 20));
        // A longer request extends a shorter one.
        Assert.Equal(Stories.Generate(5, 10), Stories.Generate(5, 30).Take(10));
    }

    [Fact]
    public void EverySentence_IsPunctuatedGrammaticalAndInVocabulary()
    {
        var words = Lexicon.Words.ToHashSet();
        foreach (string story in Stories.Generate(11, 400))
        {
            string[] sentences = Regex.Split(story, @"(?<=[.!?]) ");
            Assert.InRange(sentences.Length, 3, 5);
            foreach (string sentence in sentences)
            {
                Assert.Matches(@"^[A-Z][^.!?]*[.!?]$", sentence);
                var sentenceWords = Regex.Matches(sentence.ToLowerInvariant(), "[a-z']+").Select(m => m.Value).ToList();
                Assert.InRange(sentenceWords.Count, 8, 25);
                Assert.All(sentenceWords, w => Assert.Contains(w, words));
                Assert.True(GoldScorer.IsGrammatical(sentence), sentence);
            }
        }
    }

    [Fact]
    public void VocabularyIsSmall_AndHasBothSentiments()
    {
        Assert.InRange(Lexicon.Words.Count, 150, 400);
        Assert.Contains(Lexicon.Words, w => Lexicon.Sentiment(w) > 0.5);
        Assert.Contains(Lexicon.Words, w => Lexicon.Sentiment(w) < -0.5);
        Assert.True(Lexicon.Sentiment("sunny") > 0 && Lexicon.Sentiment("kind") > 0 && Lexicon.Sentiment("laughed") > 0 && Lexicon.Sentiment("delicious") > 0);
        Assert.True(Lexicon.Sentiment("storm") < 0 && Lexicon.Sentiment("cruel") < 0 && Lexicon.Sentiment("cried") < 0 && Lexicon.Sentiment("rotten") < 0);
        Assert.Equal(0, Lexicon.Sentiment("the"));
        Assert.Null(Lexicon.Sentiment("spaceship"));
    }

    [Fact]
    public void Demonstrations_ContinuePromptsWithOneOrTwoGrammaticalSentences()
    {
        foreach (var d in Stories.Demonstrations(3, 300))
        {
            Assert.True(GoldScorer.IsGrammatical(d.Prompt), d.Prompt);
            Assert.StartsWith(" ", d.Completion);
            var score = GoldScorer.Score(d.Completion, d.Prompt);
            Assert.InRange(score.Sentences, 1, 2);
            Assert.Equal(score.Sentences, score.CreditedSentences);
            Assert.Equal(0, score.UncreditedFraction);
        }
    }

    [Fact]
    public void Prompts_AreOpeningsFromTheirOwnStream()
    {
        var prompts = Stories.Prompts(3, 200);
        Assert.All(prompts, p => Assert.True(GoldScorer.IsGrammatical(p), p));
        var demoPrompts = Stories.Demonstrations(3, 200).Select(d => d.Prompt).ToList();
        Assert.NotEqual(demoPrompts, prompts);
        Assert.True(prompts.Distinct().Count() > 150);
    }

    // Hand-computed: "Then Tom laughed because the cake was so delicious." has 9 words; laughed = 0.7 and
    // delicious = 0.8 are its only sentiment words, so the gold is 1.5 / 9.
    [Fact]
    public void GoldReward_HandComputedValue()
    {
        Assert.Equal(1.5 / 9, Stories.GoldReward(" Then Tom laughed because the cake was so delicious."), 12);
        // Same sentence with a negative ending: cried -0.7, rotten -0.8.
        Assert.Equal(-1.5 / 9, Stories.GoldReward(" Then Tom cried because the cake was so rotten."), 12);
    }

    [Fact]
    public void GoldReward_OrdersHandWrittenExamples()
    {
        string positive = " Then Mia laughed because the cake was so delicious. In the end, Mia said that it was a wonderful day.";
        string neutral = " Then Mia walked because the box was so round. In the end, Mia said that it was an ordinary day.";
        string negative = " Then Mia cried because the pie was so rotten. In the end, Mia said that it was a horrible day.";
        string positiveWordSalad = " wonderful happy joyful delicious laughed kind sunny.";
        string spam = " happy happy happy happy happy happy happy happy.";
        string unfinished = " Then Mia laughed because the cake was so";
        double p = Stories.GoldReward(positive), z = Stories.GoldReward(neutral), n = Stories.GoldReward(negative);
        Assert.True(p > z && z > n, $"positive {p}, neutral {z}, negative {n}");
        Assert.Equal(0, z, 12);
        Assert.True(Stories.GoldReward(positiveWordSalad) < n, "a list of positive words must score below a grammatical negative story");
        Assert.True(Stories.GoldReward(spam) < Stories.GoldReward(positiveWordSalad), "spamming one word is worse still");
        Assert.True(Stories.GoldReward(unfinished) < 0);
        Assert.Equal(-GoldScorer.Penalty, Stories.GoldReward(""));
    }

    [Fact]
    public void GoldReward_PenalisesRepeatedSentencesAndWords()
    {
        string once = " Then Mia laughed because the cake was so delicious.";
        string twice = once + once;
        Assert.True(Stories.GoldReward(twice) < Stories.GoldReward(once));
        var score = GoldScorer.Score(twice);
        Assert.Equal(1, score.CreditedSentences);
        // Repeating the prompt's sentence earns nothing either.
        Assert.True(Stories.GoldReward(once, prompt: once.Trim()) < 0);
        // Third and later uses of a sentiment word are excess: "happy" 3 times in grammatical sentences.
        string threeHappy = " That night, Tom went home feeling happy and glad. That night, Mia went home feeling happy and calm. That night, Sam went home feeling happy and proud.";
        var s3 = GoldScorer.Score(threeHappy);
        Assert.Equal(3, s3.CreditedSentences);
        Assert.Equal(1.0 / 27, s3.RepeatFraction, 12);
    }

    [Fact]
    public void PolicyThatSpamsAPositiveWord_ScoresBelowDemonstrations()
    {
        var demos = Stories.Demonstrations(9, 500);
        double meanDemo = demos.Average(d => Stories.GoldReward(d.Completion, d.Prompt));
        double bestDemo = demos.Max(d => Stories.GoldReward(d.Completion, d.Prompt));
        foreach (string word in new[] { "wonderful", "happy", "joyful", "delicious" })
        {
            foreach (int count in new[] { 1, 3, 10, 30 })
            {
                string spam = " " + string.Join(' ', Enumerable.Repeat(word, count)) + ".";
                double g = Stories.GoldReward(spam);
                Assert.True(g < meanDemo && g < bestDemo, $"\"{spam}\" scored {g}, demos mean {meanDemo}");
            }
        }
    }

    [Fact]
    public void StoryTokenizer_MakesWordsSingleTokens_AndRoundTrips()
    {
        var t = Stories.TrainTokenizer();
        Assert.InRange(t.VocabSize, 300, 1024);
        int single = Lexicon.Words.Count(w => t.Encode(" " + w).Length == 1);
        Assert.True(single > 0.8 * Lexicon.Words.Count, $"{single} of {Lexicon.Words.Count} words are one token");
        string text = Stories.Corpus(42, 20, Gpt2Tokenizer.EndOfText);
        int[] ids = t.Encode(text, allowSpecial: true);
        Assert.Equal(20, ids.Count(id => id == t.EosId));
        Assert.Equal(text, t.Decode(ids));
    }
}
