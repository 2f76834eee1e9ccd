// `rlhf bench engine`: the engine's non-GEMM kernels and a 2-layer transformer stack, scalar reference vs SIMD at 1 and
// 2 threads (RlhfSharp.Bench's EngineBench), one JSON line per case as soon as it is measured.
using System.CommandLine;
using RlhfSharp.Runs;
using RlhfSharp.Bench;

namespace RlhfSharp.Cli.Commands;

internal static class BenchEngineCommand
{
    public static Command Create()
    {
        var repetitions = new Option<int>("--repetitions")
        {
            Description = "Timed runs per case and mode after a one-second warm-up per mode; the fastest is reported.",
            DefaultValueFactory = _ => 5,
        }.InRange(new(1));
        var command = new Command("engine", "Engine kernels and a 2-layer transformer stack: scalar reference vs SIMD, 1 and 2 threads (JSON lines).");
        command.Options.Add(repetitions);
        command.SetAction(parseResult =>
        {
            int reps = parseResult.GetValue(repetitions);
            if (reps < 1) throw new ArgumentException($"--repetitions must be at least 1 (got {reps}).");
            foreach (var result in EngineBench.Run(reps)) Console.Out.WriteLine(result.ToJson());
            return 0;
        });
        return command;
    }
}
