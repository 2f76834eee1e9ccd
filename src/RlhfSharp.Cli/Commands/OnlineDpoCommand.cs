// `rlhf online-dpo`: DPO on fresh pairs — two samples per prompt from the policy, ordered by a reward model or the story
// world's gold scorer, then a DPO step (TRL's OnlineDPOTrainer).
using System.CommandLine;
using RlhfSharp.Alignment;
using RlhfSharp.Alignment.Dpo;
using RlhfSharp.Alignment.Ppo;
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Models;
using RlhfSharp.Runs;
using RlhfSharp.Text;
using RlhfSharp.Text.StoryWorld;

namespace RlhfSharp.Cli.Commands;

internal static class OnlineDpoCommand
{
    public static Command Create()
    {
        var policy = new Option<string>("--policy") { Description = "SFT model folder: the initial policy and the frozen reference.", Required = true };
        var judge = new Option<string>("--judge") { Description = "gold (the story world's gold scorer) or a reward model folder.", DefaultValueFactory = _ => "gold" };
        var prompts = new Option<string?>("--prompts") { Description = "Prompts: JSONL with \"prompt\" or one per line (default: story-world prompts)." };
        var output = new Option<string>("--out") { Description = "Folder the trained policy is written to.", Required = true };
        var run = new Option<string?>("--run") { Description = "Run folder (default runs/online-dpo-NAME)." };
        var resume = new Option<bool>("--resume") { Description = LmTrainingOptionSet.ResumeDescription };
        var command = new Command("online-dpo", "Online DPO: two fresh samples per prompt judged by a reward model or the gold scorer, then a DPO step.");
        foreach (var o in new Option[] { policy, judge, prompts, output, run, resume }) command.Options.Add(o);
        var settings = new ConfigOptions<OnlineDpoConfig>(command);
        var monitorOptions = new MonitorOptions(command);
        command.SetAction(p =>
        {
            string outDir = p.GetValue(output)!, sftDir = p.GetValue(policy)!, judgeName = p.GetValue(judge)!;
            var config = settings.Build(p);
            config = config with { GradShards = ClusterRuns.GradShards(settings, p, config.GradShards) };
            config.Validate();
            var promptList = p.GetValue(prompts) is string f ? PromptData.Read(f) : [.. Stories.Prompts(1, 2000)];
            var sft = Gpt.Load(sftDir);
            var tokenizer = TokenizerFiles.Load(sftDir);
            Func<string, string, double> gold = (prompt, completion) => Stories.GoldReward(completion, prompt);
            IRolloutReward reward;
            if (judgeName == "gold") reward = new FunctionReward(gold);
            else
            {
                if (!Directory.Exists(judgeName)) throw new DirectoryNotFoundException($"--judge: {judgeName} is neither gold nor a reward model folder.");
                var ensemble = RewardEnsemble.Load(judgeName);
                if (ensemble.First.Tokenizer.VocabSize != tokenizer.VocabSize)
                    throw new ArgumentException($"--judge: its tokenizer has {ensemble.First.Tokenizer.VocabSize} ids, the policy's {tokenizer.VocabSize}; train the reward model from this SFT folder.");
                reward = new RewardModelReward(ensemble, endCutResponses: true);
            }
            using var runDir = ClusterRuns.Open(p, AlignCommandSupport.RunFolder(p.GetValue(run), "online-dpo", outDir), p.GetValue(resume));
            (promptList, var monitor) = monitorOptions.Build(p, config.Monitor, promptList, tokenizer, reward, config.MaxNewTokens, config.Temperature, RlhfSharp.Distributed.Cluster.World.IsRoot ? runDir : null, gold,
                (reward as RewardModelReward)?.Ensemble);
            var result = AlignCommandSupport.WithProgress("online-dpo", config.Steps, (progress, ct) =>
                new OnlineDpoTrainer(config).Train(sft, tokenizer, promptList, reward, new OnlineDpoTrainer.Options(Gold: gold, Run: runDir, Progress: progress, Monitor: monitor), ct));
            if (MonitorOptions.Summary(monitor) is { Length: > 0 } monitorSummary) Console.Out.WriteLine(monitorSummary);
            // Under mpirun rank 0 alone writes the outputs and the summary (every rank holds the same policy).
            if (!RlhfSharp.Distributed.Cluster.World.IsRoot) return result.Cancelled ? AlignCommandSupport.InterruptedExitCode : 0;
            if (result.Cancelled) return AlignCommandSupport.Stopped("online-dpo", runDir.Path, result.Steps);
            result.Policy.Save(outDir);
            tokenizer.Save(outDir);
            RunContract.Finish(runDir, result.Steps, outDir, MonitorOptions.StatusNote(monitor));
            var last = result.History.Count > 0 ? result.History[^1] : null;
            Console.Out.WriteLine(last is null ? $"online-dpo: nothing to do; policy written to {outDir}"
                : $"online-dpo: last batch score {AlignCommandSupport.Format(last[MetricKeys.Scores])}, KL {AlignCommandSupport.Format(last[MetricKeys.Kl])}; policy written to {outDir} (run {runDir.Path})");
            return 0;
        });
        return command;
    }
}
