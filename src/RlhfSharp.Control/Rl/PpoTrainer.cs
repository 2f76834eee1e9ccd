// PPO for the control tasks, reading top to bottom like CleanRL's ppo.py (and ppo_continuous_action.py for Box actions).
// Objective (Schulman et al. 2017, eq. 9): maximise E[min(ρ·A, clip(ρ, 1−ε, 1+ε)·A)] − c_v·L_V + c_e·H[π], ρ = π/π_old,
// or, as the KL-penalty variant (eq. 8), E[ρ·A] − β·KL[π_old(·|s), π(·|s)] (the exact KL per state, from the logits or
// means stored at rollout time) with β halved or doubled toward a target KL (§4).
// The equations are RlhfSharp.Objectives' (Advantages.Gae, Whitening, PpoLosses, PolicyGradientLosses), the same the
// language-model PPO uses, built on the tensors ActorCritic.Evaluate records, and one loss.Backward() per minibatch.
// The implementation details named in "The 37 Implementation Details of PPO" (Huang et al. 2022), numbered as in the code:
//   1. vectorised environments with auto-reset; 2. orthogonal init, output gains 0.01 (actor) and 1 (critic) — ActorCritic;
//   3. Adam with ε = 1e-5; 4. linear learning-rate annealing; 5. GAE(γ, λ) with truncated episodes bootstrapped from V;
//   6. minibatches over several epochs; 7. advantage normalisation per minibatch; 8. clipped surrogate objective;
//   9. clipped value loss; 10. entropy bonus; 11. global gradient-norm clip (0.5); 12. optional early stop at a target KL;
//   13. (Box actions) state-independent log σ, actions clipped to the bounds, observation and reward normalisation;
//   14. (the run contract, docs/runs.md) with a run folder: the config in config.json's "trainer" section, one metrics row
//       per update, a checkpoint every CheckpointInterval updates, on cancellation and at the end holding the agent, Adam's
//       moments and step counts, the RNG, every environment's state, the normalisers, β, the update index and the current
//       observations, so a resumed run continues bit-identically; the policy in RUN/policy at the end.
using System.Diagnostics;
using System.Text.Json.Serialization;
using RlhfSharp.Models.Checkpoints;
using RlhfSharp.Objectives;
using RlhfSharp.Runs;
using RlhfSharp.Tensors;

namespace RlhfSharp.Control.Rl;

/// <summary>PPO settings: CleanRL's ppo.py names (config.json keys) and defaults unless a preset (ForEnv) says otherwise.</summary>
public sealed record PpoConfig
{
    [ConfigOption("Environment id: CartPole-v1, Acrobot-v1, MountainCar-v0, MountainCarContinuous-v0 or Pendulum-v1.", Name = "--env", Aliases = ["--env-id"])]
    [JsonPropertyName("env_id")]
    public string EnvId { get; init; } = "CartPole-v1";

    [ConfigOption("Seed of the environments (copy i starts from seed + i), the initialisation and the sampling.", Min = 0)]
    public ulong Seed { get; init; } = 1;

    // CleanRL's ppo.py trains 500000 steps; `rlhf rl` has always defaulted to rl-baselines3-zoo's CartPole budget.
    [ConfigOption("Environment steps to train for, over all copies.", Aliases = ["--steps"], Min = 1)]
    [JsonPropertyName("total_timesteps")]
    public long TotalSteps { get; init; } = 100_000;

    [ConfigOption("Parallel environment copies.", Min = 1)]
    public int NumEnvs { get; init; } = 4;

    [ConfigOption("Steps per copy in one rollout; a rollout is num_envs·num_steps samples.", Min = 1)]
    public int NumSteps { get; init; } = 128;

    [ConfigOption("Adam learning rate at the start.", Aliases = ["--lr"], Min = 0, MinExclusive = true)]
    public double LearningRate { get; init; } = 2.5e-4;

    [ConfigOption("Anneal the learning rate linearly to 0 over training (detail 4).")]
    [JsonPropertyName("anneal_lr")]
    public bool AnnealLearningRate { get; init; } = true;

    [ConfigOption("Discount γ.", Min = 0, Max = 1)]
    public double Gamma { get; init; } = 0.99;

    [ConfigOption("GAE λ.", Min = 0, Max = 1)]
    public double GaeLambda { get; init; } = 0.95;

    [ConfigOption("Minibatches per epoch.", Min = 1)]
    public int NumMinibatches { get; init; } = 4;

    [ConfigOption("Passes over each rollout.", Min = 1)]
    public int UpdateEpochs { get; init; } = 4;

    [ConfigOption("Normalise advantages within each minibatch (detail 7).")]
    [JsonPropertyName("norm_adv")]
    public bool NormalizeAdvantages { get; init; } = true;

    [ConfigOption("Surrogate clip ε (also the value-clip range).", Min = 0, MinExclusive = true)]
    public double ClipCoef { get; init; } = 0.2;

    [ConfigOption("Clip the value loss around the old values (detail 9).")]
    [JsonPropertyName("clip_vloss")]
    public bool ClipValueLoss { get; init; } = true;

    [ConfigOption("Entropy bonus coefficient c_e.", Min = 0)]
    [JsonPropertyName("ent_coef")]
    public double EntropyCoef { get; init; } = 0.01;

    [ConfigOption("Value loss coefficient c_v.", Min = 0)]
    [JsonPropertyName("vf_coef")]
    public double ValueCoef { get; init; } = 0.5;

    [ConfigOption("Global gradient-norm clip (detail 11).", Min = 0, MinExclusive = true)]
    public double MaxGradNorm { get; init; } = 0.5;

    [ConfigOption("Stop the epochs of an update once approx KL exceeds this (detail 12); unset never stops.", Min = 0, MinExclusive = true)]
    public double? TargetKl { get; init; }

    [ConfigOption("Hidden layer widths of actor and critic.", Min = 1)]
    public int[] Hidden { get; init; } = [64, 64];

    [ConfigOption("Normalise observations with running statistics (saved with the policy).")]
    [JsonPropertyName("norm_obs")]
    public bool NormalizeObservations { get; init; }

    [ConfigOption("Scale rewards by the running std of the discounted return.")]
    [JsonPropertyName("norm_reward")]
    public bool NormalizeRewards { get; init; }

    [ConfigOption("Use the adaptive KL penalty instead of the clip (PPO-penalty; `rlhf rl --algo ppo-penalty`).")]
    public bool KlPenalty { get; init; }

    [ConfigOption("PPO-penalty: initial β.", Min = 0, MinExclusive = true)]
    [JsonPropertyName("init_kl_coef")]
    public double InitialBeta { get; init; } = 1.0;

    [ConfigOption("PPO-penalty: the KL the β controller aims for (d_targ).", Min = 0, MinExclusive = true)]
    public double PenaltyTargetKl { get; init; } = 0.01;

    [ConfigOption("With a run folder: checkpoint every this many updates (0: only when stopped and at the end).", Min = 0)]
    public int CheckpointInterval { get; init; } = 10;

    [ConfigOption("Checkpoints kept (0 keeps all).", Min = 0)]
    public int KeepCheckpoints { get; init; }

    /// <summary>Samples per rollout.</summary>
    [JsonIgnore]
    public int BatchSize => NumEnvs * NumSteps;

    /// <summary>Samples per minibatch.</summary>
    [JsonIgnore]
    public int MinibatchSize => BatchSize / NumMinibatches;

    /// <summary>
    /// Settings per task: CartPole and MountainCar follow rl-baselines3-zoo's tuned PPO (hyperparams/ppo.yml), Acrobot
    /// CleanRL's ppo.py defaults (the zoo-like preset, 16 × 256 steps at lr 1e-3, left seed 2's greedy policy at −438 after
    /// 300k steps while seeds 1 and 3 reached −83 and −88; the defaults gave −87, −80, −84), the Box tasks CleanRL's
    /// ppo_continuous_action.py (normalised observations and rewards, no entropy bonus).
    /// </summary>
    public static PpoConfig ForEnv(string envId) => envId switch
    {
        "CartPole-v1" => new PpoConfig
        {
            EnvId = envId, NumEnvs = 8, NumSteps = 32, NumMinibatches = 1, UpdateEpochs = 20, Gamma = 0.98, GaeLambda = 0.8,
            LearningRate = 1e-3, EntropyCoef = 0.0,
        },
        "MountainCar-v0" => new PpoConfig
        {
            EnvId = envId, NumEnvs = 16, NumSteps = 256, NumMinibatches = 8, UpdateEpochs = 4, Gamma = 0.99, GaeLambda = 0.94,
            LearningRate = 1e-3, EntropyCoef = 0.0, NormalizeObservations = true,
        },
        "Pendulum-v1" or "MountainCarContinuous-v0" => new PpoConfig
        {
            EnvId = envId, NumEnvs = 4, NumSteps = 512, NumMinibatches = 32, UpdateEpochs = 10, Gamma = envId == "Pendulum-v1" ? 0.9 : 0.99,
            GaeLambda = 0.95, LearningRate = 1e-3, EntropyCoef = 0.0, NormalizeObservations = true, NormalizeRewards = true,
        },
        _ => new PpoConfig { EnvId = envId }, // Acrobot-v1: CleanRL's defaults
    };

    /// <summary>Refuses settings the trainer cannot run, naming the field.</summary>
    public void Validate()
    {
        ConfigRanges.Validate(this, "PPO config");
        if (TotalSteps < BatchSize)
            throw new ArgumentException($"PPO config: total_timesteps = {TotalSteps} must be at least one rollout of num_envs × num_steps = {BatchSize} steps.");
        if (BatchSize % NumMinibatches != 0)
            throw new ArgumentException($"PPO config: the batch of num_envs × num_steps = {BatchSize} must split evenly into num_minibatches = {NumMinibatches} minibatches.");
    }
}

/// <summary>
/// Hooks into the PPO loop for a learner that replaces the reward (Christiano et al.'s loop trains on r̂(o, a), never the
/// true reward) and works between updates (collect labels, refit). Episode returns in the metrics stay the true ones.
/// A checkpoint holds PPO's own state and whatever SaveState writes beside it.
/// </summary>
public sealed record PpoHooks
{
    /// <summary>(raw observations before the step [N, S], the actions sent to the envs [N, A], the step) → the rewards PPO learns from [N].</summary>
    public Func<float[], float[], VectorStep, double[]>? Reward { get; init; }

    /// <summary>Called after each update with (update index from 1, global step, the row's values), before the row is logged; may add values.</summary>
    public Action<int, long, Dictionary<string, double>>? AfterUpdate { get; init; }

    /// <summary>
    /// Called while a checkpoint is written, with its (temporary) folder: the owner adds its own state there, so the
    /// checkpoint holds both or neither. The owner restores it from the same checkpoint (the run's latest) on resume.
    /// </summary>
    public Action<string>? SaveState { get; init; }
}

public static class PpoTrainer
{
    /// <summary>PPO without a run folder (benchmarks, the preference loop, tests): env and seed given beside the config.</summary>
    public static TrainResult Train(string envId, PpoConfig cfg, ulong seed, Action<MetricsRow>? onMetrics = null, Action<TrainProgress>? onProgress = null) =>
        Train(envId, cfg, seed, new PpoHooks(), onMetrics, onProgress);

    /// <summary>As above, with hooks: a replaced reward and a callback between updates (see <see cref="PpoHooks"/>).</summary>
    public static TrainResult Train(string envId, PpoConfig cfg, ulong seed, PpoHooks hooks, Action<MetricsRow>? onMetrics = null, Action<TrainProgress>? onProgress = null) =>
        Train(cfg with { EnvId = envId, Seed = seed }, hooks, new TrainOptions(OnMetrics: onMetrics, Progress: TrainOptions.ProgressOf(onProgress)));

    /// <summary>PPO on cfg.EnvId from cfg.Seed; with options.Run it keeps the run contract (detail 14) and stops at a checkpoint when <paramref name="ct"/> is cancelled.</summary>
    public static TrainResult Train(PpoConfig cfg, TrainOptions? options = null, CancellationToken ct = default) => Train(cfg, new PpoHooks(), options, ct);

    /// <summary>As above, with hooks.</summary>
    public static TrainResult Train(PpoConfig cfg, PpoHooks hooks, TrainOptions? options = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(hooks);
        cfg.Validate();
        options ??= new TrainOptions();
        var run = options.Run;
        var watch = Stopwatch.StartNew();
        var loop = new PpoLoop(cfg, hooks);
        run?.WriteConfig(cfg);
        // 14. A resumed run continues from its latest checkpoint; a run killed before its first one starts again.
        if (run is { Resumed: true } && run.LatestCheckpoint() is { } checkpoint) loop.Restore(checkpoint.Path);
        else loop.Start();
        long startStep = loop.GlobalStep;
        var rows = new List<MetricsRow>();
        int numUpdates = (int)(cfg.TotalSteps / cfg.BatchSize);
        while (loop.Update < numUpdates)
        {
            if (ct.IsCancellationRequested)
            {
                if (run is not null) loop.SaveCheckpoint(run);
                return loop.Result(rows, watch, startStep, cancelled: true);
            }
            int update = loop.Update + 1;
            // 4. linear learning-rate annealing: lr = (1 − (update − 1)/numUpdates)·lr₀.
            if (cfg.AnnealLearningRate) loop.Optimizer.LearningRate = (1.0 - (update - 1.0) / numUpdates) * cfg.LearningRate;
            var finished = loop.Rollout();
            var values = loop.Learn(finished);
            values[MetricKeys.StepsPerSecond] = (loop.GlobalStep - startStep) / Math.Max(1e-9, watch.Elapsed.TotalSeconds);
            hooks.AfterUpdate?.Invoke(update, loop.GlobalStep, values);
            var row = new MetricsRow(loop.GlobalStep, values);
            rows.Add(row);
            run?.Log(row.GlobalStep, row.Values);
            options.OnMetrics?.Invoke(row);
            options.Progress?.Report(new TrainProgress(loop.GlobalStep, cfg.TotalSteps, loop.RecentReturn));
            if (run is not null && cfg.CheckpointInterval > 0 && update % cfg.CheckpointInterval == 0 && update < numUpdates) loop.SaveCheckpoint(run);
        }
        if (run is not null)
        {
            loop.SaveCheckpoint(run);
            loop.Policy().Save(Path.Combine(run.Path, "policy"));
        }
        return loop.Result(rows, watch, startStep, cancelled: false);
    }

    internal static float[] ClipToBox(float[] actions, BoxSpace box)
    {
        var clipped = new float[actions.Length];
        int d = box.FlatSize;
        for (int i = 0; i < actions.Length; i++) clipped[i] = Math.Clamp(actions[i], box.Low[i % d], box.High[i % d]);
        return clipped;
    }

    /// <summary>
    /// Everything PPO carries from one update to the next (what a checkpoint holds), with the rollout buffers and the two
    /// halves of an update: Rollout (act, step, record) and Learn (GAE, then epochs of minibatch steps).
    /// </summary>
    private sealed class PpoLoop
    {
        private readonly PpoConfig _cfg;
        private readonly PpoHooks _hooks;
        private readonly Rng _rng;
        private readonly VectorEnv _envs;
        private readonly ActorCritic _agent;
        private readonly ObservationNormalizer? _obsNorm;
        private readonly RewardNormalizer? _rewNorm;
        private IKlController? _beta;
        private readonly BoxSpace? _box;
        private readonly int _s, _aSize, _n, _outSize;
        // The rollout, [T·N] samples in time-major order (row k = t·N + i).
        private readonly float[] _obsBuf, _actBuf, _logpBuf, _valBuf, _rewBuf, _truncatedValueBuf; // V(final observation) where an episode was truncated
        private readonly bool[] _terminatedBuf, _truncatedBuf;
        // PPO-penalty keeps π_old(·|s) (the actor's logits or means) for the exact KL; the clip needs only log π_old(a|s).
        private readonly float[]? _outBuf;
        private readonly List<double> _recent = []; // the last 20 episode returns, for the progress display
        private float[] _obs = [], _rawObs = []; // the current observations, as the agent sees them and as the envs gave them
        private readonly Stopwatch _rolloutWatch = new(), _updateWatch = new(); // where the time goes: acting and stepping vs. learning
        private double _rolloutBefore, _updateBefore; // seconds spent before a resume

        public PpoLoop(PpoConfig cfg, PpoHooks hooks)
        {
            _cfg = cfg;
            _hooks = hooks;
            _rng = new Rng(cfg.Seed);
            _envs = new VectorEnv(cfg.EnvId, cfg.NumEnvs, cfg.Seed); // 1. vectorised environments with auto-reset
            (_s, _aSize, _n) = (_envs.ObservationSize, _envs.ActionSize, cfg.NumEnvs);
            _agent = new ActorCritic(_s, _envs.ActionSpace, cfg.Hidden, _rng.Fork()); // 2. orthogonal init
            Optimizer = new AgentOptimizer([_agent.ActorParameters, _agent.CriticParameters], cfg.LearningRate, epsilon: 1e-5); // 3. Adam ε = 1e-5
            _obsNorm = cfg.NormalizeObservations ? new ObservationNormalizer(_s) : null;
            _rewNorm = cfg.NormalizeRewards ? new RewardNormalizer(_n, cfg.Gamma) : null;
            _beta = cfg.KlPenalty ? new HalvingDoublingKlController(cfg.InitialBeta, cfg.PenaltyTargetKl) : null;
            _box = _envs.ActionSpace as BoxSpace;
            int batch = cfg.BatchSize;
            (_obsBuf, _actBuf, _logpBuf, _valBuf, _rewBuf, _truncatedValueBuf) =
                (new float[batch * _s], new float[batch * _aSize], new float[batch], new float[batch], new float[batch], new float[batch]);
            (_terminatedBuf, _truncatedBuf) = (new bool[batch], new bool[batch]);
            _outSize = _envs.ActionSpace is DiscreteSpace discrete ? discrete.N : _aSize;
            _outBuf = _beta is null ? null : new float[batch * _outSize];
        }

        public AgentOptimizer Optimizer { get; }

        /// <summary>Updates done.</summary>
        public int Update { get; private set; }

        /// <summary>Environment steps done, over all copies.</summary>
        public long GlobalStep { get; private set; }

        public double? RecentReturn => _recent.Count > 0 ? _recent.Average() : null;

        /// <summary>A fresh run: every copy reset with its seed.</summary>
        public void Start()
        {
            _rawObs = _envs.Reset();
            _obs = _obsNorm?.Normalize(_rawObs) ?? _rawObs;
        }

        /// <summary>Rollout: NumSteps steps of every copy under the current policy; returns the episodes that ended.</summary>
        public List<EpisodeRecord> Rollout()
        {
            int n = _n, s = _s, aSize = _aSize;
            var finished = new List<EpisodeRecord>();
            _rolloutWatch.Start();
            for (int t = 0; t < _cfg.NumSteps; t++)
            {
                GlobalStep += n;
                var act = _agent.Act(_obs, n, _rng, deterministic: false);
                _obs.CopyTo(_obsBuf, t * n * s);
                act.Actions.CopyTo(_actBuf, t * n * aSize);
                act.LogProb.CopyTo(_logpBuf, t * n);
                act.Values.CopyTo(_valBuf, t * n);
                if (_outBuf is not null) act.ActorOutput.CopyTo(_outBuf, t * n * _outSize);
                var step = _envs.Step(_box is null ? act.Actions : ClipToBox(act.Actions, _box)); // 13. actions clipped to the bounds
                double[] rewards = _hooks.Reward is { } learned ? learned(_rawObs, _box is null ? act.Actions : ClipToBox(act.Actions, _box), step) : step.Rewards;
                _rawObs = step.Observations;
                _rewNorm?.Normalize(rewards, step.Terminated, step.Truncated);
                for (int i = 0; i < n; i++)
                {
                    int k = t * n + i;
                    _rewBuf[k] = (float)rewards[i];
                    _terminatedBuf[k] = step.Terminated[i];
                    // 5. A time-limit truncation is not a terminal state: GAE bootstraps it with V(final observation).
                    _truncatedBuf[k] = step.Truncated[i] && !step.Terminated[i];
                    _truncatedValueBuf[k] = _truncatedBuf[k] && step.FinalObservations[i] is { } fin ? _agent.Values(_obsNorm?.Apply(fin) ?? fin, 1)[0] : 0f;
                }
                finished.AddRange(step.Finished);
                _obs = _obsNorm?.Normalize(step.Observations) ?? step.Observations;
            }
            _rolloutWatch.Stop();
            return finished;
        }

        /// <summary>The update on the rollout just collected; returns the row's values (CleanRL's keys).</summary>
        public Dictionary<string, double> Learn(List<EpisodeRecord> finished)
        {
            var cfg = _cfg;
            int n = _n, s = _s, aSize = _aSize, T = cfg.NumSteps, batch = cfg.BatchSize, outSize = _outSize;
            var (agent, optimizer, rng, beta) = (_agent, Optimizer, _rng, _beta);
            var (obsBuf, actBuf, logpBuf, valBuf, outBuf) = (_obsBuf, _actBuf, _logpBuf, _valBuf, _outBuf);
            _updateWatch.Start();

            // 5. GAE(γ, λ) and the value targets R = A + V.
            float[] nextValues = agent.Values(_obs, n);
            var (advantages, returns) = Advantages.Gae(_rewBuf, valBuf, _terminatedBuf, _truncatedBuf, _truncatedValueBuf, nextValues, T, n, cfg.Gamma, cfg.GaeLambda);

            // 6. Epochs over shuffled minibatches.
            int mb = cfg.MinibatchSize;
            var mbObs = new float[mb * s];
            var mbAct = new float[mb * aSize];
            var mbOldLogp = new float[mb];
            var mbAdv = new float[mb];
            var mbOldV = new float[mb];
            var mbRet = new float[mb];
            var oldPolicy = outBuf is null ? null : new OldPolicy(new float[mb * outSize], agent.LogStd?.ToArray());
            var mask = Tensor.Ones(mb); // every sample of a minibatch is real
            (double Policy, double Value, double Entropy, double Kl)? last = null;
            double klSum = 0, clipSum = 0, epochKlSum = 0;
            int mbCount = 0, epochMbCount = 0;
            bool stop = false;
            for (int epoch = 0; epoch < cfg.UpdateEpochs && !stop; epoch++)
            {
                int[] perm = rng.Permutation(batch);
                epochKlSum = 0;
                epochMbCount = 0;
                for (int start = 0; start < batch; start += mb)
                {
                    for (int j = 0; j < mb; j++)
                    {
                        int k = perm[start + j];
                        Array.Copy(obsBuf, k * s, mbObs, j * s, s);
                        Array.Copy(actBuf, k * aSize, mbAct, j * aSize, aSize);
                        mbOldLogp[j] = logpBuf[k];
                        mbAdv[j] = advantages[k];
                        mbOldV[j] = valBuf[k];
                        mbRet[j] = returns[k];
                        if (oldPolicy is not null) Array.Copy(outBuf!, k * outSize, oldPolicy.ActorOutput, j * outSize, outSize);
                    }
                    if (cfg.NormalizeAdvantages) Whitening.Whiten(mbAdv); // 7.
                    var ev = agent.Evaluate(mbObs, mbAct, mb, oldPolicy);
                    var oldLogp = Tensor.FromArray(mbOldLogp, mb);
                    var adv = Tensor.FromArray(mbAdv, mb);
                    var ret = Tensor.FromArray(mbRet, mb);
                    // 8. clipped surrogate (PPO-penalty: −ρA + β·KL instead), 9. clipped value loss, 10. entropy bonus:
                    //    loss = L_policy + c_v·L_value − c_e·H, one backward through actor and critic.
                    Tensor policyLoss;
                    double kl, clipFraction;
                    if (beta is null)
                    {
                        var clip = PpoLosses.ClippedPolicy(ev.LogProb, oldLogp, adv, mask, (float)cfg.ClipCoef);
                        (policyLoss, kl, clipFraction) = (clip.Loss, clip.ApproxKlK3, clip.RatioClipFraction);
                    }
                    else
                    {
                        var penalty = PpoLosses.KlPenalty(ev.LogProb, oldLogp, adv, ev.Kl!, mask, (float)beta.Beta);
                        (policyLoss, kl, clipFraction) = (penalty.Loss, penalty.Kl, 0);
                    }
                    var valueLoss = beta is null && cfg.ClipValueLoss
                        ? PpoLosses.ClippedValue(ev.Values, Tensor.FromArray(mbOldV, mb), ret, mask, (float)cfg.ClipCoef).Loss
                        : PolicyGradientLosses.ValueLoss(ev.Values, ret, mask);
                    var entropy = PolicyGradientLosses.EntropyBonus(ev.Entropy, mask, (float)cfg.EntropyCoef);
                    var loss = policyLoss + valueLoss * (float)cfg.ValueCoef + entropy.Loss;
                    optimizer.ZeroGrad();
                    loss.Backward();
                    double gradNorm = optimizer.ClipGradNorm(cfg.MaxGradNorm); // 11. global gradient-norm clip
                    // A diverged minibatch stops the run before the update is logged or checkpointed (NumericGuard).
                    string hint = NumericGuard.LearningRateHint(optimizer.LearningRate);
                    NumericGuard.Check(GlobalStep, "loss", loss.Item(), hint);
                    NumericGuard.Check(GlobalStep, "gradient norm", gradNorm, hint);
                    optimizer.Step();
                    foreach (var set in optimizer.Sets) NumericGuard.CheckParameters(GlobalStep, set, hint);
                    last = (policyLoss.Item(), valueLoss.Item(), entropy.Entropy, kl);
                    klSum += kl;
                    epochKlSum += kl;
                    epochMbCount++;
                    clipSum += clipFraction;
                    mbCount++;
                }
                // 12. early stop once the policy has moved too far from the one that collected the data.
                if (cfg.TargetKl is double target && last is { } l && l.Kl > target) stop = true;
            }
            _updateWatch.Stop();
            Update++;
            double meanKl = klSum / Math.Max(1, mbCount);
            // PPO-penalty: d = KL[π_old, π] after the update (the last epoch's minibatches, not the average over all epochs,
            // which counts the early near-zero KL and would halve β too often); β ← β/2 if d < d_targ/1.5, β·2 if d > d_targ·1.5.
            beta?.Update(epochKlSum / Math.Max(1, epochMbCount), finished.Count);

            foreach (var e in finished) _recent.Add(e.Return);
            if (_recent.Count > 20) _recent.RemoveRange(0, _recent.Count - 20);
            var values = new Dictionary<string, double>
            {
                [MetricKeys.EpisodicReturn] = finished.Count > 0 ? finished.Average(e => e.Return) : double.NaN,
                [MetricKeys.EpisodicLength] = finished.Count > 0 ? finished.Average(e => e.Length) : double.NaN,
                [MetricKeys.ControlLearningRate] = optimizer.LearningRate,
                [MetricKeys.ControlPolicyLoss] = last?.Policy ?? double.NaN,
                [MetricKeys.ControlValueLoss] = last?.Value ?? double.NaN,
                [MetricKeys.ControlEntropy] = last?.Entropy ?? double.NaN,
                [MetricKeys.ControlApproxKl] = meanKl,
                [MetricKeys.ControlClipFraction] = clipSum / Math.Max(1, mbCount),
                [MetricKeys.ControlExplainedVariance] = ValueDiagnostics.ExplainedVariance(valBuf, returns),
                [MetricKeys.StepsPerSecond] = double.NaN, // set by the caller, which knows the wall time
                ["perf/rollout_seconds"] = _rolloutBefore + _rolloutWatch.Elapsed.TotalSeconds,
                ["perf/update_seconds"] = _updateBefore + _updateWatch.Elapsed.TotalSeconds,
            };
            if (beta is not null) values[MetricKeys.ControlKlCoef] = beta.Beta;
            return values;
        }

        /// <summary>The agent as a policy folder's content, with the observation statistics it was trained with.</summary>
        public ControlPolicy Policy()
        {
            var norm = _obsNorm is null ? null : new NormalizationState(_obsNorm.Stats.Save(), _obsNorm.Clip);
            return new ControlPolicy(_cfg.EnvId, _cfg.KlPenalty ? "ppo-penalty" : "ppo", _agent, norm);
        }

        public TrainResult Result(List<MetricsRow> rows, Stopwatch watch, long startStep, bool cancelled)
        {
            double wall = watch.Elapsed.TotalSeconds;
            return new TrainResult(Policy(), rows, wall, (GlobalStep - startStep) / Math.Max(1e-9, wall), GlobalStep, cancelled);
        }

        // 14. Checkpoints: the policy folder, Adam's moments (optimizer.safetensors) and this state (rlhf_trainer_state.json).
        private sealed record PpoState(
            int Update, long GlobalStep, ulong[] Rng, int ActorAdamSteps, int CriticAdamSteps, VectorEnvState Envs,
            float[] Observations, float[] RawObservations, RunningStats? ObservationStats, RewardNormalizerState? RewardNormalizer,
            double? Beta, double[] RecentReturns, double RolloutSeconds, double UpdateSeconds);

        private const string PolicyFolder = "policy";

        /// <summary>Checkpoints the state after the last update (unless the latest checkpoint already holds it).</summary>
        public void SaveCheckpoint(RunDirectory run)
        {
            if (run.LatestCheckpoint()?.Step == GlobalStep) return;
            run.SaveCheckpoint(GlobalStep, dir =>
            {
                Policy().Save(Path.Combine(dir, PolicyFolder));
                TrainerCheckpoint.WriteOptimizers(dir, ("actor", Optimizer.Optimizers[0]), ("critic", Optimizer.Optimizers[1]));
                TrainerCheckpoint.WriteState(dir, new PpoState(Update, GlobalStep, _rng.GetState(), Optimizer.Optimizers[0].StepCount,
                    Optimizer.Optimizers[1].StepCount, _envs.SaveState(), _obs, _rawObs, _obsNorm?.Stats.Save(), _rewNorm?.Save(), _beta?.Beta,
                    [.. _recent], _rolloutBefore + _rolloutWatch.Elapsed.TotalSeconds, _updateBefore + _updateWatch.Elapsed.TotalSeconds));
                _hooks.SaveState?.Invoke(dir);
            }, _cfg.KeepCheckpoints);
        }

        /// <summary>Continues from a checkpoint folder: every piece of state as it was after its update.</summary>
        public void Restore(string dir)
        {
            _agent.LoadState(ControlPolicy.Load(Path.Combine(dir, PolicyFolder), _cfg.EnvId).Agent.StateDict());
            TrainerCheckpoint.ReadOptimizers(dir, ("actor", Optimizer.Optimizers[0]), ("critic", Optimizer.Optimizers[1]));
            var state = TrainerCheckpoint.ReadState<PpoState>(dir);
            string file = Path.Combine(dir, TrainerCheckpoint.StateFileName);
            if ((state.ObservationStats is null) != (_obsNorm is null) || (state.RewardNormalizer is null) != (_rewNorm is null) || (state.Beta is null) != (_beta is null))
                throw new FormatException($"{file}: the checkpoint's normalisers or β do not match the run's configuration.");
            Optimizer.Optimizers[0].StepCount = state.ActorAdamSteps;
            Optimizer.Optimizers[1].StepCount = state.CriticAdamSteps;
            _rng.SetState(state.Rng);
            _envs.RestoreState(state.Envs);
            if (state.ObservationStats is { } stats) _obsNorm!.Stats.Load(stats);
            if (state.RewardNormalizer is { } rewards) _rewNorm!.Load(rewards);
            if (state.Beta is double b) _beta = new HalvingDoublingKlController(b, _cfg.PenaltyTargetKl);
            (_obs, _rawObs) = (state.Observations, state.RawObservations);
            (Update, GlobalStep) = (state.Update, state.GlobalStep);
            _recent.AddRange(state.RecentReturns);
            (_rolloutBefore, _updateBefore) = (state.RolloutSeconds, state.UpdateSeconds);
        }
    }
}
