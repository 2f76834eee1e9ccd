// TensorBoard event files (events.out.tfevents.*) written without TensorFlow: TFRecord framing (length, masked CRC-32C,
// payload, masked CRC-32C) around hand-encoded Event protobufs carrying scalar summaries, so `tensorboard --logdir runs` works.
// Wire format from tensorflow/core/util/event.proto and summary.proto: Event{1: wall_time double, 2: step int64,
// 3: file_version string, 5: summary}, Summary{1: repeated Value}, Value{1: tag string, 2: simple_value float}.
using System.Buffers.Binary;
using System.Text;

namespace RlhfSharp.Control.Rl;

public sealed class TensorBoardWriter : IDisposable
{
    private readonly FileStream _stream;

    /// <summary>Creates events.out.tfevents.{unix time}.{host} in dir and writes the file-version header event.</summary>
    public TensorBoardWriter(string dir)
    {
        Directory.CreateDirectory(dir);
        long now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        FilePath = Path.Combine(dir, $"events.out.tfevents.{now}.{Environment.MachineName}");
        _stream = new FileStream(FilePath, FileMode.Create, FileAccess.Write, FileShare.Read);
        var e = new List<byte>();
        WallTime(e);
        Tag(e, 3, 2);
        Bytes(e, Encoding.UTF8.GetBytes("brain.Event:2"));
        WriteRecord([.. e]);
    }

    public string FilePath { get; }

    /// <summary>One event holding every finite scalar of the row at its global step.</summary>
    public void Write(MetricsRow row)
    {
        var summary = new List<byte>();
        var f = new byte[4];
        foreach (var (tag, value) in row.Values)
        {
            if (!double.IsFinite(value)) continue;
            var v = new List<byte>();
            Tag(v, 1, 2);
            Bytes(v, Encoding.UTF8.GetBytes(tag));
            Tag(v, 2, 5);
            BinaryPrimitives.WriteSingleLittleEndian(f, (float)value);
            v.AddRange(f);
            Tag(summary, 1, 2);
            Bytes(summary, [.. v]);
        }
        var e = new List<byte>();
        WallTime(e);
        Tag(e, 2, 0);
        Varint(e, (ulong)row.GlobalStep);
        Tag(e, 5, 2);
        Bytes(e, [.. summary]);
        WriteRecord([.. e]);
    }

    public void Dispose() => _stream.Dispose();

    private void WriteRecord(byte[] data)
    {
        Span<byte> head = stackalloc byte[12];
        BinaryPrimitives.WriteUInt64LittleEndian(head, (ulong)data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(head[8..], MaskedCrc(head[..8]));
        _stream.Write(head);
        _stream.Write(data);
        Span<byte> tail = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(tail, MaskedCrc(data));
        _stream.Write(tail);
        _stream.Flush();
    }

    private static void WallTime(List<byte> e)
    {
        Tag(e, 1, 1);
        Span<byte> d = stackalloc byte[8];
        BinaryPrimitives.WriteDoubleLittleEndian(d, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0);
        e.AddRange(d.ToArray());
    }

    private static void Tag(List<byte> b, int field, int wireType) => Varint(b, (ulong)((field << 3) | wireType));

    private static void Bytes(List<byte> b, byte[] data)
    {
        Varint(b, (ulong)data.Length);
        b.AddRange(data);
    }

    private static void Varint(List<byte> b, ulong v)
    {
        while (v >= 0x80) { b.Add((byte)(v | 0x80)); v >>= 7; }
        b.Add((byte)v);
    }

    /// <summary>TFRecord's masked CRC: rotate right by 15 and add 0xa282ead8 (so CRCs of CRCs stay distinct).</summary>
    internal static uint MaskedCrc(ReadOnlySpan<byte> data)
    {
        uint crc = Crc32C(data);
        return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
    }

    private static readonly uint[] Table = BuildTable();

    /// <summary>CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord uses.</summary>
    internal static uint Crc32C(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFFu;
        foreach (byte x in data) crc = Table[(crc ^ x) & 0xFF] ^ (crc >> 8);
        return crc ^ 0xFFFFFFFFu;
    }

    private static uint[] BuildTable()
    {
        var t = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            uint c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0x82F63B78u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }
}
