// `rlhf bench ...`: speed measurements printed as JSON; whatever one compares with (a peer, a scalar reference, the FMA
// peak) is measured in the same process, never a figure from another machine.
using System.CommandLine;

namespace RlhfSharp.Cli.Commands;

internal static class BenchCommand
{
    public static Command Create()
    {
        var command = new Command("bench", "Measure the speed of kernels and trainers (JSON output).");
        command.Subcommands.Add(BenchGemmCommand.Create());
        command.Subcommands.Add(BenchEngineCommand.Create());
        command.Subcommands.Add(BenchTokenizerCommand.Create());
        command.Subcommands.Add(BenchTrainCommand.Create());
        command.Subcommands.Add(BenchSampleCommand.Create());
        command.Subcommands.Add(BenchStoreCommand.Create());
        command.Subcommands.Add(BenchPpoCommand.Create());
        return command;
    }
}
