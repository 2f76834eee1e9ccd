// The character tokenizer: vocabulary from a corpus, round trip, special token, save/load and errors.
namespace RlhfSharp.Text.Tests;

public sealed class CharTokenizerTests
{
    [Fact]
    public void VocabularyIsTheSortedDistinctCharactersPlusEos()
    {
        var t = CharTokenizer.FromCorpus("banana band 👍<|endoftext|>");
        // ' ', 'a', 'b', 'd', 'n', '👍' sorted by code point, then <|endoftext|>.
        Assert.Equal(7, t.VocabSize);
        Assert.Equal(6, t.EosId);
        Assert.Equal([2, 1, 4], t.Encode("ban"));
        Assert.Equal([5, 0], t.Encode("👍 "));
        Assert.Equal("band 👍", t.Decode(t.Encode("band 👍")));
    }

    [Fact]
    public void SpecialTokenOnlyWhenAllowed()
    {
        var t = CharTokenizer.FromCorpus("ab<>|endoftx");
        Assert.Equal([0 + t.Encode("a")[0], t.EosId!.Value, t.Encode("b")[0]], t.Encode("a<|endoftext|>b", allowSpecial: true));
        Assert.Equal(15, t.Encode("a<|endoftext|>b").Length);
    }

    [Fact]
    public void UnknownCharacter_IsNamedWithItsIndex()
    {
        var t = CharTokenizer.FromCorpus("abc");
        var ex = Assert.Throws<ArgumentException>(() => t.Encode("abz"));
        Assert.Contains("U+007A", ex.Message);
        Assert.Contains("index 2", ex.Message);
    }

    [Fact]
    public void SaveThenLoad()
    {
        var t = CharTokenizer.FromCorpus("The quick brown fox, \"naïve\" 中文\n");
        string dir = Directory.CreateTempSubdirectory("char-").FullName;
        try
        {
            t.Save(dir);
            var loaded = TokenizerFiles.Load(dir);
            Assert.IsType<CharTokenizer>(loaded);
            Assert.Equal(t.VocabSize, loaded.VocabSize);
            string text = "quick \"fox\"\n中";
            Assert.Equal(t.Encode(text), loaded.Encode(text));

            File.WriteAllText(Path.Combine(dir, CharTokenizer.FileName), "{\"type\":\"char\",\n\"characters\": [\"ab\"]}");
            var ex = Assert.Throws<FormatException>(() => CharTokenizer.Load(dir));
            Assert.Contains(CharTokenizer.FileName, ex.Message);
            Assert.Contains("\"ab\"", ex.Message);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
