// Property tests (FsCheck) of the TensorBoard event writer, read back by TfEventsReader (independent CRC-32C and protobuf
// decoding): any sequence of scalar events and restart marks round-trips (any Unicode tags, any int64 step, edge values:
// NaN, ±∞, ±0, subnormals, doubles outside float range), and flipping any one bit of the file fails a CRC check.
// At most 8 events of 5 scalars, 100 cases each, fixed Replay seeds.
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using static RlhfSharp.Runs.Tests.TfEventsReader;

namespace RlhfSharp.Runs.Tests;

public sealed class TensorBoardWriterPropertyTests
{
    /// <summary>One AddScalars call (Restart false) or one MarkRestart (Restart true, Scalars empty).</summary>
    public sealed record Written(bool Restart, long Step, long UnixMs, List<KeyValuePair<string, double>> Scalars)
    {
        public override string ToString() => Restart
            ? $"restart at {Step} ({UnixMs} ms)"
            : $"step {Step} ({UnixMs} ms): " + string.Join(", ", Scalars.Select(p => $"\"{p.Key}\" = {p.Value:R}"));
    }

    private static readonly Gen<string> Tag = Gen.Frequency(
        (2, Gen.Elements("loss/policy", "objective/kl", "charts/episodic_return", "perf/tokens_per_s", "")),
        (3, Gen.Frequency(
                (4, Gen.Choose(0x20, 0x7E)),
                (1, Gen.Choose(0x00, 0x1F)),
                (2, Gen.Choose(0x80, 0xD7FF)),
                (1, Gen.Choose(0xE000, 0xFFFF)),
                (1, Gen.Choose(0x10000, 0x10FFFF)))
            .Select(c => new Rune(c).ToString()).ArrayOf().Resize(16).Select(r => string.Concat(r))));

    private static readonly Gen<double> EdgeValue = Gen.Elements(
        double.NaN, double.PositiveInfinity, double.NegativeInfinity, 0.0, -0.0, double.MaxValue, double.MinValue,
        double.Epsilon, -double.Epsilon, float.MaxValue, float.MinValue, float.Epsilon, -float.Epsilon,
        1e-40, 3.4028235677973366e38, 1e300, -1e-300, 0.1, 1.0 / 3.0);

    private static readonly Gen<double> Value = Gen.Frequency(
        (2, EdgeValue),
        (2, Gen.Choose(int.MinValue, int.MaxValue).Select(b => (double)BitConverter.Int32BitsToSingle(b))),
        (2, Gen.Two(Gen.Choose(int.MinValue, int.MaxValue)).Select(p => BitConverter.Int64BitsToDouble(((long)p.Item1 << 32) | (uint)p.Item2))),
        (1, Gen.Choose(-1_000_000, 1_000_000).Select(i => i / 1000.0)));

    private static readonly Gen<long> Step = Gen.Frequency(
        (3, Gen.Choose(0, 1_000_000).Select(i => (long)i)),
        (1, Gen.Elements(0L, 1L, 127L, 128L, 16_383L, 16_384L, int.MaxValue + 1L, long.MaxValue, -1L, long.MinValue)),
        (1, Gen.Two(Gen.Choose(int.MinValue, int.MaxValue)).Select(p => ((long)p.Item1 << 32) | (uint)p.Item2)));

    // Unix milliseconds from 1970 to 2100.
    private static readonly Gen<long> Time = Gen.Choose(0, 4_102_444).SelectMany(s => Gen.Choose(0, 999_999).Select(ms => s * 1_000_000L + ms));

    private static readonly Gen<Written> Event =
        from restart in Gen.Frequency((5, Gen.Constant(false)), (1, Gen.Constant(true)))
        from step in Step
        from time in Time
        from tags in Tag.ArrayOf().Resize(4)
        from values in Value.ArrayOf(tags.Length)
        select new Written(restart, step, time, restart ? [] :
            tags.Select((t, i) => (t, i)).DistinctBy(p => p.t).Select(p => KeyValuePair.Create(p.t, values[p.i])).ToList());

    private static readonly Arbitrary<(long Start, Written[] Events)> Files =
        Time.SelectMany(start => Event.ArrayOf().Resize(7).Select(events => (start, events))).ToArbitrary();

    private static byte[] WriteFile(long start, Written[] events)
    {
        using var dir = new TempDirectory();
        string path;
        using (var tb = new TensorBoardWriter(dir.Path, DateTimeOffset.FromUnixTimeMilliseconds(start)))
        {
            path = tb.Path;
            foreach (var e in events)
            {
                var time = DateTimeOffset.FromUnixTimeMilliseconds(e.UnixMs);
                if (e.Restart) tb.MarkRestart(e.Step, time);
                else tb.AddScalars(e.Step, new Dictionary<string, double>(e.Scalars), time);
            }
        }
        return File.ReadAllBytes(path);
    }

    [Property(MaxTest = 100, Replay = "(20261203,15)")]
    public Property EveryEvent_ReadsBackWithItsTagsStepsAndValues() => Prop.ForAll(Files, file =>
    {
        var read = ReadRecords(WriteFile(file.Start, file.Events)).Select(ParseEvent).ToList();

        Assert.Equal(file.Events.Length + 1, read.Count);
        Assert.Equal(TensorBoardWriter.FileVersion, read[0].FileVersion);
        Assert.Equal(file.Start / 1000.0, read[0].WallTime);
        for (int k = 0; k < file.Events.Length; k++)
        {
            var (wrote, got) = (file.Events[k], read[k + 1]);
            Assert.Equal(wrote.Step, got.Step);
            Assert.Equal(wrote.UnixMs / 1000.0, got.WallTime);
            Assert.Equal(wrote.Restart ? 1 : null, got.SessionStatus);
            Assert.Equal(wrote.Scalars.Select(p => p.Key), got.Values.Select(v => v.Item1));
            for (int i = 0; i < wrote.Scalars.Count; i++)
            {
                // TensorBoard's simple_value is a float: the value rounds to nearest (±∞ beyond float's range, ±0 below it).
                float expected = (float)wrote.Scalars[i].Value, actual = got.Values[i].Item2;
                Assert.True(float.IsNaN(expected) ? float.IsNaN(actual) : BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(actual),
                    $"event {k} \"{wrote.Scalars[i].Key}\": wrote {wrote.Scalars[i].Value:R}, expected {expected:R}, read {actual:R}");
            }
        }
    });

    [Property(MaxTest = 100, Replay = "(20261203,17)")]
    public Property AnyFlippedBit_FailsACrcCheck() => Prop.ForAll(
        Files.Generator.SelectMany(file => Gen.Choose(0, int.MaxValue).Select(bit => (file, bit))).ToArbitrary(), c =>
    {
        byte[] bytes = WriteFile(c.file.Start, c.file.Events);
        int bit = c.bit % (bytes.Length * 8);
        bytes[bit / 8] ^= (byte)(1 << (bit % 8));
        Assert.Throws<InvalidDataException>(() => ReadRecords(bytes).ToList());
    });
}
