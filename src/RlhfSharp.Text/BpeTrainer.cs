// Learns a byte-level BPE vocabulary from a corpus (the procedure of Sennrich et al. 2016 on GPT-2's bytes):
// repeatedly merge the most frequent adjacent pair. Pair counts are kept incrementally (only words holding
// the merged pair are revisited), with a lazily updated max-heap; ties go to the smaller (left, right) id pair,
// so training is deterministic.
using System.ComponentModel;
using System.Reflection;

namespace RlhfSharp.Text;

/// <summary>Settings for <see cref="BpeTrainer"/>; each field's Description is also the CLI's help text.</summary>
public sealed record BpeTrainerOptions
{
    [Description("Vocabulary size: 256 byte tokens + learned merges + special tokens.")]
    public int VocabSize { get; init; } = 4096;

    [Description("Pairs seen fewer times than this are never merged (training stops early when none is left).")]
    public int MinPairFrequency { get; init; } = 2;

    [Description("Special tokens appended after the learned ones; their text in the corpus separates documents.")]
    public IReadOnlyList<string> SpecialTokens { get; init; } = [Gpt2Tokenizer.EndOfText];

    /// <summary>The Description of a property, for help text (e.g. <c>Describe(nameof(VocabSize))</c>).</summary>
    public static string Describe(string property) =>
        typeof(BpeTrainerOptions).GetProperty(property)?.GetCustomAttribute<DescriptionAttribute>()?.Description
        ?? throw new ArgumentException($"BpeTrainerOptions has no described property \"{property}\".", nameof(property));
}

public static class BpeTrainer
{
    /// <summary>Trains on one corpus string. <paramref name="progress"/> gets (merges done, merges wanted).</summary>
    public static Gpt2Tokenizer Train(string corpus, BpeTrainerOptions options, Action<int, int>? progress = null) =>
        Train([corpus], options, progress);

    /// <summary>Trains on several documents (each pre-tokenised on its own).</summary>
    public static Gpt2Tokenizer Train(IEnumerable<string> documents, BpeTrainerOptions options, Action<int, int>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        int baseSize = 256 + options.SpecialTokens.Count;
        if (options.VocabSize < baseSize)
            throw new ArgumentOutOfRangeException(nameof(options), options.VocabSize,
                $"VocabSize must be at least {baseSize} (256 bytes + {options.SpecialTokens.Count} special tokens).");
        if (options.MinPairFrequency < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.MinPairFrequency, "MinPairFrequency must be at least 1.");

        // 1. Count the pieces (words) of the corpus.
        var wordCounts = CountPieces(documents, options.SpecialTokens);

        // 2. Base vocabulary: the 256 bytes, in GPT-2's order.
        var tokens = new List<string>(options.VocabSize);
        var tokenIds = new Dictionary<string, int>(StringComparer.Ordinal);
        var byteId = new int[256];
        foreach (byte b in ByteLevel.ByteOrder)
        {
            byteId[b] = tokens.Count;
            string s = ByteLevel.ByteToChar[b].ToString();
            tokenIds[s] = tokens.Count;
            tokens.Add(s);
        }

        // 3. Words as symbol arrays, sorted so processing order never depends on hash order.
        var sortedWords = wordCounts.OrderBy(kv => kv.Key, StringComparer.Ordinal).ToArray();
        int W = sortedWords.Length;
        var symbols = new int[W][];
        var lengths = new int[W];
        var freq = new long[W];
        for (int w = 0; w < W; w++)
        {
            byte[] bytes = System.Text.Encoding.UTF8.GetBytes(sortedWords[w].Key);
            symbols[w] = new int[bytes.Length];
            for (int k = 0; k < bytes.Length; k++) symbols[w][k] = byteId[bytes[k]];
            lengths[w] = bytes.Length;
            freq[w] = sortedWords[w].Value;
        }

        // 4. Initial pair counts and, per pair, the words that may hold it.
        var pairCount = new Dictionary<long, long>(PairKeyComparer.Instance);
        var pairWords = new Dictionary<long, HashSet<int>>(PairKeyComparer.Instance);
        for (int w = 0; w < W; w++)
        {
            for (int k = 0; k + 1 < lengths[w]; k++)
            {
                long key = Key(symbols[w][k], symbols[w][k + 1]);
                pairCount[key] = pairCount.GetValueOrDefault(key) + freq[w];
                if (!pairWords.TryGetValue(key, out var set)) pairWords[key] = set = [];
                set.Add(w);
            }
        }
        // Max-heap by count, ties to the smaller key: priority (-count, key) in a min-heap.
        var heap = new PriorityQueue<long, (long, long)>();
        foreach (var (key, count) in pairCount) heap.Enqueue(key, (-count, key));

        // 5. Merge until the vocabulary is full.
        int wantedMerges = options.VocabSize - baseSize;
        var merges = new List<(string, string)>(wantedMerges);
        var delta = new Dictionary<long, long>(PairKeyComparer.Instance);
        while (tokens.Count < options.VocabSize - options.SpecialTokens.Count && heap.Count > 0)
        {
            heap.TryDequeue(out long pair, out var priority);
            long current = pairCount.GetValueOrDefault(pair);
            if (current != -priority.Item1)
            {
                // Stale entry: its count fell since it was queued; requeue at the true count.
                if (current > 0) heap.Enqueue(pair, (-current, pair));
                continue;
            }
            if (current < options.MinPairFrequency) break;

            int left = (int)(pair >> 32), right = (int)(uint)pair;
            string merged = tokens[left] + tokens[right];
            // Two different pairs can spell the same string ("a"+"bc", "ab"+"c"): they share one id.
            if (!tokenIds.TryGetValue(merged, out int newId))
            {
                newId = tokens.Count;
                tokenIds[merged] = newId;
                tokens.Add(merged);
            }
            merges.Add((tokens[left], tokens[right]));

            delta.Clear();
            var holders = pairWords[pair].ToArray();
            Array.Sort(holders);
            foreach (int w in holders)
            {
                MergeWord(symbols[w], ref lengths[w], left, right, newId, freq[w], delta, w, pairWords);
            }
            pairCount.Remove(pair);
            pairWords.Remove(pair);
            foreach (var (key, d) in delta)
            {
                if (key == pair || d == 0) continue;
                long updated = pairCount.GetValueOrDefault(key) + d;
                if (updated <= 0)
                {
                    pairCount.Remove(key);
                    continue;
                }
                pairCount[key] = updated;
                if (d > 0) heap.Enqueue(key, (-updated, key));
            }
            progress?.Invoke(merges.Count, wantedMerges);
        }

        foreach (string special in options.SpecialTokens)
        {
            if (tokenIds.ContainsKey(special))
                throw new ArgumentException($"Special token \"{special}\" collides with a learned token.", nameof(options));
            tokenIds[special] = tokens.Count;
            tokens.Add(special);
        }
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int id = 0; id < tokens.Count; id++) vocab[tokens[id]] = id;
        return new Gpt2Tokenizer(vocab, merges, options.SpecialTokens);
    }

    private static long Key(int left, int right) => ((long)left << 32) | (uint)right;

    // Replaces every non-overlapping (left, right), scanning left to right, and records the change in pair counts.
    private static void MergeWord(int[] sym, ref int length, int left, int right, int newId, long f,
        Dictionary<long, long> delta, int word, Dictionary<long, HashSet<int>> pairWords)
    {
        int n = length;
        int k = 0;
        for (; k + 1 < n; k++) if (sym[k] == left && sym[k + 1] == right) break;
        if (k + 1 >= n) return; // the word lost this pair to an earlier merge
        for (int j = 0; j + 1 < n; j++) Add(delta, Key(sym[j], sym[j + 1]), -f);
        int write = 0;
        for (int read = 0; read < n; read++)
        {
            if (read + 1 < n && sym[read] == left && sym[read + 1] == right)
            {
                sym[write++] = newId;
                read++;
            }
            else
            {
                sym[write++] = sym[read];
            }
        }
        length = write;
        for (int j = 0; j + 1 < write; j++)
        {
            long key = Key(sym[j], sym[j + 1]);
            Add(delta, key, f);
            if (!pairWords.TryGetValue(key, out var set)) pairWords[key] = set = [];
            set.Add(word);
        }
    }

    private static void Add(Dictionary<long, long> d, long key, long v) => d[key] = d.GetValueOrDefault(key) + v;

    private static Dictionary<string, long> CountPieces(IEnumerable<string> documents, IReadOnlyList<string> specials)
    {
        var counts = new Dictionary<string, long>(StringComparer.Ordinal);
        var lookup = counts.GetAlternateLookup<ReadOnlySpan<char>>();
        var pieces = new List<(int Start, int Length)>();
        foreach (string doc in documents)
        {
            foreach (var segment in SplitOnSpecials(doc, specials))
            {
                pieces.Clear();
                var span = doc.AsSpan(segment.Start, segment.Length);
                Gpt2PreTokenizer.Split(span, pieces);
                foreach (var (start, length) in pieces)
                {
                    var piece = span.Slice(start, length);
                    lookup[piece] = lookup.TryGetValue(piece, out long c) ? c + 1 : 1;
                }
            }
        }
        return counts;
    }

    private static IEnumerable<(int Start, int Length)> SplitOnSpecials(string text, IReadOnlyList<string> specials)
    {
        int pos = 0;
        while (pos < text.Length)
        {
            int best = -1, bestLength = 0;
            foreach (string s in specials)
            {
                int at = text.IndexOf(s, pos, StringComparison.Ordinal);
                if (at >= 0 && (best < 0 || at < best)) (best, bestLength) = (at, s.Length);
            }
            if (best < 0)
            {
                yield return (pos, text.Length - pos);
                yield break;
            }
            if (best > pos) yield return (pos, best - pos);
            pos = best + bestLength;
        }
    }
}
