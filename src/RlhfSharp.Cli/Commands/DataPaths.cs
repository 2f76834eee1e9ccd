// Where default data lives: paths like ../shared/data/... are relative to the repository root (the folder
// holding RlhfSharp.slnx), found by walking up from the working directory and then from the executable.
namespace RlhfSharp.Cli.Commands;

internal static class DataPaths
{
    /// <summary>An absolute path as given; a relative one resolved against the repository root when it exists there.</summary>
    public static string Resolve(string path)
    {
        if (Path.IsPathRooted(path)) return path;
        if (Path.Exists(path)) return Path.GetFullPath(path);
        foreach (string start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "RlhfSharp.slnx")))
                    return Path.GetFullPath(Path.Combine(dir.FullName, path));
            }
        }
        return Path.GetFullPath(path);
    }

    /// <summary>The text of a file, or of every *.txt file in a folder in name order.</summary>
    public static string ReadCorpus(string path, string optionName)
    {
        if (File.Exists(path)) return File.ReadAllText(path);
        if (Directory.Exists(path))
        {
            var files = Directory.GetFiles(path, "*.txt").Order(StringComparer.Ordinal).ToArray();
            if (files.Length == 0) throw new FileNotFoundException($"{optionName} {path}: the folder holds no .txt files.");
            return string.Concat(files.Select(File.ReadAllText));
        }
        throw new FileNotFoundException($"{optionName} {path}: no such file or folder.");
    }
}
