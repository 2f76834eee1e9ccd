// Text hygiene (issue 17): TerminalText shows control characters as escapes instead of letting a terminal obey them, and
// Utf8TextFile refuses bytes that are not UTF-8, naming file, line and byte offset, where .NET would read U+FFFD.
using System.Text;

namespace RlhfSharp.Text.Tests;

public sealed class TextHygieneTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("text-hygiene-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData("a\u001b[2Jb", @"a\x1b[2Jb")] // clear screen
    [InlineData("\u001b]0;title\u0007", @"\x1b]0;title\x07")] // set the window title
    [InlineData("left\r\u001b[Kright", @"left\r\x1b[Kright")] // return and erase: rewrite what was shown
    [InlineData("csi\u009b2J del\u007f", @"csi\x9b2J del\x7f")] // C1 CSI and DEL
    [InlineData("abc\u202Edcba", @"abc\u202edcba")] // right-to-left override
    [InlineData("two\nlines\tand a tab", "two\nlines\tand a tab")] // kept as they are, for readability
    [InlineData("plain text, é, 猫, \\x1b stays", "plain text, é, 猫, \\x1b stays")]
    public void Escape_ShowsControlCharactersVisibly(string text, string expected) =>
        Assert.Equal(expected, TerminalText.Escape(text));

    [Fact]
    public void Escape_LeavesNoCharacterATerminalWouldObey()
    {
        var all = new string([.. Enumerable.Range(0, 0x2100).Select(i => (char)i).Where(c => !char.IsSurrogate(c))]);
        string shown = TerminalText.Escape(all);
        Assert.DoesNotContain(shown, c => (c < ' ' && c is not '\n' and not '\t') || c is >= '\u007F' and <= '\u009F' || c is >= '\u202A' and <= '\u202E' || c is >= '\u2066' and <= '\u2069');
        Assert.Same("no controls", TerminalText.Escape("no controls"));
    }

    private string Write(string name, params byte[][] parts)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, [.. parts.SelectMany(p => p)]);
        return path;
    }

    private static byte[] U(string s) => Encoding.UTF8.GetBytes(s);

    [Fact]
    public void ReadLines_RefusesInvalidBytes_NamingFileLineAndOffset()
    {
        // Line 3 holds a Latin-1 'é' (0xE9) at byte 12 + 6 + 3 = 21 of the file (line 2's valid 'é' is two bytes).
        string path = Write("latin1.jsonl", U("{\"a\":\"one\"}\n"), U("caf\u00e9\n"), U("caf"), [0xE9], U("\n"));
        var lines = Utf8TextFile.ReadLines(path).GetEnumerator();
        Assert.True(lines.MoveNext());
        Assert.True(lines.MoveNext());
        Assert.Equal((2, "caf\u00e9"), lines.Current);
        var ex = Assert.Throws<FormatException>(() => lines.MoveNext());
        Assert.Equal($"{path}:3: invalid UTF-8 at byte 21 of the file (0xE9); save the file as UTF-8.", ex.Message);
        // The same file read whole: the same place.
        var whole = Assert.Throws<FormatException>(() => Utf8TextFile.ReadAllText(path));
        Assert.Equal(ex.Message, whole.Message);
    }

    [Theory]
    [InlineData(new byte[] { 0xC3 })] // a sequence cut short
    [InlineData(new byte[] { 0xED, 0xA0, 0x80 })] // an encoded surrogate
    [InlineData(new byte[] { 0xC0, 0xAF })] // an overlong '/'
    [InlineData(new byte[] { 0xFF })]
    public void ReadLines_RefusesEveryKindOfInvalidSequence(byte[] bad)
    {
        string path = Write("bad.txt", U("ok\nab"), bad, U("cd\n"));
        var ex = Assert.Throws<FormatException>(() => Utf8TextFile.ReadLines(path).ToList());
        Assert.StartsWith($"{path}:2: invalid UTF-8 at byte 5 of the file", ex.Message);
    }

    [Fact]
    public void ReadLines_SkipsTheByteOrderMark_DropsCarriageReturns_AndKeepsBlankLines()
    {
        string path = Write("bom.txt", [0xEF, 0xBB, 0xBF], U("first\r\n\r\nthird"));
        Assert.Equal([(1, "first"), (2, ""), (3, "third")], Utf8TextFile.ReadLines(path).ToList());
        Assert.Equal("first\r\n\r\nthird", Utf8TextFile.ReadAllText(path));
        // An offset counts the byte-order mark: it is part of the file.
        string bad = Write("bom-bad.txt", [0xEF, 0xBB, 0xBF], U("x"), [0x80]);
        Assert.Contains("byte 4 of the file", Assert.Throws<FormatException>(() => Utf8TextFile.ReadLines(bad).ToList()).Message);
    }

    [Fact]
    public void ReadLines_ReadsLinesLongerThanItsBuffer_AndOffsetsPastIt()
    {
        string longLine = new('x', 200_000);
        string path = Write("long.txt", U(longLine + "\n" + longLine), [0xE9]);
        var ex = Assert.Throws<FormatException>(() => Utf8TextFile.ReadLines(path).ToList());
        Assert.Contains($":2: invalid UTF-8 at byte {2 * 200_000 + 1} of the file", ex.Message);
        string ok = Write("long-ok.txt", U(longLine + "\n" + longLine + "\n"));
        Assert.Equal([longLine, longLine], Utf8TextFile.ReadLines(ok).Select(l => l.Text));
    }

    [Fact]
    public void Gpt2Tokenizer_RefusesAnEmptyMergesFile_AndAVocabularyThatIsNotUtf8()
    {
        var t = BpeTrainer.Train("the cat sat on the mat. the dog ate the hat.", new BpeTrainerOptions { VocabSize = 270 });
        string dir = Path.Combine(_dir, "tok");
        t.Save(dir);
        File.WriteAllText(Path.Combine(dir, "merges.txt"), "#version: 0.2\n");
        var ex = Assert.Throws<FormatException>(() => Gpt2Tokenizer.Load(dir));
        Assert.StartsWith($"{Path.Combine(dir, "merges.txt")} line 1: no merges", ex.Message);

        t.Save(dir);
        byte[] vocab = File.ReadAllBytes(Path.Combine(dir, "vocab.json"));
        int quote = Array.IndexOf(vocab, (byte)'"');
        vocab[quote + 1] = 0xFF;
        File.WriteAllBytes(Path.Combine(dir, "vocab.json"), vocab);
        var bad = Assert.Throws<FormatException>(() => Gpt2Tokenizer.Load(dir));
        Assert.Contains("vocab.json:", bad.Message);
        Assert.Contains("invalid UTF-8", bad.Message);
    }

    [Fact]
    public void Gpt2Tokenizer_RefusesAnEmptyVocabulary_NamingFileAndLine()
    {
        var t = BpeTrainer.Train("the cat sat on the mat.", new BpeTrainerOptions { VocabSize = 262 });
        string dir = Path.Combine(_dir, "empty-vocab");
        t.Save(dir);
        File.WriteAllText(Path.Combine(dir, "vocab.json"), "");
        var ex = Assert.Throws<FormatException>(() => Gpt2Tokenizer.Load(dir));
        Assert.StartsWith($"{Path.Combine(dir, "vocab.json")} line 1:", ex.Message);
        File.WriteAllText(Path.Combine(dir, "vocab.json"), "{}");
        Assert.Contains("vocab.json", Assert.Throws<FormatException>(() => Gpt2Tokenizer.Load(dir)).Message);
    }
}
