// `rlhf overopt`: Gao, Schulman & Hilton (2022)'s reward-model over-optimisation sweep on the story world
// (OverOptimisationSweep): proxy RM sizes × comparison counts × seeds, best-of-n and PPO against each proxy, the fitted
// α and β with bootstrap intervals, the paper's claims checked, table.md and report.html in the run folder.
using System.CommandLine;
using RlhfSharp.Alignment.Evaluation;
using RlhfSharp.Runs;

namespace RlhfSharp.Cli.Commands;

internal static class OverOptCommand
{
    public const string TableFileName = "table.md", ResultFileName = "overopt.json";

    public static Command Create()
    {
        var run = new Option<string?>("--run") { Description = "Run folder: config.json, metrics.jsonl (one line per finished cell), a checkpoint per cell, base/ (shared models and data), table.md, overopt.json, report.html (default runs/overopt)." };
        var resume = new Option<bool>("--resume") { Description = "Continue the sweep in --run: finished cells are kept, an interrupted cell starts over." };
        var command = new Command("overopt",
            "Reward-model over-optimisation (Gao et al. 2022) on the story world: fit gold = d(α − βd) for best-of-n and d(α − β log d) for PPO, d = √KL, " +
            "over proxy reward-model sizes × comparison counts × seeds; α, β with 95% bootstrap intervals, the paper's claims checked, report.html.");
        command.Options.Add(run);
        command.Options.Add(resume);
        var settings = new ConfigOptions<OverOptimisationConfig>(command);
        command.SetAction(p =>
        {
            var config = settings.Build(p);
            config.Validate();
            using var runDir = RunContract.Open(p, p.GetValue(run) ?? Path.Combine("runs", "overopt"), p.GetValue(resume));
            OverOptimisationResult result;
            try
            {
                result = AlignCommandSupport.WithProgress("overopt", config.Cells().Count, (progress, ct) => new OverOptimisationSweep(config).Run(runDir, progress, ct));
            }
            catch (OperationCanceledException)
            {
                // Stopped in the shared stages (pre-training, SFT, labels, pool): the finished ones are kept in base/.
                Console.Error.WriteLine($"overopt: stopped before the first cell; finished shared stages are kept in {Path.Combine(runDir.Path, OverOptimisationSweep.BaseFolder)} (continue with `rlhf overopt --resume --run {runDir.Path}`).");
                return AlignCommandSupport.InterruptedExitCode;
            }
            // A stopped sweep still writes the table and report of its finished cells (marked partial), then exits as interrupted.
            string table = OverOptimisationReport.Markdown(result);
            string report = Path.Combine(runDir.Path, "report.html");
            if (result.Cells.Count > 0)
            {
                AtomicFile.WriteAllText(Path.Combine(runDir.Path, TableFileName), table);
                AtomicFile.WriteAllText(Path.Combine(runDir.Path, ResultFileName), System.Text.Json.JsonSerializer.Serialize(result, OverOptimisationSweep.JsonOptions));
                OverOptimisationReport.Write(report, result, config);
            }
            if (result.Cancelled)
            {
                Console.Error.WriteLine($"overopt: stopped after {result.Cells.Count} of {config.Cells().Count} cells{(result.Cells.Count > 0 ? $" (table and report of those in {runDir.Path})" : "")}; " +
                    $"continue with `rlhf overopt --resume --run {runDir.Path}`.");
                return AlignCommandSupport.InterruptedExitCode;
            }
            runDir.MarkFinished(result.Cells.Count, report);
            Console.Out.Write(table);
            Console.Error.WriteLine($"overopt: report in {report}");
            return 0;
        });
        return command;
    }
}
