// `rlhf ppo`: RLHF policy optimisation of an SFT model against a reward model (PPO with a KL leash, PPO-ptx, RLOO, or
// REINFORCE with a learned baseline by --algo reinforce; --ent-coef adds an entropy bonus).
using System.CommandLine;
using RlhfSharp.Alignment;
using RlhfSharp.Alignment.Ppo;
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Models;
using RlhfSharp.Runs;
using RlhfSharp.Text;
using RlhfSharp.Text.StoryWorld;

namespace RlhfSharp.Cli.Commands;

internal static class PpoCommand
{
    public static Command Create()
    {
        var policy = new Option<string>("--policy") { Description = "SFT model folder: the initial policy and the frozen reference.", Required = true };
        var reward = new Option<string>("--reward") { Description = "Reward model folder (from `rlhf reward train`); it also initialises the value model.", Required = true };
        var prompts = new Option<string?>("--prompts") { Description = "Prompts: JSONL with \"prompt\" or one per line (default: story-world prompts)." };
        var output = new Option<string>("--out") { Description = "Folder the trained policy is written to.", Required = true };
        var fixedBeta = new Option<bool>("--fixed-beta") { Description = "Keep β fixed (no adaptive controller): sets target to null." };
        var rloo = new Option<bool>("--rloo") { Description = "REINFORCE with a leave-one-out baseline instead of PPO (no value model): sets algorithm to rloo." };
        var ptxCorpus = new Option<string?>("--ptx-corpus") { Description = "PPO-ptx: a text file of pre-training documents (one per line)." };
        var run = new Option<string?>("--run") { Description = "Run folder (default runs/ppo-NAME)." };
        var resume = new Option<bool>("--resume") { Description = LmTrainingOptionSet.ResumeDescription };
        var command = new Command("ppo", "Optimise a policy against a reward model with PPO under a KL penalty (or RLOO).");
        var dtype = AlignCommandSupport.DtypeOption();
        foreach (var o in new Option[] { policy, reward, prompts, output, fixedBeta, rloo, ptxCorpus, run, resume, dtype })
            command.Options.Add(o);
        var settings = new ConfigOptions<PpoConfig>(command);
        var monitorOptions = new MonitorOptions(command);
        command.SetAction(p =>
        {
            string outDir = p.GetValue(output)!, sftDir = p.GetValue(policy)!;
            var config = settings.Build(p);
            if (p.GetValue(rloo)) config = config with { Algorithm = PolicyAlgorithm.Rloo };
            if (p.GetValue(fixedBeta)) config = config with { TargetKl = null };
            config = config with { GradShards = ClusterRuns.GradShards(settings, p, config.GradShards) };
            config.Validate();
            var sft = Gpt.Load(sftDir);
            var tokenizer = TokenizerFiles.Load(sftDir);
            var promptList = p.GetValue(prompts) is string f ? PromptData.Read(f, ChatTemplate.For(tokenizer)) : Stories.Prompts(1, 2000).ToList();
            var ensemble = RewardEnsemble.Load(p.GetValue(reward)!);
            if (ensemble.First.Tokenizer.VocabSize != tokenizer.VocabSize)
                throw new ArgumentException($"--reward: its tokenizer has {ensemble.First.Tokenizer.VocabSize} ids, the policy's {tokenizer.VocabSize}; train the reward model from this SFT folder.");
            List<int[]>? ptxRows = null;
            if (p.GetValue(ptxCorpus) is string corpus)
            {
                if (!File.Exists(corpus)) throw new FileNotFoundException($"--ptx-corpus: {corpus} does not exist.", corpus);
                ptxRows = Utf8TextFile.ReadLines(corpus).Select(l => l.Text).Where(l => l.Trim().Length > 0).Select(l => tokenizer.Encode(l)).Where(r => r.Length >= 2).ToList();
            }
            // A resumed run replays the command line it was started with (RunContract), so the config is the same.
            using var runDir = ClusterRuns.Open(p, AlignCommandSupport.RunFolder(p.GetValue(run), "ppo", outDir), p.GetValue(resume));
            var proxy = new RewardModelReward(ensemble);
            (promptList, var monitor) = monitorOptions.Build(p, config.Monitor, promptList, tokenizer, proxy, config.MaxNewTokens, config.Temperature, RlhfSharp.Distributed.Cluster.World.IsRoot ? runDir : null, ensemble: ensemble);
            var result = AlignCommandSupport.WithProgress(config.Algorithm.ToString().ToLowerInvariant(), config.Steps, (progress, ct) =>
                new PpoTrainer(config).Train(sft, tokenizer, promptList, proxy, ensemble,
                    new PpoTrainer.Options(PretrainRows: ptxRows, Run: runDir, Progress: progress, Monitor: monitor), ct));
            if (MonitorOptions.Summary(monitor) is { Length: > 0 } monitorSummary) Console.Out.WriteLine(monitorSummary);
            // Under mpirun rank 0 alone writes the outputs and the summary (every rank holds the same policy).
            if (!RlhfSharp.Distributed.Cluster.World.IsRoot) return result.Cancelled ? AlignCommandSupport.InterruptedExitCode : 0;
            if (result.Cancelled) return AlignCommandSupport.Stopped("ppo", runDir.Path, result.Steps);
            result.Policy.Save(outDir, dtype: p.GetValue(dtype));
            tokenizer.Save(outDir);
            RunContract.Finish(runDir, result.Steps, outDir, MonitorOptions.StatusNote(monitor));
            var last = result.History.Count > 0 ? result.History[^1] : null;
            Console.Out.WriteLine(last is null ? $"ppo: nothing to do; policy written to {outDir}"
                : $"ppo: score {AlignCommandSupport.Format(last[MetricKeys.Scores])}, KL {AlignCommandSupport.Format(last[MetricKeys.Kl])} (k3 {AlignCommandSupport.Format(last[MetricKeys.KlK3])}), β {AlignCommandSupport.Format(last[MetricKeys.KlCoef])}; policy written to {outDir} (run {runDir.Path}){Traffic(result.History.Count)}");
            return 0;
        });
        return command;
    }

    /// <summary>Under mpirun: what rank 0 sent per step (rollouts, scores and gradient sums), for docs/distributed.md's table.</summary>
    private static string Traffic(int steps)
    {
        var world = RlhfSharp.Distributed.Cluster.World;
        return world.Size == 1 || steps == 0 ? "" : FormattableString.Invariant($"; {world.Size} ranks, rank 0 sent {world.BytesSent / steps:N0} bytes per step");
    }
}
