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
//   13. (Box actions) state-independent log σ, actions clipped to the bounds, observation and reward normalisation.
using System.Diagnostics;
using RlhfSharp.Objectives;
using RlhfSharp.Tensors;

namespace RlhfSharp.Control.Rl;

/// <summary>PPO settings; defaults are CleanRL's ppo.py unless a preset (ForEnv) says otherwise.</summary>
public sealed record PpoConfig
{
    /// <summary>Environment steps to train for, over all copies.</summary>
    public long TotalSteps { get; init; } = 500_000;

    /// <summary>Parallel environment copies.</summary>
    public int NumEnvs { get; init; } = 4;

    /// <summary>Steps per copy in one rollout; a rollout is NumEnvs·NumSteps samples.</summary>
    public int NumSteps { get; init; } = 128;

    /// <summary>Adam learning rate at the start.</summary>
    public double LearningRate { get; init; } = 2.5e-4;

    /// <summary>Anneal the learning rate linearly to 0 over training (detail 4).</summary>
    public bool AnnealLearningRate { get; init; } = true;

    /// <summary>Discount γ.</summary>
    public double Gamma { get; init; } = 0.99;

    /// <summary>GAE λ.</summary>
    public double GaeLambda { get; init; } = 0.95;

    /// <summary>Minibatches per epoch.</summary>
    public int NumMinibatches { get; init; } = 4;

    /// <summary>Passes over each rollout.</summary>
    public int UpdateEpochs { get; init; } = 4;

    /// <summary>Normalise advantages within each minibatch (detail 7).</summary>
    public bool NormalizeAdvantages { get; init; } = true;

    /// <summary>Surrogate clip ε (also the value-clip range).</summary>
    public double ClipCoef { get; init; } = 0.2;

    /// <summary>Clip the value loss around the old values (detail 9).</summary>
    public bool ClipValueLoss { get; init; } = true;

    /// <summary>Entropy bonus coefficient c_e.</summary>
    public double EntropyCoef { get; init; } = 0.01;

    /// <summary>Value loss coefficient c_v.</summary>
    public double ValueCoef { get; init; } = 0.5;

    /// <summary>Global gradient-norm clip (detail 11).</summary>
    public double MaxGradNorm { get; init; } = 0.5;

    /// <summary>Stop the epochs of an update once approx KL exceeds this (detail 12); null never stops.</summary>
    public double? TargetKl { get; init; }

    /// <summary>Hidden layer widths of actor and critic.</summary>
    public int[] Hidden { get; init; } = [64, 64];

    /// <summary>Normalise observations with running statistics (saved with the policy).</summary>
    public bool NormalizeObservations { get; init; }

    /// <summary>Scale rewards by the running std of the discounted return.</summary>
    public bool NormalizeRewards { get; init; }

    /// <summary>Use the adaptive KL penalty instead of the clip (PPO-penalty).</summary>
    public bool KlPenalty { get; init; }

    /// <summary>PPO-penalty: initial β.</summary>
    public double InitialBeta { get; init; } = 1.0;

    /// <summary>PPO-penalty: the KL the β controller aims for (d_targ).</summary>
    public double PenaltyTargetKl { get; init; } = 0.01;

    /// <summary>Samples per rollout.</summary>
    public int BatchSize => NumEnvs * NumSteps;

    /// <summary>Samples per minibatch.</summary>
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
            NumEnvs = 8, NumSteps = 32, NumMinibatches = 1, UpdateEpochs = 20, Gamma = 0.98, GaeLambda = 0.8,
            LearningRate = 1e-3, EntropyCoef = 0.0,
        },
        "Acrobot-v1" => new PpoConfig(),
        "MountainCar-v0" => new PpoConfig
        {
            NumEnvs = 16, NumSteps = 256, NumMinibatches = 8, UpdateEpochs = 4, Gamma = 0.99, GaeLambda = 0.94,
            LearningRate = 1e-3, EntropyCoef = 0.0, NormalizeObservations = true,
        },
        "Pendulum-v1" or "MountainCarContinuous-v0" => new PpoConfig
        {
            NumEnvs = 4, NumSteps = 512, NumMinibatches = 32, UpdateEpochs = 10, Gamma = envId == "Pendulum-v1" ? 0.9 : 0.99,
            GaeLambda = 0.95, LearningRate = 1e-3, EntropyCoef = 0.0, NormalizeObservations = true, NormalizeRewards = true,
        },
        _ => new PpoConfig(),
    };

    internal void Validate()
    {
        if (TotalSteps < BatchSize) throw new ArgumentOutOfRangeException(nameof(TotalSteps), TotalSteps, $"PPO needs at least one rollout of {BatchSize} steps.");
        if (NumEnvs < 1 || NumSteps < 1) throw new ArgumentOutOfRangeException(nameof(NumEnvs), $"PPO: NumEnvs ({NumEnvs}) and NumSteps ({NumSteps}) must be ≥ 1.");
        if (NumMinibatches < 1 || BatchSize % NumMinibatches != 0)
            throw new ArgumentOutOfRangeException(nameof(NumMinibatches), NumMinibatches, $"PPO: the batch of {BatchSize} must split evenly into minibatches.");
    }
}

/// <summary>Where training is, for a progress display.</summary>
public sealed record TrainProgress(long GlobalStep, long TotalSteps, double? RecentReturn);

/// <summary>A trained agent and how training went.</summary>
public sealed record TrainResult(ControlPolicy Policy, IReadOnlyList<MetricsRow> Metrics, double WallSeconds, double StepsPerSecond);

/// <summary>
/// Hooks into the PPO loop for a learner that replaces the reward (Christiano et al.'s loop trains on r̂(o, a), never the
/// true reward) and works between updates (collect labels, refit). Episode returns in the metrics stay the true ones.
/// </summary>
public sealed record PpoHooks
{
    /// <summary>(raw observations before the step [N, S], the actions sent to the envs [N, A], the step) → the rewards PPO learns from [N].</summary>
    public Func<float[], float[], VectorStep, double[]>? Reward { get; init; }

    /// <summary>Called after each update with (update index from 1, global step, the row's values), before the row is logged; may add values.</summary>
    public Action<int, long, Dictionary<string, double>>? AfterUpdate { get; init; }
}

public static class PpoTrainer
{
    public static TrainResult Train(string envId, PpoConfig cfg, ulong seed, Action<MetricsRow>? onMetrics = null, Action<TrainProgress>? onProgress = null) =>
        Train(envId, cfg, seed, new PpoHooks(), onMetrics, onProgress);

    /// <summary>PPO with hooks: a replaced reward and a callback between updates (see <see cref="PpoHooks"/>).</summary>
    public static TrainResult Train(string envId, PpoConfig cfg, ulong seed, PpoHooks hooks, Action<MetricsRow>? onMetrics = null, Action<TrainProgress>? onProgress = null)
    {
        ArgumentNullException.ThrowIfNull(hooks);
        cfg.Validate();
        var watch = Stopwatch.StartNew();
        var rng = new Rng(seed);
        var envs = new VectorEnv(envId, cfg.NumEnvs, seed); // 1. vectorised environments with auto-reset
        int s = envs.ObservationSize, aSize = envs.ActionSize, n = cfg.NumEnvs, T = cfg.NumSteps, batch = cfg.BatchSize;
        var agent = new ActorCritic(s, envs.ActionSpace, cfg.Hidden, rng.Fork()); // 2. orthogonal init
        var optimizer = new AgentOptimizer([agent.ActorParameters, agent.CriticParameters], cfg.LearningRate, epsilon: 1e-5); // 3. Adam ε = 1e-5
        var obsNorm = cfg.NormalizeObservations ? new ObservationNormalizer(s) : null;
        var rewNorm = cfg.NormalizeRewards ? new RewardNormalizer(n, cfg.Gamma) : null;
        IKlController? beta = cfg.KlPenalty ? new HalvingDoublingKlController(cfg.InitialBeta, cfg.PenaltyTargetKl) : null;
        var box = envs.ActionSpace as BoxSpace;

        var obsBuf = new float[batch * s];
        var actBuf = new float[batch * aSize];
        var logpBuf = new float[batch];
        var valBuf = new float[batch];
        var rewBuf = new float[batch];
        var terminatedBuf = new bool[batch];
        var truncatedBuf = new bool[batch];
        var truncatedValueBuf = new float[batch]; // V(final observation) where an episode was truncated
        // PPO-penalty keeps π_old(·|s) (the actor's logits or means) for the exact KL; the clip needs only log π_old(a|s).
        int outSize = envs.ActionSpace is DiscreteSpace discrete ? discrete.N : aSize;
        var outBuf = beta is null ? null : new float[batch * outSize];
        var rows = new List<MetricsRow>();
        var recent = new List<EpisodeRecord>();

        float[] rawObs = envs.Reset();
        float[] obs = obsNorm?.Normalize(rawObs) ?? rawObs;
        float[] rawCurrent = rawObs;
        long globalStep = 0;
        var rolloutWatch = new Stopwatch();
        var updateWatch = new Stopwatch(); // where the time goes: acting and stepping vs. learning
        int numUpdates = (int)(cfg.TotalSteps / batch);
        for (int update = 1; update <= numUpdates; update++)
        {
            // 4. linear learning-rate annealing: lr = (1 − (update − 1)/numUpdates)·lr₀.
            if (cfg.AnnealLearningRate) optimizer.LearningRate = (1.0 - (update - 1.0) / numUpdates) * cfg.LearningRate;
            var finished = new List<EpisodeRecord>();

            // Rollout: NumSteps steps of every copy under the current policy.
            rolloutWatch.Start();
            for (int t = 0; t < T; t++)
            {
                globalStep += n;
                var act = agent.Act(obs, n, rng, deterministic: false);
                obs.CopyTo(obsBuf, t * n * s);
                act.Actions.CopyTo(actBuf, t * n * aSize);
                act.LogProb.CopyTo(logpBuf, t * n);
                act.Values.CopyTo(valBuf, t * n);
                if (outBuf is not null) act.ActorOutput.CopyTo(outBuf, t * n * outSize);
                var step = envs.Step(box is null ? act.Actions : ClipToBox(act.Actions, box)); // 13. actions clipped to the bounds
                double[] rewards = hooks.Reward is { } learned ? learned(rawCurrent, box is null ? act.Actions : ClipToBox(act.Actions, box), step) : step.Rewards;
                rawCurrent = step.Observations;
                rewNorm?.Normalize(rewards, step.Terminated, step.Truncated);
                for (int i = 0; i < n; i++)
                {
                    int k = t * n + i;
                    rewBuf[k] = (float)rewards[i];
                    terminatedBuf[k] = step.Terminated[i];
                    // 5. A time-limit truncation is not a terminal state: GAE bootstraps it with V(final observation).
                    truncatedBuf[k] = step.Truncated[i] && !step.Terminated[i];
                    truncatedValueBuf[k] = truncatedBuf[k] && step.FinalObservations[i] is { } fin ? agent.Values(obsNorm?.Apply(fin) ?? fin, 1)[0] : 0f;
                }
                finished.AddRange(step.Finished);
                obs = obsNorm?.Normalize(step.Observations) ?? step.Observations;
            }

            rolloutWatch.Stop();
            updateWatch.Start();

            // 5. GAE(γ, λ) and the value targets R = A + V.
            float[] nextValues = agent.Values(obs, n);
            var (advantages, returns) = Advantages.Gae(rewBuf, valBuf, terminatedBuf, truncatedBuf, truncatedValueBuf, nextValues, T, n, cfg.Gamma, cfg.GaeLambda);

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
                    optimizer.ClipGradNorm(cfg.MaxGradNorm); // 11. global gradient-norm clip
                    optimizer.Step();
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
            updateWatch.Stop();
            double meanKl = klSum / Math.Max(1, mbCount);
            // PPO-penalty: d = KL[π_old, π] after the update (the last epoch's minibatches, not the average over all epochs,
            // which counts the early near-zero KL and would halve β too often); β ← β/2 if d < d_targ/1.5, β·2 if d > d_targ·1.5.
            beta?.Update(epochKlSum / Math.Max(1, epochMbCount), finished.Count);

            recent.AddRange(finished);
            if (recent.Count > 20) recent.RemoveRange(0, recent.Count - 20);
            var values = new Dictionary<string, double>
            {
                ["charts/episodic_return"] = finished.Count > 0 ? finished.Average(e => e.Return) : double.NaN,
                ["charts/episodic_length"] = finished.Count > 0 ? finished.Average(e => e.Length) : double.NaN,
                ["charts/learning_rate"] = optimizer.LearningRate,
                ["losses/policy"] = last?.Policy ?? double.NaN,
                ["losses/value"] = last?.Value ?? double.NaN,
                ["losses/entropy"] = last?.Entropy ?? double.NaN,
                ["losses/approx_kl"] = meanKl,
                ["losses/clipfrac"] = clipSum / Math.Max(1, mbCount),
                ["losses/explained_variance"] = ValueDiagnostics.ExplainedVariance(valBuf, returns),
                ["charts/SPS"] = globalStep / Math.Max(1e-9, watch.Elapsed.TotalSeconds),
                ["perf/rollout_seconds"] = rolloutWatch.Elapsed.TotalSeconds,
                ["perf/update_seconds"] = updateWatch.Elapsed.TotalSeconds,
            };
            if (beta is not null) values["losses/kl_beta"] = beta.Beta;
            hooks.AfterUpdate?.Invoke(update, globalStep, values);
            var row = new MetricsRow(globalStep, values);
            rows.Add(row);
            onMetrics?.Invoke(row);
            onProgress?.Invoke(new TrainProgress(globalStep, cfg.TotalSteps, recent.Count > 0 ? recent.Average(e => e.Return) : null));
        }
        double wall = watch.Elapsed.TotalSeconds;
        var norm = obsNorm is null ? null : new NormalizationState(obsNorm.Stats.Save(), obsNorm.Clip);
        var policy = new ControlPolicy(envId, cfg.KlPenalty ? "ppo-penalty" : "ppo", agent, norm);
        return new TrainResult(policy, rows, wall, globalStep / Math.Max(1e-9, wall));
    }

    internal static float[] ClipToBox(float[] actions, BoxSpace box)
    {
        var clipped = new float[actions.Length];
        int d = box.FlatSize;
        for (int i = 0; i < actions.Length; i++) clipped[i] = Math.Clamp(actions[i], box.Low[i % d], box.High[i % d]);
        return clipped;
    }
}
