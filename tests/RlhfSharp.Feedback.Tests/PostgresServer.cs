// The PostgreSQL server the PostgreSQL tests use: RLHF_TEST_PG names it; each test gets its own schema.
using Npgsql;

namespace RlhfSharp.Feedback.Tests;

internal static class PostgresServer
{
    private static readonly Lazy<string?> Probe = new(() =>
    {
        var cs = Environment.GetEnvironmentVariable("RLHF_TEST_PG");
        const string Unreachable = "no PostgreSQL server reachable: set RLHF_TEST_PG (CI's .ci/run starts one)";
        if (string.IsNullOrWhiteSpace(cs)) return Unreachable;
        // In CI the server is provided: never skip there, so an unreachable server fails the run instead of hiding.
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

    public static string? SkipReason => Probe.Value;

    private static string BaseConnectionString => Environment.GetEnvironmentVariable("RLHF_TEST_PG")!;

    public static string ConnectionStringFor(string schema) =>
        new NpgsqlConnectionStringBuilder(BaseConnectionString) { SearchPath = schema }.ConnectionString;

    public static async Task<string> CreateSchemaAsync()
    {
        var schema = "t_" + Guid.NewGuid().ToString("N");
        await using var c = new NpgsqlConnection(BaseConnectionString);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand($"CREATE SCHEMA {schema}", c);
        await cmd.ExecuteNonQueryAsync();
        return schema;
    }

    public static async Task DropSchemaAsync(string schema)
    {
        await using var c = new NpgsqlConnection(BaseConnectionString);
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand($"DROP SCHEMA {schema} CASCADE", c);
        await cmd.ExecuteNonQueryAsync();
    }
}
