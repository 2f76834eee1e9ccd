// REINFORCE with a learned baseline (Williams 1992; the lecture's ∇J = E[R(τ)·∇log p_θ(τ)] made concrete):
//   ∇J ≈ (1/|B|)·Σ_t (G_t − b(s_t))·∇log π_θ(a_t|s_t),  G_t = Σ_{k≥t} γ^{k−t}·r_k over whole episodes,
// with the baseline b = V_φ fitted by ½(V − G)² in the same step. The equations are RlhfSharp.Objectives' (returns-to-go
// Advantages.ReturnsToGo, Whitening, PolicyGradientLosses.Reinforce/EntropyBonus/ValueLoss) over autograd. Numbered details:
//   1. each batch is whole episodes (one per environment copy), so returns are Monte Carlo, never bootstrapped except
//      at a time-limit truncation, where γ·V(final observation) stands in for the cut-off tail;
//   2. the advantage G − b is normalised over the batch (a variance reduction that keeps the step size steady);
//   3. one gradient step per batch — the samples are on-policy only once;
//   4. Adam with ε = 1e-5 and a global gradient-norm clip on the policy step;
//   5. the baseline is a regression fitted with its own Adam for BaselineSteps steps per batch, so it tracks the returns
//      (one shared step leaves it far behind and the advantage degenerates to the raw return);
//   6. (the run contract, docs/runs.md) with a run folder: the config in config.json's "trainer" section, one metrics row
//      per batch, a checkpoint every CheckpointInterval batches, on cancellation and at the end holding the agent, both
//      Adams' moments and step counts, the RNG and every environment's state, so a resumed run continues bit-identically.
using System.Diagnostics;
using System.Text.Json.Serialization;
using RlhfSharp.Models.Checkpoints;
using RlhfSharp.Objectives;
using RlhfSharp.Runs;
using RlhfSharp.Tensors;

namespace RlhfSharp.Control.Rl;

/// <summary>REINFORCE settings; config.json keys as PpoConfig's where the two share a meaning.</summary>
public sealed record ReinforceConfig
{
    [ConfigOption("Environment id: CartPole-v1, Acrobot-v1, MountainCar-v0, MountainCarContinuous-v0 or Pendulum-v1.", Name = "--env", Aliases = ["--env-id"])]
    [JsonPropertyName("env_id")]
    public string EnvId { get; init; } = "CartPole-v1";

    [ConfigOption("Seed of the environments (copy i starts from seed + i), the initialisation and the sampling.", Min = 0)]
    public ulong Seed { get; init; } = 1;

    [ConfigOption("Environment steps to train for.", Aliases = ["--steps"], Min = 1)]
    [JsonPropertyName("total_timesteps")]
    public long TotalSteps { get; init; } = 200_000;

    [ConfigOption("Whole episodes per batch, one per environment copy (detail 1).", Aliases = ["--episodes-per-batch"], Min = 1)]
    [JsonPropertyName("num_envs")]
    public int EpisodesPerBatch { get; init; } = 8;

    [ConfigOption("Adam learning rate of the policy.", Aliases = ["--lr"], Min = 0, MinExclusive = true)]
    public double LearningRate { get; init; } = 1e-3;

    [ConfigOption("Discount γ.", Min = 0, Max = 1)]
    public double Gamma { get; init; } = 0.99;

    [ConfigOption("Normalise G − b over each batch (detail 2).")]
    [JsonPropertyName("norm_adv")]
    public bool NormalizeAdvantages { get; init; } = true;

    [ConfigOption("Baseline regression steps per batch (detail 5).", Min = 0)]
    public int BaselineSteps { get; init; } = 10;

    [ConfigOption("Adam learning rate of the baseline.", Min = 0, MinExclusive = true)]
    public double BaselineLearningRate { get; init; } = 1e-3;

    [ConfigOption("Entropy bonus coefficient.", Min = 0)]
    [JsonPropertyName("ent_coef")]
    public double EntropyCoef { get; init; }

    [ConfigOption("Global gradient-norm clip of the policy step (detail 4).", Min = 0, MinExclusive = true)]
    public double MaxGradNorm { get; init; } = 0.5;

    [ConfigOption("Hidden layer widths of policy and baseline.", Min = 1)]
    public int[] Hidden { get; init; } = [64, 64];

    [ConfigOption("With a run folder: checkpoint every this many batches (0: only when stopped and at the end).", Min = 0)]
    public int CheckpointInterval { get; init; } = 10;

    [ConfigOption("Checkpoints kept (0 keeps all).", Min = 0)]
    public int KeepCheckpoints { get; init; }

    /// <summary>Refuses settings the trainer cannot run, naming the field.</summary>
    public void Validate()
    {
        ConfigRanges.Validate(this, "REINFORCE config");
    }
}

public static class ReinforceTrainer
{
    /// <summary>REINFORCE without a run folder (tests, benchmarks): env and seed given beside the config.</summary>
    public static TrainResult Train(string envId, ReinforceConfig cfg, ulong seed, Action<MetricsRow>? onMetrics = null, Action<TrainProgress>? onProgress = null) =>
        Train(cfg with { EnvId = envId, Seed = seed }, new TrainOptions(OnMetrics: onMetrics, Progress: TrainOptions.ProgressOf(onProgress)));

    /// <summary>REINFORCE on cfg.EnvId from cfg.Seed; with options.Run it keeps the run contract (detail 6) and stops at a checkpoint when <paramref name="ct"/> is cancelled.</summary>
    public static TrainResult Train(ReinforceConfig cfg, TrainOptions? options = null, CancellationToken ct = default)
    {
        cfg.Validate();
        options ??= new TrainOptions();
        var run = options.Run;
        var watch = Stopwatch.StartNew();
        ulong seed = cfg.Seed;
        var rng = new Rng(seed);
        int n = cfg.EpisodesPerBatch;
        var envs = new ClassicControlEnv[n];
        for (int i = 0; i < n; i++) envs[i] = EnvRegistry.Make(cfg.EnvId, seed + (ulong)i);
        int s = envs[0].ObservationSpace.FlatSize, aSize = envs[0].ActionSpace.FlatSize;
        var agent = new ActorCritic(s, envs[0].ActionSpace, cfg.Hidden, rng.Fork());
        var optimizer = new AgentOptimizer([agent.ActorParameters], cfg.LearningRate, epsilon: 1e-5); // 4.
        var baselineOptimizer = new AgentOptimizer([agent.CriticParameters], cfg.BaselineLearningRate, epsilon: 1e-5); // 5.
        var box = envs[0].ActionSpace as BoxSpace;
        var rows = new List<MetricsRow>();
        var recent = new List<double>();
        long globalStep = 0;
        int batches = 0;
        run?.WriteConfig(cfg);

        // 6. Checkpoints: the policy folder, both Adams' moments and the loop's state, taken between batches (when every
        // copy's episode has ended and its next Reset draws from its own RNG).
        (string, RlhfSharp.Tensors.Optim.AdamW)[] Optimizers() => [("policy", optimizer.Optimizers[0]), ("baseline", baselineOptimizer.Optimizers[0])];
        void SaveCheckpoint()
        {
            if (run!.LatestCheckpoint()?.Step == globalStep) return;
            run.SaveCheckpoint(globalStep, dir =>
            {
                new ControlPolicy(cfg.EnvId, "reinforce", agent, null).Save(Path.Combine(dir, "policy"));
                TrainerCheckpoint.WriteOptimizers(dir, Optimizers());
                TrainerCheckpoint.WriteState(dir, new ReinforceState(batches, globalStep, rng.GetState(), optimizer.Optimizers[0].StepCount,
                    baselineOptimizer.Optimizers[0].StepCount, [.. envs.Select(e => e.SaveState())], [.. recent]));
            }, cfg.KeepCheckpoints);
        }
        if (run is { Resumed: true } && run.LatestCheckpoint() is { } checkpoint)
        {
            agent.LoadState(ControlPolicy.Load(Path.Combine(checkpoint.Path, "policy"), cfg.EnvId).Agent.StateDict());
            TrainerCheckpoint.ReadOptimizers(checkpoint.Path, Optimizers());
            var state = TrainerCheckpoint.ReadState<ReinforceState>(checkpoint.Path);
            if (state.Envs.Length != n)
                throw new FormatException($"{Path.Combine(checkpoint.Path, TrainerCheckpoint.StateFileName)}: {state.Envs.Length} environment states for {n} copies.");
            optimizer.Optimizers[0].StepCount = state.PolicyAdamSteps;
            baselineOptimizer.Optimizers[0].StepCount = state.BaselineAdamSteps;
            rng.SetState(state.Rng);
            for (int i = 0; i < n; i++) envs[i].RestoreState(state.Envs[i]);
            (batches, globalStep) = (state.Batches, state.GlobalStep);
            recent.AddRange(state.RecentReturns);
        }
        long startStep = globalStep;

        while (globalStep < cfg.TotalSteps)
        {
            if (ct.IsCancellationRequested)
            {
                if (run is not null) SaveCheckpoint();
                return Result(cancelled: true);
            }
            // 1. One whole episode from each copy; the copies advance together while any is still running.
            var obsL = new List<float>[n];
            var actL = new List<float>[n];
            var rewL = new List<float>[n];
            var returns = new List<double>();
            var trueReturn = new double[n]; // undiscounted: the charted episodic return
            var truncatedValue = new float?[n]; // V(final observation) of an episode cut by the time limit
            var lengths = new List<int>();
            float[][] obs = new float[n][];
            for (int i = 0; i < n; i++)
            {
                obs[i] = batches == 0 ? envs[i].Reset(seed + (ulong)i) : envs[i].Reset();
                obsL[i] = []; actL[i] = []; rewL[i] = [];
            }
            var running = Enumerable.Range(0, n).ToList();
            while (running.Count > 0)
            {
                var batchObs = new float[running.Count * s];
                for (int j = 0; j < running.Count; j++) obs[running[j]].CopyTo(batchObs, j * s);
                var act = agent.Act(batchObs, running.Count, rng, deterministic: false);
                var still = new List<int>();
                for (int j = 0; j < running.Count; j++)
                {
                    int i = running[j];
                    float[] a = act.Actions[(j * aSize)..((j + 1) * aSize)];
                    var r = envs[i].Step(box is null ? a : PpoTrainer.ClipToBox(a, box));
                    globalStep++;
                    obsL[i].AddRange(obs[i]);
                    actL[i].AddRange(a);
                    trueReturn[i] += r.Reward;
                    if (r.Truncated && !r.Terminated) truncatedValue[i] = agent.Values(r.Observation, 1)[0];
                    rewL[i].Add((float)r.Reward);
                    obs[i] = r.Observation;
                    if (r.Done)
                    {
                        returns.Add(trueReturn[i]);
                        lengths.Add(envs[i].ElapsedSteps);
                    }
                    else still.Add(i);
                }
                running = still;
            }

            // The episodes concatenated into one batch [total], each ending at its last step: terminated, or truncated and
            // bootstrapped (detail 1); then the Monte Carlo returns-to-go G_t.
            int total = rewL.Sum(l => l.Count);
            var bObs = new float[total * s];
            var bAct = new float[total * aSize];
            var bRew = new float[total];
            var bTerminated = new bool[total];
            var bTruncated = new bool[total];
            var bTruncatedValue = new float[total];
            int off = 0;
            for (int i = 0; i < n; i++)
            {
                int len = rewL[i].Count;
                obsL[i].CopyTo(bObs, off * s);
                actL[i].CopyTo(bAct, off * aSize);
                rewL[i].CopyTo(bRew, off);
                int end = off + len - 1;
                if (truncatedValue[i] is float v) (bTruncated[end], bTruncatedValue[end]) = (true, v);
                else bTerminated[end] = true;
                off += len;
            }
            float[] bRet = Advantages.ReturnsToGo(bRew, bTerminated, bTruncated, bTruncatedValue, nextValues: [0f], total, envs: 1, cfg.Gamma);

            var ev = agent.Evaluate(bObs, bAct, total);
            float[] values = ev.Values.ToArray();
            var adv = new float[total];
            for (int k = 0; k < total; k++) adv[k] = bRet[k] - values[k];
            if (cfg.NormalizeAdvantages) Whitening.Whiten(adv); // 2.
            var mask = Tensor.Ones(total);
            var ret = Tensor.FromArray(bRet, total);
            // The policy step: L = −mean((G − b)·log π) − c_e·H; the critic is not in this loss.
            var policyLoss = PolicyGradientLosses.Reinforce(ev.LogProb, Tensor.FromArray(adv, total), mask);
            var entropy = PolicyGradientLosses.EntropyBonus(ev.Entropy, mask, (float)cfg.EntropyCoef);
            double valueLoss = PolicyGradientLosses.ValueLoss(ev.Values, ret, mask).Item(); // before the baseline's fit
            optimizer.ZeroGrad();
            (policyLoss + entropy.Loss).Backward();
            double gradNorm = optimizer.ClipGradNorm(cfg.MaxGradNorm);
            // A diverged batch stops the run before it is logged or checkpointed (NumericGuard).
            string hint = NumericGuard.LearningRateHint(optimizer.LearningRate);
            NumericGuard.Check(globalStep, "policy loss", policyLoss.Item(), hint);
            NumericGuard.Check(globalStep, "gradient norm", gradNorm, hint);
            optimizer.Step(); // 3. one step per batch
            for (int k = 0; k < cfg.BaselineSteps; k++) // 5. fit b(s) to G by ½(V − G)²
            {
                baselineOptimizer.ZeroGrad();
                PolicyGradientLosses.ValueLoss(agent.EvaluateValues(bObs, total), ret, mask).Backward();
                baselineOptimizer.Step();
            }
            foreach (var set in optimizer.Sets.Concat(baselineOptimizer.Sets)) NumericGuard.CheckParameters(globalStep, set, hint);

            batches++;
            recent.AddRange(returns);
            if (recent.Count > 20) recent.RemoveRange(0, recent.Count - 20);
            var row = new MetricsRow(globalStep, new Dictionary<string, double>
            {
                [MetricKeys.EpisodicReturn] = returns.Average(),
                [MetricKeys.EpisodicLength] = lengths.Average(),
                [MetricKeys.ControlLearningRate] = optimizer.LearningRate,
                [MetricKeys.ControlPolicyLoss] = policyLoss.Item(),
                [MetricKeys.ControlValueLoss] = valueLoss,
                [MetricKeys.ControlEntropy] = entropy.Entropy,
                [MetricKeys.ControlExplainedVariance] = ValueDiagnostics.ExplainedVariance(values, bRet),
                [MetricKeys.StepsPerSecond] = (globalStep - startStep) / Math.Max(1e-9, watch.Elapsed.TotalSeconds),
            });
            rows.Add(row);
            run?.Log(row.GlobalStep, row.Values);
            options.OnMetrics?.Invoke(row);
            options.Progress?.Report(new TrainProgress(Math.Min(globalStep, cfg.TotalSteps), cfg.TotalSteps, recent.Average()));
            if (run is not null && cfg.CheckpointInterval > 0 && batches % cfg.CheckpointInterval == 0 && globalStep < cfg.TotalSteps) SaveCheckpoint();
        }
        if (run is not null)
        {
            SaveCheckpoint();
            new ControlPolicy(cfg.EnvId, "reinforce", agent, null).Save(Path.Combine(run.Path, "policy"));
        }
        return Result(cancelled: false);

        TrainResult Result(bool cancelled)
        {
            double wall = watch.Elapsed.TotalSeconds;
            return new TrainResult(new ControlPolicy(cfg.EnvId, "reinforce", agent, null), rows, wall, (globalStep - startStep) / Math.Max(1e-9, wall), globalStep, cancelled);
        }
    }

    /// <summary>The loop's state between batches (rlhf_trainer_state.json).</summary>
    private sealed record ReinforceState(int Batches, long GlobalStep, ulong[] Rng, int PolicyAdamSteps, int BaselineAdamSteps, EnvState[] Envs, double[] RecentReturns);
}
