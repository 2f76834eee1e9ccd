// The TensorBoard event file: CRC-32C against its published check value, and records that frame, checksum and carry the tags.
using System.Buffers.Binary;
using System.Text;
using RlhfSharp.Control.Rl;

namespace RlhfSharp.Control.Tests;

public sealed class TensorBoardWriterTests
{
    [Fact]
    public void Crc32C_MatchesTheStandardCheckValue()
    {
        // CRC-32C("123456789") = 0xE3069283 (RFC 3720, appendix B.4 check value).
        Assert.Equal(0xE3069283u, TensorBoardWriter.Crc32C(Encoding.ASCII.GetBytes("123456789")));
    }

    [Fact]
    public void EventFile_HasValidTfRecordsWithVersionHeaderAndScalarTags()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"tb-{Guid.NewGuid():N}");
        try
        {
            string file;
            using (var tb = new TensorBoardWriter(dir))
            {
                file = tb.FilePath;
                tb.Write(new MetricsRow(256, new Dictionary<string, double> { ["charts/episodic_return"] = 21.5, ["losses/value"] = double.NaN }));
            }
            Assert.StartsWith("events.out.tfevents.", Path.GetFileName(file));
            byte[] all = File.ReadAllBytes(file);
            var records = new List<byte[]>();
            int pos = 0;
            while (pos < all.Length)
            {
                ulong len = BinaryPrimitives.ReadUInt64LittleEndian(all.AsSpan(pos));
                Assert.Equal(BinaryPrimitives.ReadUInt32LittleEndian(all.AsSpan(pos + 8)), TensorBoardWriter.MaskedCrc(all.AsSpan(pos, 8)));
                byte[] data = all.AsSpan(pos + 12, (int)len).ToArray();
                Assert.Equal(BinaryPrimitives.ReadUInt32LittleEndian(all.AsSpan(pos + 12 + (int)len)), TensorBoardWriter.MaskedCrc(data));
                records.Add(data);
                pos += 12 + (int)len + 4;
            }
            Assert.Equal(2, records.Count);
            Assert.Contains("brain.Event:2", Encoding.UTF8.GetString(records[0]));
            string second = Encoding.UTF8.GetString(records[1]);
            Assert.Contains("charts/episodic_return", second);
            Assert.DoesNotContain("losses/value", second); // NaN is skipped: TensorBoard cannot plot it
            // simple_value (field 2, wire type 5 → tag 0x15) follows the tag string, holding 21.5f.
            byte[] raw = records[1];
            int idx = raw.AsSpan().IndexOf(Encoding.UTF8.GetBytes("charts/episodic_return")) + "charts/episodic_return".Length;
            Assert.Equal(0x15, raw[idx]);
            Assert.Equal(21.5f, BinaryPrimitives.ReadSingleLittleEndian(raw.AsSpan(idx + 1)));
            // step (field 2, varint) = 256 → tag 0x10, bytes 0x80 0x02.
            Assert.True(raw.AsSpan().IndexOf(new byte[] { 0x10, 0x80, 0x02 }) >= 0);
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
    }
}
