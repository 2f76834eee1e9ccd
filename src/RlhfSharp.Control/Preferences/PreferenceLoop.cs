// Deep RL from human preferences (Christiano et al. 2017) on the control tasks. The agent never sees the true reward:
//   1. roll the untrained policy, cut segments (~1.5 s) into the pool, ask the pre-RL share of the label budget, fit r̂;
//   2. PPO on r̂(o, a) (ensemble mean, unit root mean square over recent experience; zero at the absorbing state's r̂ once a
//      labelled clip has ended, optimistically above the recent mean before — see Renormalise) via PpoHooks, with the
//      paper's entropy bonus;
//   3. between PPO updates, as the label schedule allows: pick pairs (the newest unshown clip that ended, then ensemble
//      disagreement or random), ask the labeller, refit the ensemble on bootstrap resamples (SegmentPreferenceLoss with 10%
//      random answers, ties ½/½), renormalise.
// Freezing the predictor after step 1 is the offline-reward-model ablation that shows reward hacking.
using System.Diagnostics;
using System.Text.Json;
using RlhfSharp.Control.Clips;
using RlhfSharp.Control.Rl;
using RlhfSharp.Feedback;
using RlhfSharp.Feedback.Labelers;
using RlhfSharp.Models.Checkpoints;
using RlhfSharp.Runs;
using RlhfSharp.Tensors;

namespace RlhfSharp.Control.Preferences;

/// <summary>Settings of the preference loop.</summary>
public sealed record PreferenceConfig
{
    /// <summary>Environment id.</summary>
    public required string EnvId { get; init; }

    /// <summary>PPO settings; TotalSteps is the RL budget in env steps.</summary>
    public required PpoConfig Ppo { get; init; }

    /// <summary>Total labels and how they spread over training.</summary>
    public required LabelSchedule Schedule { get; init; }

    /// <summary>How query pairs are chosen.</summary>
    public SelectionRule Selection { get; init; } = SelectionRule.Disagreement;

    /// <summary>The reward predictor.</summary>
    public RewardEnsembleConfig Predictor { get; init; } = new();

    /// <summary>Segment length in simulated seconds (the paper's clips are 1–2 s; 1.5 s by default).</summary>
    public double SegmentSeconds { get; init; } = 1.5;

    /// <summary>
    /// Most recent segments kept for query selection. Long on purpose: queries must be able to set what the policy does now
    /// against what it did before. With 400 (Pendulum: 12k steps, six updates) every pair came from the current behaviour;
    /// when the policy drifted from balancing into spinning, the labeller compared spinning with spinning, never with the
    /// balancing it replaced, and nothing told the predictor the drift was worse: Pendulum 350 labels seed 3 reached −147
    /// at 57k steps and ended at −796, 1,400 labels seed 2 ended at −1,185. With 2,000 they end at −207 and −171 (Pendulum
    /// 700 labels seeds 1–3: −170/−139/−137, were −226/−150/−145).
    /// </summary>
    public int PoolCapacity { get; init; } = 2000;

    /// <summary>
    /// Smallest entropy coefficient PPO runs with on r̂ (the larger of this and Ppo.EntropyCoef is used). Christiano et al.
    /// (App. A.1) add an entropy bonus of 0.01 when learning from the reward predictor, for the exploration a changing
    /// reward needs. Without it (the tuned CartPole preset has none) CartPole 700 labels seed 2 settled, while r̂ still
    /// favoured some live states over others, on a near-deterministic policy (entropy 0.13) that drifts off the track in
    /// ~120 steps; r̂ later became flat (every live state +0.81 over the absorbing one, the true reward's shape) but the
    /// policy never recovered (true return 130; 500 with the bonus, seeds 1–3).
    /// </summary>
    public double MinEntropyCoef { get; init; } = 0.01;

    /// <summary>
    /// Each label batch pairs the newest clip in which an episode ended, if one has not been shown yet, with a random clip;
    /// the rest of the batch is chosen by Selection. Endings are the rarest and most telling moments of an episodic task,
    /// and disagreement cannot find them: no member has seen the absorbing state before the first labelled ending, so all
    /// agree on it. In a trial that held PPO's reward at 0 until r̂ showed held-out evidence, Acrobot seed 3's policy reached
    /// the line at 4k steps, yet none of its 700 queries held an ending clip and r̂ never learned that reaching it is good
    /// (true return −500).
    /// </summary>
    public bool AskEndings { get; init; } = true;

    /// <summary>
    /// Until a labelled clip has shown what ending an episode is worth, ending is taken to be worth this many normalised
    /// units per step more than living (optimism about the unknown: PPO seeks endings, the labeller is shown them — see
    /// AskEndings — and the learned r̂_abs takes over). Where episodes have a fixed length (Pendulum) a constant changes
    /// nothing. On Acrobot, whose random play never reaches the line, a neutral zero (the recent mean) let PPO settle on
    /// whatever r̂ had fitted to the oracle's random answers to equal clips (seed 1: entropy 1.1 → 0.1 in 20k steps, the
    /// line never reached); with 1, seeds 1–6 reach the line in 82–95 steps after 300k, as true-reward PPO does.
    /// </summary>
    public double EndingOptimism { get; init; } = 1.0;

    /// <summary>Minibatch steps per member for the first fit.</summary>
    public int InitialFitSteps { get; init; } = 300;

    /// <summary>Minibatch steps per member for each refit.</summary>
    public int RefitSteps { get; init; } = 60;

    /// <summary>Labels asked for together (and a refit after each batch); the last update flushes what is due.</summary>
    public int LabelBatch { get; init; } = 10;

    /// <summary>Recent transitions over which r̂ is normalised.</summary>
    public int NormalizationWindow { get; init; } = 4096;

    /// <summary>PPO updates between renormalisations of r̂ when no refit happened.</summary>
    public int RenormalizeEvery { get; init; } = 10;

    /// <summary>Render each segment as an animated SVG in the queries (needed by people; the oracle reads metadata only).</summary>
    public bool RenderClips { get; init; }

    /// <summary>Fit once before RL, then never again (the frozen, offline reward model of the reward-hacking ablation).</summary>
    public bool FreezeAfterFirstFit { get; init; }

    /// <summary>Campaign name of the queries.</summary>
    public string Campaign { get; init; } = "prefrl";

    /// <summary>
    /// Refuses settings the loop cannot run: clips for people on an env without a clip renderer (listing the renderable
    /// ones; today every registered env renders, so only an id the renderers lack meets it), an unknown env, a label budget
    /// below its pre-RL share (both numbers), and bad PPO or segment settings.
    /// </summary>
    public void Validate()
    {
        if (RenderClips && !ClipRenderers.RenderableEnvs.Contains(EnvId))
            throw new ArgumentException($"prefrl: people label clips, and '{EnvId}' has no clip renderer. Renderable envs: {string.Join(", ", ClipRenderers.RenderableEnvs)}.");
        EnvRegistry.Make(EnvId); // an unknown id is refused with the list of valid ones
        Schedule.Validate();
        Ppo.Validate();
        if (!(SegmentSeconds > 0)) throw new ArgumentOutOfRangeException(nameof(SegmentSeconds), SegmentSeconds, "prefrl: SegmentSeconds must be > 0.");
        if (PoolCapacity < 2) throw new ArgumentOutOfRangeException(nameof(PoolCapacity), PoolCapacity, "prefrl: PoolCapacity must be ≥ 2.");
        if (NormalizationWindow < 1) throw new ArgumentOutOfRangeException(nameof(NormalizationWindow), NormalizationWindow, "prefrl: NormalizationWindow must be ≥ 1.");
        if (!(MinEntropyCoef >= 0)) throw new ArgumentOutOfRangeException(nameof(MinEntropyCoef), MinEntropyCoef, "prefrl: MinEntropyCoef must be ≥ 0.");
        if (!(EndingOptimism >= 0)) throw new ArgumentOutOfRangeException(nameof(EndingOptimism), EndingOptimism, "prefrl: EndingOptimism must be ≥ 0.");
        if (LabelBatch < 1) throw new ArgumentOutOfRangeException(nameof(LabelBatch), LabelBatch, "prefrl: LabelBatch must be ≥ 1.");
    }
}

/// <summary>What a run produced.</summary>
/// <param name="Policy">The final policy.</param>
/// <param name="Predictor">The final reward predictor.</param>
/// <param name="Comparisons">Every answered comparison used for training.</param>
/// <param name="LabelsUsed">Queries answered (skips included: they spend the budget).</param>
/// <param name="Metrics">One row per PPO update (true and predicted episode returns, labels, predictor accuracy).</param>
/// <param name="WallSeconds">Wall time of the whole loop (of this process, when resumed).</param>
/// <param name="Cancelled">True when the loop stopped on its cancellation token, after writing a checkpoint.</param>
public sealed record PreferenceResult(
    ControlPolicy Policy, RewardEnsemble Predictor, IReadOnlyList<Comparison> Comparisons, int LabelsUsed, IReadOnlyList<MetricsRow> Metrics, double WallSeconds,
    bool Cancelled = false);

/// <summary>Evaluation of a run: true returns, and how well r̂ summed over the same episodes tracks them.</summary>
public sealed record PreferenceEvaluation(double MeanTrueReturn, double RewardCorrelation, double[] TrueReturns, double[] PredictedReturns);

public static class PreferenceLoop
{
    /// <summary>The loop without a run folder (benchmarks, tests).</summary>
    public static PreferenceResult Run(PreferenceConfig cfg, ILabeler labeler, ulong seed,
        Action<MetricsRow>? onMetrics = null, Action<TrainProgress>? onProgress = null, Action<Query>? onQuery = null) =>
        Run(cfg, labeler, seed, new TrainOptions(OnMetrics: onMetrics, Progress: TrainOptions.ProgressOf(onProgress)), default, onQuery);

    /// <summary>
    /// The loop; with options.Run it keeps the run contract: config.json's "preferences" section, PPO's metrics and
    /// checkpoints, each checkpoint holding the loop's state too (PreferenceCheckpoint), a stop at a checkpoint when
    /// <paramref name="ct"/> is cancelled, and a resumed run that continues from its latest checkpoint bit-identically
    /// (with the oracle; people's answers are in their store and are not asked again).
    /// </summary>
    public static PreferenceResult Run(PreferenceConfig cfg, ILabeler labeler, ulong seed, TrainOptions options, CancellationToken ct = default, Action<Query>? onQuery = null)
    {
        cfg.Validate();
        var run = options.Run;
        var checkpoint = run is { Resumed: true } ? run.LatestCheckpoint() : null;
        if (run is { Resumed: false }) run.UpdateConfig(root => root[PreferencesSection] = JsonSerializer.SerializeToNode(cfg, RunDirectory.ConfigJsonOptions));
        var watch = Stopwatch.StartNew();
        var rng = new Rng(seed ^ 0x9E3779B97F4A7C15UL);
        var probe = EnvRegistry.Make(cfg.EnvId);
        int s = probe.ObservationSpace.FlatSize, a = probe.ActionSpace.FlatSize;
        int segLen = Trajectory.StepsFor(cfg.EnvId, cfg.SegmentSeconds);
        var pool = new SegmentPool(cfg.EnvId, cfg.Ppo.NumEnvs, segLen, cfg.PoolCapacity);
        var ensemble = new RewardEnsemble(s, probe.ActionSpace, cfg.Predictor, rng.Fork());
        var comparisons = new List<Comparison>();
        int labelsUsed = 0;
        long queryId = 0;

        // Where the loop's own time goes (cumulative seconds, logged as perf/prefrl_* beside PPO's rollout and update times).
        double askBefore = 0, fitBefore = 0, rewardBefore = 0, renormBefore = 0; // seconds spent before a resume
        var oracleScores = new List<double[]>(); // each query's two true returns, so a resumed oracle can replay its draws
        var askWatch = new Stopwatch();
        var fitWatch = new Stopwatch();
        var rewardWatch = new Stopwatch();
        var renormWatch = new Stopwatch();
        // Segments already shown to the labeller, and the newest clip in which an episode ended that has not been.
        var asked = new HashSet<Trajectory>(ReferenceEqualityComparer.Instance);
        int? NewestUnaskedEnding()
        {
            for (int k = pool.Segments.Count - 1; k >= 0; k--)
                if (pool.Segments[k].LiveSteps < pool.Segments[k].Length && !asked.Contains(pool.Segments[k])) return k;
            return null;
        }
        void Ask(int count)
        {
            if (count <= 0) return;
            askWatch.Start();
            var pairs = new List<(Trajectory First, Trajectory Second)>();
            if (cfg.AskEndings && NewestUnaskedEnding() is int e)
            {
                int j = rng.NextInt(pool.Segments.Count - 1);
                pairs.Add((pool.Segments[e], pool.Segments[j >= e ? j + 1 : j]));
            }
            pairs.AddRange(QuerySelection.Select(pool.Segments, count - pairs.Count, cfg.Selection, ensemble, rng));
            foreach (var (first, second) in pairs)
            {
                asked.Add(first);
                asked.Add(second);
                var nq = SegmentQueries.ToQuery(first, second, cfg.RenderClips, cfg.Campaign);
                var query = new Query(++queryId, nq.Kind, nq.Prompt, nq.Candidates, nq.Campaign, null, DateTimeOffset.UtcNow);
                onQuery?.Invoke(query);
                oracleScores.Add([first.Return, second.Return]);
                var answer = Blocking.Run(() => labeler.AnswerAsync(query));
                labelsUsed++;
                if (SegmentQueries.Mu(answer) is float mu) comparisons.Add(new Comparison(first, second, mu));
            }
            askWatch.Stop();
        }

        // 2.–3. PPO on the normalised prediction, labelling and refitting between updates.
        // The last NormalizationWindow transitions, a ring of [W, S] observations and [W, A] actions (row order is irrelevant).
        int window = cfg.NormalizationWindow, recentCount = 0, recentNext = 0;
        var recentObs = new float[window * s];
        var recentAct = new float[window * a];
        void Remember(ReadOnlySpan<float> o, ReadOnlySpan<float> ac)
        {
            o.CopyTo(recentObs.AsSpan(recentNext * s, s));
            ac.CopyTo(recentAct.AsSpan(recentNext * a, a));
            recentNext = (recentNext + 1) % window;
            recentCount = Math.Min(recentCount + 1, window);
        }
        double rMean = 0, rStd = 1, rZero = 0, rScale = 1;
        void Renormalise()
        {
            if (recentCount == 0) return;
            renormWatch.Start();
            var p = ensemble.Predict(recentObs.AsSpan(0, recentCount * s), recentAct.AsSpan(0, recentCount * a), recentCount);
            rMean = p.Average();
            rStd = Math.Max(1e-6, Math.Sqrt(p.Average(v => (v - rMean) * (v - rMean))));
            // Zero point. The clips hold a terminated episode's last state still (SegmentPool), so the labeller judged dying
            // as staying in that absorbing state, and the predictor learned its reward r̂_abs (RewardEnsemble); PPO's GAE values
            // a terminal state at 0. With the recent mean as zero, half the states pay less than nothing and dying becomes an
            // escape; with r̂_abs as zero, PPO's episode ends exactly as the labeller saw it continue, and living pays exactly as
            // much more than dying as the labels say — whatever states the policy now visits.
            // Scale: the root mean square of r̂ − zero, so PPO's per-step reward stays near unit size. Dividing by the spread
            // alone let the reward grow to (mean − zero)/spread ≈ 6 as the fit sharpened, values to ~300, and PPO's value
            // clip (±0.2 around the old values) could no longer follow them: true return fell from 500 to ~100.
            // Floor: 1/segment length. r̂ is in Bradley–Terry logits per step, so a per-step difference below 1/L moves a clip's
            // preference by less than one logit — finer than the labels resolve. Without the floor a predictor that has only
            // fitted the oracle's random answers to ties (Acrobot seed 1: random play never reached the line, spread 0.02)
            // was blown up to unit size, and PPO collapsed onto that noise (entropy 1.1 → 0.03 in 20k steps, −500 to the end).
            // Before any labelled clip has ended, r̂_abs means nothing: the zero sits EndingOptimism scale units above the
            // recent mean (see there).
            double floor = 1.0 / segLen;
            if (comparisons.Any(c => c.First.LiveSteps < c.First.Length || c.Second.LiveSteps < c.Second.Length))
            {
                rZero = ensemble.AbsorbingReward();
                double z = rZero;
                rScale = Math.Max(floor, Math.Sqrt(p.Average(v => (v - z) * (v - z))));
            }
            else
            {
                rScale = Math.Max(floor, rStd);
                rZero = rMean + cfg.EndingOptimism * rScale;
            }
            renormWatch.Stop();
        }
        var predictedSoFar = new double[cfg.Ppo.NumEnvs];
        var predictedFinished = new List<double>();
        double[] Reward(float[] rawObs, float[] actions, VectorStep step)
        {
            rewardWatch.Start();
            pool.Add(rawObs, actions, step);
            int n = step.Rewards.Length;
            for (int i = 0; i < n; i++) Remember(rawObs.AsSpan(i * s, s), actions.AsSpan(i * a, a));
            double[] r = ensemble.Predict(rawObs, actions, n);
            for (int i = 0; i < n; i++)
            {
                predictedSoFar[i] += r[i];
                if (step.Terminated[i] || step.Truncated[i]) { predictedFinished.Add(predictedSoFar[i]); predictedSoFar[i] = 0; }
                r[i] = (r[i] - rZero) / rScale;
            }
            rewardWatch.Stop();
            return r;
        }
        int updates = (int)(cfg.Ppo.TotalSteps / cfg.Ppo.BatchSize);
        int due = 0;
        double accuracy = double.NaN, evidence = double.NaN;
        if (checkpoint is null)
        {
            // 1. Segments of the untrained (uniform random) policy, the pre-RL labels and the first fit.
            var warm = new VectorEnv(cfg.EnvId, cfg.Ppo.NumEnvs, seed + 7919);
            float[] obs = warm.Reset();
            int wanted = Math.Min(cfg.PoolCapacity, Math.Max(2 * cfg.Schedule.PreRl, 40));
            for (int guard = 0; pool.Segments.Count < wanted && guard < 200_000; guard++)
            {
                var acts = new float[cfg.Ppo.NumEnvs * a];
                for (int i = 0; i < cfg.Ppo.NumEnvs; i++) probe.ActionSpace.Sample(rng).CopyTo(acts, i * a);
                var step = warm.Step(acts);
                pool.Add(obs, acts, step);
                obs = step.Observations;
            }
            ensemble.SetInputStatistics(pool.Segments);
            Ask(cfg.Schedule.PreRl);
            if (comparisons.Count == 0) throw new InvalidOperationException($"prefrl: all {labelsUsed} pre-RL queries were skipped; nothing to fit.");
            ensemble.Fit(comparisons, cfg.InitialFitSteps, rng);
            evidence = ensemble.OutOfBagEvidence();
            foreach (var seg in pool.Segments.TakeLast(cfg.NormalizationWindow / segLen))
                for (int t = 0; t < seg.LiveSteps; t++) Remember(seg.Observations[t], seg.Actions[t]);
            Renormalise();
            accuracy = ensemble.OutOfBagAccuracy();
        }
        else RestoreState(Path.Combine(checkpoint.Path, PreferenceCheckpoint.FolderName));
        void AfterUpdate(int update, long globalStep, Dictionary<string, double> values)
        {
            bool refitted = false;
            if (!cfg.FreezeAfterFirstFit)
            {
                due += cfg.Schedule.DueAt(update, updates);
                if (due > 0 && (due >= cfg.LabelBatch || update == updates))
                {
                    Ask(due);
                    due = 0;
                    fitWatch.Start();
                    ensemble.Fit(comparisons, cfg.RefitSteps, rng);
                    accuracy = ensemble.OutOfBagAccuracy();
                    evidence = ensemble.OutOfBagEvidence();
                    fitWatch.Stop();
                    refitted = true;
                }
            }
            // After a refit, and every RenormalizeEvery updates as the policy's states move even when the predictor does not.
            if (refitted || update % cfg.RenormalizeEvery == 0) Renormalise();
            values["prefrl/labels"] = labelsUsed;
            values["prefrl/comparisons"] = comparisons.Count;
            values["prefrl/rm_oob_accuracy"] = accuracy;
            values["prefrl/rm_oob_evidence"] = evidence;
            values["prefrl/predicted_episodic_return"] = predictedFinished.Count > 0 ? predictedFinished.Average() : double.NaN;
            values["prefrl/reward_mean"] = rMean;
            values["prefrl/reward_std"] = rStd;
            values["prefrl/reward_zero"] = rZero;
            values["prefrl/reward_scale"] = rScale;
            values["perf/prefrl_ask_seconds"] = askBefore + askWatch.Elapsed.TotalSeconds;
            values["perf/prefrl_fit_seconds"] = fitBefore + fitWatch.Elapsed.TotalSeconds;
            values["perf/prefrl_reward_seconds"] = rewardBefore + rewardWatch.Elapsed.TotalSeconds;
            values["perf/prefrl_renormalise_seconds"] = renormBefore + renormWatch.Elapsed.TotalSeconds;
            predictedFinished.Clear();
        }
        // The loop's state beside PPO's in each checkpoint (see PreferenceCheckpoint), and back from the run's latest one.
        void SaveState(string dir)
        {
            string sub = Path.Combine(dir, PreferenceCheckpoint.FolderName);
            Directory.CreateDirectory(sub);
            var table = new List<Trajectory>();
            var index = new Dictionary<Trajectory, int>(ReferenceEqualityComparer.Instance);
            int Id(Trajectory t)
            {
                if (!index.TryGetValue(t, out int i)) { i = table.Count; index[t] = i; table.Add(t); }
                return i;
            }
            int[] poolIds = [.. pool.Segments.Select(Id)];
            ComparisonRef[] comparisonRefs = [.. comparisons.Select(c => new ComparisonRef(Id(c.First), Id(c.Second), c.Mu))];
            int[] partialIds = [.. pool.Partials().Select(Id)];
            // Segments asked about that left the pool and no comparison holds can never be picked again: not kept.
            int[] askedIds = [.. asked.Where(index.ContainsKey).Select(t => index[t]).Order()];
            PreferenceCheckpoint.WriteSegments(Path.Combine(sub, PreferenceCheckpoint.SegmentsFileName), table);
            var comparisonIndex = new Dictionary<Comparison, int>(ReferenceEqualityComparer.Instance);
            for (int i = 0; i < comparisons.Count; i++) comparisonIndex[comparisons[i]] = i;
            var (adamSteps, outOfBag) = ensemble.Save(sub, comparisonIndex);
            Safetensors.Write(Path.Combine(sub, PreferenceCheckpoint.RecentFileName), new Dictionary<string, StoredTensor>
            {
                ["observations"] = new([recentObs.Length], recentObs),
                ["actions"] = new([recentAct.Length], recentAct),
            });
            TrainerCheckpoint.WriteState(sub, new PreferenceState(rng.GetState(), labelsUsed, queryId, due, accuracy, evidence,
                rMean, rStd, rZero, rScale, [.. predictedSoFar], [.. predictedFinished], recentCount, recentNext,
                poolIds, pool.Produced, partialIds, comparisonRefs, askedIds, adamSteps, outOfBag, [.. oracleScores],
                askBefore + askWatch.Elapsed.TotalSeconds, fitBefore + fitWatch.Elapsed.TotalSeconds,
                rewardBefore + rewardWatch.Elapsed.TotalSeconds, renormBefore + renormWatch.Elapsed.TotalSeconds));
        }
        void RestoreState(string sub)
        {
            var state = TrainerCheckpoint.ReadState<PreferenceState>(sub);
            var table = PreferenceCheckpoint.ReadSegments(Path.Combine(sub, PreferenceCheckpoint.SegmentsFileName), cfg.EnvId);
            string file = Path.Combine(sub, TrainerCheckpoint.StateFileName);
            Trajectory At(int i) => i >= 0 && i < table.Count ? table[i] : throw new FormatException($"{file}: segment index {i} is outside the {table.Count} segments saved.");
            if (state.PredictedSoFar.Length != predictedSoFar.Length) throw new FormatException($"{file}: {state.PredictedSoFar.Length} env copies; the run has {predictedSoFar.Length}.");
            pool.Restore(state.PoolSegments.Select(At), [.. state.Partials.Select(At)], state.PoolProduced);
            comparisons.AddRange(state.Comparisons.Select(c => new Comparison(At(c.First), At(c.Second), c.Mu)));
            asked.UnionWith(state.Asked.Select(At));
            ensemble.Load(sub, state.AdamSteps, state.OutOfBag, comparisons);
            var recent = Safetensors.Read(Path.Combine(sub, PreferenceCheckpoint.RecentFileName)).Tensors;
            if (!recent.TryGetValue("observations", out var ro) || ro.Values.Length != recentObs.Length || !recent.TryGetValue("actions", out var ra) || ra.Values.Length != recentAct.Length)
                throw new FormatException($"{sub}: {PreferenceCheckpoint.RecentFileName} does not hold a ring of {window} steps.");
            ro.Values.CopyTo(recentObs, 0);
            ra.Values.CopyTo(recentAct, 0);
            (recentCount, recentNext) = (state.RecentCount, state.RecentNext);
            rng.SetState(state.Rng);
            (labelsUsed, queryId, due, accuracy, evidence) = (state.LabelsUsed, state.QueryId, state.Due, state.Accuracy, state.Evidence);
            (rMean, rStd, rZero, rScale) = (state.RewardMean, state.RewardStd, state.RewardZero, state.RewardScale);
            state.PredictedSoFar.CopyTo(predictedSoFar, 0);
            predictedFinished.AddRange(state.PredictedFinished);
            (askBefore, fitBefore, rewardBefore, renormBefore) = (state.AskSeconds, state.FitSeconds, state.RewardSeconds, state.RenormaliseSeconds);
            // The oracle's random stream (a seeded System.Random, whose state cannot be saved) moves on by answering the
            // same queries again; people and other labellers are not asked twice.
            oracleScores.AddRange(state.OracleScores);
            if (labeler is OracleLabeler oracle) foreach (var scores in state.OracleScores) oracle.Choose(scores);
        }

        var ppo = cfg.Ppo with { EnvId = cfg.EnvId, Seed = seed, EntropyCoef = Math.Max(cfg.Ppo.EntropyCoef, cfg.MinEntropyCoef) };
        var result = PpoTrainer.Train(ppo, new PpoHooks { Reward = Reward, AfterUpdate = AfterUpdate, SaveState = SaveState }, options, ct);
        return new PreferenceResult(result.Policy, ensemble, comparisons, labelsUsed, result.Metrics, watch.Elapsed.TotalSeconds, result.Cancelled);
    }

    /// <summary>config.json's section holding the loop's settings (PPO's are in "trainer").</summary>
    public const string PreferencesSection = "preferences";

    /// <summary>
    /// Runs the policy for fresh-seeded episodes (deterministic, then as many sampled ones so returns spread) and compares
    /// true returns with r̂'s return of the same episodes (relative to the absorbing state); MeanTrueReturn is over the
    /// deterministic episodes only.
    /// </summary>
    public static PreferenceEvaluation Evaluate(ControlPolicy policy, RewardEnsemble predictor, int episodes, ulong seed)
    {
        var greedy = policy.Rollouts(episodes, seed, deterministic: true);
        var sampled = policy.Rollouts(episodes, seed + 100_000, deterministic: false);
        var all = greedy.Concat(sampled).ToList();
        double[] truth = [.. all.Select(t => t.Return)];
        // r̂'s return of an episode as the predictor compares clips: one that ends early continues in the absorbing state, so
        // over a common horizon H it scores Σ_t r̂ + (H − T)·r̂_abs, which is Σ_t (r̂ − r̂_abs) up to a constant. Raw Σ_t r̂
        // depends on r̂'s arbitrary offset wherever episode lengths differ: Acrobot 700 labels seeds 2 and 3 scored −0.98 and
        // −0.96 with it although both policies reach the line in under 100 steps.
        var perMember = predictor.SegmentSums(all);
        double abs = predictor.AbsorbingReward();
        double[] predicted = [.. all.Select((t, i) => perMember.Average(p => p[i]) - t.Length * abs)];
        return new PreferenceEvaluation(greedy.Average(t => t.Return), Pearson(truth, predicted), truth, predicted);
    }

    /// <summary>Pearson correlation; NaN when either side has no spread.</summary>
    public static double Pearson(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        if (x.Count != y.Count || x.Count < 2) throw new ArgumentException($"Pearson: {x.Count} and {y.Count} values; need two equal lists of ≥ 2.");
        double mx = x.Average(), my = y.Average(), sxy = 0, sxx = 0, syy = 0;
        for (int i = 0; i < x.Count; i++)
        {
            sxy += (x[i] - mx) * (y[i] - my);
            sxx += (x[i] - mx) * (x[i] - mx);
            syy += (y[i] - my) * (y[i] - my);
        }
        return sxx == 0 || syy == 0 ? double.NaN : sxy / Math.Sqrt(sxx * syy);
    }
}
