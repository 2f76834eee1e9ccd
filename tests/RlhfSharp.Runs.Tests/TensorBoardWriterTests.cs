// The tfevents file is read back by a reader written here from the format's description (bitwise CRC-32C,
// protobuf varint/fixed decoding), independent of the writer's code.
using System.Buffers.Binary;
using System.Text;

namespace RlhfSharp.Runs.Tests;

public sealed class TensorBoardWriterTests
{
    [Fact]
    public void Crc32C_StandardCheckValue()
    {
        // The CRC catalogue's check value for CRC-32/ISCSI (Castagnoli).
        Assert.Equal(0xE3069283u, Crc32C.Compute("123456789"u8));
        Assert.Equal(0xE3069283u, BitwiseCrc32C("123456789"u8));
        var random = new Random(7);
        for (int n = 0; n < 100; n++)
        {
            var data = new byte[n * 3 + 1];
            random.NextBytes(data);
            Assert.Equal(BitwiseCrc32C(data), Crc32C.Compute(data));
        }
    }

    [Fact]
    public void EventsFile_ParsesBackWithChecksumsAndValues()
    {
        string dir = Directory.CreateTempSubdirectory("tb-").FullName;
        try
        {
            var start = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000);
            string path;
            using (var tb = new TensorBoardWriter(dir, start))
            {
                path = tb.Path;
                tb.AddScalars(1, new Dictionary<string, double> { ["loss/policy"] = 0.5, ["objective/kl"] = -1.25 }, start.AddSeconds(2));
                tb.AddScalar("perf/tokens_per_s", 12345.678, 300);
            }
            Assert.StartsWith("events.out.tfevents.1700000000.", Path.GetFileName(path));

            var events = ReadRecords(File.ReadAllBytes(path)).Select(ParseEvent).ToList();
            Assert.Equal(3, events.Count);
            Assert.Equal("brain.Event:2", events[0].FileVersion);
            Assert.Equal(1_700_000_000.0, events[0].WallTime);
            Assert.Equal(1, events[1].Step);
            Assert.Equal(1_700_000_002.0, events[1].WallTime);
            Assert.Equal([("loss/policy", 0.5f), ("objective/kl", -1.25f)], events[1].Values);
            Assert.Equal(300, events[2].Step);
            Assert.Equal([("perf/tokens_per_s", 12345.678f)], events[2].Values);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void CorruptedByte_IsCaughtByTheReader()
    {
        string dir = Directory.CreateTempSubdirectory("tb-").FullName;
        try
        {
            string path;
            using (var tb = new TensorBoardWriter(dir))
            {
                path = tb.Path;
                tb.AddScalar("x", 1, 1);
            }
            byte[] bytes = File.ReadAllBytes(path);
            bytes[^6] ^= 0x40; // inside the last record's data
            Assert.Throws<InvalidDataException>(() => ReadRecords(bytes).ToList());
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    private static uint BitwiseCrc32C(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFF;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
        }
        return ~crc;
    }

    private static uint MaskedCrc(ReadOnlySpan<byte> data)
    {
        uint crc = BitwiseCrc32C(data);
        return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
    }

    private static IEnumerable<byte[]> ReadRecords(byte[] file)
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

    [Fact]
    public void RestartMark_IsASessionLogStart()
    {
        string dir = Directory.CreateTempSubdirectory("tb-").FullName;
        try
        {
            string path;
            using (var tb = new TensorBoardWriter(dir))
            {
                path = tb.Path;
                tb.MarkRestart(201);
            }
            var records = ReadRecords(File.ReadAllBytes(path)).ToList();
            Assert.Equal(2, records.Count);
            var fields = Fields(records[1]);
            Assert.Contains(fields, f => f.Item1 == 2 && f.Item2 == 0 && f.Item3 == 201);
            var sessionLog = Assert.Single(fields, f => f.Item1 == 7 && f.Item2 == 2);
            Assert.Equal([(1, 0, 1UL)], Fields(sessionLog.Item4).Select(f => (f.Item1, f.Item2, f.Item3)));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    private sealed record Event(double WallTime, long Step, string? FileVersion, List<(string, float)> Values);

    private static Event ParseEvent(byte[] data)
    {
        double wall = 0;
        long step = 0;
        string? version = null;
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
                default: throw new InvalidDataException($"unexpected Event field {field}/{wire}");
            }
        }
        return new Event(wall, step, version, values);
    }

    // (field number, wire type, varint or fixed value, length-delimited payload)
    private static List<(int, int, ulong, byte[])> Fields(byte[] data)
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

    private static ulong ReadVarint(byte[] data, ref int at)
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
