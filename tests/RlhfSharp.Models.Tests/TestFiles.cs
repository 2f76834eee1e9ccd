// Temporary folders for tests, and the repository's data/ folder found by walking up to RlhfSharp.slnx.
namespace RlhfSharp.Models.Tests;

internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "rlhfsharp-models-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); }
        catch (IOException) { /* a leftover temp folder is harmless */ }
    }
}

internal static class RepoData
{
    /// <summary>data/<paramref name="sub"/> in the folder holding RlhfSharp.slnx; fails naming the missing path.</summary>
    public static string Folder(string sub)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !System.IO.File.Exists(Path.Combine(dir.FullName, "RlhfSharp.slnx")))
            dir = dir.Parent;
        if (dir is null)
            throw new InvalidOperationException($"test data: no RlhfSharp.slnx above {AppContext.BaseDirectory}; cannot find the repository's data/ folder.");
        string path = Path.Combine(dir.FullName, "data", sub);
        if (!Directory.Exists(path))
            throw new InvalidOperationException($"test data: {path} does not exist (it is part of the repository: see data/README.md).");
        return path;
    }
}
