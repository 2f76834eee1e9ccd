// Property tests (FsCheck) of safetensors: Write then Read gives back any set of tensors (any Unicode names, shapes of
// rank 0-4 with zero-size dimensions, every bit pattern a dtype can hold: NaN, ±∞, -0, subnormals) and any metadata.
// Values are drawn from what the written dtype represents exactly, so the expected value is the drawn one, not a
// rounding computed by the code under test. At most 5 tensors of ≤ 256 elements, 100 cases, a fixed Replay seed.
using System.Text;
using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using RlhfSharp.Models.Checkpoints;

namespace RlhfSharp.Models.Tests;

public sealed class SafetensorsPropertyTests
{
    public sealed record Case(SafetensorsDtype Dtype, Dictionary<string, StoredTensor> Tensors, Dictionary<string, string> Metadata)
    {
        // FsCheck prints a failing case: names, shapes and metadata say more than the record's default text.
        public override string ToString() =>
            $"{Dtype}: " + string.Join("; ", Tensors.Select(t => $"\"{t.Key}\" {StoredTensor.FormatShape(t.Value.Shape)}")) +
            $" | metadata {{{string.Join(", ", Metadata.Select(m => $"\"{m.Key}\": \"{m.Value}\""))}}}";
    }

    private static readonly Gen<string> AnyRune = Gen.Frequency(
        (4, Gen.Choose(0x20, 0x7E)),
        (1, Gen.Choose(0x00, 0x1F)),
        (2, Gen.Choose(0x80, 0xD7FF)),
        (1, Gen.Choose(0xE000, 0xFFFF)),
        (1, Gen.Choose(0x10000, 0x10FFFF))).Select(c => new Rune(c).ToString());

    private static Gen<string> Text(int maxRunes) => AnyRune.ArrayOf().Resize(maxRunes).Select(r => string.Concat(r));

    // A tensor name: HF-style dotted keys half the time, any non-empty Unicode the other half.
    private static readonly Gen<string> Name = Gen.Frequency(
        (1, Gen.Elements("transformer.h.0.attn.c_attn.weight", "lm_head.weight", "score.weight", "wte", "a")),
        (1, Text(12).Where(s => s.Length > 0 && s != "__metadata__")));

    private static readonly Gen<int[]> Shape = Gen.Choose(0, 4).SelectMany(rank => Gen.Choose(0, 4).ArrayOf(rank));

    // Float32 values the dtype holds exactly: any 32-bit pattern for F32, the top 16 bits for BF16, any half for F16.
    private static Gen<float> Value(SafetensorsDtype dtype) => dtype switch
    {
        SafetensorsDtype.F32 => Gen.Choose(int.MinValue, int.MaxValue).Select(BitConverter.Int32BitsToSingle),
        SafetensorsDtype.BF16 => Gen.Choose(0, 0xFFFF).Select(b => BitConverter.UInt32BitsToSingle((uint)b << 16)),
        _ => Gen.Choose(0, 0xFFFF).Select(b => (float)BitConverter.UInt16BitsToHalf((ushort)b)),
    };

    private static readonly Arbitrary<Case> Cases =
        (from dtype in Gen.Elements(SafetensorsDtype.F32, SafetensorsDtype.BF16, SafetensorsDtype.F16)
         from names in Name.ArrayOf().Resize(5)
         from shapes in Shape.ArrayOf(names.Length)
         from values in Gen.CollectToArray(shapes, s => Value(dtype).ArrayOf((int)StoredTensor.ElementCount(s)))
         from keys in Text(8).ArrayOf().Resize(3)
         from vals in Text(20).ArrayOf(keys.Length)
         select new Case(
             dtype,
             names.Select((n, i) => (n, i)).DistinctBy(p => p.n).ToDictionary(p => p.n, p => new StoredTensor(shapes[p.i], values[p.i]), StringComparer.Ordinal),
             keys.Select((k, i) => (k, i)).DistinctBy(p => p.k).ToDictionary(p => p.k, p => vals[p.i], StringComparer.Ordinal)))
        .ToArbitrary();

    [Property(MaxTest = 100, Replay = "(20261203,13)")]
    public Property WriteThenRead_GivesBackEveryTensorAndTheMetadata() => Prop.ForAll(Cases, c =>
    {
        using var dir = new TempDirectory();
        string path = dir.File("model.safetensors");
        Safetensors.Write(path, c.Tensors, c.Metadata, c.Dtype);

        var back = Safetensors.Read(path);

        Assert.Equal(c.Tensors.Keys.Order(StringComparer.Ordinal), back.Tensors.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, tensor) in c.Tensors)
        {
            var read = back.Tensors[name];
            Assert.Equal(tensor.Shape, read.Shape);
            Assert.Equal(tensor.Values.Length, read.Values.Length);
            for (int i = 0; i < tensor.Values.Length; i++)
            {
                // NaN payloads: F32 keeps every bit; BF16 writes the quiet NaN 0x7FC0; Half keeps a NaN a NaN.
                if (float.IsNaN(tensor.Values[i]) && c.Dtype != SafetensorsDtype.F32) Assert.True(float.IsNaN(read.Values[i]), $"{name}[{i}]");
                else Assert.True(BitConverter.SingleToUInt32Bits(tensor.Values[i]) == BitConverter.SingleToUInt32Bits(read.Values[i]),
                    $"{name}[{i}]: wrote {tensor.Values[i]:R} (0x{BitConverter.SingleToUInt32Bits(tensor.Values[i]):X8}), read {read.Values[i]:R} (0x{BitConverter.SingleToUInt32Bits(read.Values[i]):X8})");
            }
        }
        Assert.Equal(c.Metadata.OrderBy(p => p.Key, StringComparer.Ordinal), back.Metadata.OrderBy(p => p.Key, StringComparer.Ordinal));
    });
}
