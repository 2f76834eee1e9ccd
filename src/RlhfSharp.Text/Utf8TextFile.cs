// The one way user text files are read (JSONL datasets, prompt files, corpora, tokenizer files, --config): strict UTF-8.
// .NET's File.ReadLines and ReadAllText turn a byte that is not UTF-8 into U+FFFD and go on, so a Latin-1 file or a
// damaged one would silently train on replacement characters (issue 17). Here such a byte is an error naming the file,
// the line and the byte offset in the file: "data.jsonl:3: invalid UTF-8 at byte 57 (0xE9)". A UTF-8 byte-order mark
// at the start is skipped; lines end at '\n', and a '\r' before it is dropped (CRLF files read as LF files).
using System.Globalization;
using System.Text;
using System.Text.Unicode;

namespace RlhfSharp.Text;

public static class Utf8TextFile
{
    private static ReadOnlySpan<byte> Bom => [0xEF, 0xBB, 0xBF];

    /// <summary>The lines of <paramref name="path"/> with their numbers (from 1), read as it is enumerated.</summary>
    public static IEnumerable<(int Number, string Text)> ReadLines(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path} does not exist.", path);
        return Lines(path);
    }

    private static IEnumerable<(int Number, string Text)> Lines(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        var chunk = new byte[1 << 16];
        var line = new byte[256];
        int lineLength = 0, number = 0;
        long offset = 0, lineStart = 0;
        bool first = true;
        int read;
        while ((read = stream.Read(chunk, 0, chunk.Length)) > 0)
        {
            int start = 0;
            if (first)
            {
                first = false;
                if (read >= 3 && chunk.AsSpan(0, 3).SequenceEqual(Bom)) (start, lineStart) = (3, 3);
            }
            while (start < read)
            {
                int newline = Array.IndexOf(chunk, (byte)'\n', start, read - start);
                int end = newline < 0 ? read : newline;
                Append(ref line, ref lineLength, chunk.AsSpan(start, end - start));
                if (newline < 0)
                {
                    start = read;
                    break;
                }
                number++;
                yield return (number, Decode(path, number, line.AsSpan(0, lineLength), lineStart));
                lineStart = offset + newline + 1;
                lineLength = 0;
                start = newline + 1;
            }
            offset += read;
        }
        if (lineLength > 0) yield return (number + 1, Decode(path, number + 1, line.AsSpan(0, lineLength), lineStart));
    }

    /// <summary>The whole of <paramref name="path"/> as a string (a leading byte-order mark dropped, line ends kept).</summary>
    public static string ReadAllText(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path} does not exist.", path);
        var bytes = File.ReadAllBytes(path).AsSpan();
        int skip = bytes.StartsWith(Bom) ? 3 : 0;
        Validate(path, bytes[skip..], skip);
        return Encoding.UTF8.GetString(bytes[skip..]);
    }

    /// <summary>
    /// Throws the error naming <paramref name="path"/>, the line and the byte offset when <paramref name="bytes"/> (the
    /// file's content from byte <paramref name="offset"/> on) is not valid UTF-8.
    /// </summary>
    public static void Validate(string path, ReadOnlySpan<byte> bytes, int offset = 0)
    {
        if (Utf8.IsValid(bytes)) return;
        int at = FirstInvalid(bytes);
        int line = 1 + bytes[..at].Count((byte)'\n');
        throw Invalid(path, line, offset + at, bytes[at]);
    }

    /// <summary>Decodes one line; <paramref name="lineStart"/> is its first byte's offset in the file.</summary>
    private static string Decode(string path, int number, ReadOnlySpan<byte> bytes, long lineStart)
    {
        if (bytes.Length > 0 && bytes[^1] == (byte)'\r') bytes = bytes[..^1];
        if (!Utf8.IsValid(bytes))
        {
            int at = FirstInvalid(bytes);
            throw Invalid(path, number, lineStart + at, bytes[at]);
        }
        return Encoding.UTF8.GetString(bytes);
    }

    /// <summary>The offset of the first byte that does not start a valid UTF-8 sequence.</summary>
    private static int FirstInvalid(ReadOnlySpan<byte> bytes)
    {
        int i = 0;
        while (i < bytes.Length)
        {
            if (Rune.DecodeFromUtf8(bytes[i..], out _, out int consumed) != System.Buffers.OperationStatus.Done) return i;
            i += consumed;
        }
        return bytes.Length;
    }

    private static FormatException Invalid(string path, int line, long offset, byte value) =>
        new($"{path}:{line}: invalid UTF-8 at byte {offset.ToString(CultureInfo.InvariantCulture)} of the file (0x{value:X2}); save the file as UTF-8.");

    private static void Append(ref byte[] buffer, ref int length, ReadOnlySpan<byte> bytes)
    {
        if (length + bytes.Length > buffer.Length) Array.Resize(ref buffer, Math.Max(buffer.Length * 2, length + bytes.Length));
        bytes.CopyTo(buffer.AsSpan(length));
        length += bytes.Length;
    }
}
