// The repository's data/ folders the tokenizer tests read (Repository finds the repository), and one shared GPT-2 tokenizer.
namespace RlhfSharp.Text.Tests;

internal static class TestData
{
    public static string Root { get; } = Path.Combine(Repository.Root, "data");

    public static string Gpt2Dir => Require(Path.Combine(Root, "gpt2"));

    private static readonly Lazy<Gpt2Tokenizer> SharedGpt2 = new(() => Gpt2Tokenizer.Load(Gpt2Dir));

    /// <summary>One GPT-2 tokenizer shared by tests that only read from it (loading takes a second).</summary>
    public static Gpt2Tokenizer Gpt2 => SharedGpt2.Value;

    public static string AustenDir => Require(Path.Combine(Root, "austen"));

    /// <summary>All six novels, concatenated in file-name order.</summary>
    public static string AustenText() =>
        string.Concat(Directory.GetFiles(AustenDir, "*.txt").Order(StringComparer.Ordinal).Select(File.ReadAllText));

    private static string Require(string path)
    {
        if (!Directory.Exists(path))
            throw new InvalidOperationException($"Test data folder {path} is missing (it is part of the repository: see data/README.md).");
        return path;
    }
}
