// Property tests (FsCheck) of the GPT-2 tokenizer: decode(encode(s)) == s for any text, and any byte sequence,
// valid UTF-8 or not, survives through the byte-level alphabet. Strings are at most ~60 runes, 100 cases per
// property; each property has a fixed Replay seed so CI sees the same cases on every run (change the seed to explore).
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;

namespace RlhfSharp.Text.Tests;

public sealed class Gpt2TokenizerPropertyTests
{
    private static Gpt2Tokenizer Gpt2 => TestData.Gpt2;

    // Text that exercises every branch of GPT-2's pre-tokeniser: letters, digits, contractions, whitespace runs,
    // newlines, punctuation, accented Latin, CJK, combining marks, emoji (astral, two UTF-16 units) and controls.
    private static readonly string[] Fragments =
        ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", " ", "  ", "\n", "\r\n", "\t", " \n ", "0", "2024", "a", "The",
         " hello", "é", "ß", "Ω", "日本語", "\u0301", "👍🏽", "🤖", "\u200d", "\u00a0", "\u3000", "<|endoftext|>", ".", "!?", "--"];

    private static Gen<string> RuneGen(int lo, int hi) => Gen.Choose(lo, hi).Select(c => new Rune(c).ToString());

    // Any valid Unicode scalar value, weighted toward the ranges real text uses.
    private static readonly Gen<string> AnyRune = Gen.Frequency(
        (4, RuneGen(0x20, 0x7E)),
        (1, RuneGen(0x00, 0x1F)),
        (2, RuneGen(0x80, 0x24F)),
        (2, RuneGen(0x250, 0xD7FF)),
        (1, RuneGen(0xE000, 0xFFFF)),
        (2, RuneGen(0x10000, 0x10FFFF)),
        (4, Gen.Elements(Fragments)));

    private static readonly Arbitrary<string> UnicodeText =
        AnyRune.ArrayOf().Select(parts => string.Concat(parts)).Resize(60).ToArbitrary();

    private static readonly Arbitrary<byte[]> ByteSoup = Gen.Choose(0, 255).Select(b => (byte)b).ArrayOf().Resize(100).ToArbitrary();

    [Property(MaxTest = 100, Replay = "(20261203,1)")]
    public Property AnyUnicodeText_DecodesToItself() => Prop.ForAll(UnicodeText, s =>
    {
        int[] ids = Gpt2.Encode(s);
        Assert.Equal(s, Gpt2.Decode(ids));
        Assert.Equal(Encoding.UTF8.GetBytes(s), Gpt2.DecodeBytes(ids));
    });

    [Property(MaxTest = 100, Replay = "(20261203,3)")]
    public Property SpecialTokensAllowed_StillDecodeToItself() => Prop.ForAll(UnicodeText, s =>
    {
        int[] ids = Gpt2.Encode(s, allowSpecial: true);
        Assert.Equal(s, Gpt2.Decode(ids));
        int specials = (s.Length - s.Replace(Gpt2Tokenizer.EndOfText, "", StringComparison.Ordinal).Length) / Gpt2Tokenizer.EndOfText.Length;
        Assert.Equal(specials, ids.Count(id => id == Gpt2.EosId));
    });

    // Any UTF-16 code units, lone surrogates included: those become U+FFFD, exactly as UTF-8 encoding replaces them.
    [Property(MaxTest = 100, Replay = "(20261203,5)")]
    public Property AnyCodeUnits_DecodeAsTheirUtf8() => Prop.ForAll(
        Gen.Choose(0, 0xFFFF).Select(c => (char)c).ArrayOf().Resize(40).ToArbitrary(), chars =>
    {
        string s = new(chars);
        Assert.Equal(Encoding.UTF8.GetString(Encoding.UTF8.GetBytes(s)), Gpt2.Decode(Gpt2.Encode(s)));
    });

    // Bytes as text two ways: Latin-1 (U+0000..U+00FF, one char per byte) and GPT-2's own byte-level alphabet ('Ġ', 'Ċ', ...).
    [Property(MaxTest = 100, Replay = "(20261203,7)")]
    public Property ByteSoupAsText_DecodesToItself() => Prop.ForAll(ByteSoup, bytes =>
    {
        string latin1 = Encoding.Latin1.GetString(bytes);
        Assert.Equal(latin1, Gpt2.Decode(Gpt2.Encode(latin1)));
        string byteLevel = ByteLevel.Encode(bytes);
        Assert.Equal(byteLevel, Gpt2.Decode(Gpt2.Encode(byteLevel)));
    });

    // Bytes that need not be UTF-8: each byte's base token (ids 0..255 of the byte-level vocabulary) decodes back to it.
    [Property(MaxTest = 100, Replay = "(20261203,9)")]
    public Property ByteSoupAsBaseTokens_DecodesToTheSameBytes() => Prop.ForAll(ByteSoup, bytes =>
    {
        Assert.True(ByteLevel.TryDecode(ByteLevel.Encode(bytes), out byte[] back, out _));
        Assert.Equal(bytes, back);
        var ids = bytes.Select(b => Gpt2.TryGetId(ByteLevel.ByteToChar[b].ToString(), out int id) ? id : -1).ToArray();
        Assert.Equal(bytes, Gpt2.DecodeBytes(ids));
    });

    // The hand-written pre-tokeniser against its peer, .NET's Regex with GPT-2's pattern: same ids on BMP text.
    [Property(MaxTest = 100, Replay = "(20261203,11)")]
    public Property ScannerAndRegexPreTokenisers_GiveTheSameIds() => Prop.ForAll(UnicodeText, s =>
    {
        string bmp = string.Concat(s.EnumerateRunes().Where(r => r.IsBmp).Select(r => r.ToString()));
        var scanner = new List<int>();
        var regex = new List<int>();
        Gpt2.EncodeOrdinary(bmp, scanner);
        Gpt2.EncodeOrdinaryWithRegex(bmp, regex);
        Assert.Equal(regex, scanner);
    });
}
