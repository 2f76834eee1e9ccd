// The default preference store: one SQLite file in WAL mode, so the labelling app can read while a writer writes.
// Writers serialise on SQLite's single write lock (BEGIN IMMEDIATE) and wait for it up to the busy timeout.
//
// Durability. By default the file runs WAL with synchronous=NORMAL: a commit is appended to the WAL but the WAL is
// fsynced only at checkpoints. A killed process (kill -9, a crash, an OOM kill) loses no committed judgment, because
// the WAL is in the OS page cache and the next opener replays it. A power loss or kernel panic can lose the commits
// since the last checkpoint (the database stays consistent: it rolls back to an earlier commit, never tears).
// `durable: true` (the CLI's --durable) sets synchronous=FULL: every commit fsyncs the WAL before it returns, so an
// acknowledged judgment survives power loss too, at the cost of one fsync per write (docs/feedback.md has the
// measured judgments/s both ways, from `rlhf bench store`).
using System.Data.Common;
using Microsoft.Data.Sqlite;

namespace RlhfSharp.Feedback.Stores;

public sealed class SqlitePreferenceStore : SqlPreferenceStore
{
    private readonly string _connectionString;
    private readonly int _busyTimeoutMs;

    /// <param name="path">The database file; created when missing.</param>
    /// <param name="busyTimeout">How long a writer waits for another writer's lock before failing (default 30 s).</param>
    /// <param name="seed">Seeds the draw that decides when a gold task is mixed in.</param>
    /// <param name="durable">synchronous=FULL (every commit fsynced; survives power loss) instead of NORMAL (survives a process crash).</param>
    public SqlitePreferenceStore(string path, TimeSpan? busyTimeout = null, int? seed = null, bool durable = false) : base(seed)
    {
        Durable = durable;
        if (string.IsNullOrWhiteSpace(path)) throw new FeedbackException("SQLite store: the database path is empty.");
        Path = System.IO.Path.GetFullPath(path);
        _busyTimeoutMs = (int)(busyTimeout ?? TimeSpan.FromSeconds(30)).TotalMilliseconds;
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = Path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
            DefaultTimeout = Math.Max(1, _busyTimeoutMs / 1000),
        }.ToString();
    }

    /// <summary>The full path of the database file.</summary>
    public string Path { get; }

    /// <summary>Whether every commit is fsynced (synchronous=FULL) rather than only at checkpoints (NORMAL).</summary>
    public bool Durable { get; }

    /// <summary>Opens the file, migrates it to the current schema and returns the store.</summary>
    public static async Task<SqlitePreferenceStore> OpenAsync(string path, int? seed = null, bool durable = false, CancellationToken ct = default)
    {
        var store = new SqlitePreferenceStore(path, seed: seed, durable: durable);
        await store.MigrateAsync(ct);
        return store;
    }

    protected override async Task<DbConnection> OpenAsync(CancellationToken ct)
    {
        var connection = new SqliteConnection(_connectionString);
        try
        {
            await connection.OpenAsync(ct);
            await using var cmd = connection.CreateCommand();
            // WAL persists in the file; busy_timeout, foreign_keys and synchronous are per connection.
            // busy_timeout first: switching a new file to WAL needs the lock another opener may hold.
            cmd.CommandText = $"PRAGMA busy_timeout = {_busyTimeoutMs}; PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA synchronous = {(Durable ? "FULL" : "NORMAL")};";
            await cmd.ExecuteNonQueryAsync(ct);
            // Read the schema once here, so a file that is not a database fails now, with its path, not mid-operation.
            cmd.CommandText = "SELECT COUNT(*) FROM sqlite_master";
            await cmd.ExecuteScalarAsync(ct);
            return connection;
        }
        catch (SqliteException ex)
        {
            await connection.DisposeAsync();
            throw new FeedbackException($"SQLite store {Path}: cannot open ({ex.Message}).", 500);
        }
    }

    protected override async Task<DbTransaction> BeginWriteAsync(DbConnection connection, CancellationToken ct) =>
        // deferred: false is BEGIN IMMEDIATE: the write lock is taken up front, so two writers never deadlock upgrading.
        await Task.FromResult<DbTransaction>(((SqliteConnection)connection).BeginTransaction(deferred: false));

    // AUTOINCREMENT: an id is never reused after a delete (a released assignment), so a stale client cannot hit a new row.
    protected override string IdColumn => "INTEGER PRIMARY KEY AUTOINCREMENT";
    protected override string SkipLockedClause => "";
    protected override string RowLockClause => "";

    protected override Task LockMigrationsAsync(DbConnection connection, DbTransaction transaction, CancellationToken ct) => Task.CompletedTask;

    public override ValueTask DisposeAsync()
    {
        // Pooled connections keep the file open; release them so the file can be deleted or moved.
        SqliteConnection.ClearAllPools();
        return base.DisposeAsync();
    }
}
