// `rlhf bench train`: GPT training throughput on the two shapes with MFU against the FMA peak measured in the same
// run (RlhfSharp.Bench's TrainBench), one JSON object per configuration.
using System.CommandLine;
using RlhfSharp.Runs;
using System.Text.Json;
using RlhfSharp.Bench;

namespace RlhfSharp.Cli.Commands;

internal static class BenchTrainCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Print one JSON object per configuration (the default output is the same objects, one per line)." };
        var steps = new Option<int>("--steps") { Description = "Timed training steps per configuration after one warm-up step.", DefaultValueFactory = _ => 5 }.InRange(new(1));
        var config = new Option<string?>("--config") { Description = "Measure only configuration a or b." };
        var profile = new Option<bool>("--profile") { Description = "Add a per-phase breakdown of forward and backward (milliseconds per step, wall and CPU)." };
        var checkpointing = new Option<bool>("--activation-checkpointing") { Description = "Recompute each block in backward instead of keeping its activations (Gpt.ActivationCheckpointing)." };
        var command = new Command("train", "GPT training tokens/s, GFLOP/s and MFU (against an FMA peak measured in the same run) for (a) L=4 C=256 T=128 B=8 V=4096 and (b) GPT-2 124M at B=4 T=64.");
        command.Options.Add(json);
        command.Options.Add(steps);
        command.Options.Add(config);
        command.Options.Add(profile);
        command.Options.Add(checkpointing);
        command.SetAction(parseResult =>
        {
            int n = parseResult.GetValue(steps);
            if (n < 1) throw new ArgumentException($"--steps must be at least 1 (got {n}).");
            string? only = parseResult.GetValue(config);
            if (only is not null && !TrainBench.Shapes.Any(s => s.Name == only)) throw new ArgumentException($"--config must be a or b (got '{only}').");
            foreach (var shape in TrainBench.Shapes.Where(s => only is null || s.Name == only))
                Console.Out.WriteLine(JsonSerializer.Serialize(TrainBench.Measure(shape, n, parseResult.GetValue(profile), parseResult.GetValue(checkpointing))));
            return 0;
        });
        return command;
    }
}
