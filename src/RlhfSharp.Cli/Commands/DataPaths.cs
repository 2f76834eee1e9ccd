// Where a relative path names a file: the working directory, then the repository root (the folder holding
// RlhfSharp.slnx), then, for data/..., the executable's folder (the project copies data/ into its output and publish folders).
namespace RlhfSharp.Cli.Commands;

internal static class DataPaths
{
    /// <summary>
    /// An absolute path as given; a relative one in the working directory, else under the repository root, else (data/...)
    /// beside the executable, where an installed `rlhf` tool carries its data. A path found nowhere resolves to the
    /// repository root's (or the working directory's) copy, so the caller's error names a sensible place.
    /// </summary>
    public static string Resolve(string path) => Resolve(path, Directory.GetCurrentDirectory(), AppContext.BaseDirectory);

    /// <summary><see cref="Resolve(string)"/> from a given working directory and executable folder.</summary>
    internal static string Resolve(string path, string workingDirectory, string executableDirectory)
    {
        if (Path.IsPathRooted(path)) return path;
        string inWorkingDirectory = Path.GetFullPath(path, workingDirectory);
        if (Path.Exists(inWorkingDirectory)) return inWorkingDirectory;
        string? inRepository = RepositoryRoot(workingDirectory, executableDirectory) is string root ? Path.GetFullPath(path, root) : null;
        if (inRepository is not null && Path.Exists(inRepository)) return inRepository;
        if (IsUnderDataFolder(path))
        {
            string besideExecutable = Path.GetFullPath(path, executableDirectory);
            if (Path.Exists(besideExecutable)) return besideExecutable;
        }
        return inRepository ?? inWorkingDirectory;
    }

    /// <summary>The text of a file, or of every *.txt file in a folder in name order.</summary>
    public static string ReadCorpus(string path, string optionName)
    {
        if (File.Exists(path)) return RlhfSharp.Text.Utf8TextFile.ReadAllText(path);
        if (Directory.Exists(path))
        {
            var files = Directory.GetFiles(path, "*.txt").Order(StringComparer.Ordinal).ToArray();
            if (files.Length == 0) throw new FileNotFoundException($"{optionName} {path}: the folder holds no .txt files.");
            return string.Concat(files.Select(RlhfSharp.Text.Utf8TextFile.ReadAllText));
        }
        throw new FileNotFoundException($"{optionName} {path}: no such file or folder.");
    }

    /// <summary>The folder holding RlhfSharp.slnx above the working directory, else above the executable; null outside a clone.</summary>
    private static string? RepositoryRoot(string workingDirectory, string executableDirectory)
    {
        foreach (string start in new[] { workingDirectory, executableDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "RlhfSharp.slnx"))) return dir.FullName;
            }
        }
        return null;
    }

    /// <summary>True for data/... (either separator): only the data folder is copied beside the executable.</summary>
    private static bool IsUnderDataFolder(string path) =>
        path.StartsWith("data/", StringComparison.Ordinal) || path.StartsWith("data\\", StringComparison.Ordinal);
}
