// The PostgreSQL server the PostgreSQL tests use: RLHF_TEST_PG names it (CI's .ci/run starts one and sets it); each
// test gets its own schema. Outside CI a test skips, saying so, where no server is reachable; in CI it never skips,
// so an unreachable server fails the run instead of hiding.
using Npgsql;
using Xunit;

namespace RlhfSharp.TestSupport;

public static class PostgresServer
{
    private static readonly Lazy<string?> Probe = new(() =>
    {
        var cs = Environment.GetEnvironmentVariable("RLHF_TEST_PG");
        const string Unreachable = "no PostgreSQL server reachable: set RLHF_TEST_PG (CI's .ci/run starts one)";
        if (string.IsNullOrWhiteSpace(cs)) return Unreachable;
        if (string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase)) return null;
        try
        {
            var b = new NpgsqlConnectionStringBuilder(cs) { Timeout = 15 };
            using var c = new NpgsqlConnection(b.ConnectionString);
            c.Open();
            return null;
        }
        catch (Exception ex) when (ex is NpgsqlException or ArgumentException or TimeoutException)
        {
            return $"{Unreachable} ({ex.Message})";
        }
    });

    /// <summary>Why PostgreSQL tests skip here, or null when the server answers (read once per test run).</summary>
    public static string? SkipReason => Probe.Value;

    /// <summary>The connection string of RLHF_TEST_PG.</summary>
    public static string ConnectionString => Environment.GetEnvironmentVariable("RLHF_TEST_PG")!;

    public static string ConnectionStringFor(string schema) =>
        new NpgsqlConnectionStringBuilder(ConnectionString) { SearchPath = schema }.ConnectionString;

    /// <summary>A new, empty schema with a unique name.</summary>
    public static async Task<string> CreateSchemaAsync()
    {
        var schema = "t_" + Guid.NewGuid().ToString("N");
        await using var c = new NpgsqlConnection(ConnectionString);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand($"CREATE SCHEMA {schema}", c);
        await cmd.ExecuteNonQueryAsync();
        return schema;
    }

    public static async Task DropSchemaAsync(string schema)
    {
        await using var c = new NpgsqlConnection(ConnectionString);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand($"DROP SCHEMA {schema} CASCADE", c);
        await cmd.ExecuteNonQueryAsync();
    }
}

/// <summary>A fact that needs the PostgreSQL server named by RLHF_TEST_PG; it skips, saying so, when none is reachable.</summary>
public sealed class PostgresFactAttribute : FactAttribute
{
    public PostgresFactAttribute()
    {
        if (PostgresServer.SkipReason is string reason) Skip = reason;
    }
}
