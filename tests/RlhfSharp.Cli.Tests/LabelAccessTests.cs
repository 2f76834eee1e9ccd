// `rlhf label revoke / flag / unflag / audit` and `--durable` end to end: the store sees each change, the audit log
// names the terminal user, and a name that matches nobody (or several) is one line on stderr.
using RlhfSharp.Feedback;
using RlhfSharp.Feedback.Stores;

namespace RlhfSharp.Cli.Tests;

[Collection(ConsoleCollection.Name)]
public sealed class LabelAccessTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "rlhf-label-access-" + Guid.NewGuid().ToString("N"));

    public LabelAccessTests() => Directory.CreateDirectory(_dir);

    public void Dispose()
    {
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { /* a pooled handle: the temp cleaner takes it */ }
    }

    private static string Token(RlhfRun run) => run.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1].Trim();

    [Fact]
    public async Task Given_labellers_When_flagged_unflagged_and_revoked_from_the_command_line_Then_the_store_and_the_audit_log_follow()
    {
        string db = Path.Combine(_dir, "f.db");
        var eve = Token(RlhfRunner.Run("label", "add-labeler", "eve", "--db", db, "--durable"));
        Assert.Equal(0, RlhfRunner.Run("label", "add-labeler", "root", "--admin", "--db", db).Exit);

        Assert.Equal(0, RlhfRunner.Run("label", "flag", "eve", "--db", db).Exit);
        await using (var store = await SqlitePreferenceStore.OpenAsync(db))
            Assert.True((await store.GetLabelersAsync()).Single(l => l.Name == "eve").Flagged);
        Assert.Equal(0, RlhfRunner.Run("label", "unflag", "eve", "--db", db).Exit);
        var revoke = RlhfRunner.Run("label", "revoke", "eve", "--db", db, "--durable");
        Assert.Equal(0, revoke.Exit);
        Assert.Contains("no longer work", revoke.Out);
        await using (var store = await SqlitePreferenceStore.OpenAsync(db))
        {
            Assert.Null(await store.AuthenticateAsync(eve));
            Assert.False((await store.GetLabelersAsync()).Single(l => l.Name == "eve").Flagged);
        }

        var audit = RlhfRunner.Run("label", "audit", "--db", db);
        Assert.Equal(0, audit.Exit);
        var lines = audit.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1).Select(l => l.Split('\t')).ToList();
        Assert.Equal(["add-labeler", "add-labeler", "flag", "unflag", "revoke"], lines.Select(f => f[2]));
        Assert.All(lines, f => Assert.Equal($"cli:{Environment.UserName}", f[1]));
        Assert.Equal("\"eve\" (#1)", lines[^1][3]);
    }

    [Fact]
    public void Given_a_name_that_matches_nobody_or_several_When_revoking_Then_one_line_says_so_and_an_id_settles_it()
    {
        string db = Path.Combine(_dir, "g.db");
        RlhfRunner.Run("label", "add-labeler", "sam", "--db", db);
        RlhfRunner.Run("label", "add-labeler", "sam", "--db", db);

        var nobody = RlhfRunner.Run("label", "revoke", "nobody", "--db", db);
        Assert.Equal(1, nobody.Exit);
        Assert.Contains("nobody", Assert.Single(nobody.ErrorLines));
        var several = RlhfRunner.Run("label", "revoke", "sam", "--db", db);
        Assert.Equal(1, several.Exit);
        Assert.Contains("#1, #2", Assert.Single(several.ErrorLines));
        Assert.Equal(0, RlhfRunner.Run("label", "revoke", "#2", "--db", db).Exit);
        var tooLong = RlhfRunner.Run("label", "add-labeler", new string('x', 100), "--db", db);
        Assert.Equal(1, tooLong.Exit);
        Assert.Contains("at most 64 characters", Assert.Single(tooLong.ErrorLines));
    }
}
