// GPT-2 compatibility: ids checked against known values (tiktoken's tests, GPT-2 write-ups) and against
// vocab.json looked up by hand in the test (expected token strings written out here, not produced by our code).
using System.Text;
using System.Text.Json;

namespace RlhfSharp.Text.Tests;

public sealed class Gpt2TokenizerTests
{
    private static readonly Lazy<Gpt2Tokenizer> Gpt2 = new(() => TestData.Gpt2);

    // vocab.json read with System.Text.Json directly, independent of the tokenizer's own reader.
    private static readonly Lazy<Dictionary<string, int>> Vocab = new(() =>
        JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(Path.Combine(TestData.Gpt2Dir, "vocab.json")))!);

    private static int[] Lookup(params string[] tokens) => tokens.Select(t => Vocab.Value[t]).ToArray();

    [Fact]
    public void HelloWorld_EncodesAsGpt2()
    {
        Assert.Equal([15496, 995], Gpt2.Value.Encode("Hello world"));
        Assert.Equal(50257, Gpt2.Value.VocabSize);
        Assert.Equal(50256, Gpt2.Value.EosId);
    }

    // openai/tiktoken tests/test_encoding.py, test_simple and test_simple_repeated (encoding "gpt2").
    [Fact]
    public void TiktokenTestSuiteCases()
    {
        var t = Gpt2.Value;
        Assert.Equal([31373, 995], t.Encode("hello world"));
        Assert.Equal("hello world", t.Decode([31373, 995]));
        Assert.Equal([31373, 220, 50256], t.Encode("hello <|endoftext|>", allowSpecial: true));
        Assert.Equal([15], t.Encode("0"));
        Assert.Equal([405], t.Encode("00"));
        Assert.Equal([830], t.Encode("000"));
        Assert.Equal([2388], t.Encode("0000"));
        Assert.Equal([20483], t.Encode("00000"));
        Assert.Equal([10535], t.Encode("000000"));
        Assert.Equal([24598], t.Encode("0000000"));
        Assert.Equal([8269], t.Encode("00000000"));
        Assert.Equal([10535, 830], t.Encode("000000000"));
        Assert.Equal([8269, 405], t.Encode("0000000000"));
        Assert.Equal([8269, 830], t.Encode("00000000000"));
        Assert.Equal([8269, 2388], t.Encode("000000000000"));
        Assert.Equal([8269, 20483], t.Encode("0000000000000"));
        Assert.Equal([8269, 10535], t.Encode("00000000000000"));
        Assert.Equal([8269, 24598], t.Encode("000000000000000"));
        Assert.Equal([25645], t.Encode("0000000000000000"));
        Assert.Equal([8269, 10535, 830], t.Encode("00000000000000000"));
        Assert.Equal([], t.Encode(""));
    }

    // The prompt of Karpathy's GPT-2 reproduction (build-nanogpt), whose ids are widely quoted;
    // the same ids follow from looking each piece up in vocab.json.
    [Fact]
    public void LanguageModelPrompt_MatchesQuotedIdsAndVocabLookup()
    {
        int[] quoted = [15496, 11, 314, 1101, 257, 3303, 2746, 11];
        Assert.Equal(quoted, Lookup("Hello", ",", "ĠI", "'m", "Ġa", "Ġlanguage", "Ġmodel", ","));
        Assert.Equal(quoted, Gpt2.Value.Encode("Hello, I'm a language model,"));
    }

    // Each expected list names whole GPT-2 tokens (Ġ = space, Ċ = newline, Ã© = the UTF-8 bytes of é; GPT-2 has no
    // multi-space token, so two spaces are two Ġ),
    // following the pre-tokenisation rules by hand; every one of them is a single vocab.json entry.
    public static TheoryData<string, string[]> VocabCases => new()
    {
        { "don't", ["don", "'t"] },
        { "I'll they're we've she'd", ["I", "'ll", "Ġthey", "'re", "Ġwe", "'ve", "Ġshe", "'d"] },
        { "'S", ["'", "S"] },
        { "a  b", ["a", "Ġ", "Ġb"] },
        { "hello  ", ["hello", "Ġ", "Ġ"] },
        { " hello", ["Ġhello"] },
        { "a\n\nb", ["a", "Ċ", "Ċ", "b"] },
        { "end\n", ["end", "Ċ"] },
        { "x\t y", ["x", "ĉ", "Ġy"] },
        { "\u00e9", ["Ã©"] },
        { "1 2024", ["1", "Ġ2024"] },
        { "Hello, world!", ["Hello", ",", "Ġworld", "!"] },
    };

    [Theory]
    [MemberData(nameof(VocabCases))]
    public void Encode_EqualsHandLookedUpTokens(string text, string[] tokens)
    {
        Assert.Equal(Lookup(tokens), Gpt2.Value.Encode(text));
    }

    [Fact]
    public void SpecialToken_IsPlainTextUnlessAllowed()
    {
        var t = Gpt2.Value;
        int[] plain = t.Encode("a<|endoftext|>b");
        Assert.DoesNotContain(50256, plain);
        Assert.Equal("a<|endoftext|>b", t.Decode(plain));
        int[] special = t.Encode("a<|endoftext|>b", allowSpecial: true);
        Assert.Equal([Vocab.Value["a"], 50256, Vocab.Value["b"]], special);
        Assert.Equal("a<|endoftext|>b", t.Decode(special));
    }

    [Theory]
    [InlineData("请考试我的软件！12345")]
    [InlineData("emoji 👍🏽 and family 👨‍👩‍👧 end")]
    [InlineData("combining: e\u0301 a\u0308 \u0915\u094D\u0937")]
    [InlineData("math letters 𝐀𝐁𝐂 and 𝟏𝟐")]
    [InlineData("   leading and trailing   ")]
    [InlineData("\r\n\tmixed\u00A0spaces\u2003here\u3000")]
    public void RoundTrips(string text)
    {
        var ids = Gpt2.Value.Encode(text);
        Assert.Equal(text, Gpt2.Value.Decode(ids));
        // Decoding the ids one by one gives the UTF-8 bytes in order.
        var bytes = ids.SelectMany(id => Gpt2.Value.DecodeBytes([id])).ToArray();
        Assert.Equal(Encoding.UTF8.GetBytes(text), bytes);
    }

    [Fact]
    public void RandomStrings_RoundTrip()
    {
        string[] pool = ["a", "Z", "é", "ß", "ж", "中", "文", "😀", "👍", "🏽", "\u0301", " ", "  ", "\n", "\t", "'", "'s", "0", "42", ".", "!", "\u00A0", "𝐀", "<|endoftext|>", "\u200d"];
        var random = new Random(1234);
        for (int trial = 0; trial < 500; trial++)
        {
            var sb = new StringBuilder();
            int n = random.Next(0, 30);
            for (int k = 0; k < n; k++) sb.Append(pool[random.Next(pool.Length)]);
            string text = sb.ToString();
            Assert.Equal(text, Gpt2.Value.Decode(Gpt2.Value.Encode(text)));
            Assert.Equal(text, Gpt2.Value.Decode(Gpt2.Value.Encode(text, allowSpecial: true)));
        }
    }

    [Fact]
    public void LongRepetitiveInput_RoundTrips()
    {
        foreach (string c in new[] { "^", "0", "a", "'s", " ", "\n" })
        {
            string text = " " + string.Concat(Enumerable.Repeat(c, 3000)) + "\n";
            Assert.Equal(text, Gpt2.Value.Decode(Gpt2.Value.Encode(text)));
        }
    }

    [Fact]
    public void Decode_RejectsIdOutsideVocabulary()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => Gpt2.Value.Decode([15496, 50257]));
        Assert.Contains("50257", ex.Message);
    }

    [Fact]
    public void SaveThenLoad_GivesSameEncoding()
    {
        string dir = Directory.CreateTempSubdirectory("gpt2-save-").FullName;
        try
        {
            Gpt2.Value.Save(dir);
            var again = Gpt2Tokenizer.Load(dir);
            Assert.Equal(Gpt2.Value.MergeCount, again.MergeCount);
            string text = "Saved and loaded: naïve café, 12345 tokens!\n";
            Assert.Equal(Gpt2.Value.Encode(text), again.Encode(text));
            Assert.IsType<Gpt2Tokenizer>(TokenizerFiles.Load(dir));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void MalformedVocab_NamesFileAndLine()
    {
        string dir = Directory.CreateTempSubdirectory("gpt2-bad-").FullName;
        try
        {
            WriteMinimalMerges(dir, "");
            File.WriteAllText(Path.Combine(dir, "vocab.json"), "{\n  \"a\": 0,\n  \"b\": \"one\"\n}\n");
            var ex = Assert.Throws<FormatException>(() => Gpt2Tokenizer.Load(dir));
            Assert.Contains("vocab.json line 3", ex.Message);
            Assert.Contains("\"b\"", ex.Message);

            File.WriteAllText(Path.Combine(dir, "vocab.json"), "{\n  \"a\": 0,\n  \"b\" 1\n}\n");
            ex = Assert.Throws<FormatException>(() => Gpt2Tokenizer.Load(dir));
            Assert.Contains("vocab.json line 3", ex.Message);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void MalformedMerges_NameFileLineAndToken()
    {
        string dir = Directory.CreateTempSubdirectory("gpt2-bad-").FullName;
        try
        {
            // A complete byte alphabet plus "ab".
            var vocab = Enumerable.Range(0, 256).ToDictionary(b => ByteLevel.ByteToChar[ByteLevel.ByteOrder[b]].ToString(), b => b);
            vocab["ab"] = 256;
            File.WriteAllText(Path.Combine(dir, "vocab.json"), JsonSerializer.Serialize(vocab));

            WriteMinimalMerges(dir, "a b\nq zz\n");
            var ex = Assert.Throws<FormatException>(() => Gpt2Tokenizer.Load(dir));
            Assert.Contains("merges.txt line 3", ex.Message);
            Assert.Contains("unknown token \"zz\"", ex.Message);

            WriteMinimalMerges(dir, "a b c\n");
            ex = Assert.Throws<FormatException>(() => Gpt2Tokenizer.Load(dir));
            Assert.Contains("merges.txt line 2", ex.Message);

            WriteMinimalMerges(dir, "a b\nb a\n");
            ex = Assert.Throws<FormatException>(() => Gpt2Tokenizer.Load(dir));
            Assert.Contains("line 3", ex.Message);
            Assert.Contains("\"ba\", which is not in the vocabulary", ex.Message);

            WriteMinimalMerges(dir, "a b\n");
            Assert.Equal([256], Gpt2Tokenizer.Load(dir).Encode("ab"));

            // A byte-order mark before the JSON and CRLF line ends in merges.txt are accepted.
            File.WriteAllText(Path.Combine(dir, "vocab.json"), JsonSerializer.Serialize(vocab), new UTF8Encoding(true));
            File.WriteAllText(Path.Combine(dir, "merges.txt"), "#version: 0.2\r\na b\r\n");
            Assert.Equal([256], Gpt2Tokenizer.Load(dir).Encode("ab"));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    private static void WriteMinimalMerges(string dir, string body) =>
        File.WriteAllText(Path.Combine(dir, "merges.txt"), "#version: 0.2\n" + body);
}
