// The BPE trainer: a hand-worked example, agreement with a naive full-recount trainer written here,
// determinism, and a save/load round trip through the GPT-2 file format.
using System.Text;

namespace RlhfSharp.Text.Tests;

public sealed class BpeTrainerTests
{
    // "aaabdaaabac" (the textbook BPE example): pair counts aa=4 first; then ab=2 ties (aa,a)=2 and wins by
    // smaller ids ('a'=64 < new token 256); then (aa,ab)=2 is the most frequent pair.
    [Fact]
    public void HandWorkedExample()
    {
        var t = BpeTrainer.Train("aaabdaaabac", new BpeTrainerOptions { VocabSize = 260, MinPairFrequency = 2 });
        Assert.Equal(260, t.VocabSize);
        Assert.Equal(3, t.MergeCount);
        Assert.Equal("aa", t.TokenOf(256));
        Assert.Equal("ab", t.TokenOf(257));
        Assert.Equal("aaab", t.TokenOf(258));
        Assert.Equal("<|endoftext|>", t.TokenOf(259));
        Assert.Equal(259, t.EosId);
        Assert.Equal(["aaab", "d", "aaab", "a", "c"], t.Encode("aaabdaaabac").Select(t.TokenOf));
    }

    [Fact]
    public void StopsEarly_WhenNoPairIsFrequentEnough()
    {
        var t = BpeTrainer.Train("abcdef", new BpeTrainerOptions { VocabSize = 1000 });
        Assert.Equal(257, t.VocabSize);
        Assert.Equal(0, t.MergeCount);
    }

    [Fact]
    public void IncrementalCounts_EqualNaiveRecount()
    {
        string corpus = TestData.AustenText()[..60_000];
        var options = new BpeTrainerOptions { VocabSize = 600 };
        var trained = BpeTrainer.Train(corpus, options);
        var naive = NaiveTrain(corpus, options.VocabSize - 1, options.MinPairFrequency);
        Assert.Equal(naive.Count, trained.MergeCount);
        var saved = SaveAndReadMerges(trained);
        Assert.Equal(naive, saved);
    }

    [Fact]
    public void Deterministic_AndSavedFilesLoadBack()
    {
        string corpus = TestData.AustenText()[..300_000];
        var options = new BpeTrainerOptions { VocabSize = 1024 };
        var a = BpeTrainer.Train(corpus, options);
        var b = BpeTrainer.Train(corpus, options);
        string dirA = Directory.CreateTempSubdirectory("bpe-a-").FullName;
        string dirB = Directory.CreateTempSubdirectory("bpe-b-").FullName;
        try
        {
            a.Save(dirA);
            b.Save(dirB);
            Assert.Equal(File.ReadAllBytes(Path.Combine(dirA, "vocab.json")), File.ReadAllBytes(Path.Combine(dirB, "vocab.json")));
            Assert.Equal(File.ReadAllBytes(Path.Combine(dirA, "merges.txt")), File.ReadAllBytes(Path.Combine(dirB, "merges.txt")));

            var loaded = TokenizerFiles.Load(dirA);
            Assert.Equal(1024, loaded.VocabSize);
            string sample = corpus[100_000..120_000];
            int[] ids = loaded.Encode(sample);
            Assert.Equal(a.Encode(sample), ids);
            Assert.Equal(sample, loaded.Decode(ids));
            // A 1k vocabulary learned on this text must compress it well below one token per 2 bytes.
            Assert.True(ids.Length < Encoding.UTF8.GetByteCount(sample) / 2.5, $"{ids.Length} tokens for {sample.Length} chars");
        }
        finally
        {
            Directory.Delete(dirA, true);
            Directory.Delete(dirB, true);
        }
    }

    [Fact]
    public void SpecialTokenText_SeparatesDocuments_AndIsNotLearned()
    {
        string corpus = string.Join("<|endoftext|>", Enumerable.Repeat("the cat sat", 50));
        var t = BpeTrainer.Train(corpus, new BpeTrainerOptions { VocabSize = 300 });
        Assert.All(Enumerable.Range(0, t.VocabSize - 1), id => Assert.DoesNotContain("<|", t.TokenOf(id)));
        int[] ids = t.Encode("the cat sat<|endoftext|>the cat sat", allowSpecial: true);
        Assert.Contains(t.EosId!.Value, ids);
    }

    [Fact]
    public void RejectsTooSmallVocabulary()
    {
        var ex = Assert.Throws<ArgumentOutOfRangeException>(() => BpeTrainer.Train("abc", new BpeTrainerOptions { VocabSize = 100 }));
        Assert.Contains("257", ex.Message);
    }

    [Fact]
    public void EveryOption_HasOneDescription()
    {
        foreach (var property in typeof(BpeTrainerOptions).GetProperties().Where(p => p.CanWrite))
            Assert.False(string.IsNullOrWhiteSpace(BpeTrainerOptions.Describe(property.Name)), property.Name);
        Assert.Throws<ArgumentException>(() => BpeTrainerOptions.Describe("NoSuchField"));
    }

    private static List<string> SaveAndReadMerges(Gpt2Tokenizer t)
    {
        string dir = Directory.CreateTempSubdirectory("bpe-m-").FullName;
        try
        {
            t.Save(dir);
            return File.ReadAllLines(Path.Combine(dir, "merges.txt")).Skip(1).ToList();
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    // Textbook BPE: recount every pair over every word after each merge; most frequent wins, ties to the
    // smaller (left id, right id). Shares only the pre-tokenizer and byte table with the code under test.
    private static List<string> NaiveTrain(string corpus, int maxTokens, int minFrequency)
    {
        var tokens = ByteLevel.ByteOrder.Select(b => ByteLevel.ByteToChar[b].ToString()).ToList();
        var idOf = tokens.Select((s, i) => (s, i)).ToDictionary(p => p.s, p => p.i);
        var words = Gpt2PreTokenizer.SplitToStrings(corpus).GroupBy(w => w)
            .Select(g => (Symbols: Encoding.UTF8.GetBytes(g.Key).Select(b => idOf[ByteLevel.ByteToChar[b].ToString()]).ToList(), Count: g.Count()))
            .ToList();
        var merges = new List<string>();
        while (tokens.Count < maxTokens)
        {
            var counts = new Dictionary<(int, int), long>();
            foreach (var (symbols, count) in words)
                for (int k = 0; k + 1 < symbols.Count; k++)
                    counts[(symbols[k], symbols[k + 1])] = counts.GetValueOrDefault((symbols[k], symbols[k + 1])) + count;
            if (counts.Count == 0) break;
            var best = counts.OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key.Item1).ThenBy(kv => kv.Key.Item2).First();
            if (best.Value < minFrequency) break;
            var (l, r) = best.Key;
            string merged = tokens[l] + tokens[r];
            if (!idOf.TryGetValue(merged, out int id))
            {
                id = tokens.Count;
                tokens.Add(merged);
                idOf[merged] = id;
            }
            merges.Add(tokens[l] + " " + tokens[r]);
            foreach (var (symbols, _) in words)
            {
                for (int k = 0; k + 1 < symbols.Count; k++)
                {
                    if (symbols[k] == l && symbols[k + 1] == r)
                    {
                        symbols[k] = id;
                        symbols.RemoveAt(k + 1);
                    }
                }
            }
        }
        return merges;
    }
}
