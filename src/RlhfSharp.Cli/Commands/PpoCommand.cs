// `rlhf ppo`: RLHF policy optimisation of an SFT model against a reward model (PPO with a KL leash, PPO-ptx, RLOO, or
// REINFORCE with a learned baseline by --algo reinforce; --ent-coef adds an entropy bonus), or RL on a metric: with
// --reward-metric bleu|chrf the reward is the response's sentence BLEU or chrF (÷ 100) against the "reference" of its
// prompt, and the value model is the SFT trunk with a fresh head (as TRL builds it when there is no reward model).
using System.CommandLine;
using RlhfSharp.Alignment;
using RlhfSharp.Alignment.LanguageModeling;
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
        var reward = new Option<string?>("--reward") { Description = "Reward model folder (from `rlhf reward train`); it also initialises the value model. Or give --reward-metric." };
        var rewardMetric = new Option<string?>("--reward-metric") { Description = "RL on a metric instead of a reward model: bleu (sentence BLEU, sacreBLEU's exp smoothing) or chrf (chrF2) of each response against its prompt's \"reference\" in --prompts, ÷ 100." };
        rewardMetric.AcceptOnlyFromAmong("bleu", "chrf");
        var prompts = new Option<string?>("--prompts") { Description = "Prompts: JSONL with \"prompt\" (and \"reference\" for --reward-metric) or one per line (default: story-world prompts)." };
        var output = new Option<string>("--out") { Description = "Folder the trained policy is written to.", Required = true };
        var fixedBeta = new Option<bool>("--fixed-beta") { Description = "Keep β fixed (no adaptive controller): sets target to null." };
        var rloo = new Option<bool>("--rloo") { Description = "REINFORCE with a leave-one-out baseline instead of PPO (no value model): sets algorithm to rloo." };
        var ptxCorpus = new Option<string?>("--ptx-corpus") { Description = "PPO-ptx: a text file of pre-training documents (one per line), or a .jsonl file of {\"prompt\",\"completion\"} pairs (each row prompt ++ completion ++ EOS: the MLE term of a mixed ML + RL objective)." };
        var run = new Option<string?>("--run") { Description = "Run folder (default runs/ppo-NAME)." };
        var resume = new Option<bool>("--resume") { Description = LmTrainingOptionSet.ResumeDescription };
        var command = new Command("ppo", "Optimise a policy against a reward model, or a metric against references, with PPO under a KL penalty (or RLOO, REINFORCE).");
        var dtype = AlignCommandSupport.DtypeOption();
        foreach (var o in new Option[] { policy, reward, rewardMetric, prompts, output, fixedBeta, rloo, ptxCorpus, run, resume, dtype })
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
            string? rewardDir = p.GetValue(reward), metricName = p.GetValue(rewardMetric);
            if ((rewardDir is null) == (metricName is null))
                throw new ArgumentException(rewardDir is null
                    ? "ppo: name the reward: --reward RM (a reward model folder) or --reward-metric bleu|chrf (with a \"reference\" column in --prompts)."
                    : "ppo: --reward and --reward-metric are exclusive: give a reward model folder or a metric, not both.");
            if (metricName is not null && p.GetValue(prompts) is null)
                throw new ArgumentException("ppo: --reward-metric needs --prompts, a JSONL file whose rows carry \"prompt\" and \"reference\" (e.g. from `rlhf mt data`).");
            var sft = Gpt.Load(sftDir);
            var tokenizer = TokenizerFiles.Load(sftDir);
            List<string> promptList;
            RewardEnsemble? ensemble = null;
            IRolloutReward proxy;
            List<(string, Func<string, string, double>)>? logged = null;
            if (metricName is not null)
            {
                var rows = PromptData.ReadWithReferences(p.GetValue(prompts)!, ChatTemplate.For(tokenizer));
                promptList = [.. rows.Select(r => r.Prompt)];
                var references = rows.ToDictionary(r => r.Prompt, r => (IReadOnlyList<string>)r.References, StringComparer.Ordinal);
                var metric = new ReferenceMetricReward(metricName == "bleu" ? TranslationMetric.Bleu : TranslationMetric.Chrf, references);
                proxy = metric;
                // Both metrics logged per step on their 0–100 scale, whichever is trained on.
                logged = [.. new[] { TranslationMetric.Bleu, TranslationMetric.Chrf }.Select(m =>
                    ($"objective/{m.ToString().ToLowerInvariant()}", (Func<string, string, double>)((prompt, response) => ReferenceMetricReward.Sentence(m, response, metric.References(prompt)))))];
            }
            else
            {
                promptList = p.GetValue(prompts) is string f ? PromptData.Read(f, ChatTemplate.For(tokenizer)) : Stories.Prompts(1, 2000).ToList();
                ensemble = RewardEnsemble.Load(rewardDir!);
                if (ensemble.First.Tokenizer.VocabSize != tokenizer.VocabSize)
                    throw new ArgumentException($"--reward: its tokenizer has {ensemble.First.Tokenizer.VocabSize} ids, the policy's {tokenizer.VocabSize}; train the reward model from this SFT folder.");
                proxy = new RewardModelReward(ensemble);
            }
            List<int[]>? ptxRows = null;
            if (p.GetValue(ptxCorpus) is string corpus)
            {
                if (!File.Exists(corpus)) throw new FileNotFoundException($"--ptx-corpus: {corpus} does not exist.", corpus);
                // SFT pairs make PPO-ptx the mixed objective of GNMT (Wu et al. 2016): RL on the metric plus the log-likelihood
                // of the demonstrations, which holds the policy near the MLE solution the metric alone can wander from.
                ptxRows = corpus.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase)
                    ? [.. SftData.ReadJsonl(corpus, ChatTemplate.For(tokenizer)).Select(e => TokenRows.Encode(tokenizer, e.Prompt, e.Completion, sft.Config.BlockSize, appendEos: true, e.Templated).Tokens)]
                    : Utf8TextFile.ReadLines(corpus).Select(l => l.Text).Where(l => l.Trim().Length > 0).Select(l => tokenizer.Encode(l)).Where(r => r.Length >= 2).ToList();
            }
            // A resumed run replays the command line it was started with (RunContract), so the config is the same.
            using var runDir = ClusterRuns.Open(p, AlignCommandSupport.RunFolder(p.GetValue(run), "ppo", outDir), p.GetValue(resume));
            (promptList, var monitor) = monitorOptions.Build(p, config.Monitor, promptList, tokenizer, proxy, config.MaxNewTokens, config.Temperature, RlhfSharp.Distributed.Cluster.World.IsRoot ? runDir : null, ensemble: ensemble);
            var result = AlignCommandSupport.WithProgress(config.Algorithm.ToString().ToLowerInvariant(), config.Steps, (progress, ct) =>
                new PpoTrainer(config).Train(sft, tokenizer, promptList, proxy, ensemble,
                    new PpoTrainer.Options(PretrainRows: ptxRows, Run: runDir, Progress: progress, Monitor: monitor, Logged: logged), ct));
            if (MonitorOptions.Summary(monitor) is { Length: > 0 } monitorSummary) Console.Out.WriteLine(monitorSummary);
            // Under mpirun rank 0 alone writes the outputs and the summary (every rank holds the same policy).
            if (!RlhfSharp.Distributed.Cluster.World.IsRoot) return result.Cancelled ? AlignCommandSupport.InterruptedExitCode : 0;
            if (result.Cancelled) return AlignCommandSupport.Stopped("ppo", runDir.Path, result.Steps);
            result.Policy.Save(outDir, dtype: p.GetValue(dtype));
            tokenizer.Save(outDir);
            RunContract.Finish(runDir, result.Steps, outDir, MonitorOptions.StatusNote(monitor));
            var last = result.History.Count > 0 ? result.History[^1] : null;
            string metricNote = metricName is not null && last is not null ? $" ({metricName} {AlignCommandSupport.Format(last[$"objective/{metricName}"])})" : "";
            Console.Out.WriteLine(last is null ? $"ppo: nothing to do; policy written to {outDir}"
                : $"ppo: score {AlignCommandSupport.Format(last[MetricKeys.Scores])}{metricNote}, KL {AlignCommandSupport.Format(last[MetricKeys.Kl])} (k3 {AlignCommandSupport.Format(last[MetricKeys.KlK3])}), β {AlignCommandSupport.Format(last[MetricKeys.KlCoef])}; policy written to {outDir} (run {runDir.Path}){Traffic(result.History.Count)}");
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
