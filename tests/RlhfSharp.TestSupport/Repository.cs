// The repository the tests were built from, found by walking up from the test assembly to the folder holding
// RlhfSharp.slnx; its data/ folder holds what the product and the tests read (each file with its source and licence).
namespace RlhfSharp.TestSupport;

public static class Repository
{
    private static readonly Lazy<string> FoundRoot = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "RlhfSharp.slnx"))) return dir.FullName;
        throw new DirectoryNotFoundException($"no RlhfSharp.slnx above {AppContext.BaseDirectory}: cannot find the repository.");
    });

    /// <summary>The folder holding RlhfSharp.slnx.</summary>
    public static string Root => FoundRoot.Value;

    /// <summary>data/<paramref name="parts"/> in the repository; fails naming the path when it does not exist.</summary>
    public static string Data(params string[] parts)
    {
        string path = Path.Combine([Root, "data", .. parts]);
        if (!File.Exists(path) && !Directory.Exists(path))
            throw new DirectoryNotFoundException($"test data {path} is missing (it is part of the repository: see data/README.md).");
        return path;
    }
}
