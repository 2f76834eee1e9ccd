// `rlhf report RUN`: report.html for any run folder — what ran, its headline curves and every metric (RunReport).
using System.CommandLine;
using RlhfSharp.Runs.Reports;

namespace RlhfSharp.Cli.Commands;

internal static class ReportCommand
{
    public static Command Create()
    {
        var run = new Argument<string>("RUN") { Description = "Run folder (holding config.json and metrics.jsonl)." };
        var output = new Option<string?>("--out") { Description = "HTML file to write (default RUN/report.html)." };
        var command = new Command("report", "Write report.html for a run folder: the command and configuration, KL, reward, entropy, loss and calibration curves, and every logged metric.");
        command.Arguments.Add(run);
        command.Options.Add(output);
        command.SetAction(p =>
        {
            string path = RunReport.Write(p.GetValue(run)!, p.GetValue(output));
            Console.Out.WriteLine(path);
            return 0;
        });
        return command;
    }
}
