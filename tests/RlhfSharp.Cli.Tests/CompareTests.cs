// `rlhf compare` end to end on the smallest configuration: two methods (GRPO, expert iteration), the story task, one seed,
// a few steps from a tiny untrained model. A budget-calibrated run writes its plan, cells, table and report; a second run
// replaying that plan is interrupted inside its second cell and resumed with `--resume --run` alone, and its cells equal
// the first run's bit for bit (wall times aside).
using System.Text.Json;
using System.Text.Json.Nodes;
using RlhfSharp.Alignment.Comparison;
using RlhfSharp.Cli.Commands;
using RlhfSharp.Models;
using RlhfSharp.Tensors;
using RlhfSharp.Text;
using RlhfSharp.Text.StoryWorld;
using Xunit.Abstractions;

namespace RlhfSharp.Cli.Tests;

[Collection(ConsoleCollection.Name)]
public sealed class CompareTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "rlhf-compare-" + Guid.NewGuid().ToString("N")[..8]);

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    private string TinyModel()
    {
        string dir = Path.Combine(_root, "model");
        var tok = BpeTrainer.Train(Stories.Corpus(1, 200), new BpeTrainerOptions { VocabSize = 300 });
        Gpt.Create(new GptConfig { VocabSize = tok.VocabSize, BlockSize = 48, NEmbd = 16, NLayer = 1, NHead = 2, EosTokenId = tok.EosId }, new Rng(3)).Save(dir);
        tok.Save(dir);
        return dir;
    }

    private static Dictionary<string, CellResult> Cells(string run) =>
        Directory.GetFiles(Path.Combine(run, CompareCommand.CellsFolder)).ToDictionary(f => Path.GetFileName(f)!,
            f => JsonSerializer.Deserialize<CellResult>(File.ReadAllText(f), new JsonSerializerOptions { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals })!.WithoutTimes());

    [Fact]
    public void Given_two_methods_When_compared_at_a_budget_and_replayed_through_an_interrupted_cell_Then_the_table_is_written_and_the_cells_are_bit_identical()
    {
        string model = TinyModel();
        string[] common = ["compare", "--story-model", model, "--tasks", "story", "--methods", "grpo,expert_iteration", "--seeds", "1", "--calibration-steps", "1",
            "--max-steps", "3", "--batch-size", "8", "--group-size", "4", "--max-new-tokens", "6", "--eval-prompts", "8", "--train-prompts", "40"];
        string a = Path.Combine(_root, "a"), b = Path.Combine(_root, "b");

        var first = RlhfRunner.Run([.. common, "--budget-seconds", "0.5", "--run", a]);
        output.WriteLine(first.Out + string.Join("\n", first.ErrorLines));
        Assert.Equal(0, first.Exit);
        foreach (string f in new[] { "comparison.md", "comparison.json", "report.html", "metrics.jsonl" }) Assert.True(File.Exists(Path.Combine(a, f)), f);
        var plan = JsonNode.Parse(File.ReadAllText(Path.Combine(a, "config.json")))![CompareCommand.PlanKey]!;
        Assert.Equal(0.5, plan["budget_seconds"]!.GetValue<double>());
        var entries = plan["entries"]!.AsArray();
        Assert.Equal(2, entries.Count);
        foreach (var e in entries)
        {
            Assert.InRange(e!["steps"]!.GetValue<int>(), 1, 3);
            Assert.True(e["seconds_per_step"]!.GetValue<double>() > 0);
        }
        string md = File.ReadAllText(Path.Combine(a, "comparison.md"));
        Assert.Contains("| GRPO |", md);
        Assert.Contains("| expert iteration |", md);
        Assert.Contains("Task: story", File.ReadAllText(Path.Combine(a, "report.html")));
        var expected = Cells(a);
        Assert.Equal(2, expected.Count);

        // The same plan, interrupted in its second cell: the first cell is kept, the second is not written.
        CompareCommand.InterruptCell = 2;
        RlhfRun stopped;
        try { stopped = RlhfRunner.Run([.. common, "--plan", Path.Combine(a, "config.json"), "--run", b]); }
        finally { CompareCommand.InterruptCell = null; }
        output.WriteLine(string.Join("\n", stopped.ErrorLines));
        Assert.NotEqual(0, stopped.Exit);
        Assert.Contains(stopped.ErrorLines, l => l.Contains("--resume", StringComparison.Ordinal));
        Assert.Single(Cells(b));

        var resumed = RlhfRunner.Run("compare", "--resume", "--run", b);
        output.WriteLine(string.Join("\n", resumed.ErrorLines));
        Assert.Equal(0, resumed.Exit);
        Assert.Equal(expected, Cells(b));
        Assert.Equal(plan.ToJsonString(), JsonNode.Parse(File.ReadAllText(Path.Combine(b, "config.json")))![CompareCommand.PlanKey]!.ToJsonString());
    }
}
