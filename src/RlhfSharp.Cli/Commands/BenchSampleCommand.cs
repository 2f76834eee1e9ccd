// `rlhf bench sample`: KV-cached batched sampling speed of the GPT-2 124M shape (config b) at batch 16, at a short and a
// long context, to show the cost per new token stays flat as the context grows.
// The measuring is RlhfSharp.Bench's SampleBench; this file parses the options and prints.
using System.CommandLine;
using RlhfSharp.Runs;
using System.Text.Json;
using RlhfSharp.Bench;

namespace RlhfSharp.Cli.Commands;

internal static class BenchSampleCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Print one JSON object per context length (the default output is the same)." };
        var batch = new Option<int>("--batch") { Description = "Sequences sampled together.", DefaultValueFactory = _ => 16 }.InRange(new(1));
        var newTokens = new Option<int>("--new-tokens") { Description = "Tokens generated per sequence.", DefaultValueFactory = _ => 16 }.InRange(new(1));
        var context = new Option<int?>("--context") { Description = "Measure only this context length (prompt + new tokens) instead of 32 and 480." }.InRange(new(1));
        var profile = new Option<bool>("--profile") { Description = "Add a per-phase breakdown of one decode step (milliseconds per step, wall and CPU)." };
        var command = new Command("sample", "KV-cached sampling tokens/s for GPT-2 124M at batch 16, context 32 and 480.");
        command.Options.Add(json);
        command.Options.Add(batch);
        command.Options.Add(newTokens);
        command.Options.Add(context);
        command.Options.Add(profile);
        command.SetAction(parseResult =>
        {
            int B = parseResult.GetValue(batch), n = parseResult.GetValue(newTokens);
            if (B < 1) throw new ArgumentException($"--batch must be at least 1 (got {B}).");
            if (n < 1 || n >= 480) throw new ArgumentException($"--new-tokens must be in [1, 480) (got {n}).");
            var gpt = SampleBench.Model();
            int? only = parseResult.GetValue(context);
            if (only is { } c && (c <= n || c > gpt.Config.BlockSize))
                throw new ArgumentException($"--context must exceed --new-tokens ({n}) and be at most {gpt.Config.BlockSize} (got {c}).");
            foreach (int ctx in only is { } single ? [single] : new[] { 32, 480 })
                Console.Out.WriteLine(JsonSerializer.Serialize(SampleBench.Measure(gpt, B, ctx - n, n, parseResult.GetValue(profile))));
            return 0;
        });
        return command;
    }
}
