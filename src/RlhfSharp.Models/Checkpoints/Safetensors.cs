// Safetensors reader and writer (Hugging Face's format: 8-byte little-endian header length, a JSON header of
// {name: {dtype, shape, data_offsets}} plus optional "__metadata__", then the raw little-endian tensor bytes).
// F32, F16, BF16 and F64 are read into float32; we write F32 (or F16/BF16, rounded to nearest even as torch's
// .to(dtype) rounds) the way the Rust `safetensors` crate does.
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;
using Microsoft.Win32.SafeHandles;

namespace RlhfSharp.Models.Checkpoints;

/// <summary>A float32 tensor as stored in a checkpoint: row-major values and their shape.</summary>
public sealed record StoredTensor
{
    public StoredTensor(int[] shape, float[] values)
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(values);
        long count = ElementCount(shape);
        if (count != values.Length)
            throw new ArgumentException($"StoredTensor: shape [{string.Join(", ", shape)}] holds {count} elements but {values.Length} values were given.");
        Shape = shape;
        Values = values;
    }

    /// <summary>Dimensions, outermost first; an empty shape is a scalar.</summary>
    public int[] Shape { get; }

    /// <summary>Row-major values, exactly product(Shape) of them.</summary>
    public float[] Values { get; }

    public static long ElementCount(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"StoredTensor: negative dimension {d} in shape.");
            n *= d;
        }
        return n;
    }

    public static string FormatShape(ReadOnlySpan<int> shape) => "[" + string.Join(", ", shape.ToArray()) + "]";
}

/// <summary>Everything one safetensors file holds: tensors by name and the string metadata.</summary>
public sealed record SafetensorsContent(
    IReadOnlyDictionary<string, StoredTensor> Tensors,
    IReadOnlyDictionary<string, string> Metadata);

/// <summary>Thrown when a safetensors file is malformed; the message names the file and, where known, the tensor.</summary>
public sealed class SafetensorsFormatException(string message) : FormatException(message);

/// <summary>The element type tensors are written in.</summary>
public enum SafetensorsDtype
{
    F32,
    /// <summary>bfloat16: float32's top 16 bits, rounded to nearest even (NaN stays NaN).</summary>
    BF16,
    /// <summary>IEEE half precision, rounded to nearest even; values beyond ±65504 become ±∞.</summary>
    F16,
}

public static class Safetensors
{
    /// <summary>The name a dtype has in a header ("F32", "BF16", "F16") and in `--dtype` (lower case).</summary>
    public static string HeaderName(SafetensorsDtype dtype) => dtype switch
    {
        SafetensorsDtype.F32 => "F32",
        SafetensorsDtype.BF16 => "BF16",
        SafetensorsDtype.F16 => "F16",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown safetensors dtype."),
    };

    /// <summary>float32 → bfloat16 bits, round to nearest even (torch's rounding); NaN → the quiet NaN 0x7FC0.</summary>
    public static ushort ToBFloat16Bits(float value) => RlhfSharp.Tensors.Kernels.BFloat16.FromFloat(value);

    // The Rust crate refuses headers above 100 MB; so do we, before allocating anything that large.
    private const long MaxHeaderBytes = 100_000_000;
    private const string MetadataKey = "__metadata__";

    /// <summary>Reads every tensor of <paramref name="path"/> into float32, validating header, offsets and sizes.</summary>
    public static SafetensorsContent Read(string path)
    {
        using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        long fileLength = RandomAccess.GetLength(handle);
        if (fileLength < 8)
            throw new SafetensorsFormatException($"{path}: truncated safetensors file: {fileLength} bytes, fewer than the 8-byte header length.");
        Span<byte> lengthBytes = stackalloc byte[8];
        RandomAccess.Read(handle, lengthBytes, 0);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        if (headerLength > MaxHeaderBytes)
            throw new SafetensorsFormatException($"{path}: header length {headerLength} exceeds the {MaxHeaderBytes}-byte limit (not a safetensors file?).");
        if (8 + (long)headerLength > fileLength)
            throw new SafetensorsFormatException($"{path}: truncated safetensors file: header claims {headerLength} bytes but only {fileLength - 8} follow the length prefix.");
        var header = new byte[headerLength];
        RandomAccess.Read(handle, header, 8);
        long dataStart = 8 + (long)headerLength;
        long dataLength = fileLength - dataStart;

        var (entries, metadata) = ParseHeader(path, header);
        ValidateLayout(path, entries, dataLength);

        var tensors = new Dictionary<string, StoredTensor>(StringComparer.Ordinal);
        foreach (var e in entries)
            tensors.Add(e.Name, new StoredTensor(e.Shape, ReadValues(path, handle, dataStart, e)));
        return new SafetensorsContent(tensors, metadata);
    }

    /// <summary>
    /// Writes tensors as F32 (or <paramref name="dtype"/>) with keys sorted ordinally, "__metadata__" first and the header padded with spaces to a
    /// multiple of 8 bytes, as the Rust crate does. The file appears atomically (written to a temporary name, then renamed).
    /// </summary>
    public static void Write(string path, IReadOnlyDictionary<string, StoredTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null,
        SafetensorsDtype dtype = SafetensorsDtype.F32)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var names = tensors.Keys.OrderBy(k => k, StringComparer.Ordinal).ToArray();
        foreach (var name in names)
            if (name == MetadataKey || name.Length == 0)
                throw new ArgumentException($"{path}: '{name}' cannot be a tensor name.");

        byte[] header = BuildHeader(names, tensors, metadata, dtype);
        AtomicFile.Write(path, stream =>
        {
            Span<byte> lengthBytes = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(lengthBytes, (ulong)header.Length);
            stream.Write(lengthBytes);
            stream.Write(header);
            foreach (var name in names)
            {
                var values = tensors[name].Values;
                if (dtype != SafetensorsDtype.F32)
                {
                    var half = new byte[2 * values.Length];
                    for (int i = 0; i < values.Length; i++)
                    {
                        if (dtype == SafetensorsDtype.BF16) BinaryPrimitives.WriteUInt16LittleEndian(half.AsSpan(2 * i), ToBFloat16Bits(values[i]));
                        else BinaryPrimitives.WriteHalfLittleEndian(half.AsSpan(2 * i), (Half)values[i]);
                    }
                    stream.Write(half);
                }
                else if (BitConverter.IsLittleEndian)
                {
                    stream.Write(MemoryMarshal.AsBytes(values.AsSpan()));
                }
                else
                {
                    var buf = new byte[4];
                    foreach (float v in values)
                    {
                        BinaryPrimitives.WriteSingleLittleEndian(buf, v);
                        stream.Write(buf);
                    }
                }
            }
        });
    }

    private static byte[] BuildHeader(string[] names, IReadOnlyDictionary<string, StoredTensor> tensors, IReadOnlyDictionary<string, string>? metadata, SafetensorsDtype dtype)
    {
        using var ms = new MemoryStream();
        using (var w = new Utf8JsonWriter(ms))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject(MetadataKey);
                foreach (var (k, v) in metadata.OrderBy(p => p.Key, StringComparer.Ordinal))
                    w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            foreach (var name in names)
            {
                var t = tensors[name];
                long bytes = (dtype == SafetensorsDtype.F32 ? 4L : 2L) * t.Values.Length;
                w.WriteStartObject(name);
                w.WriteString("dtype", HeaderName(dtype));
                w.WriteStartArray("shape");
                foreach (int d in t.Shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + bytes);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += bytes;
            }
            w.WriteEndObject();
        }
        int length = (int)ms.Length;
        int padded = (length + 7) / 8 * 8;
        var header = new byte[padded];
        ms.GetBuffer().AsSpan(0, length).CopyTo(header);
        header.AsSpan(length).Fill((byte)' ');
        return header;
    }

    private sealed record Entry(string Name, string Dtype, int ElementSize, int[] Shape, long Begin, long End);

    private static (List<Entry> Entries, Dictionary<string, string> Metadata) ParseHeader(string path, byte[] header)
    {
        JsonDocument doc;
        try
        {
            // Trailing spaces are the alignment padding the writer adds; JSON allows them.
            doc = JsonDocument.Parse(header);
        }
        catch (JsonException ex)
        {
            throw new SafetensorsFormatException($"{path}: header is not valid JSON ({ex.Message}).");
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new SafetensorsFormatException($"{path}: header must be a JSON object, found {doc.RootElement.ValueKind}.");
            var entries = new List<Entry>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(prop.Name))
                    throw new SafetensorsFormatException($"{path}: tensor '{prop.Name}' appears twice in the header.");
                if (prop.Name == MetadataKey)
                {
                    if (prop.Value.ValueKind != JsonValueKind.Object)
                        throw new SafetensorsFormatException($"{path}: {MetadataKey} must be an object of strings.");
                    foreach (var m in prop.Value.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String)
                            throw new SafetensorsFormatException($"{path}: {MetadataKey}.{m.Name} must be a string, found {m.Value.ValueKind}.");
                        metadata[m.Name] = m.Value.GetString()!;
                    }
                    continue;
                }
                entries.Add(ParseEntry(path, prop.Name, prop.Value));
            }
            return (entries, metadata);
        }
    }

    private static Entry ParseEntry(string path, string name, JsonElement e)
    {
        string where = $"{path}: tensor '{name}'";
        if (e.ValueKind != JsonValueKind.Object)
            throw new SafetensorsFormatException($"{where}: entry must be an object, found {e.ValueKind}.");
        if (!e.TryGetProperty("dtype", out var dtypeEl) || dtypeEl.ValueKind != JsonValueKind.String)
            throw new SafetensorsFormatException($"{where}: missing string field 'dtype'.");
        string dtype = dtypeEl.GetString()!;
        int elementSize = dtype switch
        {
            "F32" => 4,
            "F16" or "BF16" => 2,
            "F64" => 8,
            _ => throw new SafetensorsFormatException($"{where}: dtype '{dtype}' is not supported (F32, F16, BF16, F64 are)."),
        };
        if (!e.TryGetProperty("shape", out var shapeEl) || shapeEl.ValueKind != JsonValueKind.Array)
            throw new SafetensorsFormatException($"{where}: missing array field 'shape'.");
        var shape = new int[shapeEl.GetArrayLength()];
        int i = 0;
        foreach (var d in shapeEl.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt32(out int dim) || dim < 0)
                throw new SafetensorsFormatException($"{where}: shape entry {i} is '{d.GetRawText()}', not a non-negative 32-bit integer.");
            shape[i++] = dim;
        }
        if (!e.TryGetProperty("data_offsets", out var offEl) || offEl.ValueKind != JsonValueKind.Array || offEl.GetArrayLength() != 2)
            throw new SafetensorsFormatException($"{where}: 'data_offsets' must be an array of two integers.");
        long begin = ReadOffset(where, offEl[0]);
        long end = ReadOffset(where, offEl[1]);
        if (end < begin)
            throw new SafetensorsFormatException($"{where}: data_offsets [{begin}, {end}] end before they begin.");
        long count = 1;
        foreach (int d in shape) count = checked(count * d);
        if (count > Array.MaxLength)
            throw new SafetensorsFormatException($"{where}: shape {StoredTensor.FormatShape(shape)} has {count} elements, more than one array can hold.");
        long expected = count * elementSize;
        if (end - begin != expected)
            throw new SafetensorsFormatException($"{where}: data_offsets [{begin}, {end}] span {end - begin} bytes but shape {StoredTensor.FormatShape(shape)} of {dtype} needs {expected}.");
        return new Entry(name, dtype, elementSize, shape, begin, end);
    }

    private static long ReadOffset(string where, JsonElement el)
    {
        if (el.ValueKind != JsonValueKind.Number || !el.TryGetInt64(out long v) || v < 0)
            throw new SafetensorsFormatException($"{where}: data offset '{el.GetRawText()}' is not a non-negative integer.");
        return v;
    }

    private static void ValidateLayout(string path, List<Entry> entries, long dataLength)
    {
        var byBegin = entries.OrderBy(e => e.Begin).ThenBy(e => e.End).ToList();
        long previousEnd = 0;
        string? previousName = null;
        foreach (var e in byBegin)
        {
            if (e.End > dataLength)
                throw new SafetensorsFormatException($"{path}: tensor '{e.Name}' needs bytes [{e.Begin}, {e.End}) of the data section but the file holds only {dataLength} (truncated file?).");
            // Zero-sized tensors occupy no bytes and cannot overlap anything.
            if (e.Begin < previousEnd && e.End > e.Begin)
                throw new SafetensorsFormatException($"{path}: tensor '{e.Name}' bytes [{e.Begin}, {e.End}) overlap tensor '{previousName}' ending at {previousEnd}.");
            if (e.End > previousEnd)
            {
                previousEnd = e.End;
                previousName = e.Name;
            }
        }
    }

    private static float[] ReadValues(string path, SafeFileHandle handle, long dataStart, Entry e)
    {
        int count = (int)((e.End - e.Begin) / e.ElementSize);
        var values = new float[count];
        if (count == 0) return values;
        long position = dataStart + e.Begin;
        if (e.Dtype == "F32" && BitConverter.IsLittleEndian)
        {
            ReadExactly(path, handle, MemoryMarshal.AsBytes(values.AsSpan()), position, e.Name);
            return values;
        }
        // Convert in chunks so a large F16 tensor never needs a second full-size byte buffer.
        const int chunkElements = 1 << 16;
        var buffer = new byte[chunkElements * e.ElementSize];
        for (int start = 0; start < count; start += chunkElements)
        {
            int n = Math.Min(chunkElements, count - start);
            var bytes = buffer.AsSpan(0, n * e.ElementSize);
            ReadExactly(path, handle, bytes, position + (long)start * e.ElementSize, e.Name);
            var dst = values.AsSpan(start, n);
            switch (e.Dtype)
            {
                case "F32":
                    for (int i = 0; i < n; i++) dst[i] = BinaryPrimitives.ReadSingleLittleEndian(bytes[(4 * i)..]);
                    break;
                case "F16":
                    for (int i = 0; i < n; i++) dst[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(bytes[(2 * i)..]);
                    break;
                case "BF16":
                    // bfloat16 is the top half of a float32: shift its bits back into place.
                    for (int i = 0; i < n; i++) dst[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(bytes[(2 * i)..]) << 16);
                    break;
                case "F64":
                    for (int i = 0; i < n; i++) dst[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(bytes[(8 * i)..]);
                    break;
            }
        }
        return values;
    }

    private static void ReadExactly(string path, SafeFileHandle handle, Span<byte> destination, long position, string name)
    {
        while (destination.Length > 0)
        {
            int n = RandomAccess.Read(handle, destination, position);
            if (n <= 0) throw new SafetensorsFormatException($"{path}: tensor '{name}': unexpected end of file at byte {position}.");
            destination = destination[n..];
            position += n;
        }
    }
}
