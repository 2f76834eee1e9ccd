// Finds the repository's data/ folder from the test assembly: walk up to the folder holding RlhfSharp.slnx, then data/.
namespace RlhfSharp.Feedback.Tests;

internal static class TestData
{
    public static string Folder
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "RlhfSharp.slnx")))
                {
                    var data = Path.Combine(dir.FullName, "data");
                    if (Directory.Exists(data)) return data;
                    throw new DirectoryNotFoundException($"test data folder {data} is missing (it is part of the repository: see data/README.md).");
                }
            throw new DirectoryNotFoundException($"no RlhfSharp.slnx above {AppContext.BaseDirectory}: cannot find the repository's data/ folder.");
        }
    }

    public static string Path_(params string[] parts) => Path.Combine([Folder, .. parts]);

    /// <summary>A fresh temp directory for one test, removed on dispose.</summary>
    public sealed class TempDir : IDisposable
    {
        public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "rlhf-fb-" + Guid.NewGuid().ToString("N"));
        public TempDir() => Directory.CreateDirectory(Path);
        public string File(string name) => System.IO.Path.Combine(Path, name);
        public void Dispose()
        {
            try { Directory.Delete(Path, recursive: true); }
            catch (IOException) { /* a pooled handle may linger on some platforms; the OS temp cleaner takes it */ }
        }
    }
}
