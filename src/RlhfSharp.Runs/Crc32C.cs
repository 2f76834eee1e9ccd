// CRC-32C (Castagnoli), the checksum of TFRecord/tfevents framing; BitOperations.Crc32C uses the CPU's CRC32
// instruction where there is one. TensorFlow stores it "masked" so a CRC of data that holds CRCs stays well mixed.
using System.Buffers.Binary;
using System.Numerics;

namespace RlhfSharp.Runs;

public static class Crc32C
{
    /// <summary>CRC-32C of the bytes (initial value and final xor 0xFFFFFFFF; "123456789" gives 0xE3069283).</summary>
    public static uint Compute(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFFu;
        int i = 0;
        for (; i + 8 <= data.Length; i += 8) crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data[i..]));
        for (; i < data.Length; i++) crc = BitOperations.Crc32C(crc, data[i]);
        return ~crc;
    }

    /// <summary>TensorFlow's masking (tensorflow/core/lib/hash/crc32c.h, Mask): rotate right by 15, add 0xa282ead8.</summary>
    public static uint Mask(uint crc) => ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}
