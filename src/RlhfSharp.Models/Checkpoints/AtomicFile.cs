// Writes a whole file under a temporary name and renames it into place, so a crash never leaves a torn file.
namespace RlhfSharp.Models;

internal static class AtomicFile
{
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        string tmp = path + ".tmp";
        using (var stream = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            stream.Write(bytes);
            stream.Flush(flushToDisk: true);
        }
        File.Move(tmp, path, overwrite: true);
    }

    public static void Copy(string source, string destination)
    {
        string tmp = destination + ".tmp";
        File.Copy(source, tmp, overwrite: true);
        File.Move(tmp, destination, overwrite: true);
    }
}
