// `rlhf rlaif` end to end on the smallest configuration: a tiny untrained story model, one seed, n = 8 judge pairs, N = 12
// pairs, a judge fine-tuned for a few steps (a judge this small may tie every pair: condition (a) is then n/a with the reason), a reward model per condition
// and 2 PPO steps each. The run writes the table with all three conditions, counts that add up (the judge's labels, ties
// and skips cover the N pairs; every condition is judged on every held-out prompt), and the per-seed stage record that
// --resume reads. Option validation: each bad input is refused with one line naming it.
using System.Text.Json.Nodes;
using RlhfSharp.Alignment.Rlaif;
using RlhfSharp.Models;
using RlhfSharp.Tensors;
using RlhfSharp.Text.StoryWorld;
using Xunit.Abstractions;

namespace RlhfSharp.Cli.Tests;

[Collection(ConsoleCollection.Name)]
public sealed class RlaifTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "rlhf-rlaif-" + Guid.NewGuid().ToString("N")[..8]);

    public void Dispose()
    {
        try { Directory.Delete(_root, recursive: true); } catch (IOException) { }
    }

    private string TinyModel()
    {
        string dir = Path.Combine(_root, "model");
        var tok = Stories.TrainTokenizer(512);
        Gpt.Create(new GptConfig { VocabSize = tok.VocabSize, BlockSize = 48, NEmbd = 16, NLayer = 1, NHead = 2, EosTokenId = tok.EosId }, new Rng(3)).Save(dir);
        tok.Save(dir);
        return dir;
    }

    private static readonly string[] Tiny =
    [
        "--judge-pairs", "8", "--pairs", "12", "--seeds", "1", "--judge-steps", "16", "--judge-batch-size", "4", "--judge-lr", "1e-2",
        "--reward-epochs", "1", "--reward-eval-pairs", "8", "--ppo-steps", "2", "--ppo-batch-size", "4", "--max-new-tokens", "6", "--eval-prompts", "8",
    ];

    [Fact]
    public void Given_a_tiny_budget_When_rlaif_runs_Then_the_table_has_all_three_conditions_and_the_counts_add_up()
    {
        string run = Path.Combine(_root, "run");
        var result = RlhfRunner.Run(["rlaif", "--sft-model", TinyModel(), "--run", run, .. Tiny]);
        output.WriteLine(result.Out + string.Join("\n", result.ErrorLines));
        Assert.True(result.Exit == 0, $"rlaif: exit {result.Exit}: {string.Join(" | ", result.ErrorLines)}");
        foreach (string f in new[] { "rlaif.md", "rlaif.json", "report.html", "metrics.jsonl" }) Assert.True(File.Exists(Path.Combine(run, f)), f);

        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(run, "rlaif.json")))!;
        var rows = json["rows"]!.AsArray();
        Assert.Equal(RlaifExperiment.Conditions, rows.Select(r => r!["condition"]!.GetValue<string>()));
        var seed = json["seeds"]![0]!;
        var judge = seed["judge"]!;
        int labelled = judge["labelled"]!.GetValue<int>();
        Assert.Equal(12, labelled + judge["ties"]!.GetValue<int>() + judge["skips"]!.GetValue<int>());
        Assert.Equal(12, judge["labels"]!.AsArray().Count);
        var cells = seed["cells"]!.AsArray();
        Assert.Equal(3, cells.Count);
        // A judge this small may answer "1" to every question (a tie in both orders, no preference): then (a) is n/a, and says why.
        foreach (var cell in cells.Where(c => !(c!["condition"]!.GetValue<string>() == "judge" && labelled < 2)))
        {
            Assert.Equal(8, cell!["wins"]!.GetValue<int>() + cell["losses"]!.GetValue<int>() + cell["ties"]!.GetValue<int>());
            // An untrained model's held-out pairs may all score equal by gold: then there is no accuracy to measure (NaN, "—").
            double accuracy = double.Parse(cell["reward_accuracy"]!.ToString(), System.Globalization.CultureInfo.InvariantCulture);
            if (cell["reward_eval_pairs"]!.GetValue<int>() == 0) Assert.True(double.IsNaN(accuracy), $"accuracy {accuracy} on no pairs");
            else Assert.InRange(accuracy, 0, 1);
            Assert.True(cell["kl"]!.GetValue<double>() is var kl && double.IsFinite(kl), "KL must be a number");
        }
        // (a) learns from the judge's decided labels; (c) from the judge's own training labels, at most n.
        var judgeCell = cells.Single(c => c!["condition"]!.GetValue<string>() == "judge")!;
        Assert.Equal(labelled, judgeCell["labels"]!.GetValue<int>());
        Assert.Equal(labelled < 2, judgeCell["not_applicable"] is JsonValue);
        Assert.InRange(cells.Single(c => c!["condition"]!.GetValue<string>() == "oracle-n")!["labels"]!.GetValue<int>(), 2, 8);
        // The stage record a resume reads, and the table's three rows.
        var stages = JsonNode.Parse(File.ReadAllText(Path.Combine(run, "seed1", RlaifExperiment.StagesFileName)))!.AsArray().Select(s => s!.GetValue<string>()).ToList();
        Assert.Equal(["pairs", "judge", "judge-labels", "ppo-judge", "ppo-oracle", "ppo-oracle-n"], stages);
        string md = File.ReadAllText(Path.Combine(run, "rlaif.md"));
        foreach (string label in new[] { "(a) PPO on N = 12 judge labels", "(b) PPO on N = 12 oracle labels", "(c) PPO on the judge's n = 8 oracle labels", "position flips" })
            Assert.Contains(label, md, StringComparison.Ordinal);
    }

    private void AssertOneLineError(RlhfRun run, params string[] mentions)
    {
        output.WriteLine(string.Join("\n", run.ErrorLines));
        Assert.True(run.Exit != 0, $"exit code {run.Exit}");
        Assert.True(run.ErrorLines.Count == 1, $"expected one line on stderr, got {run.ErrorLines.Count}:\n{string.Join("\n", run.ErrorLines)}");
        foreach (var m in mentions) Assert.Contains(m, run.ErrorLines[0], StringComparison.Ordinal);
    }

    [Fact]
    public void Given_bad_options_When_rlaif_is_asked_Then_each_is_refused_with_one_line_naming_it()
    {
        string run = Path.Combine(_root, "bad");
        AssertOneLineError(RlhfRunner.Run("rlaif", "--sft-model", "/nope/sft", "--run", run), "--sft-model", "/nope/sft");
        AssertOneLineError(RlhfRunner.Run("rlaif", "--sft-model", "/nope/sft", "--run", run, "--judge-pairs", "2"), "judge-pairs", "2");
        AssertOneLineError(RlhfRunner.Run("rlaif", "--sft-model", "/nope/sft", "--run", run, "--task", "chess"), "chess", "story", "rlhf rlaif --help");
        AssertOneLineError(RlhfRunner.Run("rlaif", "--run", run), "--sft-model");
        Assert.False(Directory.Exists(run), "nothing is written when the options are refused");
    }
}
