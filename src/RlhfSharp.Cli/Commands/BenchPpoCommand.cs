// `rlhf bench ppo`: PPO steps at the issue-21 shape (GPT-2 124M or medium, batch 16, minibatch 4, 24 new tokens), full
// fine-tuning or LoRA, reporting peak RSS, seconds per phase and tokens/s. The measuring is RlhfSharp.Bench's PpoBench.
using System.CommandLine;
using RlhfSharp.Runs;
using System.Text.Json;
using RlhfSharp.Bench;
using RlhfSharp.Models;

namespace RlhfSharp.Cli.Commands;

internal static class BenchPpoCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Print one JSON object (the default output is the same)." };
        var model = new Option<string>("--model") { Description = "gpt2 (124M), gpt2-medium (355M) or gpt2-large (774M), random weights, vocabulary 50257.", DefaultValueFactory = _ => "gpt2" };
        var steps = new Option<int>("--steps") { Description = "PPO steps to run (phase times are their mean).", DefaultValueFactory = _ => 1 }.InRange(new(1));
        var batch = new Option<int>("--batch-size") { Description = "Episodes per rollout batch.", DefaultValueFactory = _ => 16 }.InRange(new(1));
        var minibatch = new Option<int>("--minibatch-size") { Description = "Episodes per gradient step.", DefaultValueFactory = _ => 4 }.InRange(new(1));
        var newTokens = new Option<int>("--max-new-tokens") { Description = "Response length limit.", DefaultValueFactory = _ => 24 }.InRange(new(1));
        var promptTokens = new Option<int>("--prompt-tokens") { Description = "Prompt length in tokens.", DefaultValueFactory = _ => 32 }.InRange(new(1));
        var frozen = new Option<FrozenDtype>("--frozen-dtype") { Description = "How the reference and reward model are held: f32 or bf16 (PpoConfig.FrozenDtype).", DefaultValueFactory = _ => FrozenDtype.F32 };
        var checkpointing = new Option<bool>("--activation-checkpointing") { Description = "Recompute each block in backward instead of keeping its activations (PpoConfig.ActivationCheckpointing)." };
        var profileOption = new Option<bool>("--profile") { Description = "Also report CPU and wall seconds per step for each phase of the step and of the policy's and value model's passes." };
        var live = new Option<bool>("--measure-live") { Description = "After each step, force a full collection and report the bytes still reachable (changes the collector's timing: diagnosis only)." };
        var command = new Command("ppo", "PPO step time, phases and peak memory at the GPT-2 124M shape (or medium), full or LoRA.");
        foreach (var o in new Option[] { json, model, steps, batch, minibatch, newTokens, promptTokens, frozen, checkpointing, profileOption, live }) command.Options.Add(o);
        var lora = new ConfigOptions<LoraConfig>(command);
        command.SetAction(p =>
        {
            int n = p.GetValue(steps);
            if (n < 1) throw new ArgumentException($"--steps must be at least 1 (got {n}).");
            var options = new PpoBenchOptions(p.GetValue(model)!, n, p.GetValue(batch), p.GetValue(minibatch), p.GetValue(newTokens), p.GetValue(promptTokens), lora.Build(p), p.GetValue(frozen), p.GetValue(checkpointing), p.GetValue(profileOption), p.GetValue(live));
            Console.Out.WriteLine(JsonSerializer.Serialize(PpoBench.Measure(options)));
            return 0;
        });
        return command;
    }
}
