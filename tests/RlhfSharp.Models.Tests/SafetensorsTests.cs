// Safetensors: files built byte by byte in the test (F32/F16/BF16), writer layout, round trip and corrupt-file errors.
using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using RlhfSharp.Models.Checkpoints;

namespace RlhfSharp.Models.Tests;

public sealed class SafetensorsTests
{
    /// <summary>Assembles a safetensors file: 8-byte little-endian header length, header text, then data bytes.</summary>
    private static byte[] BuildFile(string header, byte[] data)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var file = new byte[8 + h.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)h.Length);
        h.CopyTo(file, 8);
        data.CopyTo(file, 8 + h.Length);
        return file;
    }

    private static byte[] U16(params ushort[] bits)
    {
        var bytes = new byte[2 * bits.Length];
        for (int i = 0; i < bits.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(2 * i), bits[i]);
        return bytes;
    }

    [Fact]
    public void F16Values_ReadAsFloat32_IncludingSubnormalAndInfinity()
    {
        using var dir = new TempDirectory();
        string path = dir.File("f16.safetensors");
        // IEEE half bit patterns: 1, -2, 0.5, 65504 (largest), 2^-24 (smallest subnormal), +inf.
        var data = U16(0x3C00, 0xC000, 0x3800, 0x7BFF, 0x0001, 0x7C00);
        File.WriteAllBytes(path, BuildFile("{\"h\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,12]}}", data));

        var t = Safetensors.Read(path).Tensors["h"];

        Assert.Equal([2, 3], t.Shape);
        Assert.Equal([1f, -2f, 0.5f, 65504f, MathF.Pow(2, -24), float.PositiveInfinity], t.Values);
    }

    [Fact]
    public void Bf16Values_ReadAsFloat32()
    {
        using var dir = new TempDirectory();
        string path = dir.File("bf16.safetensors");
        // bfloat16 keeps float32's top 16 bits: 0x3F80 = 1, 0xC000 = -2, 0x4049 = 3.140625, 0x0000 = 0, 0x8000 = -0.
        var data = U16(0x3F80, 0xC000, 0x4049, 0x0000, 0x8000);
        var file = BuildFile("{\"__metadata__\":{\"format\":\"pt\"},\"b\":{\"dtype\":\"BF16\",\"shape\":[5],\"data_offsets\":[0,10]}}", data);
        File.WriteAllBytes(path, file);

        var content = Safetensors.Read(path);

        Assert.Equal([1f, -2f, 3.140625f, 0f, -0f], content.Tensors["b"].Values);
        Assert.True(float.IsNegative(content.Tensors["b"].Values[4]));
        Assert.Equal("pt", content.Metadata["format"]);
    }

    [Fact]
    public void MixedDtypes_EachTensorReadFromItsOwnOffsets()
    {
        using var dir = new TempDirectory();
        string path = dir.File("mixed.safetensors");
        var data = new byte[8 + 4];
        BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(0), 7.25f);
        BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(4), -1.5f);
        U16(0x4000, 0x3F80).CopyTo(data, 8); // F16 2.0, BF16 1.0
        string header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}," +
                        "\"c\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[10,12]}," +
                        "\"b\":{\"dtype\":\"F16\",\"shape\":[1,1],\"data_offsets\":[8,10]}}";
        File.WriteAllBytes(path, BuildFile(header, data));

        var t = Safetensors.Read(path).Tensors;

        Assert.Equal([7.25f, -1.5f], t["a"].Values);
        Assert.Equal([2f], t["b"].Values);
        Assert.Equal([1f], t["c"].Values);
        Assert.Empty(t["c"].Shape);
    }

    [Fact]
    public void Writer_ProducesTheBytesTheRustCrateWould()
    {
        using var dir = new TempDirectory();
        string path = dir.File("w.safetensors");
        var tensors = new Dictionary<string, StoredTensor>
        {
            ["z"] = new([1], [2f]),
            ["a"] = new([2], [1f, -1f]),
        };

        Safetensors.Write(path, tensors, new Dictionary<string, string> { ["format"] = "pt" });

        // Expected layout, written out by hand from the format: compact JSON, metadata first, names sorted,
        // dtype/shape/data_offsets in that order, padded with spaces to a multiple of 8.
        string json = "{\"__metadata__\":{\"format\":\"pt\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"z\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}";
        string padded = json.PadRight((json.Length + 7) / 8 * 8);
        var data = new byte[12];
        BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(0), 1f);
        BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(4), -1f);
        BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(8), 2f);
        Assert.Equal(BuildFile(padded, data), File.ReadAllBytes(path));
        Assert.Equal(["w.safetensors"], Directory.GetFileSystemEntries(dir.Path).Select(Path.GetFileName)); // no temporary file left
    }

    [Fact]
    public void RoundTrip_IsBitIdentical_ForAwkwardFloats()
    {
        using var dir = new TempDirectory();
        var awkward = new[]
        {
            -0f, float.Epsilon, float.MaxValue, float.NegativeInfinity, BitConverter.Int32BitsToSingle(0x7FC12345),
            1e-40f, 3.1415927f, -123456.78f,
        };
        var rng = new Tensors.Rng(5);
        var big = Enumerable.Range(0, 1000).Select(_ => (float)rng.Normal()).ToArray();
        var tensors = new Dictionary<string, StoredTensor>
        {
            ["h.0.x"] = new([2, 4], awkward),
            ["big"] = new([10, 10, 10], big),
            ["empty"] = new([0, 3], []),
        };
        string first = dir.File("1.safetensors"), second = dir.File("2.safetensors");

        Safetensors.Write(first, tensors);
        var back = Safetensors.Read(first);
        Safetensors.Write(second, back.Tensors);

        foreach (var (name, t) in tensors)
        {
            Assert.Equal(t.Shape, back.Tensors[name].Shape);
            Assert.Equal(t.Values.Select(BitConverter.SingleToInt32Bits), back.Tensors[name].Values.Select(BitConverter.SingleToInt32Bits));
        }
        Assert.Equal(File.ReadAllBytes(first), File.ReadAllBytes(second));
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(File.ReadAllBytes(first));
        Assert.Equal(0UL, headerLength % 8);
    }

    [Fact]
    public void WrittenHeader_ParsesAsJsonWithContiguousOffsets()
    {
        using var dir = new TempDirectory();
        string path = dir.File("h.safetensors");
        var tensors = RandomWeights.For(RandomWeights.TinyConfig(), 1);
        Safetensors.Write(path, tensors);

        var bytes = File.ReadAllBytes(path);
        int n = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        using var doc = JsonDocument.Parse(bytes.AsMemory(8, n));
        long expectedBegin = 0;
        var names = new List<string>();
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            names.Add(p.Name);
            var off = p.Value.GetProperty("data_offsets");
            Assert.Equal(expectedBegin, off[0].GetInt64());
            expectedBegin = off[1].GetInt64();
        }
        Assert.Equal(names.Order(StringComparer.Ordinal), names);
        Assert.Equal(bytes.Length - 8 - n, expectedBegin);
    }

    public static TheoryData<string, int, string> CorruptHeaders => new()
    {
        { "{\"t\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, "'t'" },                  // size != shape·dtype
        { "{\"t\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, "truncated" },             // out of range
        { "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"u\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "overlap" },
        { "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, "'t'" },                  // end before begin
        { "{\"t\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8, "I64" },                  // unsupported dtype
        { "{\"t\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "'t'" },                 // negative dim
        { "{\"t\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "data_offsets" },                                // missing offsets
        { "{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, "JSON" },                  // bad JSON
        { "[1,2]", 0, "object" },
    };

    [Theory]
    [MemberData(nameof(CorruptHeaders))]
    public void CorruptHeader_GivesAnErrorNamingTheFileAndProblem(string header, int dataBytes, string mentions)
    {
        using var dir = new TempDirectory();
        string path = dir.File("bad.safetensors");
        File.WriteAllBytes(path, BuildFile(header, new byte[dataBytes]));

        var ex = Assert.Throws<SafetensorsFormatException>(() => Safetensors.Read(path));

        Assert.Contains(path, ex.Message);
        Assert.Contains(mentions, ex.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void TruncatedFile_NamesTheTensorThatRunsPastTheEnd()
    {
        using var dir = new TempDirectory();
        string path = dir.File("trunc.safetensors");
        Safetensors.Write(path, new Dictionary<string, StoredTensor> { ["a.weight"] = new([4], [1, 2, 3, 4]), ["b.weight"] = new([4], [5, 6, 7, 8]) });
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^3]);

        var ex = Assert.Throws<SafetensorsFormatException>(() => Safetensors.Read(path));

        Assert.Contains("'b.weight'", ex.Message);
        Assert.Contains("truncated", ex.Message);
    }

    [Theory]
    [InlineData(4)]   // shorter than the length prefix
    [InlineData(12)]  // prefix claims a longer header than the file holds
    public void TooShortFile_IsRejected(int keep)
    {
        using var dir = new TempDirectory();
        string path = dir.File("short.safetensors");
        Safetensors.Write(path, new Dictionary<string, StoredTensor> { ["a"] = new([1], [1]) });
        File.WriteAllBytes(path, File.ReadAllBytes(path)[..keep]);

        var ex = Assert.Throws<SafetensorsFormatException>(() => Safetensors.Read(path));

        Assert.Contains("truncated", ex.Message);
    }

    [Fact]
    public void StoredTensor_RejectsValuesThatDoNotFillTheShape()
    {
        var ex = Assert.Throws<ArgumentException>(() => new StoredTensor([2, 3], new float[5]));
        Assert.Contains("[2, 3]", ex.Message);
    }
}
