// The same API and load tests against the real SQLite store (a temp file per test), as `rlhf label serve --db` runs.
using RlhfSharp.Feedback;
using RlhfSharp.Feedback.Stores;
using Xunit.Abstractions;

namespace RlhfSharp.Web.Tests;

/// <summary>Temp database files for one test; deleted (with their WAL side files) when the test ends.</summary>
internal sealed class TempDatabases : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "rlhf-web-tests", Guid.NewGuid().ToString("N"));

    public string NewPath()
    {
        Directory.CreateDirectory(_dir);
        return Path.Combine(_dir, $"{Guid.NewGuid():N}.db");
    }

    public void Dispose()
    {
        try { if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true); }
        catch (IOException) { /* a file still held open by a pooled connection: the OS temp cleaner takes it */ }
    }
}

public sealed class SqliteLabelingApiTests : LabelingApiTests, IDisposable
{
    private readonly TempDatabases _files = new();

    private protected override IPreferenceStore CreateStore() => new SqlitePreferenceStore(_files.NewPath());

    public void Dispose() => _files.Dispose();
}

[Collection("load")]
public sealed class SqliteLoadTests(ITestOutputHelper output) : LoadTests(output), IDisposable
{
    private readonly TempDatabases _files = new();

    private protected override IPreferenceStore CreateStore() => new SqlitePreferenceStore(_files.NewPath());

    private protected override string StoreName => "SQLite";

    public void Dispose() => _files.Dispose();
}
