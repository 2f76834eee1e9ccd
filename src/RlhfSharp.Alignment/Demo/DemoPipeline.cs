// `rlhf demo` on the built-in story world: pre-train → SFT → oracle-labelled pairs → reward model → PPO (adaptive KL; β = 0) → gold-judged
// win rates over SFT → over-optimisation on held-out prompts (PPO snapshots, best-of-N, fixed-β frontier) → report.html, a folder per stage.
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using RlhfSharp.Alignment.Evaluation;
using RlhfSharp.Alignment.LanguageModeling;
using RlhfSharp.Alignment.Ppo;
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Feedback;
using RlhfSharp.Feedback.Labelers;
using RlhfSharp.Models;
using RlhfSharp.Runs;
using RlhfSharp.Runs.Reports;
using RlhfSharp.Tensors;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment.Demo;

/// <summary>Sizes of every stage of the demo.</summary>
public sealed record DemoConfig
{
    /// <summary>Story-world documents the tokenizer and the pre-training run see.</summary>
    public int PretrainDocuments { get; init; } = 4000;

    /// <summary>BPE vocabulary size.</summary>
    public int VocabSize { get; init; } = 1024;

    /// <summary>Named GPT size (GptConfig.Named).</summary>
    public string ModelSize { get; init; } = "tiny";

    /// <summary>Pre-training optimiser steps.</summary>
    public int PretrainSteps { get; init; } = 600;

    /// <summary>Demonstrations SFT trains on.</summary>
    public int SftExamples { get; init; } = 2000;

    /// <summary>SFT optimiser steps.</summary>
    public int SftSteps { get; init; } = 400;

    /// <summary>Response pairs sampled from the SFT model and labelled by the oracle.</summary>
    public int Pairs { get; init; } = 2000;

    /// <summary>Longest response sampled for pairs, PPO rollouts and evaluation (tokens).</summary>
    public int MaxNewTokens { get; init; } = 40;

    /// <summary>Reward-model epochs over the labelled pairs.</summary>
    public int RewardEpochs { get; init; } = 3;

    /// <summary>Reward models in the ensemble, each on a bootstrap resample of the labels (Christiano et al. 2017); PPO's reward is their mean.</summary>
    public int RewardMembers { get; init; } = 1;

    /// <summary>
    /// Fit the reward model's gain as well as its bias, so that reference samples score std 1 (not only mean 0): β then
    /// prices a nat of KL against the reward's spread on reference text, whatever scale the reward model happened to learn.
    /// </summary>
    public bool RewardNormalizeStd { get; init; }

    /// <summary>PPO rollout batches per run.</summary>
    public int PpoSteps { get; init; } = 40;

    /// <summary>Episodes per PPO rollout batch.</summary>
    public int PpoBatchSize { get; init; } = 32;

    /// <summary>PPO's learning rate (policy and value model).</summary>
    public float PpoLearningRate { get; init; } = 5e-4f;

    /// <summary>
    /// Subtracted from the reward of a PPO response that never ends (no EOS within MaxNewTokens; TRL's missing_eos_penalty);
    /// null for none. The reward model reads its score at the last token, which for a cut-off response is wherever the
    /// cut fell, not the end of a thought.
    /// </summary>
    public double? PpoMissingEosPenalty { get; init; }

    /// <summary>PPO scores a response cut at MaxNewTokens with EOS appended, as the reward model saw every training row (RewardModelReward).</summary>
    public bool PpoEndCutResponses { get; init; }

    /// <summary>β at the start of the adaptive-β run.</summary>
    public double InitialKlCoef { get; init; } = 0.2;

    /// <summary>Horizon (episodes) of Ziegler's KL controller: β moves by at most 20%·episodes/horizon per batch. Null: a tenth of the run's episodes (see KlControlNote).</summary>
    public double? KlHorizon { get; init; }

    /// <summary>KL target (nats per episode) of the adaptive-β run.</summary>
    public double TargetKl { get; init; } = 4;

    /// <summary>Held-out prompts each policy is judged on against SFT.</summary>
    public int EvalPrompts { get; init; } = 128;

    /// <summary>PPO updates between the policy snapshots the over-optimisation chart evaluates (step 0, the SFT model, is always one).</summary>
    public int SnapshotEvery { get; init; } = 6;

    /// <summary>Held-out prompts every snapshot, best-of-N setting and frontier run is scored on (proxy, gold, KL).</summary>
    public int OverOptimisationPrompts { get; init; } = 128;

    /// <summary>Largest N of the best-of-N curve (N = 1, 2, 4, … up to it, all from one pool of this many SFT samples per prompt).</summary>
    public int BestOfNMax { get; init; } = 64;

    /// <summary>Held-out prompts of the best-of-N curve (each gets BestOfNMax samples).</summary>
    public int BestOfNPrompts { get; init; } = 64;

    /// <summary>Fixed β of the KL-frontier sweep's PPO runs (empty: no sweep; the frontier then has SFT and the two main runs).</summary>
    public IReadOnlyList<double> FrontierBetas { get; init; } = [1, 0.3, 0.1, 0.03];

    /// <summary>PPO updates of each frontier run (as many as the main runs, so their end points compare).</summary>
    public int FrontierSteps { get; init; } = 40;

    /// <summary>Seed of every stage (each stage derives its own stream).</summary>
    public ulong Seed { get; init; } = 1;

    /// <summary>
    /// Small sizes that still produce every stage and report section, for tests and a first look (under a minute on 2 idle
    /// cores). Smaller pre-training leaves the SFT model writing no sentence the gold scorer credits (every policy −0.5,
    /// every win rate ½); at these sizes SFT writes some, so the β = 0 run's fall in gold already shows.
    /// </summary>
    public static DemoConfig Quick { get; } = new()
    {
        PretrainDocuments = 3000, VocabSize = 768, PretrainSteps = 500, SftExamples = 1000, SftSteps = 250, Pairs = 300, MaxNewTokens = 32,
        RewardEpochs = 2, PpoSteps = 8, PpoBatchSize = 16, EvalPrompts = 48,
        SnapshotEvery = 2, OverOptimisationPrompts = 48, BestOfNMax = 8, BestOfNPrompts = 16, FrontierBetas = [0.3], FrontierSteps = 4,
    };

    public void Validate()
    {
        void Positive(string name, int v) { if (v <= 0) throw new ArgumentException($"demo config: {name} = {v} must be positive."); }
        Positive(nameof(PretrainDocuments), PretrainDocuments);
        Positive(nameof(VocabSize), VocabSize);
        Positive(nameof(PretrainSteps), PretrainSteps);
        Positive(nameof(SftSteps), SftSteps);
        Positive(nameof(MaxNewTokens), MaxNewTokens);
        Positive(nameof(RewardEpochs), RewardEpochs);
        Positive(nameof(RewardMembers), RewardMembers);
        Positive(nameof(PpoSteps), PpoSteps);
        Positive(nameof(EvalPrompts), EvalPrompts);
        Positive(nameof(SnapshotEvery), SnapshotEvery);
        Positive(nameof(OverOptimisationPrompts), OverOptimisationPrompts);
        Positive(nameof(BestOfNMax), BestOfNMax);
        Positive(nameof(BestOfNPrompts), BestOfNPrompts);
        Positive(nameof(FrontierSteps), FrontierSteps);
        foreach (double b in FrontierBetas)
            if (!(b >= 0) || double.IsInfinity(b)) throw new ArgumentException($"demo config: FrontierBetas holds {b}; each β must be finite and ≥ 0.");
        if (SftExamples < 2) throw new ArgumentException($"demo config: SftExamples = {SftExamples} must be at least 2.");
        if (Pairs < 10) throw new ArgumentException($"demo config: Pairs = {Pairs} must be at least 10 (some are held out).");
        if (PpoBatchSize < 2) throw new ArgumentException($"demo config: PpoBatchSize = {PpoBatchSize} must be at least 2.");
        if (!(TargetKl > 0)) throw new ArgumentException($"demo config: TargetKl = {TargetKl} must be positive.");
        if (!(PpoLearningRate > 0)) throw new ArgumentException($"demo config: PpoLearningRate = {PpoLearningRate} must be positive.");
        if (!(InitialKlCoef >= 0)) throw new ArgumentException($"demo config: InitialKlCoef = {InitialKlCoef} must be non-negative.");
        if (KlHorizon is double h && !(h > 0)) throw new ArgumentException($"demo config: KlHorizon = {KlHorizon} must be positive.");
    }
}

/// <summary>One policy's evaluation against SFT, in the summary.</summary>
public sealed record DemoPolicySummary(double WinRate, double WinLow, double WinHigh, double Kl, double Gold, double RewardModelScore);

/// <summary>The demo's headline numbers (the CLI prints them as one JSON line).</summary>
/// <param name="ReferenceName">What the baseline is called in the report ("SFT", or "pre-trained" when the task has no SFT); SftGold is its gold reward.</param>
public sealed record DemoSummary(DemoPolicySummary Ppo, DemoPolicySummary PpoBetaZero, double SftGold, double RewardModelAccuracy, double WallSeconds, string Report, string ReferenceName = "SFT");

/// <summary>Runs the demo in a run folder on a task (the story world by default); stages already recorded in stages.json are loaded, not rerun.</summary>
public sealed class DemoPipeline(DemoConfig config, IDemoTask? task = null)
{
    public const string StagesFileName = "stages.json";
    public const string ReportFileName = "report.html";
    public const string TaskFileName = "task.txt";
    public static IReadOnlyList<string> Stages { get; } = ["pretrain", "sft", "labels", "reward", "ppo", "ppo-beta0", "eval", "checkpoints", "best-of-n", "frontier", "report"];

    // The run names the over-optimisation chart and the frontier use.
    private const string AdaptiveRun = "adaptive β", BetaZeroRun = "β = 0";

    // Why the adaptive run used to end at KL 7.6 against a target of 4: Ziegler's controller moves β by at most
    // 0.2·episodes/horizon per batch, and with the horizon at 1000 episodes a 40 × 32-episode run could change β by 29% at
    // most (Ziegler et al. ran ~1M episodes against a 10k horizon, so their β could move freely). The horizon is now a tenth
    // of the run's episodes, so β can move several-fold within the run, and β starts at 0.2 (it settles near 0.4 at KL 4 on
    // this reward model; from 0.05 the KL overshot for 20 batches before β caught up).
    private string KlControlNote(double horizon) => string.Create(CultureInfo.InvariantCulture,
        $"Ziegler's proportional controller: β ← β·(1 + clip((KL − target)/target, ±0.2)·episodes/horizon) after each batch, KL in nats per response " +
        $"(summed over its tokens; k1 on the batch's {Config.PpoBatchSize} samples, so each reading is noisy). The horizon is {horizon:0} episodes of the run's " +
        $"{Config.PpoSteps * Config.PpoBatchSize} (by default a tenth of them); at a 1,000-episode horizon a run this short could move β by only " +
        $"{Math.Pow(1 + 0.2 * Config.PpoBatchSize / 1000.0, Config.PpoSteps) - 1:0%}, and the story-world demo's KL once ended far above its target (7.6 nats against 4).");

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public DemoConfig Config { get; } = config;

    /// <summary>What the run trains and judges on: corpus, tokenizer, demonstrations, prompts, gold scorer.</summary>
    public IDemoTask DemoTask { get; } = task ?? new StoryDemoTask();

    /// <summary>Who labels the SFT pairs instead of the oracle (people, for <c>rlhf demo --human</c>); null means the oracle.</summary>
    public IDemoLabeler? Labeler { get; init; }

    /// <summary>
    /// Runs every stage not yet finished in <paramref name="runDir"/> (all of them unless <paramref name="resume"/>).
    /// Cancellation ends the current stage early and throws <see cref="OperationCanceledException"/>; finished stages stay recorded.
    /// </summary>
    public DemoSummary Run(string runDir, bool resume, IProgress<AlignmentProgress>? progress = null, CancellationToken ct = default)
    {
        Config.Validate();
        var watch = Stopwatch.StartNew();
        if (!resume && Directory.Exists(runDir) && Directory.EnumerateFileSystemEntries(runDir).Any())
            throw new IOException($"demo: {runDir} is not empty; pass resume to continue it or choose another folder.");
        Directory.CreateDirectory(runDir);
        string taskPath = Path.Combine(runDir, TaskFileName);
        if (resume && File.Exists(taskPath) && File.ReadAllText(taskPath).Trim() is var recordedTask && recordedTask != DemoTask.Name)
            throw new InvalidOperationException($"demo: {runDir} holds a run of task '{recordedTask}', not '{DemoTask.Name}'; resume it with that task or choose another folder.");
        AtomicFile.WriteAllText(taskPath, DemoTask.Name + "\n");
        string stagesPath = Path.Combine(runDir, StagesFileName);
        var done = resume && File.Exists(stagesPath) ? JsonSerializer.Deserialize<List<string>>(File.ReadAllText(stagesPath)) ?? [] : [];
        string Dir(string stage) => Path.Combine(runDir, stage);
        // Each training stage logs metrics.jsonl and TensorBoard events into STAGE/run; a stage that is (re)started begins a fresh one.
        RunDirectory StageRun(string stage)
        {
            string path = Path.Combine(Dir(stage), "run");
            if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
            return RunDirectory.Open(path, resume: false);
        }
        bool Todo(string stage)
        {
            if (done.Contains(stage)) return false;
            ct.ThrowIfCancellationRequested();
            if (Directory.Exists(Dir(stage))) Directory.Delete(Dir(stage), recursive: true); // a half-finished stage starts over
            Directory.CreateDirectory(Dir(stage));
            return true;
        }
        void Finish(string stage)
        {
            done.Add(stage);
            AtomicFile.WriteAllText(stagesPath, JsonSerializer.Serialize(done, Json));
        }
        IProgress<AlignmentProgress>? As(string stage) => progress is null ? null : new StageProgress(stage, progress);
        void Say(string stage, string key, double value) => progress?.Report(new AlignmentProgress(stage, 1, 1, new Dictionary<string, double> { [key] = value }));

        Func<string, string, double> gold = DemoTask.Gold;
        ulong seed = Config.Seed;

        // 1. Pre-train a tiny GPT (and its tokenizer) on the task's documents.
        if (Todo("pretrain"))
        {
            var docs = DemoTask.PretrainDocuments(seed, Config.PretrainDocuments);
            var tok = DemoTask.CreateTokenizer(docs, Config.VocabSize);
            var trainer = new PretrainTrainer(new PretrainConfig
            {
                ModelSize = Config.ModelSize,
                Training = new LmTrainingOptions { LearningRate = 3e-3f, WarmupSteps = Math.Min(20, Config.PretrainSteps / 4), Steps = Config.PretrainSteps, EvalInterval = Config.PretrainSteps, EvalBatches = 2, CheckpointInterval = 0, Seed = seed },
            });
            var model = trainer.CreateModel(tok);
            using var run = StageRun("pretrain");
            var r = trainer.Train(model, tok, PretrainTrainer.Tokenize(tok, docs), run, progress: As("pretrain"), ct: ct);
            if (r.Cancelled) throw new OperationCanceledException("demo: stopped during pre-training.");
            model.Save(Dir("pretrain"));
            tok.Save(Dir("pretrain"));
            Finish("pretrain");
        }
        var tokenizer = TokenizerFiles.Load(Dir("pretrain"));

        // 2. Supervised fine-tuning on the task's demonstrations; a task without them keeps the pre-trained model as reference.
        if (Todo("sft"))
        {
            var model = Gpt.Load(Dir("pretrain"));
            if (DemoTask.SftExamples(seed + 1, Config.SftExamples) is { } demonstrations)
            {
                var trainer = new SftTrainer(new SftConfig
                {
                    Training = new LmTrainingOptions { LearningRate = 2e-3f, WarmupSteps = Math.Min(20, Config.SftSteps / 4), Steps = Config.SftSteps, EvalInterval = Config.SftSteps, EvalBatches = 2, CheckpointInterval = 0, Seed = seed + 1 },
                });
                using var run = StageRun("sft");
                var r = trainer.Train(model, tokenizer, demonstrations, run, progress: As("sft"), ct: ct);
                if (r.Cancelled) throw new OperationCanceledException("demo: stopped during SFT.");
            }
            model.Save(Dir("sft"));
            tokenizer.Save(Dir("sft"));
            Finish("sft");
        }
        var sft = Gpt.Load(Dir("sft"));
        var sampler = new PolicyEvaluator(new EvaluationOptions { MaxNewTokens = Config.MaxNewTokens, Seed = seed + 2 });

        // 3. Two SFT samples per training prompt, labelled by the oracle (Bradley–Terry over the gold reward).
        string labelsPath = Path.Combine(Dir("labels"), "preferences.jsonl");
        if (Todo("labels"))
        {
            var prompts = DemoTask.TrainingPrompts(seed + 2, Config.Pairs);
            var a = sampler.Sample(sft, sft, tokenizer, prompts, new Rng(seed + 21), ct);
            var b = sampler.Sample(sft, sft, tokenizer, prompts, new Rng(seed + 22), ct);
            var oracle = new OracleLabeler((p, c) => gold(p, c.Content), new OracleOptions(Temperature: DemoTask.OracleTemperature, TieThreshold: DemoTask.OracleTieThreshold, Seed: (int)(seed % int.MaxValue)));
            var lines = new List<string>();
            int agree = 0;
            // With a labeller (people, `demo --human`) its judgments replace the oracle's; ties and skips arrive as it records them.
            if (Labeler is not null)
                lines.AddRange(Blocking.Run(() => Labeler.LabelAsync(runDir, [.. prompts.Select((p, i) => new DemoPair(p, a.Texts[i], b.Texts[i]))], As("labels"), ct)));
            for (int i = 0; Labeler is null && i < prompts.Count; i++)
            {
                double ga = gold(prompts[i], a.Texts[i]), gb = gold(prompts[i], b.Texts[i]);
                var answer = oracle.Choose([ga, gb]);
                if (answer.Kind != AnswerKind.Preferred || answer.Preferred is not int k) continue;
                string chosen = k == 0 ? a.Texts[i] : b.Texts[i], rejected = k == 0 ? b.Texts[i] : a.Texts[i];
                if ((k == 0 ? ga >= gb : gb >= ga)) agree++;
                lines.Add(JsonSerializer.Serialize(new Dictionary<string, string> { ["prompt"] = prompts[i], ["chosen"] = chosen, ["rejected"] = rejected }));
            }
            AtomicFile.WriteAllText(labelsPath, string.Join("\n", lines) + "\n");
            if (Labeler is null) Say("labels", "oracle agreement with gold", lines.Count == 0 ? 0 : (double)agree / lines.Count);
            Finish("labels");
        }
        var preferences = PreferenceData.ReadJsonl(labelsPath);

        // 4. Reward model from the SFT model on the labelled pairs.
        string rmEvalPath = Path.Combine(Dir("reward"), "held_out.json");
        if (Todo("reward"))
        {
            var trainer = new RewardTrainer(new RewardTrainerConfig
            {
                Members = Config.RewardMembers, Epochs = Config.RewardEpochs, LearningRate = 1e-3f, HeldOutFraction = 0.2, NormalizationSamples = Math.Min(64, Config.Pairs),
                NormalizationMaxNewTokens = Config.MaxNewTokens, NormalizeStd = Config.RewardNormalizeStd, Seed = seed + 3,
            });
            using var run = StageRun("reward");
            var r = trainer.Train(sft, tokenizer, preferences, run: run, progress: As("reward"), ct: ct);
            ct.ThrowIfCancellationRequested();
            r.Ensemble.Save(Dir("reward"));
            AtomicFile.WriteAllText(rmEvalPath, JsonSerializer.Serialize(r.HeldOut ?? throw new InvalidOperationException("demo: the reward trainer held out no pairs."), Json));
            Finish("reward");
        }
        var ensemble = RewardEnsemble.Load(Dir("reward"));
        var rmHeldOut = JsonSerializer.Deserialize<RewardEvaluation>(File.ReadAllText(rmEvalPath))!;

        // 5–6. PPO against the reward model: with the adaptive KL controller, and with no leash at all (β = 0).
        var ppoPrompts = DemoTask.TrainingPrompts(seed + 4, 2000);
        var basePpo = new PpoConfig
        {
            Steps = Config.PpoSteps, BatchSize = Config.PpoBatchSize, MiniBatchSize = Math.Max(1, Config.PpoBatchSize / 2), Epochs = 4,
            MaxNewTokens = Config.MaxNewTokens, LearningRate = Config.PpoLearningRate, KlHorizon = Config.KlHorizon ?? Math.Max(1, Config.PpoSteps * Config.PpoBatchSize / 10.0), Seed = seed + 5, SnapshotEvery = Config.SnapshotEvery,
            MissingEosPenalty = Config.PpoMissingEosPenalty, CheckpointInterval = 0, // the demo resumes by stage; snapshots feed the over-optimisation plot
        };
        var histories = new Dictionary<string, IReadOnlyList<IReadOnlyDictionary<string, double>>>();
        foreach (var (stage, ppo) in new[] { ("ppo", basePpo with { InitialKlCoef = Config.InitialKlCoef, TargetKl = Config.TargetKl }), ("ppo-beta0", basePpo with { InitialKlCoef = 0, TargetKl = null }) })
        {
            string historyPath = Path.Combine(Dir(stage), "history.json");
            if (Todo(stage))
            {
                using var run = StageRun(stage);
                var r = new PpoTrainer(ppo).Train(sft, tokenizer, ppoPrompts, new RewardModelReward(ensemble, Config.PpoEndCutResponses), ensemble, new PpoTrainer.Options(Gold: gold, Run: run, Progress: As(stage), Snapshot: DemoOverOptimisation.SaveSnapshots(Dir(stage))), ct);
                if (r.Cancelled) throw new OperationCanceledException($"demo: stopped during {stage}.");
                r.Policy.Save(Dir(stage));
                tokenizer.Save(Dir(stage));
                AtomicFile.WriteAllText(historyPath, JsonSerializer.Serialize(r.History, Json));
                Finish(stage);
            }
            histories[stage] = JsonSerializer.Deserialize<List<Dictionary<string, double>>>(File.ReadAllText(historyPath))!;
        }

        // 7. Both policies against SFT on held-out prompts, judged by the gold scorer.
        string evalPath = Path.Combine(Dir("eval"), "evaluations.json");
        if (Todo("eval"))
        {
            var held = DemoTask.HeldOutPrompts(seed + 99, Config.EvalPrompts);
            var evaluator = new PolicyEvaluator(new EvaluationOptions { MaxNewTokens = Config.MaxNewTokens, Seed = seed + 7 });
            var results = new Dictionary<string, EvaluationResult>();
            foreach (var stage in new[] { "ppo", "ppo-beta0" })
            {
                var policy = Gpt.Load(Dir(stage));
                results[stage] = Blocking.Run(() => evaluator.EvaluateAsync(policy, sft, tokenizer, held, new GoldJudge(gold), gold: gold, rewardModel: ensemble.First, ct: ct));
                Say("eval", $"{stage} win rate", results[stage].WinRate.Rate);
            }
            AtomicFile.WriteAllText(evalPath, JsonSerializer.Serialize(results, Json));
            Finish("eval");
        }
        var evals = JsonSerializer.Deserialize<Dictionary<string, EvaluationResult>>(File.ReadAllText(evalPath))!;

        // 8–10. Over-optimisation on held-out prompts: every PPO snapshot, best-of-N from SFT, and the fixed-β frontier sweep.
        var overopt = new DemoOverOptimisation(Config, sft, tokenizer, ensemble, DemoTask.HeldOutPrompts(seed + 99, Config.OverOptimisationPrompts), gold);
        string checkpointsPath = Path.Combine(Dir("checkpoints"), "checkpoints.json");
        if (Todo("checkpoints"))
        {
            var all = new[] { ("ppo", AdaptiveRun), ("ppo-beta0", BetaZeroRun) }.SelectMany(r => overopt.EvaluateSnapshots(r.Item2, Dir(r.Item1), ct)).ToList();
            AtomicFile.WriteAllText(checkpointsPath, JsonSerializer.Serialize(all, Json));
            Say("checkpoints", "snapshots evaluated", all.Count);
            Finish("checkpoints");
        }
        var checkpoints = JsonSerializer.Deserialize<List<CheckpointEvaluation>>(File.ReadAllText(checkpointsPath))!;
        string bestOfNPath = Path.Combine(Dir("best-of-n"), "best_of_n.json");
        if (Todo("best-of-n"))
        {
            var points = overopt.BestOfN(ct);
            AtomicFile.WriteAllText(bestOfNPath, JsonSerializer.Serialize(points, Json));
            Say("best-of-n", $"gold at N = {points[^1].N}", points[^1].Gold);
            Finish("best-of-n");
        }
        var bestOfN = JsonSerializer.Deserialize<List<BestOfNPoint>>(File.ReadAllText(bestOfNPath))!;
        string frontierPath = Path.Combine(Dir("frontier"), "frontier.json");
        if (Todo("frontier"))
        {
            var sweep = overopt.FrontierSweep(basePpo, ppoPrompts, progress, ct);
            AtomicFile.WriteAllText(frontierPath, JsonSerializer.Serialize(sweep, Json));
            Finish("frontier");
        }
        var frontierSweep = JsonSerializer.Deserialize<List<CheckpointEvaluation>>(File.ReadAllText(frontierPath))!;

        // 11. The report.
        string reportPath = Path.Combine(runDir, ReportFileName);
        if (Todo("report"))
        {
            var report = new HtmlReport("RLHF demo", DemoTask.Subtitle(Config));
            RlhfReportSections.LearningCurves(report, new Dictionary<string, IReadOnlyList<IReadOnlyDictionary<string, double>>> { ["adaptive β"] = histories["ppo"], ["β = 0"] = histories["ppo-beta0"] });
            RlhfReportSections.RewardModel(report, rmHeldOut);
            RlhfReportSections.KlControl(report, histories["ppo"], Config.TargetKl, KlControlNote(basePpo.KlHorizon));
            RlhfReportSections.ProxyVsGold(report, checkpoints, bestOfN, DemoTask.ReferenceName);
            RlhfReportSections.BestOfN(report, bestOfN, Math.Min(Config.BestOfNPrompts, Config.OverOptimisationPrompts), DemoTask.ReferenceName);
            RlhfReportSections.Frontier(report, DemoOverOptimisation.FrontierPoints(checkpoints, frontierSweep, BetaZeroRun, DemoTask.ReferenceName), DemoTask.ReferenceName);
            RlhfReportSections.WinRates(report, [("PPO (adaptive β)", evals["ppo"]), ("PPO β = 0", evals["ppo-beta0"])], DemoTask.ReferenceName);
            RlhfReportSections.Samples(report, evals["ppo"].Samples, DemoTask.ReferenceName, "PPO");
            report.Write(reportPath);
            Directory.Delete(Dir("report"));
            Finish("report");
        }

        static DemoPolicySummary Summ(EvaluationResult e) => new(e.WinRate.Rate, e.WinRate.Low, e.WinRate.High, e.Policy.KlK1, e.Policy.MeanGold, e.Policy.MeanRewardModel);
        return new DemoSummary(Summ(evals["ppo"]), Summ(evals["ppo-beta0"]), evals["ppo"].Baseline.MeanGold, rmHeldOut.Accuracy, watch.Elapsed.TotalSeconds, reportPath, DemoTask.ReferenceName);
    }

    /// <summary>Relabels a trainer's progress with the demo stage it belongs to (both PPO runs report as "ppo").</summary>
    internal sealed class StageProgress(string stage, IProgress<AlignmentProgress> inner) : IProgress<AlignmentProgress>
    {
        public void Report(AlignmentProgress value) => inner.Report(value with { Stage = stage });
    }
}
