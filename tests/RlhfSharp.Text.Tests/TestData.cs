// Finds the repository's data/ folder from the test assembly: walk up to the folder holding RlhfSharp.slnx, then data/.
namespace RlhfSharp.Text.Tests;

internal static class TestData
{
    public static string Root { get; } = Locate();

    public static string Gpt2Dir => Require(Path.Combine(Root, "gpt2"));

    private static readonly Lazy<Gpt2Tokenizer> SharedGpt2 = new(() => Gpt2Tokenizer.Load(Gpt2Dir));

    /// <summary>One GPT-2 tokenizer shared by tests that only read from it (loading takes a second).</summary>
    public static Gpt2Tokenizer Gpt2 => SharedGpt2.Value;

    public static string AustenDir => Require(Path.Combine(Root, "austen"));

    /// <summary>All six novels, concatenated in file-name order.</summary>
    public static string AustenText() =>
        string.Concat(Directory.GetFiles(AustenDir, "*.txt").Order(StringComparer.Ordinal).Select(File.ReadAllText));

    private static string Locate()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "RlhfSharp.slnx")))
                return Path.Combine(dir.FullName, "data");
        }
        throw new InvalidOperationException($"No RlhfSharp.slnx above {AppContext.BaseDirectory}; cannot find the repository's data/ folder.");
    }

    private static string Require(string path)
    {
        if (!Directory.Exists(path))
            throw new InvalidOperationException($"Test data folder {path} is missing (it is part of the repository: see data/README.md).");
        return path;
    }
}
