// `rlhf rlaif` (issue 19 part 2): how far AI labels stand in for people. Per seed, from one SFT model on a demo task:
//   1. pairs         n + N training prompts, two SFT samples each, labelled by the task's oracle (Bradley–Terry over gold,
//                    as `rlhf demo` labels); and M held-out pairs ordered by gold (equal scores left out) for RM accuracy
//   2. judge         the SFT model fine-tuned into a pairwise judge on the first n oracle labels (JudgeTrainer: both orders,
//                    AiJudge's question, verdict "1"/"2")
//   3. judge-labels  the judge asked about the N pairs in both orders in-process with `label judge`'s question and parse
//                    (JudgeEvaluator.Verdicts: AiJudge.UserMessage, greedy, AiJudge.ParseVerdict) and its rule
//                    (AiJudge.PairVerdict: votes of the two orders summed, 0 → tie, which carries no preference; an answer
//                    not understood → skip); agreement with the oracle's labels of the same N pairs and position flips
//   4–6. ppo-C, per condition C  (a) judge: the N judge labels, (b) oracle: the N oracle labels, (c) oracle-n: the n labels the judge
//                    was trained on — a reward model from the SFT model (same epochs, rate, seed), its accuracy on the M
//                    gold-ordered pairs, PPO against it with the demo's adaptive β (same steps, batch, seed, prompts), and
//                    the policy against SFT on held-out prompts, judged by gold (win rate with Wilson's interval, KL k1)
// Every stage writes its result into RUN/seedS/STAGE and is recorded in RUN/seedS/stages.json; a resumed run loads finished
// stages and reruns an interrupted one from its start (every stage is a pure function of the seed and the settings).
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;
using RlhfSharp.Alignment.Demo;
using RlhfSharp.Alignment.Evaluation;
using RlhfSharp.Alignment.Judging;
using RlhfSharp.Alignment.LanguageModeling;
using RlhfSharp.Alignment.Ppo;
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Feedback;
using RlhfSharp.Feedback.Labelers;
using RlhfSharp.Models;
using RlhfSharp.Runs;
using RlhfSharp.Tensors;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment.Rlaif;

/// <summary>One sampled comparison: two SFT responses, their gold rewards and the oracle's label (0: A preferred, 1: B, null: none).</summary>
public sealed record RlaifPair(
    [property: JsonPropertyName("prompt")] string Prompt,
    [property: JsonPropertyName("a")] string A,
    [property: JsonPropertyName("b")] string B,
    [property: JsonPropertyName("gold_a")] double GoldA,
    [property: JsonPropertyName("gold_b")] double GoldB,
    [property: JsonPropertyName("oracle")] int? Oracle);

/// <summary>The pairs stage: n judge-training pairs, N pairs to label, M gold-ordered held-out pairs (A the gold-better one).</summary>
public sealed record RlaifPairs(
    [property: JsonPropertyName("judge_train")] IReadOnlyList<RlaifPair> JudgeTrain,
    [property: JsonPropertyName("labelled")] IReadOnlyList<RlaifPair> Labelled,
    [property: JsonPropertyName("reward_eval")] IReadOnlyList<RlaifPair> RewardEval);

/// <summary>The judge's labels of the N pairs and how they compare with the oracle's.</summary>
/// <param name="Labels">Per pair: 0 (A), 1 (B), −1 a tie (no preference), null a skip (an answer not understood).</param>
/// <param name="OracleAgreement">Share of the pairs the oracle labelled whose judge label is the oracle's (ties and skips count against).</param>
/// <param name="DecidedAgreement">The same share among the pairs both labelled.</param>
/// <param name="GoldAgreement">Share of the pairs gold scores unequal whose judge label is the gold-better response (ties and skips count against).</param>
/// <param name="PositionFlips">Share of pairs with a response named in both orders whose chosen response changed with the order.</param>
/// <param name="FirstPosition">Share of answers naming a response that named position 1.</param>
public sealed record JudgeLabelling(
    [property: JsonPropertyName("pairs")] int Pairs,
    [property: JsonPropertyName("labelled")] int Labelled,
    [property: JsonPropertyName("ties")] int Ties,
    [property: JsonPropertyName("skips")] int Skips,
    [property: JsonPropertyName("oracle_agreement")] double OracleAgreement,
    [property: JsonPropertyName("decided_agreement")] double DecidedAgreement,
    [property: JsonPropertyName("gold_agreement")] double GoldAgreement,
    [property: JsonPropertyName("position_flips")] double PositionFlips,
    [property: JsonPropertyName("first_position")] double FirstPosition,
    [property: JsonPropertyName("seconds")] double Seconds,
    [property: JsonPropertyName("labels")] IReadOnlyList<int?> Labels);

/// <summary>One condition of one seed, measured.</summary>
public sealed record RlaifCell(
    [property: JsonPropertyName("condition")] string Condition,
    [property: JsonPropertyName("seed")] ulong Seed,
    [property: JsonPropertyName("labels")] int Labels,
    [property: JsonPropertyName("reward_accuracy")] double RewardAccuracy,
    [property: JsonPropertyName("reward_eval_pairs")] int RewardEvalPairs,
    [property: JsonPropertyName("gold")] double Gold,
    [property: JsonPropertyName("sft_gold")] double SftGold,
    [property: JsonPropertyName("kl")] double Kl,
    [property: JsonPropertyName("wins")] int Wins,
    [property: JsonPropertyName("losses")] int Losses,
    [property: JsonPropertyName("ties")] int Ties,
    [property: JsonPropertyName("final_beta")] double FinalBeta,
    [property: JsonPropertyName("seconds")] double Seconds,
    [property: JsonPropertyName("not_applicable")] string? NotApplicable = null)
{
    /// <summary>A condition with too few labels to train a reward model (a judge whose every answer was a tie or a skip), with the reason.</summary>
    public static RlaifCell NotApplicableCell(string condition, ulong seed, int labels, string reason) =>
        new(condition, seed, labels, double.NaN, 0, double.NaN, double.NaN, double.NaN, 0, 0, 0, double.NaN, 0, reason);

    [JsonPropertyName("gold_delta")]
    public double GoldDelta => Gold - SftGold;

    /// <summary>Win rate over SFT with its 95% Wilson interval (ties ½).</summary>
    [JsonIgnore]
    public WinRateResult WinRate => Evaluation.WinRate.FromCounts(Wins, Losses, Ties);
}

/// <summary>Everything one seed measured.</summary>
public sealed record RlaifSeedResult(
    [property: JsonPropertyName("seed")] ulong Seed,
    [property: JsonPropertyName("judge")] JudgeLabelling Judge,
    [property: JsonPropertyName("judge_seconds")] double JudgeSeconds,
    [property: JsonPropertyName("cells")] IReadOnlyList<RlaifCell> Cells);

public sealed class RlaifExperiment(RlaifConfig config, Gpt sft, ITokenizer tokenizer, IDemoTask task)
{
    public const string StagesFileName = "stages.json";

    /// <summary>The three conditions, in table order: (a) judge labels, (b) oracle labels, (c) the judge's own n oracle labels.</summary>
    public static IReadOnlyList<string> Conditions { get; } = ["judge", "oracle", "oracle-n"];

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true, NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public RlaifConfig Config { get; } = config;

    /// <summary>Runs (or loads, when recorded in <paramref name="seedDir"/>'s stages.json) every stage of seed <paramref name="seed"/>.</summary>
    public RlaifSeedResult RunSeed(string seedDir, ulong seed, IProgress<AlignmentProgress>? progress = null, CancellationToken ct = default)
    {
        Config.Validate();
        Directory.CreateDirectory(seedDir);
        string stagesPath = Path.Combine(seedDir, StagesFileName);
        var done = File.Exists(stagesPath) ? JsonSerializer.Deserialize<List<string>>(File.ReadAllText(stagesPath)) ?? [] : [];
        string Dir(string stage) => Path.Combine(seedDir, stage);
        string ResultPath(string stage) => Path.Combine(Dir(stage), "result.json");
        // A stage recorded as done is read back; any other starts over in an empty folder and is recorded when it returns.
        T Stage<T>(string stage, Func<string, T> run)
        {
            if (done.Contains(stage)) return JsonSerializer.Deserialize<T>(File.ReadAllText(ResultPath(stage)), Json)!;
            ct.ThrowIfCancellationRequested();
            if (Directory.Exists(Dir(stage))) Directory.Delete(Dir(stage), recursive: true);
            Directory.CreateDirectory(Dir(stage));
            var result = run(Dir(stage));
            AtomicFile.WriteAllText(ResultPath(stage), JsonSerializer.Serialize(result, Json));
            done.Add(stage);
            AtomicFile.WriteAllText(stagesPath, JsonSerializer.Serialize(done, Json));
            return result;
        }
        IProgress<AlignmentProgress>? As(string stage) => progress is null ? null : new DemoPipeline.StageProgress($"seed {seed} {stage}", progress);
        RunDirectory StageRun(string dir) => RunDirectory.Open(Path.Combine(dir, "run"), resume: false);
        Func<string, string, double> gold = task.Gold;
        var sampler = new PolicyEvaluator(new EvaluationOptions { MaxNewTokens = Config.MaxNewTokens, Seed = seed + 2 });

        // 1. The pairs, labelled by the oracle.
        var pairs = Stage("pairs", _ =>
        {
            var oracle = new OracleLabeler((p, c) => gold(p, c.Content), new OracleOptions(Temperature: task.OracleTemperature, TieThreshold: task.OracleTieThreshold, Seed: (int)(seed % int.MaxValue)));
            List<RlaifPair> Sample(IReadOnlyList<string> prompts, ulong a, ulong b, bool label)
            {
                var first = sampler.Sample(sft, sft, tokenizer, prompts, new Rng(a), ct);
                var second = sampler.Sample(sft, sft, tokenizer, prompts, new Rng(b), ct);
                var list = new List<RlaifPair>(prompts.Count);
                for (int i = 0; i < prompts.Count; i++)
                {
                    double ga = gold(prompts[i], first.Texts[i]), gb = gold(prompts[i], second.Texts[i]);
                    var answer = label ? oracle.Choose([ga, gb]) : null;
                    list.Add(new RlaifPair(prompts[i], first.Texts[i], second.Texts[i], ga, gb, answer is { Kind: AnswerKind.Preferred, Preferred: int k } ? k : null));
                }
                return list;
            }
            var train = Sample(task.TrainingPrompts(seed + 2, Config.JudgePairs + Config.Pairs), seed + 21, seed + 22, label: true);
            // Held-out pairs in gold order, A the better; pairs gold scores equal say nothing about a reward model.
            var held = Sample(task.HeldOutPrompts(seed + 98, Config.RewardEvalPairs), seed + 23, seed + 24, label: false)
                .Where(p => p.GoldA != p.GoldB).Select(p => p.GoldA > p.GoldB ? p : new RlaifPair(p.Prompt, p.B, p.A, p.GoldB, p.GoldA, null)).ToList();
            return new RlaifPairs(train.GetRange(0, Config.JudgePairs), train.GetRange(Config.JudgePairs, Config.Pairs), held);
        });
        var judgeTrain = Labelled(pairs.JudgeTrain, pairs.JudgeTrain.Select(p => p.Oracle).ToList());
        if (judgeTrain.Count < 2) throw new InvalidOperationException($"rlaif: the oracle labelled {judgeTrain.Count} of the {Config.JudgePairs} judge pairs; the judge and condition (c) need at least 2 (raise --judge-pairs).");

        // 2. The judge, from the SFT model, on the n oracle labels.
        string judgeDir = Dir("judge");
        var judgeSeconds = Stage("judge", dir =>
        {
            var watch = Stopwatch.StartNew();
            var defaults = new JudgeConfig().Sft;
            var judgeConfig = new JudgeConfig
            {
                HeldOutPairs = 0,
                Sft = defaults with
                {
                    Training = defaults.Training with
                    {
                        LearningRate = Config.JudgeLearningRate, WarmupSteps = Math.Min(20, Config.JudgeSteps / 4), Steps = Config.JudgeSteps, BatchSize = Config.JudgeBatchSize,
                        EvalInterval = Config.JudgeSteps, EvalBatches = 2, CheckpointInterval = 0, Seed = seed + 6,
                    },
                },
            };
            using var run = StageRun(dir);
            // A copy of the SFT model: the judge's context extension makes a new model only when the question needs a longer one.
            var start = sft.Clone();
            var r = new JudgeTrainer(judgeConfig).Train(start, tokenizer, judgeTrain, run, As("judge"), ct);
            if (r.Training.Cancelled) throw new OperationCanceledException($"rlaif: stopped while training seed {seed}'s judge.");
            r.Judge.Save(dir);
            return watch.Elapsed.TotalSeconds;
        });

        // 3. The judge labels the N pairs in-process, exactly as `label judge` would over HTTP.
        var judged = Stage("judge-labels", _ => LabelWithJudge(Gpt.Load(judgeDir), tokenizer, pairs.Labelled, ct));

        // 4–6. Per condition: reward model, PPO, evaluation against SFT by gold.
        var labelsOf = new Dictionary<string, List<PreferenceExample>>
        {
            ["judge"] = Labelled(pairs.Labelled, judged.Labels),
            ["oracle"] = Labelled(pairs.Labelled, pairs.Labelled.Select(p => p.Oracle).ToList()),
            ["oracle-n"] = judgeTrain,
        };
        var rewardEval = pairs.RewardEval.Select(p => new PreferenceExample(p.Prompt, [p.A, p.B], PreferenceKind.Pair)).ToList();
        var ppoPrompts = task.TrainingPrompts(seed + 4, 2000);
        var heldOutPrompts = task.HeldOutPrompts(seed + 99, Config.EvalPrompts);
        var cells = new List<RlaifCell>();
        foreach (string condition in Conditions)
        {
            var labels = labelsOf[condition];
            cells.Add(Stage("ppo-" + condition, dir =>
            {
                var watch = Stopwatch.StartNew();
                if (labels.Count < 2) return RlaifCell.NotApplicableCell(condition, seed, labels.Count, $"{labels.Count} labelled pairs (the rest ties or skips); a reward model needs at least 2");
                var rmConfig = new RewardTrainerConfig
                {
                    Epochs = Config.RewardEpochs, LearningRate = 1e-3f, HeldOutFraction = 0.1, NormalizationSamples = Math.Min(64, Config.Pairs),
                    NormalizationMaxNewTokens = Config.MaxNewTokens, Seed = seed + 3,
                };
                RewardEnsemble ensemble;
                using (var run = RunDirectory.Open(Path.Combine(dir, "reward-run"), resume: false))
                {
                    var r = new RewardTrainer(rmConfig).Train(sft, tokenizer, labels, run: run, progress: As(condition + " reward"), ct: ct);
                    ct.ThrowIfCancellationRequested();
                    ensemble = r.Ensemble;
                }
                // NaN when gold scored both responses of every held-out pair equal (an SFT model that writes nothing gold credits).
                double accuracy = rewardEval.Count == 0 ? double.NaN : new RewardTrainer(rmConfig).Evaluate(ensemble.Members, rewardEval).Accuracy;
                var ppo = new PpoConfig
                {
                    Steps = Config.PpoSteps, BatchSize = Config.PpoBatchSize, MiniBatchSize = Math.Max(1, Config.PpoBatchSize / 2), Epochs = 4,
                    MaxNewTokens = Config.MaxNewTokens, LearningRate = Config.PpoLearningRate, InitialKlCoef = Config.InitialKlCoef, TargetKl = Config.TargetKl,
                    KlHorizon = Math.Max(1, Config.PpoSteps * Config.PpoBatchSize / 10.0), Seed = seed + 5, CheckpointInterval = 0,
                };
                PpoResult trained;
                using (var run = RunDirectory.Open(Path.Combine(dir, "ppo-run"), resume: false))
                    trained = new PpoTrainer(ppo).Train(sft, tokenizer, ppoPrompts, new RewardModelReward(ensemble), ensemble, new PpoTrainer.Options(Gold: gold, Run: run, Progress: As(condition + " ppo")), ct);
                if (trained.Cancelled) throw new OperationCanceledException($"rlaif: stopped during seed {seed}'s PPO on condition {condition}.");
                trained.Policy.Save(dir);
                // The same evaluation stream for every condition of a seed: the same held-out prompts and SFT samples.
                var evaluator = new PolicyEvaluator(new EvaluationOptions { MaxNewTokens = Config.MaxNewTokens, Seed = seed + 7, SamplesKept = 0 });
                var e = Blocking.Run(() => evaluator.EvaluateAsync(trained.Policy, sft, tokenizer, heldOutPrompts, new GoldJudge(gold), gold: gold, ct: ct));
                double beta = trained.History.Count > 0 && trained.History[^1].TryGetValue(MetricKeys.KlCoef, out double b) ? b : double.NaN;
                return new RlaifCell(condition, seed, labels.Count, accuracy, rewardEval.Count, e.Policy.MeanGold, e.Baseline.MeanGold, e.Policy.KlK1,
                    e.WinRate.Wins, e.WinRate.Losses, e.WinRate.Ties, beta, watch.Elapsed.TotalSeconds);
            }));
        }
        return new RlaifSeedResult(seed, judged, judgeSeconds, cells);
    }

    /// <summary>Pairs with a preference as reward-model examples, chosen first; a tie (−1) or no label (null) gives none.</summary>
    public static List<PreferenceExample> Labelled(IReadOnlyList<RlaifPair> pairs, IReadOnlyList<int?> labels) =>
        [.. pairs.Select((p, i) => (p, l: labels[i])).Where(x => x.l is 0 or 1)
            .Select(x => new PreferenceExample(x.p.Prompt, x.l == 0 ? [x.p.A, x.p.B] : [x.p.B, x.p.A], PreferenceKind.Pair))];

    /// <summary>
    /// Step 3: asks <paramref name="judge"/> about every pair as (A, B) and (B, A) with AiJudge's question and parse, and
    /// labels each with AiJudge's both-orders rule (see the file header); measures the labels against the oracle and gold.
    /// </summary>
    public static JudgeLabelling LabelWithJudge(Gpt judge, ITokenizer tokenizer, IReadOnlyList<RlaifPair> pairs, CancellationToken ct = default)
    {
        var watch = Stopwatch.StartNew();
        var verdicts = JudgeEvaluator.Verdicts(judge, tokenizer,
            [.. pairs.SelectMany(p => new[] { JudgeTrainer.Question(p.Prompt, p.A, p.B), JudgeTrainer.Question(p.Prompt, p.B, p.A) })], ct: ct);
        var labels = new int?[pairs.Count];
        int labelled = 0, ties = 0, skips = 0, oracleAgree = 0, oracleCount = 0, decidedAgree = 0, decided = 0, goldAgree = 0, goldCount = 0;
        int flips = 0, bothNamed = 0, first = 0, named = 0;
        for (int i = 0; i < pairs.Count; i++)
        {
            int? forward = verdicts[2 * i], backward = verdicts[2 * i + 1];
            foreach (int? v in new[] { forward, backward })
                if (v >= 0) { named++; if (v == 0) first++; }
            if (forward >= 0 && backward >= 0) { bothNamed++; if (forward == backward) flips++; }
            if (forward is int f && backward is int b)
            {
                // In candidate terms: the backward question showed (B, A), so its position p names candidate 1 − p.
                var answer = AiJudge.PairVerdict(f, b < 0 ? -1 : 1 - b);
                labels[i] = answer.Kind == AnswerKind.Preferred ? answer.Preferred : -1;
            }
            if (labels[i] is 0 or 1) labelled++; else if (labels[i] == -1) ties++; else skips++;
            var p = pairs[i];
            if (p.Oracle is int o)
            {
                oracleCount++;
                if (labels[i] == o) oracleAgree++;
                if (labels[i] is 0 or 1) { decided++; if (labels[i] == o) decidedAgree++; }
            }
            if (p.GoldA != p.GoldB)
            {
                goldCount++;
                if (labels[i] == (p.GoldA > p.GoldB ? 0 : 1)) goldAgree++;
            }
        }
        static double Share(int k, int n) => n == 0 ? double.NaN : (double)k / n;
        return new JudgeLabelling(pairs.Count, labelled, ties, skips, Share(oracleAgree, oracleCount), Share(decidedAgree, decided), Share(goldAgree, goldCount),
            Share(flips, bothNamed), Share(first, named), watch.Elapsed.TotalSeconds, labels);
    }
}
