// `rlhf overopt`: Gao, Schulman & Hilton (2022) on the story world. One policy (pre-trained, then SFT) is optimised against
// proxy reward models of several sizes trained on several numbers of oracle comparisons, by best-of-n and by PPO; the gold
// scorer measures what each gained over the initial policy at d = √KL, and OverOptimisationFit fits the paper's forms.
//   1. base: tokenizer; a pre-trained model per size (the proxies' starting points, the policy's too); SFT of the policy.
//   2. labels: max(comparisons) pairs of SFT samples, labelled by the oracle (Bradley–Terry on gold); a cell takes a prefix.
//   3. best-of-n pool: max(n) SFT samples per held-out prompt, each scored by gold once (shared by every cell).
//   4. per cell (RM size × comparisons × seed), in that fixed order:
//      a. proxy reward model from the size's pre-trained model on the first `comparisons` labels (seeded);
//      b. best-of-n: the pool scored by the proxy; E[gold of the proxy's pick among n] − E[gold] (unbiased over n-subsets);
//      c. PPO against the proxy (fixed β, 0 by default, as the paper), a snapshot every k updates;
//      d. every snapshot on held-out prompts (same sampling seed for all): gold − gold(step 0) and KL k1 to SFT.
//   5. fits per (size, comparisons) over seeds, the paper's claims checked, report.html.
// Resume is by finished cell: each cell's result is a checkpoint of the run (step = cell ordinal; metrics.jsonl has a line
// per cell), the base stages are files loaded back from disk whether just written or found, so a resumed sweep computes every
// remaining cell from the same bits. PPO snapshots stay in memory (clones) and are evaluated when the run ends.
using System.Globalization;
using System.Text.Json;
using RlhfSharp.Alignment.Demo;
using RlhfSharp.Alignment.LanguageModeling;
using RlhfSharp.Alignment.Ppo;
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Feedback;
using RlhfSharp.Feedback.Labelers;
using RlhfSharp.Models;
using RlhfSharp.Runs;
using RlhfSharp.Tensors;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment.Evaluation;

/// <summary>Settings of an over-optimisation sweep (each is an option of `rlhf overopt`).</summary>
public sealed record OverOptimisationConfig
{
    [ConfigOption("Proxy reward-model sizes (GptConfig sizes: tiny, mini, small, ...), each pre-trained on the story world, then trained on comparisons.")]
    public string[] RmSizes { get; init; } = ["tiny", "mini", "small"];

    [ConfigOption("Numbers of oracle comparisons the proxies train on (each a prefix of one labelled pool).", Min = 20)]
    public int[] Comparisons { get; init; } = [300, 1000, 3000];

    [ConfigOption("Seeds of the cells: each seeds the proxy's training and the PPO run.", Min = 0)]
    public int[] Seeds { get; init; } = [1, 2, 3];

    [ConfigOption("n of best-of-n (1 is the initial policy).", Min = 1, Max = 1024)]
    public int[] NValues { get; init; } = [1, 2, 4, 8, 16, 32, 64];

    [ConfigOption("Size of the policy (pre-trained, then SFT; the initial policy of both methods).")]
    public string PolicySize { get; init; } = "tiny";

    [ConfigOption("Story-world documents for the tokenizer and every pre-training run.", Min = 100)]
    public int PretrainDocuments { get; init; } = 3000;

    [ConfigOption("BPE vocabulary size.", Min = 260)]
    public int VocabSize { get; init; } = 768;

    [ConfigOption("Pre-training steps of each size.", Min = 1)]
    public int PretrainSteps { get; init; } = 300;

    [ConfigOption("SFT demonstrations.", Min = 2)]
    public int SftExamples { get; init; } = 1000;

    [ConfigOption("SFT steps.", Min = 1)]
    public int SftSteps { get; init; } = 250;

    [ConfigOption("Longest sampled response (labels, best-of-n, PPO, evaluation), in tokens.", Min = 1)]
    public int MaxNewTokens { get; init; } = 32;

    [ConfigOption("Epochs of proxy reward-model training (Gao et al.: 1).", Min = 1)]
    public int RmEpochs { get; init; } = 1;

    [ConfigOption("Learning rate of proxy reward-model training.", Min = 0, MinExclusive = true)]
    public float RmLearningRate { get; init; } = 1e-3f;

    [ConfigOption("PPO updates per cell.", Min = 1)]
    public int PpoSteps { get; init; } = 16;

    [ConfigOption("Episodes per PPO update.", Min = 2)]
    public int PpoBatchSize { get; init; } = 16;

    [ConfigOption("PPO learning rate.", Min = 0, MinExclusive = true)]
    public float PpoLearningRate { get; init; } = 2e-4f;

    [ConfigOption("Fixed KL coefficient β of the PPO runs (Gao et al.: 0, the KL only measured).", Min = 0)]
    public double KlCoef { get; init; }

    [ConfigOption("PPO updates between evaluated snapshots (step 0, the SFT model, and the last step always are).", Min = 1)]
    public int SnapshotEvery { get; init; } = 2;

    [ConfigOption("Held-out prompts every PPO snapshot is evaluated on.", Min = 1)]
    public int EvalPrompts { get; init; } = 48;

    [ConfigOption("Held-out prompts of best-of-n (each gets max n samples).", Min = 1)]
    public int BestOfNPrompts { get; init; } = 32;

    [ConfigOption("Bootstrap resamples of every interval.", Min = 1)]
    public int Bootstrap { get; init; } = 1000;

    [ConfigOption("Seed of the shared stages (pre-training, SFT, labels, pools, evaluation prompts).", Min = 0)]
    public ulong Seed { get; init; } = 1;

    /// <summary>
    /// The cells in the order they run: seeds outermost, then sizes, then comparisons, so a sweep stopped early has the
    /// whole grid for its first seeds (every fit defined) rather than all seeds of a few cells.
    /// </summary>
    public IReadOnlyList<OverOptimisationCell> Cells() =>
        [.. Seeds.SelectMany(seed => RmSizes.SelectMany(s => Comparisons.Select(c => new OverOptimisationCell(s, c, seed))))];

    public void Validate()
    {
        if (RmSizes.Length == 0 || Comparisons.Length == 0 || Seeds.Length == 0 || NValues.Length == 0)
            throw new ArgumentException("overopt: --rm-sizes, --comparisons, --seeds and --n-values each need at least one value.");
        foreach (string size in RmSizes.Append(PolicySize))
            if (!GptConfig.Sizes.Contains(size)) throw new ArgumentException($"overopt: model size '{size}' is unknown; choose among {string.Join(", ", GptConfig.Sizes)}.");
        void Distinct<T>(string name, IReadOnlyList<T> values)
        {
            if (values.Distinct().Count() != values.Count) throw new ArgumentException($"overopt: {name} lists a value twice ({string.Join(" ", values)}).");
        }
        Distinct("--rm-sizes", RmSizes);
        Distinct("--comparisons", Comparisons);
        Distinct("--seeds", Seeds);
        Distinct("--n-values", NValues);
        if (NValues.Length < 2) throw new ArgumentException("overopt: --n-values needs at least two values of n (one d > 0) to fit best-of-n.");
        if ((PpoSteps + SnapshotEvery - 1) / SnapshotEvery < 2) throw new ArgumentException($"overopt: --ppo-steps {PpoSteps} with --snapshot-every {SnapshotEvery} gives fewer than two snapshots after step 0; the RL fit needs two.");
        ConfigRanges.Validate(this, "overopt settings");
    }
}

/// <summary>One cell of the sweep.</summary>
public sealed record OverOptimisationCell(string RmSize, int Comparisons, int Seed)
{
    public string Name => string.Create(CultureInfo.InvariantCulture, $"{RmSize}-c{Comparisons}-s{Seed}");
}

/// <summary>Best-of-n at one n: analytic KL, d, the proxy's and gold's expectation for the pick, and gold gained over n = 1.</summary>
public sealed record BestOfNGain(int N, double Kl, double D, double Proxy, double Gold, double GoldGain);

/// <summary>One PPO snapshot: KL k1 to SFT (clipped at 0 for d), proxy, gold and gold gained over step 0.</summary>
public sealed record RlSnapshotGain(int Step, double Kl, double D, double Proxy, double Gold, double GoldGain);

/// <summary>Everything one cell measured.</summary>
public sealed record OverOptimisationCellResult(OverOptimisationCell Cell, double RmHeldOutAccuracy, IReadOnlyList<BestOfNGain> BestOfN, IReadOnlyList<RlSnapshotGain> Rl);

/// <summary>
/// The fits of one (RM size, comparisons) pair over its seeds (null where the points do not determine a fit); MaxBestOfND
/// and MaxRlD bound the measured d; MeanBestOfN (per n, in n order) and MeanRl (per snapshot, in step order) average d and
/// gold gain over the seeds.
/// </summary>
public sealed record OverOptimisationFitRow(string RmSize, int Comparisons, int Seeds, double RmHeldOutAccuracy, ScalingLawFit? BestOfN, ScalingLawFit? Rl,
    double MaxBestOfND, double MaxRlD, IReadOnlyList<GoldGainPoint> MeanBestOfN, IReadOnlyList<GoldGainPoint> MeanRl);

/// <summary>The sweep's results: every cell, the fits and the claims.</summary>
public sealed record OverOptimisationResult(IReadOnlyList<OverOptimisationCellResult> Cells, IReadOnlyList<OverOptimisationFitRow> Fits, IReadOnlyList<ClaimCheck> Claims, bool Cancelled);

/// <summary>Runs the sweep in a run folder (RunDirectory); finished cells are checkpoints and are not run again.</summary>
public sealed class OverOptimisationSweep(OverOptimisationConfig config)
{
    public const string BaseFolder = "base";
    public const string CellFileName = "cell.json";
    private const string Done = "done";

    /// <summary>How cell results and the sweep's result are written (named literals: a cell whose reward model held out no pair has accuracy NaN).</summary>
    public static JsonSerializerOptions JsonOptions => Json;

    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };
    private readonly IDemoTask _task = new StoryDemoTask();

    public OverOptimisationConfig Config { get; } = config;

    /// <summary>
    /// Runs the base stages not yet on disk and every cell not yet a checkpoint of <paramref name="run"/>, then fits.
    /// Cancellation stops between (or inside) cells: finished cells stay, the interrupted one starts over on resume.
    /// </summary>
    public OverOptimisationResult Run(RunDirectory run, IProgress<AlignmentProgress>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(run);
        Config.Validate();
        if (!run.Resumed) run.WriteConfig(Config);
        var cells = Config.Cells();
        var results = new List<OverOptimisationCellResult>();
        foreach (var checkpoint in run.Checkpoints())
        {
            if (checkpoint.Step != results.Count + 1 || checkpoint.Step > cells.Count) break;
            var result = JsonSerializer.Deserialize<OverOptimisationCellResult>(File.ReadAllText(Path.Combine(checkpoint.Path, CellFileName)), Json)
                ?? throw new FormatException($"{checkpoint.Path}/{CellFileName}: empty cell result.");
            if (result.Cell != cells[results.Count])
                throw new InvalidOperationException($"{checkpoint.Path}: holds cell {result.Cell.Name}, but the settings put {cells[results.Count].Name} there; resume with the settings the run started with.");
            results.Add(result);
        }
        // Lines of cells that were interrupted after logging are dropped by the metrics writer (it resumes after the last checkpoint).
        if (results.Count < cells.Count)
        {
            var shared = PrepareBase(run.Path, progress, ct);
            for (int k = results.Count; k < cells.Count; k++)
            {
                if (ct.IsCancellationRequested) return Finish(results, cancelled: true);
                var cell = cells[k];
                OverOptimisationCellResult? result;
                try
                {
                    result = RunCell(shared, cell, progress is null ? null : new CellProgress($"cell {k + 1}/{cells.Count} {cell.Name}", progress), ct);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    result = null;
                }
                if (result is null) return Finish(results, cancelled: true);
                run.SaveCheckpoint(k + 1, dir => AtomicFile.WriteAllText(Path.Combine(dir, CellFileName), JsonSerializer.Serialize(result, Json)));
                run.Log(k + 1, CellMetrics(result));
                results.Add(result);
            }
        }
        return Finish(results, cancelled: false);
    }

    private OverOptimisationResult Finish(List<OverOptimisationCellResult> results, bool cancelled)
    {
        var fits = FitAll(results, Config.Bootstrap, Config.Seed);
        return new OverOptimisationResult(results, fits, OverOptimisationClaims.Check(fits, Config.RmSizes, Config.Comparisons), cancelled);
    }

    /// <summary>The fits per (RM size, comparisons), pooling the seeds' points; the bootstrap resamples seeds, then points.</summary>
    public static IReadOnlyList<OverOptimisationFitRow> FitAll(IReadOnlyList<OverOptimisationCellResult> results, int bootstrap, ulong seed)
    {
        var rows = new List<OverOptimisationFitRow>();
        foreach (var group in results.GroupBy(r => (r.Cell.RmSize, r.Cell.Comparisons)))
        {
            var cells = group.ToList();
            var bon = cells.SelectMany(c => c.BestOfN.Select(p => new GoldGainPoint(p.D, p.GoldGain, c.Cell.Seed))).ToList();
            var rl = cells.SelectMany(c => c.Rl.Select(p => new GoldGainPoint(p.D, p.GoldGain, c.Cell.Seed))).ToList();
            ScalingLawFit? TryFit(OverOptimisationForm form, List<GoldGainPoint> points) =>
                GaoScalingLaws.LeastSquares(form, points) is null ? null : GaoScalingLaws.Fit(form, points, bootstrap, seed);
            rows.Add(new OverOptimisationFitRow(group.Key.RmSize, group.Key.Comparisons, cells.Count, cells.Average(c => c.RmHeldOutAccuracy),
                TryFit(OverOptimisationForm.BestOfN, bon), TryFit(OverOptimisationForm.Rl, rl), bon.Max(p => p.D), rl.Max(p => p.D),
                [.. cells[0].BestOfN.Select((p, i) => new GoldGainPoint(cells.Average(c => c.BestOfN[i].D), cells.Average(c => c.BestOfN[i].GoldGain), 0))],
                [.. cells[0].Rl.Select((p, i) => new GoldGainPoint(cells.Average(c => c.Rl[i].D), cells.Average(c => c.Rl[i].GoldGain), 0))]));
        }
        return rows;
    }

    private static Dictionary<string, double> CellMetrics(OverOptimisationCellResult r)
    {
        var m = new Dictionary<string, double>
        {
            ["overopt/rm_accuracy"] = r.RmHeldOutAccuracy,
            ["overopt/bon_gold_gain_max_n"] = r.BestOfN[^1].GoldGain,
            ["overopt/bon_proxy_max_n"] = r.BestOfN[^1].Proxy,
            ["overopt/rl_gold_gain_last"] = r.Rl[^1].GoldGain,
            ["overopt/rl_proxy_last"] = r.Rl[^1].Proxy,
            ["overopt/rl_kl_last"] = r.Rl[^1].Kl,
        };
        return m;
    }

    /// <summary>What every cell shares, loaded from the run folder.</summary>
    private sealed record Shared(ITokenizer Tokenizer, Gpt Sft, IReadOnlyDictionary<string, Gpt> Bases, IReadOnlyList<PreferenceExample> Labels,
        IReadOnlyList<string> PpoPrompts, IReadOnlyList<string> EvalPrompts, BestOfNPool Pool);

    /// <summary>max(n) SFT samples per prompt with their gold, stored once.</summary>
    public sealed record BestOfNPool(IReadOnlyList<string> Prompts, IReadOnlyList<IReadOnlyList<string>> Texts, IReadOnlyList<IReadOnlyList<int[]>> Rows, IReadOnlyList<IReadOnlyList<double>> Gold);

    private Shared PrepareBase(string runPath, IProgress<AlignmentProgress>? progress, CancellationToken ct)
    {
        string root = Path.Combine(runPath, BaseFolder);
        Directory.CreateDirectory(root);
        string Dir(string stage) => Path.Combine(root, stage);
        bool Todo(string stage)
        {
            if (File.Exists(Path.Combine(Dir(stage), Done))) return false;
            ct.ThrowIfCancellationRequested();
            if (Directory.Exists(Dir(stage))) Directory.Delete(Dir(stage), recursive: true);
            Directory.CreateDirectory(Dir(stage));
            return true;
        }
        void Finish(string stage) => AtomicFile.WriteAllText(Path.Combine(Dir(stage), Done), "");
        IProgress<AlignmentProgress>? As(string stage) => progress is null ? null : new CellProgress(stage, progress);
        ulong seed = Config.Seed;

        // 1. Tokenizer and a pre-trained model of every size (the same documents and data order for each).
        var docs = new Lazy<IReadOnlyList<string>>(() => _task.PretrainDocuments(seed, Config.PretrainDocuments));
        if (Todo("tokenizer"))
        {
            _task.CreateTokenizer(docs.Value, Config.VocabSize).Save(Dir("tokenizer"));
            Finish("tokenizer");
        }
        var tokenizer = TokenizerFiles.Load(Dir("tokenizer"));
        var bases = new Dictionary<string, Gpt>();
        foreach (string size in Config.RmSizes.Append(Config.PolicySize).Distinct())
        {
            string stage = "pretrain-" + size;
            if (Todo(stage))
            {
                var trainer = new PretrainTrainer(new PretrainConfig
                {
                    ModelSize = size,
                    Training = new LmTrainingOptions { LearningRate = 3e-3f, WarmupSteps = Math.Min(20, Config.PretrainSteps / 4), Steps = Config.PretrainSteps, EvalInterval = Config.PretrainSteps, EvalBatches = 2, CheckpointInterval = 0, Seed = seed },
                });
                var model = trainer.CreateModel(tokenizer);
                var r = trainer.Train(model, tokenizer, PretrainTrainer.Tokenize(tokenizer, docs.Value), run: null, progress: As(stage), ct: ct);
                if (r.Cancelled) throw new OperationCanceledException($"overopt: stopped during {stage}.");
                model.Save(Dir(stage));
                Finish(stage);
            }
            bases[size] = Gpt.Load(Dir(stage));
        }

        // 1b. SFT of the policy on the story world's demonstrations.
        if (Todo("sft"))
        {
            var model = Gpt.Load(Dir("pretrain-" + Config.PolicySize));
            var trainer = new SftTrainer(new SftConfig
            {
                Training = new LmTrainingOptions { LearningRate = 2e-3f, WarmupSteps = Math.Min(20, Config.SftSteps / 4), Steps = Config.SftSteps, EvalInterval = Config.SftSteps, EvalBatches = 2, CheckpointInterval = 0, Seed = seed + 1 },
            });
            var r = trainer.Train(model, tokenizer, _task.SftExamples(seed + 1, Config.SftExamples)!, run: null, progress: As("sft"), ct: ct);
            if (r.Cancelled) throw new OperationCanceledException("overopt: stopped during SFT.");
            model.Save(Dir("sft"));
            Finish("sft");
        }
        var sft = Gpt.Load(Dir("sft"));
        var sampler = new PolicyEvaluator(new EvaluationOptions { MaxNewTokens = Config.MaxNewTokens, Seed = seed + 2 });

        // 2. The labelled pool: two SFT samples per training prompt, the oracle's preference (as `rlhf demo`).
        string labelsPath = Path.Combine(Dir("labels"), "preferences.jsonl");
        if (Todo("labels"))
        {
            var prompts = _task.TrainingPrompts(seed + 2, Config.Comparisons.Max());
            var a = sampler.Sample(sft, sft, tokenizer, prompts, new Rng(seed + 21), ct);
            var b = sampler.Sample(sft, sft, tokenizer, prompts, new Rng(seed + 22), ct);
            var oracle = new OracleLabeler((p, c) => _task.Gold(p, c.Content), new OracleOptions(Temperature: _task.OracleTemperature, TieThreshold: _task.OracleTieThreshold, Seed: (int)(seed % int.MaxValue)));
            var lines = new List<string>();
            for (int i = 0; i < prompts.Count; i++)
            {
                var answer = oracle.Choose([_task.Gold(prompts[i], a.Texts[i]), _task.Gold(prompts[i], b.Texts[i])]);
                if (answer.Kind != AnswerKind.Preferred || answer.Preferred is not int k) continue;
                lines.Add(JsonSerializer.Serialize(new Dictionary<string, string> { ["prompt"] = prompts[i], ["chosen"] = k == 0 ? a.Texts[i] : b.Texts[i], ["rejected"] = k == 0 ? b.Texts[i] : a.Texts[i] }));
            }
            AtomicFile.WriteAllText(labelsPath, string.Join("\n", lines) + "\n");
            Finish("labels");
        }
        var labels = PreferenceData.ReadJsonl(labelsPath);
        if (labels.Count < Config.Comparisons.Max())
            throw new InvalidOperationException($"overopt: the oracle labelled {labels.Count} pairs, fewer than --comparisons {Config.Comparisons.Max()} (ties are not labelled).");

        // 3. The best-of-n pool: max(n) SFT samples per held-out prompt, gold scored once.
        var heldOut = _task.HeldOutPrompts(seed + 99, Math.Max(Config.EvalPrompts, Config.BestOfNPrompts));
        string poolPath = Path.Combine(Dir("best-of-n"), "pool.json");
        if (Todo("best-of-n"))
        {
            int maxN = Config.NValues.Max();
            var prompts = heldOut.Take(Config.BestOfNPrompts).ToList();
            var repeated = prompts.SelectMany(p => Enumerable.Repeat(p, maxN)).ToList();
            var s = sampler.Sample(sft, sft, tokenizer, repeated, new Rng(seed + 9), ct);
            var pool = new BestOfNPool(prompts,
                [.. prompts.Select((_, i) => (IReadOnlyList<string>)s.Texts.Skip(i * maxN).Take(maxN).ToList())],
                [.. prompts.Select((_, i) => (IReadOnlyList<int[]>)s.Rows.Skip(i * maxN).Take(maxN).ToList())],
                [.. prompts.Select((p, i) => (IReadOnlyList<double>)s.Texts.Skip(i * maxN).Take(maxN).Select(t => _task.Gold(p, t)).ToList())]);
            AtomicFile.WriteAllText(poolPath, JsonSerializer.Serialize(pool));
            Finish("best-of-n");
        }
        var loadedPool = JsonSerializer.Deserialize<BestOfNPool>(File.ReadAllText(poolPath))!;
        return new Shared(tokenizer, sft, bases, labels, _task.TrainingPrompts(seed + 4, 2000), heldOut.Take(Config.EvalPrompts).ToList(), loadedPool);
    }

    /// <summary>One cell (steps 4a–d), or null when cancelled inside it.</summary>
    private OverOptimisationCellResult? RunCell(Shared shared, OverOptimisationCell cell, IProgress<AlignmentProgress>? progress, CancellationToken ct)
    {
        ulong cellSeed = (ulong)cell.Seed;
        // 4a. The proxy: the size's pre-trained model on the first `comparisons` labels.
        var rm = new RewardTrainer(new RewardTrainerConfig
        {
            Members = 1, Epochs = Config.RmEpochs, LearningRate = Config.RmLearningRate, HeldOutFraction = 0.1, NormalizationSamples = 32,
            NormalizationMaxNewTokens = Config.MaxNewTokens, Seed = cellSeed * 1000 + 3,
        }).Train(shared.Bases[cell.RmSize], shared.Tokenizer, shared.Labels.Take(cell.Comparisons).ToList(), progress: progress, ct: ct);
        if (ct.IsCancellationRequested) return null;
        var proxy = new RewardModelReward(rm.Ensemble);

        // 4b. Best-of-n on the shared pool: for each prompt, E over n-subsets of the gold (and proxy) of the proxy's pick.
        var ns = Config.NValues.Order().ToList();
        var bonProxy = new double[ns.Count];
        var bonGold = new double[ns.Count];
        var pool = shared.Pool;
        for (int i = 0; i < pool.Prompts.Count; i++)
        {
            ct.ThrowIfCancellationRequested();
            var scores = proxy.Score([.. Enumerable.Repeat(pool.Prompts[i], pool.Texts[i].Count)], pool.Texts[i], pool.Rows[i]).Select(x => (double)x).ToList();
            for (int k = 0; k < ns.Count; k++)
            {
                bonProxy[k] += BestOfNCurve.ExpectedOfBest(scores, scores, ns[k]);
                bonGold[k] += BestOfNCurve.ExpectedOfBest(scores, pool.Gold[i], ns[k]);
            }
        }
        double goldInit = pool.Gold.Average(g => g.Average());
        var bon = ns.Select((n, k) =>
        {
            double kl = GaoScalingLaws.KlBestOfN(n), gold = bonGold[k] / pool.Prompts.Count;
            return new BestOfNGain(n, kl, Math.Sqrt(kl), bonProxy[k] / pool.Prompts.Count, gold, gold - goldInit);
        }).ToList();

        // 4c. PPO against the proxy at fixed β; the value model starts from the SFT model for every RM size alike.
        var ppo = new PpoConfig
        {
            Steps = Config.PpoSteps, BatchSize = Config.PpoBatchSize, MiniBatchSize = Math.Max(1, Config.PpoBatchSize / 2), Epochs = 4, MaxNewTokens = Config.MaxNewTokens,
            LearningRate = Config.PpoLearningRate, InitialKlCoef = Config.KlCoef, TargetKl = null, Seed = cellSeed * 1000 + 5, SnapshotEvery = Config.SnapshotEvery, CheckpointInterval = 0,
        };
        var snapshots = new List<(int Step, Gpt Policy)>();
        var r = new PpoTrainer(ppo).Train(shared.Sft, shared.Tokenizer, shared.PpoPrompts, proxy, rewardModel: null,
            new PpoTrainer.Options(Progress: progress, Snapshot: (step, policy) => snapshots.Add((step, policy.Clone()))), ct);
        if (r.Cancelled) return null;

        // 4d. Every snapshot on the held-out prompts, with the same sampling seed (common random numbers across snapshots and cells).
        var evaluator = new CheckpointEvaluator(new EvaluationOptions { MaxNewTokens = Config.MaxNewTokens, Seed = Config.Seed + 8 });
        var evals = snapshots.Select(s => evaluator.Evaluate(cell.Name, s.Step, s.Policy, shared.Sft, shared.Tokenizer, shared.EvalPrompts, proxy, _task.Gold, ct)).ToList();
        double rlInit = evals[0].Gold;
        var rl = evals.Select(e => new RlSnapshotGain(e.Step, e.KlK1, e.SqrtKl, e.Proxy, e.Gold, e.Gold - rlInit)).ToList();
        return new OverOptimisationCellResult(cell, rm.HeldOut?.Accuracy ?? double.NaN, bon, rl);
    }

    private sealed class CellProgress(string stage, IProgress<AlignmentProgress> inner) : IProgress<AlignmentProgress>
    {
        public void Report(AlignmentProgress value) => inner.Report(value with { Stage = stage + " " + value.Stage });
    }
}
