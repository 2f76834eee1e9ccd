// `rlhf rft`: expert iteration / rejection-sampling fine-tuning (Alignment/Sampling/ExpertIteration) of an SFT model. Each
// round samples N completions per prompt, keeps the best by the selector — a reward model folder (--reward), a pairwise
// AI judge at a URL in a knockout (--judge), the arithmetic verifier (--verifier arithmetic; only passing samples are kept,
// r_min = 1 unless --min-reward says otherwise) or the gold scorer (--gold: the story world's, or VADER's with
// --lexicon) — fine-tunes on everything kept so far, and evaluates on held-out prompts: gold (with the verifier: pass@1
// of one sample at the sampling temperature), KL k1 from the SFT model, distinct-1/2, and a collapse warning when
// diversity falls under --collapse-fraction of round 0's. A checkpoint after every round; --resume continues from the
// last finished round with the same bits. Not data-parallel: under mpirun it refuses (ClusterRuns).
using System.CommandLine;
using System.Globalization;
using RlhfSharp.Alignment;
using RlhfSharp.Alignment.Evaluation;
using RlhfSharp.Alignment.Ppo;
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Alignment.Sampling;
using RlhfSharp.Feedback;
using RlhfSharp.Models;
using RlhfSharp.Runs;
using RlhfSharp.Text;
using RlhfSharp.Text.StoryWorld;
using Spectre.Console;

namespace RlhfSharp.Cli.Commands;

internal static class RftCommand
{
    /// <summary>The story world's held-out prompt stream (the one `rlhf compare` evaluates on).</summary>
    private const ulong HeldOutSeed = 0x4E1D_0C7UL;

    public static Command Create()
    {
        var policy = new Option<string>("--policy") { Description = "SFT model folder: the initial policy and the KL reference.", Required = true };
        var reward = new Option<string?>("--reward") { Description = "Select by this reward model folder's score." };
        var judge = new Option<string?>("--judge") { Description = "Select by a pairwise AI judge at this OpenAI-compatible API root (…/v1): a knockout over each prompt's N samples." };
        var judgeModel = new Option<string>("--judge-model") { Description = "Model name sent to the AI judge.", DefaultValueFactory = _ => "judge" };
        var apiKeyEnv = new Option<string?>("--api-key-env") { Description = "Environment variable holding the AI judge's API key (none by default, for local servers)." };
        var verifier = new Option<string?>("--verifier") { Description = "Select by a verifier: arithmetic (exact final answer); keeps only passing samples." };
        verifier.AcceptOnlyFromAmong("arithmetic");
        var gold = new Option<bool>("--gold") { Description = "Select by the gold scorer (the story world's, or VADER's with --lexicon)." };
        var lexicon = new Option<string?>("--lexicon") { Description = "VADER lexicon file: the gold scorer is VADER compound sentiment instead of the story world's." };
        var prompts = new Option<string?>("--prompts") { Description = "Training prompts JSONL ({\"prompt\"}, plus \"answer\" for the verifier); default: built-in arithmetic training problems or story-world prompts." };
        var heldOut = new Option<string?>("--held-out") { Description = "Held-out prompts JSONL (same form); default: built-in held-out arithmetic problems or story-world prompts." };
        var trainProblems = new Option<int>("--train-problems") { Description = "Built-in training prompts (without --prompts).", DefaultValueFactory = _ => 2000 }.InRange(new(1));
        var heldOutCount = new Option<int>("--held-out-prompts") { Description = "Built-in held-out prompts (without --held-out); 0: no evaluation.", DefaultValueFactory = _ => 64 }.InRange(NumericRange.NonNegative);
        var output = new Option<string>("--out") { Description = "Folder the trained policy is written to.", Required = true };
        var run = new Option<string?>("--run") { Description = "Run folder (default runs/rft-NAME)." };
        var resume = new Option<bool>("--resume") { Description = LmTrainingOptionSet.ResumeDescription };
        var command = new Command("rft", "Expert iteration / rejection-sampling fine-tuning: sample N, keep the best (or the verified), fine-tune, R rounds.");
        foreach (var o in new Option[] { policy, reward, judge, judgeModel, apiKeyEnv, verifier, gold, lexicon, prompts, heldOut, trainProblems, heldOutCount, output, run, resume })
            command.Options.Add(o);
        var settings = new ConfigOptions<ExpertIterationConfig>(command);
        command.SetAction(p =>
        {
            string outDir = p.GetValue(output)!, sftDir = p.GetValue(policy)!;
            string? rewardDir = p.GetValue(reward), judgeUrl = p.GetValue(judge), verifierName = p.GetValue(verifier);
            bool useGold = p.GetValue(gold);
            int selectors = (rewardDir is null ? 0 : 1) + (judgeUrl is null ? 0 : 1) + (verifierName is null ? 0 : 1) + (useGold ? 1 : 0);
            if (selectors != 1)
                throw new ArgumentException($"rft: name exactly one selector: --reward RM, --judge URL, --verifier arithmetic or --gold (got {selectors}).");
            var config = settings.Build(p);
            // 4. With a verifier only passing samples are kept, unless --min-reward says otherwise.
            if (verifierName is not null && !settings.IsSet(p, nameof(ExpertIterationConfig.MinReward))) config = config with { MinReward = 1 };
            config.Validate();
            var sft = Gpt.Load(sftDir);
            var tokenizer = TokenizerFiles.Load(sftDir);

            List<string> promptList, heldOutList;
            Func<string, string, double> goldScorer;
            IRolloutReward selector;
            if (verifierName is not null)
            {
                var train = p.GetValue(prompts) is string f ? ReadProblems(f, "--prompts") : ArithmeticProblems.Train(config.Seed, p.GetValue(trainProblems)).Select(x => (x.Prompt, x.Answer)).ToList();
                var held = p.GetValue(heldOut) is string h ? ReadProblems(h, "--held-out") : ArithmeticProblems.HeldOut(HeldOutSeed, p.GetValue(heldOutCount)).Select(x => (x.Prompt, x.Answer)).ToList();
                var answers = new Dictionary<string, int>(StringComparer.Ordinal);
                foreach (var (prompt, answer) in train.Concat(held)) answers[prompt] = answer;
                promptList = [.. train.Select(x => x.Prompt).Distinct(StringComparer.Ordinal)];
                heldOutList = [.. held.Select(x => x.Prompt)];
                goldScorer = (prompt, completion) => ArithmeticProblems.Verify(completion, answers[prompt]);
                selector = new FunctionReward(goldScorer);
            }
            else
            {
                promptList = p.GetValue(prompts) is string f ? PromptData.Read(f) : [.. Stories.Prompts(1, p.GetValue(trainProblems))];
                heldOutList = p.GetValue(heldOut) is string h ? PromptData.Read(h) : [.. Stories.Prompts(HeldOutSeed, p.GetValue(heldOutCount))];
                goldScorer = EvaluationJudges.GoldScorer(p.GetValue(lexicon));
                if (useGold) selector = new FunctionReward(goldScorer);
                else if (judgeUrl is not null)
                {
                    if (!Uri.TryCreate(judgeUrl, UriKind.Absolute, out var u) || (u.Scheme != "http" && u.Scheme != "https"))
                        throw new ArgumentException($"--judge: expected the http(s) URL of an API root; got \"{judgeUrl}\".");
                    selector = new JudgeKnockoutReward(EvaluationJudges.Create(judgeUrl, goldScorer, config.Seed, p.GetValue(judgeModel)!, p.GetValue(apiKeyEnv)), config.SamplesPerPrompt);
                }
                else
                {
                    if (!Directory.Exists(rewardDir)) throw new DirectoryNotFoundException($"--reward: {rewardDir} is not a reward model folder.");
                    var ensemble = RewardEnsemble.Load(rewardDir!);
                    if (ensemble.First.Tokenizer.VocabSize != tokenizer.VocabSize)
                        throw new ArgumentException($"--reward: its tokenizer has {ensemble.First.Tokenizer.VocabSize} ids, the policy's {tokenizer.VocabSize}; train the reward model from this SFT folder.");
                    selector = new RewardModelReward(ensemble, endCutResponses: true);
                }
            }
            if (promptList.Count == 0) throw new ArgumentException("rft: no training prompts.");

            using var runDir = ClusterRuns.Open(p, AlignCommandSupport.RunFolder(p.GetValue(run), "rft", outDir), p.GetValue(resume));
            var warnings = new List<string>();
            var result = AlignCommandSupport.WithProgress("rft", config.Rounds, (console, progress, ct) =>
                new ExpertIteration(config).Train(sft, tokenizer, promptList, selector, new ExpertIteration.Options(runDir, heldOutList, goldScorer,
                    EvalSeed: 1000 + config.Seed, Progress: progress, Warn: w =>
                    {
                        warnings.Add(w);
                        console.MarkupLine(Markup.Escape("rlhf: warning: " + w));
                    }), ct));
            if (result.Cancelled) return AlignCommandSupport.Stopped("rft", runDir.Path, result.Rounds);
            result.Policy.Save(outDir);
            tokenizer.Save(outDir);
            RunContract.Finish(runDir, result.Rounds, outDir, warnings.Count > 0 ? $"{warnings.Count} collapse warning(s); the last: {warnings[^1]}" : null);

            // The per-round table from the run's whole history (a resumed run's earlier rounds included).
            Console.Out.WriteLine(Table(RoundsOf(runDir.Path), verifierName is not null));
            Console.Out.WriteLine($"rft: {result.Rounds} rounds; policy written to {outDir} (run {runDir.Path})");
            return 0;
        });
        return command;
    }

    /// <summary>metrics.jsonl's rows by step (round; 0 is the SFT model), the last record of a step winning.</summary>
    private static SortedDictionary<long, Dictionary<string, double>> RoundsOf(string runPath)
    {
        var rounds = new SortedDictionary<long, Dictionary<string, double>>();
        foreach (var record in MetricsWriter.ReadAll(Path.Combine(runPath, RunDirectory.MetricsFileName)))
        {
            if (!rounds.TryGetValue(record.Step, out var row)) rounds[record.Step] = row = [];
            foreach (var (k, v) in record.Values) row[k] = v;
        }
        return rounds;
    }

    private static string Table(SortedDictionary<long, Dictionary<string, double>> rounds, bool verifier)
    {
        // |x| < 0.0005 prints as 0.000, not -0.000 (round 0's k1: cached and uncached log-probabilities differ in the last bits).
        string F(Dictionary<string, double> row, string key) => row.TryGetValue(key, out double v) && !double.IsNaN(v)
            ? (Math.Abs(v) < 5e-4 ? 0 : v).ToString("F3", CultureInfo.InvariantCulture) : "–";
        var lines = new List<string>
        {
            $"| round | kept | {(verifier ? "held-out pass@1" : "held-out gold")} | KL k1 (nats) | distinct-1 | distinct-2 | collapse |",
            "|---|---|---|---|---|---|---|",
        };
        foreach (var (round, row) in rounds)
            lines.Add($"| {round} | {(row.TryGetValue("rft/kept", out double k) ? k.ToString(CultureInfo.InvariantCulture) : "–")} | {F(row, ExpertIteration.GoldKey)} | {F(row, MetricKeys.Kl)} | "
                + $"{F(row, ExpertIteration.Distinct1Key)} | {F(row, ExpertIteration.Distinct2Key)} | {(row.TryGetValue(ExpertIteration.CollapseKey, out double c) && c > 0 ? "warning" : "")} |");
        return string.Join('\n', lines);
    }

    /// <summary>{"prompt", "answer"} lines; the answer must be an integer.</summary>
    private static List<(string Prompt, int Answer)> ReadProblems(string path, string option)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{option}: {path} does not exist.", path);
        var list = JsonlReader.Read(path, "problem file").Select(line => (line.String("prompt"), line.Int("answer"))).ToList();
        if (list.Count == 0) throw new FormatException($"{path}: no problems.");
        return list;
    }
}
