// Byte-level BPE exactly as GPT-2 (OpenAI's `encoder.py`, tiktoken's "gpt2"): UTF-8 bytes, GPT-2's
// pre-tokenisation, merges applied lowest rank first, ids from vocab.json. Loads Hugging Face's
// vocab.json + merges.txt, and the same files our BpeTrainer writes.
using System.Collections.Concurrent;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace RlhfSharp.Text;

public sealed class Gpt2Tokenizer : ITokenizer
{
    /// <summary>GPT-2's end-of-text token.</summary>
    public const string EndOfText = "<|endoftext|>";

    /// <summary>File names as Hugging Face writes them beside a checkpoint.</summary>
    public const string VocabFileName = "vocab.json";
    public const string MergesFileName = "merges.txt";

    // Pieces longer than this are encoded without caching: they are rare and would bloat the cache.
    private const int MaxCachedPieceLength = 64;
    // The cache is cleared when it grows past this many pieces (a long run over varied text).
    private const int MaxCacheEntries = 500_000;

    private readonly string[] _idToToken;
    private readonly byte[][] _idToBytes;
    private readonly Dictionary<string, int> _tokenToId;
    private readonly int[] _byteToId = new int[256];
    // (left id, right id) packed in a long -> (rank, merged id).
    private readonly Dictionary<long, (int Rank, int Id)> _merges;
    private readonly List<(int Left, int Right)> _mergeList;
    private readonly Dictionary<string, int> _special;
    private readonly string[] _specialByLength;
    private readonly ConcurrentDictionary<string, int[]> _cache = new();
    // Entries added since the last clear (ConcurrentDictionary.Count takes every lock, too slow per miss).
    private int _cacheAdds;
    private readonly ConcurrentDictionary<string, int[]>.AlternateLookup<ReadOnlySpan<char>> _cacheLookup;

    /// <summary>
    /// Builds a tokenizer from a vocabulary (byte-level token string to id) and merges in rank order.
    /// Special tokens default to every vocabulary entry written <c>&lt;|...|&gt;</c>.
    /// </summary>
    public Gpt2Tokenizer(IReadOnlyDictionary<string, int> vocab, IReadOnlyList<(string Left, string Right)> merges,
        IEnumerable<string>? specialTokens = null)
        : this(vocab, merges, specialTokens, "vocabulary", null, "merges", null)
    {
    }

    private Gpt2Tokenizer(IReadOnlyDictionary<string, int> vocab, IReadOnlyList<(string Left, string Right)> merges,
        IEnumerable<string>? specialTokens, string vocabSource, int[]? vocabLines, string mergesSource, int[]? mergeLines)
    {
        if (vocab.Count == 0) throw new FormatException($"{vocabSource}: the vocabulary is empty.");
        _tokenToId = new Dictionary<string, int>(vocab.Count, StringComparer.Ordinal);
        int maxId = -1;
        foreach (var (token, id) in vocab)
        {
            if (id < 0) throw new FormatException($"{vocabSource}: token \"{token}\" has negative id {id}.");
            _tokenToId[token] = id;
            maxId = Math.Max(maxId, id);
        }
        _idToToken = new string[maxId + 1];
        foreach (var (token, id) in _tokenToId)
        {
            if (_idToToken[id] is { } other)
                throw new FormatException($"{vocabSource}: id {id} is given to both \"{other}\" and \"{token}\".");
            _idToToken[id] = token;
        }
        for (int id = 0; id <= maxId; id++)
        {
            if (_idToToken[id] is null)
                throw new FormatException($"{vocabSource}: ids must be contiguous from 0, but id {id} is missing (largest id is {maxId}).");
        }

        var specials = specialTokens?.ToList()
            ?? _tokenToId.Keys.Where(t => t.Length > 4 && t.StartsWith("<|", StringComparison.Ordinal) && t.EndsWith("|>", StringComparison.Ordinal)).ToList();
        _special = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var s in specials)
        {
            if (!_tokenToId.TryGetValue(s, out int id))
                throw new FormatException($"{vocabSource}: special token \"{s}\" is not in the vocabulary.");
            _special[s] = id;
        }
        // Longest first, so a special token that contains another one wins.
        _specialByLength = _special.Keys.OrderByDescending(s => s.Length).ThenBy(s => s, StringComparer.Ordinal).ToArray();

        _idToBytes = new byte[_idToToken.Length][];
        for (int id = 0; id < _idToToken.Length; id++)
        {
            string token = _idToToken[id];
            if (_special.ContainsKey(token))
            {
                _idToBytes[id] = Encoding.UTF8.GetBytes(token);
            }
            else if (!ByteLevel.TryDecode(token, out _idToBytes[id], out char bad))
            {
                throw new FormatException(
                    $"{vocabSource}{LineSuffix(vocabLines, id)}: token \"{token}\" (id {id}) holds U+{(int)bad:X4}, which is not in GPT-2's byte-level alphabet.");
            }
        }

        for (int b = 0; b < 256; b++)
        {
            string single = ByteLevel.ByteToChar[b].ToString();
            if (!_tokenToId.TryGetValue(single, out _byteToId[b]))
                throw new FormatException($"{vocabSource}: the vocabulary lacks the token \"{single}\" for byte 0x{b:X2}, so some text could not be encoded.");
        }

        _merges = new Dictionary<long, (int, int)>(merges.Count, PairKeyComparer.Instance);
        _mergeList = new List<(int, int)>(merges.Count);
        for (int rank = 0; rank < merges.Count; rank++)
        {
            var (left, right) = merges[rank];
            string where = $"{mergesSource}{(mergeLines is null ? $" merge {rank}" : $" line {mergeLines[rank]}")}";
            if (!_tokenToId.TryGetValue(left, out int l))
                throw new FormatException($"{where}: merge \"{left} {right}\" names the unknown token \"{left}\".");
            if (!_tokenToId.TryGetValue(right, out int r))
                throw new FormatException($"{where}: merge \"{left} {right}\" names the unknown token \"{right}\".");
            if (!_tokenToId.TryGetValue(left + right, out int m))
                throw new FormatException($"{where}: merge \"{left} {right}\" makes \"{left + right}\", which is not in the vocabulary.");
            // A repeated merge keeps its first (lowest) rank, as a rank lookup would.
            if (_merges.TryAdd(Key(l, r), (rank, m))) _mergeList.Add((l, r));
        }

        _cacheLookup = _cache.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    private static string LineSuffix(int[]? lines, int id) => lines is null ? "" : $" line {lines[id]}";

    private static long Key(int left, int right) => ((long)left << 32) | (uint)right;

    public int VocabSize => _idToToken.Length;

    public int? EosId => _special.TryGetValue(EndOfText, out int id) ? id : null;

    public ChatTemplate? ChatTemplate { get; set; }

    public IReadOnlyDictionary<string, int> SpecialTokens => _special;

    /// <summary>Number of merges (the rank of a merge is its line in merges.txt after the header).</summary>
    public int MergeCount => _mergeList.Count;

    /// <summary>The byte-level token string of an id, as in vocab.json.</summary>
    public string TokenOf(int id) => _idToToken[id];

    /// <summary>The id of a byte-level token string, if present.</summary>
    public bool TryGetId(string token, out int id) => _tokenToId.TryGetValue(token, out id);

    /// <summary>Loads vocab.json and merges.txt from a folder (a Hugging Face GPT-2 folder or one we saved).</summary>
    public static Gpt2Tokenizer Load(string directory)
    {
        var tokenizer = Load(Path.Combine(directory, VocabFileName), Path.Combine(directory, MergesFileName));
        tokenizer.ChatTemplate = TokenizerConfig.ReadChatTemplate(directory, tokenizer);
        return tokenizer;
    }

    /// <summary>Loads from explicit paths; a malformed file raises a FormatException naming the file and line.</summary>
    public static Gpt2Tokenizer Load(string vocabPath, string mergesPath)
    {
        if (!File.Exists(vocabPath)) throw new FileNotFoundException($"Tokenizer vocabulary not found: {vocabPath}", vocabPath);
        if (!File.Exists(mergesPath)) throw new FileNotFoundException($"Tokenizer merges not found: {mergesPath}", mergesPath);
        var (vocab, vocabLines) = ReadVocab(vocabPath);
        var (merges, mergeLines) = ReadMerges(mergesPath);
        var tokenizer = new Gpt2Tokenizer(vocab, merges, null, vocabPath, vocabLines, mergesPath, mergeLines);
        tokenizer.RequireMergesMakeEveryToken(vocabPath, vocabLines, mergesPath);
        return tokenizer;
    }

    /// <summary>
    /// Every token of the vocabulary but the 256 byte tokens and the special ones is made by a merge; one that no merge
    /// makes could never be produced, so the files do not belong together. This refuses an empty or cut-short
    /// merges.txt, which would otherwise load and encode text byte by byte.
    /// </summary>
    private void RequireMergesMakeEveryToken(string vocabPath, int[] vocabLines, string mergesPath)
    {
        var made = new HashSet<int>(_merges.Values.Select(v => v.Id));
        var byteIds = new HashSet<int>(_byteToId);
        int missing = 0, first = -1;
        for (int id = 0; id < _idToToken.Length; id++)
        {
            if (byteIds.Contains(id) || _special.ContainsKey(_idToToken[id]) || made.Contains(id)) continue;
            missing++;
            if (first < 0) first = id;
        }
        if (missing == 0) return;
        string token = _idToToken[first];
        string where = $"\"{token}\" (id {first}){LineSuffix(vocabLines, first).Replace(" line", " at line", StringComparison.Ordinal)}";
        if (_mergeList.Count == 0)
            throw new FormatException($"{mergesPath} line 1: no merges (the file is empty or holds only its #version header), but {vocabPath} has {missing} tokens only merges can make (first: {where}).");
        throw new FormatException($"{vocabPath}{LineSuffix(vocabLines, first)}: token \"{token}\" (id {first}) is made by no merge in {mergesPath} ({_mergeList.Count} merges; {missing} tokens lack one): the merges file is cut short or belongs to another vocabulary.");
    }

    // Reads {"token": id, ...}, remembering each id's line so later checks can point at it.
    private static (Dictionary<string, int> Vocab, int[] Lines) ReadVocab(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        // Utf8JsonReader does not skip a byte-order mark; some editors write one.
        if (bytes.AsSpan().StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) bytes = bytes[3..];
        Utf8TextFile.Validate(path, bytes);
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        var lineOf = new Dictionary<int, int>();
        var reader = new Utf8JsonReader(bytes, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow });
        // Lines are counted incrementally as the reader moves forward (a rescan per token would be quadratic).
        long countedTo = 0;
        int countedLine = 1;
        int LineNow(long offset)
        {
            long end = Math.Min(offset, bytes.Length);
            for (; countedTo < end; countedTo++) if (bytes[countedTo] == (byte)'\n') countedLine++;
            return countedLine;
        }
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                throw new FormatException($"{path} line {LineAt(bytes, reader.TokenStartIndex)}: expected a JSON object mapping token strings to ids.");
            while (true)
            {
                if (!reader.Read()) throw new FormatException($"{path}: the JSON object is not closed.");
                if (reader.TokenType == JsonTokenType.EndObject) break;
                string token = reader.GetString()!;
                if (!reader.Read()) throw new FormatException($"{path}: the JSON object is not closed.");
                int line = LineNow(reader.TokenStartIndex);
                if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt32(out int id))
                    throw new FormatException($"{path} line {line}: token \"{token}\" must map to an integer id, not {Describe(ref reader)}.");
                if (!vocab.TryAdd(token, id))
                    throw new FormatException($"{path} line {line}: token \"{token}\" appears twice.");
                lineOf.TryAdd(id, line);
            }
        }
        catch (JsonException ex)
        {
            throw new FormatException($"{path} line {(ex.LineNumber ?? LineAt(bytes, reader.TokenStartIndex) - 1) + 1}: invalid JSON ({ex.Message})", ex);
        }
        int maxId = vocab.Count == 0 ? -1 : vocab.Values.Max();
        var lines = new int[Math.Max(0, maxId + 1)];
        foreach (var (id, line) in lineOf) if (id >= 0) lines[id] = line;
        return (vocab, lines);
    }

    private static string Describe(ref Utf8JsonReader reader) => reader.TokenType switch
    {
        JsonTokenType.String => $"the string \"{reader.GetString()}\"",
        JsonTokenType.Number => $"the number {Encoding.UTF8.GetString(reader.ValueSpan)}",
        _ => reader.TokenType.ToString(),
    };

    private static int LineAt(byte[] bytes, long offset)
    {
        int line = 1;
        long end = Math.Min(offset, bytes.Length);
        for (long i = 0; i < end; i++) if (bytes[i] == (byte)'\n') line++;
        return line;
    }

    private static (List<(string, string)> Merges, int[] Lines) ReadMerges(string path)
    {
        var merges = new List<(string, string)>();
        var lines = new List<int>();
        foreach (var (lineNo, line) in Utf8TextFile.ReadLines(path))
        {
            if (lineNo == 1 && line.StartsWith("#version", StringComparison.Ordinal)) continue;
            if (line.Length == 0) continue;
            int space = line.IndexOf(' ');
            if (space <= 0 || space == line.Length - 1 || line.IndexOf(' ', space + 1) >= 0)
                throw new FormatException($"{path} line {lineNo}: expected two tokens separated by one space, got \"{line}\".");
            merges.Add((line[..space], line[(space + 1)..]));
            lines.Add(lineNo);
        }
        return (merges, lines.ToArray());
    }

    public int[] Encode(string text) => Encode(text, allowSpecial: false);

    public int[] Encode(string text, bool allowSpecial)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 4);
        if (!allowSpecial || _special.Count == 0)
        {
            EncodeOrdinary(text, ids);
            return ids.ToArray();
        }
        int pos = 0;
        while (pos < text.Length)
        {
            int best = -1;
            string? bestToken = null;
            foreach (string s in _specialByLength)
            {
                int at = text.IndexOf(s, pos, StringComparison.Ordinal);
                if (at >= 0 && (best < 0 || at < best))
                {
                    best = at;
                    bestToken = s;
                }
            }
            if (bestToken is null)
            {
                EncodeOrdinary(text.AsSpan(pos), ids);
                break;
            }
            EncodeOrdinary(text.AsSpan(pos, best - pos), ids);
            ids.Add(_special[bestToken]);
            pos = best + bestToken.Length;
        }
        return ids.ToArray();
    }

    /// <summary>Appends the ids of <paramref name="text"/> (special-token strings as plain text) to <paramref name="ids"/>.</summary>
    public void EncodeOrdinary(ReadOnlySpan<char> text, List<int> ids)
    {
        var pieces = new List<(int Start, int Length)>(text.Length / 4 + 4);
        Gpt2PreTokenizer.Split(text, pieces);
        EncodePieces(text, pieces, ids);
    }

    /// <summary>
    /// EncodeOrdinary with .NET's Regex doing the pre-tokenisation: same ids on BMP text; kept as the
    /// benchmark's peer for the hand-written scanner.
    /// </summary>
    public void EncodeOrdinaryWithRegex(ReadOnlySpan<char> text, List<int> ids)
    {
        var pieces = new List<(int Start, int Length)>(text.Length / 4 + 4);
        Gpt2PreTokenizer.SplitWithRegex(text, pieces);
        EncodePieces(text, pieces, ids);
    }

    /// <summary>Empties the cache of encoded pieces (so a benchmark can time a cold start).</summary>
    public void ClearCache()
    {
        _cache.Clear();
        Interlocked.Exchange(ref _cacheAdds, 0);
    }

    private void EncodePieces(ReadOnlySpan<char> text, List<(int Start, int Length)> pieces, List<int> ids)
    {
        foreach (var (start, length) in pieces)
        {
            var piece = text.Slice(start, length);
            if (length <= MaxCachedPieceLength && _cacheLookup.TryGetValue(piece, out int[]? cached))
            {
                ids.AddRange(cached);
                continue;
            }
            int[] encoded = EncodePiece(piece);
            if (length <= MaxCachedPieceLength)
            {
                if (Interlocked.Increment(ref _cacheAdds) > MaxCacheEntries) ClearCache();
                _cache.TryAdd(piece.ToString(), encoded);
            }
            ids.AddRange(encoded);
        }
    }

    // BPE on one piece: start from one token per UTF-8 byte and apply the lowest-ranked merge present, leftmost
    // first, until none applies. This equals GPT-2's `bpe()` (which merges every occurrence of the best pair at
    // once) because a merge's result can only take part in merges of higher rank. The rank of each adjacent pair
    // is kept in an array and only the two pairs beside a merge are looked up again (as tiktoken does).
    private int[] EncodePiece(ReadOnlySpan<char> piece)
    {
        int n = Encoding.UTF8.GetByteCount(piece);
        byte[] bytes = new byte[n];
        Encoding.UTF8.GetBytes(piece, bytes);
        var sym = new int[n];
        for (int k = 0; k < n; k++) sym[k] = _byteToId[bytes[k]];
        // rank[k] and merged[k] describe the pair (sym[k], sym[k + 1]); int.MaxValue = no merge.
        var rank = new int[Math.Max(0, n - 1)];
        var merged = new int[rank.Length];
        for (int k = 0; k + 1 < n; k++) LookUpPair(sym, k, rank, merged);
        while (n > 1)
        {
            int bestAt = -1, bestRank = int.MaxValue;
            for (int k = 0; k + 1 < n; k++)
            {
                if (rank[k] < bestRank)
                {
                    bestRank = rank[k];
                    bestAt = k;
                }
            }
            if (bestAt < 0) break;
            sym[bestAt] = merged[bestAt];
            // Close the gap left by sym[bestAt + 1] and its pair entry.
            Array.Copy(sym, bestAt + 2, sym, bestAt + 1, n - bestAt - 2);
            n--;
            if (bestAt + 1 < n)
            {
                Array.Copy(rank, bestAt + 2, rank, bestAt + 1, n - bestAt - 2);
                Array.Copy(merged, bestAt + 2, merged, bestAt + 1, n - bestAt - 2);
                LookUpPair(sym, bestAt, rank, merged);
            }
            else
            {
                rank[bestAt] = int.MaxValue;
            }
            if (bestAt > 0) LookUpPair(sym, bestAt - 1, rank, merged);
        }
        return sym.AsSpan(0, n).ToArray();
    }

    private void LookUpPair(int[] sym, int k, int[] rank, int[] merged)
    {
        if (_merges.TryGetValue(Key(sym[k], sym[k + 1]), out var m))
        {
            rank[k] = m.Rank;
            merged[k] = m.Id;
        }
        else
        {
            rank[k] = int.MaxValue;
        }
    }

    public string Decode(ReadOnlySpan<int> ids) => Encoding.UTF8.GetString(DecodeBytes(ids));

    /// <summary>The raw bytes the ids stand for (a prefix of a sequence may end inside a UTF-8 character).</summary>
    public byte[] DecodeBytes(ReadOnlySpan<int> ids)
    {
        int total = 0;
        foreach (int id in ids)
        {
            if ((uint)id >= (uint)_idToBytes.Length)
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"Token id {id} is outside the vocabulary [0, {_idToBytes.Length}).");
            total += _idToBytes[id].Length;
        }
        var result = new byte[total];
        int at = 0;
        foreach (int id in ids)
        {
            _idToBytes[id].CopyTo(result, at);
            at += _idToBytes[id].Length;
        }
        return result;
    }

    public void Save(string directory)
    {
        Directory.CreateDirectory(directory);
        using (var stream = File.Create(Path.Combine(directory, VocabFileName)))
        using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            for (int id = 0; id < _idToToken.Length; id++) writer.WriteNumber(_idToToken[id], id);
            writer.WriteEndObject();
        }
        var sb = new StringBuilder("#version: 0.2\n");
        foreach (var (l, r) in _mergeList) sb.Append(_idToToken[l]).Append(' ').Append(_idToToken[r]).Append('\n');
        File.WriteAllText(Path.Combine(directory, MergesFileName), sb.ToString(), new UTF8Encoding(false));
        TokenizerConfig.Write(directory, this, "GPT2Tokenizer");
    }
}
