// The hand-written pre-tokenizer must cut text exactly as GPT-2's regex does.
namespace RlhfSharp.Text.Tests;

public sealed class PreTokenizerTests
{
    [Fact]
    public void EqualsRegex_OnAllOfAusten()
    {
        foreach (string file in Directory.GetFiles(TestData.AustenDir, "*.txt").Order(StringComparer.Ordinal))
        {
            string text = File.ReadAllText(file);
            var expected = Gpt2PreTokenizer.SplitWithRegex(text);
            var actual = Gpt2PreTokenizer.SplitToStrings(text);
            Assert.True(expected.SequenceEqual(actual), $"{Path.GetFileName(file)}: first difference at piece {FirstDifference(expected, actual)}");
        }
    }

    [Theory]
    [InlineData("Hello, I'm a language model,")]
    [InlineData("  two leading, two trailing  ")]
    [InlineData("a  b   c\n\n\nd \n e\t\tf \t")]
    [InlineData("don't 'S 're 'll 've 'd 'm 'x '' '")]
    [InlineData("x'sy ' s !'s (\"quoted\")...")]
    [InlineData("3.14 1,000,000 x2 2x ½ Ⅻ")]
    [InlineData("naïve café — “smart quotes” ¿qué? 中文 日本語")]
    [InlineData("\r\n\r\n \u00A0\u2003x\u3000")]
    [InlineData("emoji 👍 👍👍 👍x")]
    [InlineData(" ")]
    [InlineData("\n")]
    [InlineData("")]
    public void EqualsRegex_OnTrickyStrings(string text)
    {
        Assert.Equal(Gpt2PreTokenizer.SplitWithRegex(text), Gpt2PreTokenizer.SplitToStrings(text));
    }

    [Fact]
    public void KnownSplit()
    {
        Assert.Equal(["Hello", ",", " I", "'m", " a", " language", " model", ","], Gpt2PreTokenizer.SplitToStrings("Hello, I'm a language model,"));
        Assert.Equal(["a", "  ", " b", "\n", "\n", "c", "  "], Gpt2PreTokenizer.SplitToStrings("a   b\n\nc  "));
    }

    // Python's `regex` sees code points, so a mathematical bold letter is a letter; .NET's Regex sees two
    // surrogates and would split it off. The scanner follows Python (GPT-2's reference).
    [Fact]
    public void SupplementaryLetters_AreLetters()
    {
        Assert.Equal([" x𝐀𝐁y", " 𝟏𝟐"], Gpt2PreTokenizer.SplitToStrings(" x𝐀𝐁y 𝟏𝟐"));
    }

    private static int FirstDifference(List<string> a, List<string> b)
    {
        int n = Math.Min(a.Count, b.Count);
        for (int i = 0; i < n; i++) if (a[i] != b[i]) return i;
        return n;
    }
}
