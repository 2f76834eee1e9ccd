// A TFRecord / tensorflow.Event reader written from the format's description, independent of TensorBoardWriter: a bitwise
// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) with TensorFlow's mask, and protobuf varint/fixed/length decoding.
// Record: u64 length | u32 masked CRC of those 8 bytes | data | u32 masked CRC of data (little-endian).
using System.Buffers.Binary;
using System.Text;

namespace RlhfSharp.Runs.Tests;

internal static class TfEventsReader
{
    public static uint BitwiseCrc32C(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
        }
        return ~crc;
    }

    public static uint MaskedCrc(ReadOnlySpan<byte> data)
    {
        uint crc = BitwiseCrc32C(data);
        return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
    }

    public static IEnumerable<byte[]> ReadRecords(byte[] file)
    {
        int at = 0;
        while (at < file.Length)
        {
            ulong length = BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(at));
            if (BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(at + 8)) != MaskedCrc(file.AsSpan(at, 8)))
                throw new InvalidDataException($"length CRC mismatch at {at}");
            byte[] data = file.AsSpan(at + 12, (int)length).ToArray();
            if (BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(at + 12 + (int)length)) != MaskedCrc(data))
                throw new InvalidDataException($"data CRC mismatch at {at}");
            yield return data;
            at += 12 + (int)length + 4;
        }
    }

    /// <summary>One tensorflow.Event: SessionStatus is session_log.status (1 = START) when the event is a session log.</summary>
    public sealed record Event(double WallTime, long Step, string? FileVersion, List<(string, float)> Values, int? SessionStatus = null);

    public static Event ParseEvent(byte[] data)
    {
        double wall = 0;
        long step = 0;
        string? version = null;
        int? session = null;
        var values = new List<(string, float)>();
        foreach (var (field, wire, raw, payload) in Fields(data))
        {
            switch (field, wire)
            {
                case (1, 1): wall = BitConverter.Int64BitsToDouble((long)raw); break;
                case (2, 0): step = (long)raw; break;
                case (3, 2): version = Encoding.UTF8.GetString(payload); break;
                case (5, 2):
                    foreach (var (f, w, _, value) in Fields(payload))
                    {
                        Assert.Equal((1, 2), (f, w));
                        string tag = "";
                        float simple = float.NaN;
                        foreach (var (vf, vw, vraw, vpayload) in Fields(value))
                        {
                            if ((vf, vw) == (1, 2)) tag = Encoding.UTF8.GetString(vpayload);
                            else if ((vf, vw) == (2, 5)) simple = BitConverter.Int32BitsToSingle((int)vraw);
                            else throw new InvalidDataException($"unexpected Summary.Value field {vf}/{vw}");
                        }
                        values.Add((tag, simple));
                    }
                    break;
                case (7, 2):
                    var status = Assert.Single(Fields(payload));
                    Assert.Equal((1, 0), (status.Item1, status.Item2));
                    session = (int)status.Item3;
                    break;
                default: throw new InvalidDataException($"unexpected Event field {field}/{wire}");
            }
        }
        return new Event(wall, step, version, values, session);
    }

    // (field number, wire type, varint or fixed value, length-delimited payload)
    public static List<(int, int, ulong, byte[])> Fields(byte[] data)
    {
        var result = new List<(int, int, ulong, byte[])>();
        int at = 0;
        while (at < data.Length)
        {
            ulong key = ReadVarint(data, ref at);
            int field = (int)(key >> 3), wire = (int)(key & 7);
            switch (wire)
            {
                case 0: result.Add((field, wire, ReadVarint(data, ref at), [])); break;
                case 1: result.Add((field, wire, BinaryPrimitives.ReadUInt64LittleEndian(data.AsSpan(at)), [])); at += 8; break;
                case 5: result.Add((field, wire, BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(at)), [])); at += 4; break;
                case 2:
                    int len = (int)ReadVarint(data, ref at);
                    result.Add((field, wire, 0, data.AsSpan(at, len).ToArray()));
                    at += len;
                    break;
                default: throw new InvalidDataException($"wire type {wire}");
            }
        }
        return result;
    }

    public static ulong ReadVarint(byte[] data, ref int at)
    {
        ulong v = 0;
        for (int shift = 0; ; shift += 7)
        {
            byte b = data[at++];
            v |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80) return v;
        }
    }
}
