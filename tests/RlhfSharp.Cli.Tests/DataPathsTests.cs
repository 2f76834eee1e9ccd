// Where `rlhf` finds data/...: the working directory, then the repository root, then beside the executable (an installed
// tool), and that the build really puts the repository's data/ beside rlhf.dll byte for byte.
using RlhfSharp.Cli.Commands;

namespace RlhfSharp.Cli.Tests;

public sealed class DataPathsTests : IDisposable
{
    // Under the temp folder, so no RlhfSharp.slnx lies above either folder: the repository-root step finds nothing.
    private readonly string _root = Path.Combine(Path.GetTempPath(), "rlhf-datapaths-" + Guid.NewGuid().ToString("N"));
    private string WorkingDirectory => Path.Combine(_root, "cwd");
    private string ToolDirectory => Path.Combine(_root, "tool");

    public DataPathsTests()
    {
        Directory.CreateDirectory(WorkingDirectory);
        Directory.CreateDirectory(Path.Combine(ToolDirectory, "data", "gpt2"));
        File.WriteAllText(Path.Combine(ToolDirectory, "models"), "not data");
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public void GivenNoCopyInTheWorkingDirectory_WhenResolvingData_ThenTheCopyBesideTheExecutableIsUsed()
    {
        string resolved = DataPaths.Resolve("data/gpt2", WorkingDirectory, ToolDirectory);

        Assert.Equal(Path.Combine(ToolDirectory, "data", "gpt2"), resolved);
    }

    [Fact]
    public void GivenACopyInTheWorkingDirectory_WhenResolvingData_ThenTheWorkingDirectoryWins()
    {
        Directory.CreateDirectory(Path.Combine(WorkingDirectory, "data", "gpt2"));

        string resolved = DataPaths.Resolve("data/gpt2", WorkingDirectory, ToolDirectory);

        Assert.Equal(Path.Combine(WorkingDirectory, "data", "gpt2"), resolved);
    }

    [Fact]
    public void GivenAPathOutsideData_WhenItExistsOnlyBesideTheExecutable_ThenItStaysInTheWorkingDirectory()
    {
        // Only data/ ships with the tool: a user's `--model models` must never pick up a file of the install.
        string resolved = DataPaths.Resolve("models", WorkingDirectory, ToolDirectory);

        Assert.Equal(Path.Combine(WorkingDirectory, "models"), resolved);
    }

    [Fact]
    public void GivenAMissingDataPath_WhenResolving_ThenTheErrorWillNameTheWorkingDirectoryPath()
    {
        string resolved = DataPaths.Resolve("data/nope", WorkingDirectory, ToolDirectory);

        Assert.Equal(Path.Combine(WorkingDirectory, "data", "nope"), resolved);
    }

    [Theory]
    [InlineData("gpt2", "vocab.json")]
    [InlineData("gpt2", "merges.txt")]
    [InlineData("sentiment", "vader_lexicon.txt")]
    [InlineData("austen", "persuasion.txt")]
    public void GivenTheBuiltCommand_ThenItsFolderCarriesTheRepositoryDataByteForByte(string folder, string file)
    {
        // rlhf.dll is copied next to this test assembly together with the files the CLI project copies to its output.
        string besideRlhf = Path.Combine(Path.GetDirectoryName(typeof(DataPaths).Assembly.Location)!, "data", folder, file);
        string inRepository = Path.Combine(RepositoryRoot(), "data", folder, file);

        Assert.True(File.Exists(besideRlhf), $"{besideRlhf} is missing: the CLI project no longer copies data/ into its output.");
        Assert.Equal(File.ReadAllBytes(inRepository), File.ReadAllBytes(besideRlhf));
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "RlhfSharp.slnx"))) return dir.FullName;
        throw new DirectoryNotFoundException($"no RlhfSharp.slnx above {AppContext.BaseDirectory}.");
    }
}
