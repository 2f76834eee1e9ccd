// TensorBoard event files written by hand, so `tensorboard --logdir runs` shows our scalars. Runs, the bottom layer,
// depends on nothing: the few protobuf fields below take a few dozen lines, where Google.Protobuf (which the registry
// serves) would add a package and code generated from TensorFlow's .proto files.
// File: events.out.tfevents.<unix seconds>.<host>, a sequence of TFRecords:
//   u64 length (little-endian) | u32 masked CRC-32C of those 8 bytes | data | u32 masked CRC-32C of data
// Each data is a serialized tensorflow.Event (tensorflow/core/util/event.proto):
//   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
//   Summary { repeated Value value = 1; }   Value { string tag = 1; float simple_value = 2; }
// The first event carries file_version "brain.Event:2", as TensorFlow's EventsWriter writes it. A resumed run
// writes Event { step; SessionLog session_log = 7 { status = 1 (START) } }: TensorBoard then drops the older
// events at or after that step (event_accumulator's purge of orphaned data), so replayed steps are not doubled.
using System.Buffers.Binary;
using System.Text;

namespace RlhfSharp.Runs;

public sealed class TensorBoardWriter : IDisposable
{
    /// <summary>The version string TensorBoard expects in the first event.</summary>
    public const string FileVersion = "brain.Event:2";

    private readonly FileStream _stream;

    /// <summary>The events file being written.</summary>
    public string Path { get; }

    /// <summary>Creates a new events file in <paramref name="directory"/> (several files per folder are fine for TensorBoard).</summary>
    public TensorBoardWriter(string directory, DateTimeOffset? now = null)
    {
        Directory.CreateDirectory(directory);
        var time = now ?? DateTimeOffset.UtcNow;
        string host = Environment.MachineName;
        // A suffix keeps two writers started in the same second apart.
        string name = $"events.out.tfevents.{time.ToUnixTimeSeconds()}.{host}";
        string path = System.IO.Path.Combine(directory, name);
        for (int k = 1; File.Exists(path); k++) path = System.IO.Path.Combine(directory, $"{name}.{k}");
        Path = path;
        _stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read);
        WriteEvent(EncodeEvent(UnixSeconds(time), 0, FileVersion, null));
    }

    /// <summary>Writes one event holding a scalar per entry (TensorBoard plots each tag against step) and flushes.</summary>
    public void AddScalars(long step, IReadOnlyDictionary<string, double> values, DateTimeOffset? time = null)
    {
        ArgumentNullException.ThrowIfNull(values);
        var summary = new ProtoWriter();
        foreach (var (tag, value) in values)
        {
            var v = new ProtoWriter();
            v.String(1, tag);
            v.Fixed32Float(2, (float)value);
            summary.Bytes(1, v.ToArray());
        }
        WriteEvent(EncodeEvent(UnixSeconds(time ?? DateTimeOffset.UtcNow), step, null, summary.ToArray()));
    }

    /// <summary>Writes one scalar.</summary>
    public void AddScalar(string tag, double value, long step) => AddScalars(step, new Dictionary<string, double> { [tag] = value });

    /// <summary>Marks a restart at <paramref name="step"/>: TensorBoard discards earlier-written events with step ≥ it.</summary>
    public void MarkRestart(long step, DateTimeOffset? time = null)
    {
        var sessionLog = new ProtoWriter();
        sessionLog.Varint(1, 1); // status = START
        var e = new ProtoWriter();
        e.Fixed64Double(1, UnixSeconds(time ?? DateTimeOffset.UtcNow));
        e.Varint(2, (ulong)step);
        e.Bytes(7, sessionLog.ToArray());
        WriteEvent(e.ToArray());
    }

    private static double UnixSeconds(DateTimeOffset t) => t.ToUnixTimeMilliseconds() / 1000.0;

    private static byte[] EncodeEvent(double wallTime, long step, string? fileVersion, byte[]? summary)
    {
        var e = new ProtoWriter();
        e.Fixed64Double(1, wallTime);
        e.Varint(2, (ulong)step);
        if (fileVersion is not null) e.String(3, fileVersion);
        if (summary is not null) e.Bytes(5, summary);
        return e.ToArray();
    }

    private void WriteEvent(byte[] data)
    {
        Span<byte> header = stackalloc byte[12];
        BinaryPrimitives.WriteUInt64LittleEndian(header, (ulong)data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], Crc32C.Mask(Crc32C.Compute(header[..8])));
        Span<byte> footer = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(footer, Crc32C.Mask(Crc32C.Compute(data)));
        _stream.Write(header);
        _stream.Write(data);
        _stream.Write(footer);
        _stream.Flush();
    }

    public void Dispose() => _stream.Dispose();

    // The protobuf wire format for the three field kinds we use: key = (field << 3) | wire type.
    private sealed class ProtoWriter
    {
        private readonly MemoryStream _out = new();

        private void RawVarint(ulong v)
        {
            while (v >= 0x80)
            {
                _out.WriteByte((byte)(v | 0x80));
                v >>= 7;
            }
            _out.WriteByte((byte)v);
        }

        public void Varint(int field, ulong value)
        {
            RawVarint((ulong)(field << 3));
            RawVarint(value);
        }

        public void Fixed64Double(int field, double value)
        {
            RawVarint((ulong)((field << 3) | 1));
            Span<byte> b = stackalloc byte[8];
            BinaryPrimitives.WriteDoubleLittleEndian(b, value);
            _out.Write(b);
        }

        public void Fixed32Float(int field, float value)
        {
            RawVarint((ulong)((field << 3) | 5));
            Span<byte> b = stackalloc byte[4];
            BinaryPrimitives.WriteSingleLittleEndian(b, value);
            _out.Write(b);
        }

        public void Bytes(int field, ReadOnlySpan<byte> value)
        {
            RawVarint((ulong)((field << 3) | 2));
            RawVarint((ulong)value.Length);
            _out.Write(value);
        }

        public void String(int field, string value) => Bytes(field, Encoding.UTF8.GetBytes(value));

        public byte[] ToArray() => _out.ToArray();
    }
}
