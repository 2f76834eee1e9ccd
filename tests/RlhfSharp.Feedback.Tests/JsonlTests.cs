// JSONL import (one transaction, file:line errors) and export in TRL's pair, ranking and best-of forms.
using System.Text.Json.Nodes;
using RlhfSharp.Feedback.Stores;

namespace RlhfSharp.Feedback.Tests;

public sealed class JsonlTests : IAsyncLifetime
{
    private readonly TempDirectory _dir = new();
    private SqlitePreferenceStore _store = null!;

    public async Task InitializeAsync() => _store = await SqlitePreferenceStore.OpenAsync(_dir.File("s.db"));

    public async Task DisposeAsync()
    {
        await _store.DisposeAsync();
        _dir.Dispose();
    }

    private string Write(string name, params string[] lines)
    {
        var path = _dir.File(name);
        File.WriteAllLines(path, lines);
        return path;
    }

    [Fact]
    public async Task QueriesImportWithTheirOptionalFields()
    {
        var path = Write("q.jsonl",
            """{"prompt":"Say hi","responses":["hi","hello"]}""",
            "",
            """{"prompt":"Rank","responses":["a","b","c"],"campaign":"k3","sources":["sft","ppo","ref"]}""",
            """{"prompt":"Clip","responses":["<svg/>","<svg></svg>"],"kind":"clip","gold":1}""",
            """{"prompt":"G","responses":["x","y","z"],"gold":[2,0,1]}""",
            """{"prompt":"T","responses":["x","y"],"gold":"tie"}""");
        var ids = await Jsonl.ImportQueriesAsync(_store, path, "imported");
        Assert.Equal(5, ids.Count);
        var qs = await _store.GetQueriesAsync();
        Assert.Equal("imported", qs[0].Campaign);
        Assert.Equal("k3", qs[1].Campaign);
        Assert.Equal("ppo", qs[1].Candidates[1].Source);
        Assert.Equal(QueryKind.Clip, qs[2].Kind);
        Assert.Equal(1, qs[2].GoldAnswer!.Preferred);
        Assert.Equal([2, 0, 1], qs[3].GoldAnswer!.Ranking!);
        Assert.Equal(AnswerKind.Tie, qs[4].GoldAnswer!.Kind);
    }

    [Theory]
    [InlineData("""{"prompt":"p","responses":["a"]}""", "\"responses\" needs at least 2")]
    [InlineData("""{"responses":["a","b"]}""", "\"prompt\" is missing")]
    [InlineData("""{"prompt":"p","responses":["a",3]}""", "\"responses[1]\" must be a string")]
    [InlineData("""{"prompt":"p","responses":["a","b"],"gold":5}""", "\"gold\"")]
    [InlineData("""{"prompt":"p","responses":["a","b"],"kind":"video"}""", "\"kind\"")]
    [InlineData("""{"prompt":"p","responses":["a","b"]""", "not valid JSON")]
    [InlineData("""["p"]""", "JSON object")]
    public async Task ABadLineNamesFileLineAndFieldAndNothingIsImported(string badLine, string expected)
    {
        var path = Write("bad.jsonl", """{"prompt":"fine","responses":["a","b"]}""", """{"prompt":"fine too","responses":["a","b"]}""", badLine);
        var ex = await Assert.ThrowsAsync<FormatException>(() => Jsonl.ImportQueriesAsync(_store, path));
        Assert.Contains($"{path}:3:", ex.Message);
        Assert.Contains(expected, ex.Message);
        Assert.Empty(await _store.GetQueriesAsync());
    }

    private async Task<(Labeler Good, Labeler Flagged)> JudgeAsync()
    {
        await _store.AddQueriesAsync([
            new NewQuery(QueryKind.Text, "pair", [new("A"), new("B")]),
            new NewQuery(QueryKind.Text, "tied", [new("C"), new("D")]),
            new NewQuery(QueryKind.Text, "skipped", [new("E"), new("F")]),
            new NewQuery(QueryKind.Text, "k3", [new("x"), new("y"), new("z")]),
            new NewQuery(QueryKind.Text, "gold", [new("G"), new("H")], GoldAnswer: Answer.Prefer(0)),
        ]);
        var (good, _) = await _store.AddLabelerAsync("good", LabelerRole.Labeler);
        var (bad, _) = await _store.AddLabelerAsync("bad", LabelerRole.Labeler);
        var answers = new Dictionary<string, Answer>
        {
            ["pair"] = Answer.Prefer(1), ["tied"] = Answer.Tie(), ["skipped"] = Answer.Skip("unreadable"),
            ["k3"] = Answer.Rank(2, 0, 1), ["gold"] = Answer.Prefer(0),
        };
        for (int i = 0; i < 5; i++)
        {
            var a = await _store.NextAssignmentAsync(good.Id, goldRate: 1);
            await _store.SubmitAsync(a!.Id, good.Id, answers[a.Query.Prompt], TimeSpan.Zero);
        }
        // The flagged labeller answers the first query the other way round.
        var b = await _store.NextAssignmentAsync(bad.Id, overlap: 2);
        await _store.SubmitAsync(b!.Id, bad.Id, Answer.Prefer(0), TimeSpan.Zero);
        await _store.SetFlaggedAsync(bad.Id, true);
        return (good, bad);
    }

    private async Task<List<JsonObject>> ExportAsync(ExportOptions options)
    {
        var sw = new StringWriter();
        int n = await Jsonl.ExportAsync(_store, sw, options);
        var lines = sw.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        Assert.Equal(n, lines.Count);
        return lines;
    }

    [Fact]
    public async Task PairsFollowTrlAndLeaveOutTiesSkipsAndGold()
    {
        await JudgeAsync();
        var lines = await ExportAsync(new ExportOptions(ExcludeFlagged: true));
        // pair -> 1 line (B over A); k3 ranked z > x > y -> 3 pairs; tie, skip and gold -> none.
        Assert.Equal(4, lines.Count);
        Assert.Equal(("pair", "B", "A"), ((string)lines[0]["prompt"]!, (string)lines[0]["chosen"]!, (string)lines[0]["rejected"]!));
        var k3 = lines.Skip(1).Select(l => ((string)l["chosen"]!, (string)l["rejected"]!)).ToHashSet();
        Assert.Equal([("z", "x"), ("z", "y"), ("x", "y")], k3);
        Assert.All(lines, l => Assert.Equal(["prompt", "chosen", "rejected"], l.Select(p => p.Key)));

        var withFlagged = await ExportAsync(new ExportOptions());
        Assert.Equal(5, withFlagged.Count);
        Assert.Contains(withFlagged, l => (string)l["chosen"]! == "A");

        var ties = await ExportAsync(new ExportOptions(IncludeTies: true, ExcludeFlagged: true, IncludeGold: true));
        var tie = Assert.Single(ties, l => l.ContainsKey("tie"));
        Assert.True((bool)tie["tie"]!);
        Assert.Equal("tied", (string)tie["prompt"]!);
        Assert.Contains(ties, l => (string)l["prompt"]! == "gold");
        Assert.Equal(6, ties.Count);
    }

    [Fact]
    public async Task RankingAndBestForms()
    {
        await JudgeAsync();
        var ranking = await ExportAsync(new ExportOptions(ExportFormat.Ranking, ExcludeFlagged: true));
        Assert.Equal(2, ranking.Count);
        Assert.Equal([1, 0], ranking[0]["ranking"]!.AsArray().Select(n => (int)n!));
        Assert.Equal([2, 0, 1], ranking[1]["ranking"]!.AsArray().Select(n => (int)n!));
        Assert.Equal(["x", "y", "z"], ranking[1]["responses"]!.AsArray().Select(n => (string)n!));

        var best = await ExportAsync(new ExportOptions(ExportFormat.Best, ExcludeFlagged: true));
        Assert.Equal([1, 2], best.Select(l => (int)l["best"]!));
    }

    [Fact]
    public async Task AggregatedExportsWriteOneAnswerPerQuery()
    {
        await _store.AddQueriesAsync([
            new NewQuery(QueryKind.Text, "two-to-one", [new("A"), new("B")]),
            new NewQuery(QueryKind.Text, "split", [new("C"), new("D")]),
        ]);
        var ls = new List<Labeler>();
        for (int i = 0; i < 3; i++) ls.Add((await _store.AddLabelerAsync($"l{i}", LabelerRole.Labeler)).Labeler);
        // two-to-one: B, B, A. split: C, D, skip (so the top labels tie).
        var script = new Dictionary<string, Answer[]>
        {
            ["two-to-one"] = [Answer.Prefer(1), Answer.Prefer(1), Answer.Prefer(0)],
            ["split"] = [Answer.Prefer(0), Answer.Prefer(1), Answer.Skip("can't tell")],
        };
        for (int i = 0; i < 3; i++)
            while (await _store.NextAssignmentAsync(ls[i].Id, overlap: 3) is { } a)
                await _store.SubmitAsync(a.Id, ls[i].Id, script[a.Query.Prompt][i], TimeSpan.Zero);

        Assert.Equal(5, (await ExportAsync(new ExportOptions())).Count);
        var majority = await ExportAsync(new ExportOptions(Aggregation: ExportAggregation.Majority));
        var line = Assert.Single(majority);
        Assert.Equal(("two-to-one", "B", "A"), ((string)line["prompt"]!, (string)line["chosen"]!, (string)line["rejected"]!));
        var ds = await ExportAsync(new ExportOptions(Aggregation: ExportAggregation.DawidSkene));
        Assert.Equal(2, ds.Count);
        Assert.Equal("B", (string)ds.Single(l => (string)l["prompt"]! == "two-to-one")["chosen"]!);
        Assert.Equal([1, 0], (await ExportAsync(new ExportOptions(ExportFormat.Ranking, Aggregation: ExportAggregation.Majority)))[0]["ranking"]!.AsArray().Select(n => (int)n!));
        Assert.Equal(Answer.Rank(2, 0, 1).Ranking, Jsonl.FromCategory("rank:2,0,1").Ranking);
        Assert.Equal(AnswerKind.Tie, Jsonl.FromCategory("tie").Kind);
    }

    [Fact]
    public async Task ADawidSkeneExportIsAnchoredByGoldEvenWhenGoldIsNotExported()
    {
        // Six gold tasks whose truth is A, and one contested query. l0 answers A everywhere; l1 and l2, a bloc, answer B
        // everywhere. Unanchored, the bloc out-votes l0 on the contested query (B, 2 to 1); with gold clamped, their
        // B is known to come whatever the truth, so it says nothing, and l0's A stands.
        await _store.AddQueriesAsync([.. Enumerable.Range(0, 6).Select(i => new NewQuery(QueryKind.Text, $"gold {i}", [new("A"), new("B")], GoldAnswer: Answer.Prefer(0)))]);
        await _store.AddQueriesAsync([new NewQuery(QueryKind.Text, "contested", [new("A"), new("B")])]);
        for (int i = 0; i < 3; i++)
        {
            var l = (await _store.AddLabelerAsync($"l{i}", LabelerRole.Labeler)).Labeler;
            while (await _store.NextAssignmentAsync(l.Id, overlap: 3, goldRate: 1) is { } a)
                await _store.SubmitAsync(a.Id, l.Id, Answer.Prefer(i == 0 ? 0 : 1), TimeSpan.Zero);
        }
        Assert.Equal("B", (string)Assert.Single(await ExportAsync(new ExportOptions(Aggregation: ExportAggregation.Majority)))["chosen"]!);
        var ds = Assert.Single(await ExportAsync(new ExportOptions(Aggregation: ExportAggregation.DawidSkene)));
        Assert.Equal(("contested", "A"), ((string)ds["prompt"]!, (string)ds["chosen"]!));
    }
}
