// `rlhf demo`: the whole pipeline on built-in data. Until the pipeline is wired it says plainly which commands run each stage.
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
                rlhf demo: the pipeline it will run, stage by stage (each stage is already its own command):
                  1. pre-train a small GPT on the built-in story world          rlhf pretrain --out DIR
                  2. supervised fine-tuning on demonstrations                   rlhf sft --model DIR --out DIR
                  3. sample pairs from the SFT model and label them             (oracle, or people with rlhf label serve)
                  4. train a reward model on the comparisons                    rlhf reward train ...
                  5. PPO against the reward model under an adaptive KL penalty  rlhf ppo --policy SFT --reward RM --out DIR
                  6. evaluate: win rate with a 95% interval, KL, distinct-n     rlhf eval --policy PPO --baseline SFT --prompts FILE
                Not available yet: the one-command pipeline and its report.html; this command exits without training.
                """);
            return 0;
        });
        return command;
    }
}
