// GPT-2's reversible byte <-> printable-character table, so every byte sequence is a string of visible characters.
// Reproduces `bytes_to_unicode` from OpenAI's gpt-2 `src/encoder.py`: printable Latin-1 bytes map to
// themselves, the other 68 bytes to U+0100 onwards in byte order (space 0x20 becomes 'Ġ' U+0120).
namespace RlhfSharp.Text;

public static class ByteLevel
{
    /// <summary>Character standing for each byte.</summary>
    public static readonly char[] ByteToChar = BuildByteToChar(out ByteOrder);

    /// <summary>
    /// The bytes in GPT-2's base-vocabulary order (printable ones first): GPT-2's ids 0..255 are these bytes,
    /// and the BPE trainer numbers its base tokens the same way.
    /// </summary>
    public static readonly byte[] ByteOrder;

    private static readonly Dictionary<char, byte> CharToByte = BuildCharToByte();

    private static char[] BuildByteToChar(out byte[] order)
    {
        var map = new char[256];
        var seen = new bool[256];
        var ordered = new List<byte>(256);
        foreach (var (lo, hi) in new[] { ('!', '~'), ('\u00A1', '\u00AC'), ('\u00AE', '\u00FF') })
        {
            for (int b = lo; b <= hi; b++)
            {
                map[b] = (char)b;
                seen[b] = true;
                ordered.Add((byte)b);
            }
        }
        int n = 0;
        for (int b = 0; b < 256; b++)
        {
            if (!seen[b])
            {
                map[b] = (char)(256 + n++);
                ordered.Add((byte)b);
            }
        }
        order = ordered.ToArray();
        return map;
    }

    private static Dictionary<char, byte> BuildCharToByte()
    {
        var inverse = new Dictionary<char, byte>(256);
        for (int b = 0; b < 256; b++) inverse[ByteToChar[b]] = (byte)b;
        return inverse;
    }

    /// <summary>The byte-level string for raw bytes (the form tokens take in vocab.json and merges.txt).</summary>
    public static string Encode(ReadOnlySpan<byte> bytes)
    {
        return string.Create(bytes.Length, bytes.ToArray(), static (dst, src) =>
        {
            for (int i = 0; i < src.Length; i++) dst[i] = ByteToChar[src[i]];
        });
    }

    /// <summary>Raw bytes of a byte-level string, or false if it holds a character outside the 256-character alphabet.</summary>
    public static bool TryDecode(string token, out byte[] bytes, out char offending)
    {
        bytes = new byte[token.Length];
        for (int i = 0; i < token.Length; i++)
        {
            if (!CharToByte.TryGetValue(token[i], out bytes[i]))
            {
                offending = token[i];
                return false;
            }
        }
        offending = '\0';
        return true;
    }
}
