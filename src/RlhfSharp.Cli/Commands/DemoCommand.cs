// `rlhf demo`: the whole pipeline on built-in data. Until the trainers exist it says plainly what it will do.
using System.CommandLine;

namespace RlhfSharp.Cli.Commands;

internal static class DemoCommand
{
    public static Command Create()
    {
        var command = new Command("demo", "Run the whole RLHF pipeline on built-in data (pre-train, SFT, labels, reward model, PPO, report).");
        command.SetAction(_ =>
        {
            Console.WriteLine("""
                rlhf demo: the pipeline it will run, stage by stage:
                  1. pre-train a small GPT on the built-in story world
                  2. supervised fine-tuning on demonstrations
                  3. sample pairs from the SFT model and label them (oracle, or people with --human)
                  4. train a reward model on the comparisons
                  5. PPO against the reward model under an adaptive KL penalty
                  6. evaluate (win rate, KL, proxy vs gold reward) and write runs/demo/report.html
                Not available yet: only the tensor engine is built so far; this command exits without training.
                """);
            return 0;
        });
        return command;
    }
}
