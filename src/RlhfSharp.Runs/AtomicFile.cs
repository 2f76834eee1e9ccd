// Writes that a crash cannot tear: the content goes to a temporary file in the same folder, is flushed to disk,
// then renamed over the target (rename within one file system is atomic on POSIX and NTFS). The one implementation for
// every layer: checkpoints and safetensors (Models), run files and reports (Runs), datasets and results (Alignment, CLI).
namespace RlhfSharp.Runs;

public static class AtomicFile
{
    /// <summary>Replaces <paramref name="path"/> with <paramref name="bytes"/>; readers see the old or the new file, never a mix.</summary>
    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        byte[] copy = bytes.ToArray();
        Write(path, stream => stream.Write(copy));
    }

    /// <summary>Replaces <paramref name="path"/> with text encoded as UTF-8 without a byte-order mark.</summary>
    public static void WriteAllText(string path, string text) => WriteAllBytes(path, System.Text.Encoding.UTF8.GetBytes(text));

    /// <summary>Replaces <paramref name="destination"/> with a copy of <paramref name="source"/>.</summary>
    public static void Copy(string source, string destination)
    {
        using var from = new FileStream(source, FileMode.Open, FileAccess.Read, FileShare.Read);
        Write(destination, from.CopyTo);
    }

    /// <summary>
    /// Replaces <paramref name="path"/> with what <paramref name="write"/> puts in the stream. If it throws, the
    /// temporary file is deleted and the old file (if any) stays as it was.
    /// </summary>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentNullException.ThrowIfNull(write);
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        string temp = Path.Combine(dir, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    /// <summary>
    /// Writes a whole folder (a checkpoint: config.json + model.safetensors ...) under a temporary name, then renames
    /// it to <paramref name="path"/>. An existing folder is first moved aside and deleted after the rename, so a crash
    /// leaves the old folder or the new one at <paramref name="path"/> (plus, at worst, a hidden leftover).
    /// </summary>
    public static void WriteDirectory(string path, Action<string> writeInto)
    {
        ArgumentNullException.ThrowIfNull(writeInto);
        string full = Path.GetFullPath(path).TrimEnd(Path.DirectorySeparatorChar);
        string parent = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(parent);
        string name = Path.GetFileName(full);
        string temp = Path.Combine(parent, $".{name}.tmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(temp);
        try
        {
            writeInto(temp);
            foreach (string file in Directory.EnumerateFiles(temp, "*", SearchOption.AllDirectories))
            {
                using var stream = new FileStream(file, FileMode.Open, FileAccess.ReadWrite);
                stream.Flush(flushToDisk: true);
            }
        }
        catch
        {
            TryDeleteDirectory(temp);
            throw;
        }
        string? aside = null;
        if (Directory.Exists(full))
        {
            aside = Path.Combine(parent, $".{name}.old-{Guid.NewGuid():N}");
            Directory.Move(full, aside);
        }
        Directory.Move(temp, full);
        if (aside is not null) TryDeleteDirectory(aside);
    }

    /// <summary>True for the hidden names this class uses while writing (readers should skip them).</summary>
    public static bool IsTemporaryName(string name) =>
        name.StartsWith('.') && (name.Contains(".tmp-", StringComparison.Ordinal) || name.Contains(".old-", StringComparison.Ordinal));

    private static void TryDelete(string file)
    {
        try
        {
            File.Delete(file);
        }
        catch (IOException)
        {
            // The original exception matters more than a leftover temp file.
        }
    }

    private static void TryDeleteDirectory(string dir)
    {
        try
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
        catch (IOException)
        {
            // A leftover hidden folder is harmless: readers skip IsTemporaryName entries.
        }
    }
}
