// `rlhf grpo`: group relative policy optimisation of an SFT model (GRPO, Dr. GRPO or DAPO by --variant) against a
// verifier (the built-in arithmetic task, or prompts with "answer" fields), the story world's gold scorer, or a reward
// model folder. With the verifier, held-out pass@k of the SFT model and of the trained policy is measured at the end.
using System.CommandLine;
using System.Globalization;
using RlhfSharp.Alignment;
using RlhfSharp.Alignment.Evaluation;
using RlhfSharp.Alignment.Grpo;
using RlhfSharp.Alignment.Ppo;
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Feedback;
using RlhfSharp.Models;
using RlhfSharp.Objectives;
using RlhfSharp.Runs;
using RlhfSharp.Text;
using RlhfSharp.Text.StoryWorld;

namespace RlhfSharp.Cli.Commands;

internal static class GrpoCommand
{
    public static Command Create()
    {
        var policy = new Option<string>("--policy") { Description = "SFT model folder: the initial policy and the frozen reference.", Required = true };
        var reward = new Option<string>("--reward") { Description = "verifier (exact final answer; the arithmetic task), gold (the story world's gold scorer), or a reward model folder.", DefaultValueFactory = _ => "verifier" };
        var prompts = new Option<string?>("--prompts") { Description = "Prompts JSONL ({\"prompt\"}, plus \"answer\" for the verifier); default: the built-in arithmetic training problems (verifier) or story-world prompts." };
        var variant = new Option<string>("--variant") { Description = "Defaults of grpo (DeepSeekMath), dr_grpo (no std scaling, constant-length loss) or dapo (clip-higher 0.28, dynamic sampling, token-level loss, overlong shaping, β 0); options given still win.", DefaultValueFactory = _ => "grpo" };
        variant.AcceptOnlyFromAmong("grpo", "dr_grpo", "dapo");
        var trainProblems = new Option<int>("--train-problems") { Description = "Built-in arithmetic training problems (verifier without --prompts).", DefaultValueFactory = _ => 2000 }.InRange(new(1));
        var evalProblems = new Option<int>("--eval-problems") { Description = "Held-out arithmetic problems for pass@k at the end (0: no evaluation).", DefaultValueFactory = _ => 200 }.InRange(NumericRange.NonNegative);
        var evalSamples = new Option<int>("--eval-samples") { Description = "Samples per held-out problem for pass@k (n).", DefaultValueFactory = _ => 8 }.InRange(new(1));
        var output = new Option<string>("--out") { Description = "Folder the trained policy is written to.", Required = true };
        var run = new Option<string?>("--run") { Description = "Run folder (default runs/grpo-NAME)." };
        var resume = new Option<bool>("--resume") { Description = LmTrainingOptionSet.ResumeDescription };
        var command = new Command("grpo", "Group relative policy optimisation (GRPO, Dr. GRPO, DAPO) against a verifier, the gold scorer or a reward model.");
        foreach (var o in new Option[] { policy, reward, prompts, variant, trainProblems, evalProblems, evalSamples, output, run, resume }) command.Options.Add(o);
        var settings = new ConfigOptions<GrpoConfig>(command);
        var monitorOptions = new MonitorOptions(command);
        command.SetAction(p =>
        {
            string outDir = p.GetValue(output)!, sftDir = p.GetValue(policy)!, rewardName = p.GetValue(reward)!;
            var config = settings.Build(p, presets: c => c.WithVariant(p.GetValue(variant)!));
            config = config with { GradShards = ClusterRuns.GradShards(settings, p, config.GradShards) };
            config.Validate();
            var sft = Gpt.Load(sftDir);
            var tokenizer = TokenizerFiles.Load(sftDir);

            List<string> promptList;
            IRolloutReward rolloutReward;
            Func<string, string, double>? gold = null;
            if (rewardName == "verifier")
            {
                var problems = p.GetValue(prompts) is string f ? ReadProblems(f) : ArithmeticProblems.Train(config.Seed, p.GetValue(trainProblems)).Select(x => (x.Prompt, x.Answer)).ToList();
                var answers = new Dictionary<string, int>(StringComparer.Ordinal);
                foreach (var (prompt, answer) in problems) answers[prompt] = answer;
                promptList = [.. answers.Keys];
                rolloutReward = new FunctionReward((prompt, completion) => ArithmeticProblems.Verify(completion, answers[prompt]));
            }
            else
            {
                promptList = p.GetValue(prompts) is string f ? PromptData.Read(f) : [.. Stories.Prompts(1, 2000)];
                gold = (prompt, completion) => Stories.GoldReward(completion, prompt);
                if (rewardName == "gold") rolloutReward = new FunctionReward(gold);
                else
                {
                    if (!Directory.Exists(rewardName)) throw new DirectoryNotFoundException($"--reward: {rewardName} is neither verifier, gold nor a reward model folder.");
                    var ensemble = RewardEnsemble.Load(rewardName);
                    if (ensemble.First.Tokenizer.VocabSize != tokenizer.VocabSize)
                        throw new ArgumentException($"--reward: its tokenizer has {ensemble.First.Tokenizer.VocabSize} ids, the policy's {tokenizer.VocabSize}; train the reward model from this SFT folder.");
                    rolloutReward = new RewardModelReward(ensemble, endCutResponses: true);
                }
            }

            using var runDir = ClusterRuns.Open(p, AlignCommandSupport.RunFolder(p.GetValue(run), "grpo", outDir), p.GetValue(resume));
            (promptList, var monitor) = monitorOptions.Build(p, config.Monitor, promptList, tokenizer, rolloutReward, config.MaxNewTokens, config.Temperature, RlhfSharp.Distributed.Cluster.World.IsRoot ? runDir : null, gold,
                (rolloutReward as RewardModelReward)?.Ensemble);
            var result = AlignCommandSupport.WithProgress("grpo", config.Steps, (progress, ct) =>
                new GrpoTrainer(config).Train(sft, tokenizer, promptList, rolloutReward, new GrpoTrainer.Options(Gold: gold, Run: runDir, Progress: progress, Monitor: monitor), ct));
            if (MonitorOptions.Summary(monitor) is { Length: > 0 } monitorSummary) Console.Out.WriteLine(monitorSummary);
            // Under mpirun rank 0 alone writes the outputs and the summary (every rank holds the same policy).
            if (!RlhfSharp.Distributed.Cluster.World.IsRoot) return result.Cancelled ? AlignCommandSupport.InterruptedExitCode : 0;
            if (result.Cancelled) return AlignCommandSupport.Stopped("grpo", runDir.Path, result.Steps);
            result.Policy.Save(outDir);
            tokenizer.Save(outDir);

            string summary = "";
            if (rewardName == "verifier" && p.GetValue(evalProblems) > 0)
            {
                // Held-out pass@k of the SFT model and the policy, on the same problems and sampling seed.
                var held = ArithmeticProblems.HeldOut(config.Seed, p.GetValue(evalProblems));
                int n = p.GetValue(evalSamples);
                int[] ks = n >= 4 ? [1, 4] : [1];
                PassAtKResult Eval(Gpt m) => PassAtK.Evaluate(m, tokenizer, [.. held.Select(x => x.Prompt)], (i, c) => ArithmeticProblems.Verify(c, held[i].Answer),
                    n, ks, config.MaxNewTokens, config.Temperature, seed: 1000 + config.Seed);
                var before = Eval(sft);
                var after = Eval(result.Policy);
                var metrics = new Dictionary<string, double> { ["eval/sft_pass@1"] = before.PassAt[1], [MetricKeys.EvalPassAt1] = after.PassAt[1] };
                if (ks.Length > 1)
                {
                    metrics["eval/sft_pass@4"] = before.PassAt[4];
                    metrics["eval/pass@4"] = after.PassAt[4];
                }
                runDir.Log(result.Steps, metrics);
                summary = string.Create(CultureInfo.InvariantCulture, $"held-out pass@1 {before.PassAt[1]:F3} (SFT) → {after.PassAt[1]:F3} over {held.Count} problems × {n} samples; ");
            }
            RunContract.Finish(runDir, result.Steps, outDir, MonitorOptions.StatusNote(monitor));
            var last = result.History.Count > 0 ? result.History[^1] : null;
            Console.Out.WriteLine(last is null ? $"grpo: nothing to do; policy written to {outDir}"
                : $"grpo: {summary}last batch reward {AlignCommandSupport.Format(last[MetricKeys.GrpoReward])}; policy written to {outDir} (run {runDir.Path})");
            return 0;
        });
        return command;
    }

    /// <summary>{"prompt", "answer"} lines; the answer must be an integer.</summary>
    private static List<(string Prompt, int Answer)> ReadProblems(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"--prompts: {path} does not exist.", path);
        var list = JsonlReader.Read(path, "problem file").Select(line => (line.String("prompt"), line.Int("answer"))).ToList();
        if (list.Count == 0) throw new FormatException($"{path}: no problems.");
        return list;
    }
}
