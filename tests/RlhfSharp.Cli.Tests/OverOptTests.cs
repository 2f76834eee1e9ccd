// `rlhf overopt` end to end on the tiniest sweep (one RM size, one comparison count, two seeds, two PPO updates): the run
// contract (config.json with every option, a metrics line and a checkpoint per cell, finished status), the α/β table and
// the claims in table.md and on stdout, report.html with its charts; and the sweep cancelled inside its second cell then
// resumed skips the first cell and writes both cells' results bit for bit as the uninterrupted run did.
using System.Text.Json;
using RlhfSharp.Alignment;
using RlhfSharp.Alignment.Evaluation;
using RlhfSharp.Cli.Commands;
using RlhfSharp.Runs;
using RlhfSharp.TestSupport;
using Xunit.Abstractions;

namespace RlhfSharp.Cli.Tests;

/// <summary>One uninterrupted tiny sweep through the CLI, shared by the tests.</summary>
public sealed class OverOptRun : IDisposable
{
    private readonly TempDirectory _tmp = new();

    /// <summary>The settings the command line below resolves to (the tests run the library with the same).</summary>
    internal static OverOptimisationConfig Config { get; } = new()
    {
        RmSizes = ["tiny"], Comparisons = [40], Seeds = [1, 2], NValues = [1, 2, 4], PretrainDocuments = 300, VocabSize = 300, PretrainSteps = 10,
        SftExamples = 50, SftSteps = 5, MaxNewTokens = 10, PpoSteps = 2, PpoBatchSize = 8, SnapshotEvery = 1, EvalPrompts = 4, BestOfNPrompts = 4, Bootstrap = 100,
    };

    internal static string[] Args(string run) =>
    [
        "overopt", "--run", run, "--rm-sizes", "tiny", "--comparisons", "40", "--seeds", "1", "2", "--n-values", "1", "2", "4", "--pretrain-documents", "300",
        "--vocab-size", "300", "--pretrain-steps", "10", "--sft-examples", "50", "--sft-steps", "5", "--max-new-tokens", "10", "--ppo-steps", "2",
        "--ppo-batch-size", "8", "--snapshot-every", "1", "--eval-prompts", "4", "--best-of-n-prompts", "4", "--bootstrap", "100",
    ];

    public OverOptRun()
    {
        Run = RlhfRunner.Run(Args(Path));
    }

    public string Path => System.IO.Path.Combine(_tmp.Path, "straight");

    internal RlhfRun Run { get; }

    public string Root => _tmp.Path;

    public void Dispose() => _tmp.Dispose();
}

[Collection(ConsoleCollection.Name)]
public sealed class OverOptTests(OverOptRun sweep, ITestOutputHelper output) : IClassFixture<OverOptRun>
{
    [Fact]
    public void Given_the_tiniest_sweep_When_rlhf_overopt_runs_Then_it_keeps_the_run_contract_and_writes_the_table_and_the_report()
    {
        output.WriteLine(sweep.Run.Out);
        output.WriteLine(string.Join("\n", sweep.Run.ErrorLines));
        Assert.Equal(0, sweep.Run.Exit);
        string table = File.ReadAllText(Path.Combine(sweep.Path, OverOptCommand.TableFileName));
        Assert.Equal(table, sweep.Run.Out);
        Assert.Contains("| RM size | comparisons | seeds | RM accuracy | α_bon [95%] | β_bon [95%] | α_RL [95%] | β_RL [95%] |", table);
        Assert.Contains("| tiny | 40 | 2 |", table);
        Assert.Contains("| RL needs more KL than best-of-n for the same gold |", table);
        Assert.Contains("| β_bon shrinks as the reward model grows | n/a | needs at least two reward-model sizes |", table);

        string html = File.ReadAllText(Path.Combine(sweep.Path, "report.html"));
        Assert.Contains("Fitted α and β", html);
        Assert.Equal(2, html.Split("<svg").Length - 1); // best-of-n and RL for the one RM size
        Assert.DoesNotContain("http://", html.Replace("http://www.w3.org/2000/svg", ""));

        var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(sweep.Path, RunDirectory.ConfigFileName))).RootElement;
        Assert.Equal("overopt", config.GetProperty("command").GetString());
        Assert.Equal(2, config.GetProperty("options").GetProperty("seeds").GetArrayLength());
        Assert.Equal(2, config.GetProperty(RunDirectory.TrainerSection).GetProperty("ppo_steps").GetInt32());
        Assert.Equal(2, File.ReadAllLines(Path.Combine(sweep.Path, RunDirectory.MetricsFileName)).Length);
        Assert.Equal("finished", RunDirectory.ReadStatus(sweep.Path)!.State);

        var result = JsonSerializer.Deserialize<OverOptimisationResult>(File.ReadAllText(Path.Combine(sweep.Path, OverOptCommand.ResultFileName)), OverOptimisationSweep.JsonOptions)!;
        Assert.All(result.Cells, c =>
        {
            Assert.Equal([0, 1, 2], c.Rl.Select(p => p.Step));
            Assert.Equal([1, 2, 4], c.BestOfN.Select(p => p.N));
            Assert.Equal(0, c.Rl[0].GoldGain);
            Assert.Equal(0, c.BestOfN[0].GoldGain, 1e-12);
            Assert.Equal(Math.Sqrt(Math.Log(4) - 0.75), c.BestOfN[2].D, 1e-12);
        });

        var again = RlhfRunner.Run([.. OverOptRun.Args(sweep.Path), "--resume"]);
        Assert.Equal(0, again.Exit);
        Assert.Contains("nothing to do", string.Join(" ", again.ErrorLines));
    }

    /// <summary>Cancels the sweep once the second cell's PPO has reported an update.</summary>
    private sealed class CancelInSecondCell(CancellationTokenSource cts) : IProgress<AlignmentProgress>
    {
        public List<string> Stages { get; } = [];

        public void Report(AlignmentProgress value)
        {
            Stages.Add(value.Stage);
            if (value.Stage.StartsWith("cell 2/2", StringComparison.Ordinal) && value.Stage.EndsWith("ppo", StringComparison.Ordinal)) cts.Cancel();
        }
    }

    [Fact]
    public void Given_a_sweep_cancelled_inside_its_second_cell_When_resumed_Then_the_first_cell_is_skipped_and_both_cells_equal_the_uninterrupted_run_bit_for_bit()
    {
        Assert.Equal(0, sweep.Run.Exit);
        string resumed = Path.Combine(sweep.Root, "resumed");
        // The shared stages are files the sweep loads back either way; the cells are what resume is about.
        CopyDirectory(Path.Combine(sweep.Path, OverOptimisationSweep.BaseFolder), Path.Combine(resumed, OverOptimisationSweep.BaseFolder));
        using var cts = new CancellationTokenSource();
        using (var run = RunDirectory.Open(resumed, resume: false))
        {
            var partial = new OverOptimisationSweep(OverOptRun.Config).Run(run, new CancelInSecondCell(cts), cts.Token);
            Assert.True(partial.Cancelled);
            Assert.Single(partial.Cells);
        }
        Assert.Single(Directory.GetDirectories(Path.Combine(resumed, RunDirectory.CheckpointsFolderName)));

        var watch = new CancelInSecondCell(new CancellationTokenSource());
        OverOptimisationResult again;
        using (var run = RunDirectory.Open(resumed, resume: true)) again = new OverOptimisationSweep(OverOptRun.Config).Run(run, watch);
        Assert.False(again.Cancelled);
        Assert.DoesNotContain(watch.Stages, s => s.StartsWith("cell 1/2", StringComparison.Ordinal));
        Assert.Contains(watch.Stages, s => s.StartsWith("cell 2/2", StringComparison.Ordinal));
        for (int step = 1; step <= 2; step++)
        {
            string name = Path.Combine(RunDirectory.CheckpointsFolderName, $"step-{step:D8}", OverOptimisationSweep.CellFileName);
            Assert.Equal(File.ReadAllBytes(Path.Combine(sweep.Path, name)), File.ReadAllBytes(Path.Combine(resumed, name)));
        }
        // One metrics line per cell: the interrupted cell's is never written twice.
        Assert.Equal([1L, 2L], File.ReadAllLines(Path.Combine(resumed, RunDirectory.MetricsFileName)).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("step").GetInt64()));
        Assert.Equal(File.ReadAllText(Path.Combine(sweep.Path, OverOptCommand.TableFileName)), OverOptimisationReport.Markdown(again));
    }

    private static void CopyDirectory(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (string file in Directory.GetFiles(from)) File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        foreach (string dir in Directory.GetDirectories(from)) CopyDirectory(dir, Path.Combine(to, Path.GetFileName(dir)));
    }
}
