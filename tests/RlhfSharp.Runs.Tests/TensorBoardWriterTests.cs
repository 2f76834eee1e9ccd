// The tfevents file is read back by TfEventsReader, written in this project from the format's description (bitwise
// CRC-32C, protobuf varint/fixed decoding), independent of the writer's code.
using static RlhfSharp.Runs.Tests.TfEventsReader;

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
}
