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
//      (one shared step leaves it far behind and the advantage degenerates to the raw return).
using System.Diagnostics;
using RlhfSharp.Objectives;
using RlhfSharp.Tensors;

namespace RlhfSharp.Control.Rl;

/// <summary>REINFORCE settings.</summary>
public sealed record ReinforceConfig
{
    /// <summary>Environment steps to train for.</summary>
    public long TotalSteps { get; init; } = 200_000;

    /// <summary>Whole episodes per batch (one per environment copy).</summary>
    public int EpisodesPerBatch { get; init; } = 8;

    /// <summary>Adam learning rate.</summary>
    public double LearningRate { get; init; } = 1e-3;

    /// <summary>Discount γ.</summary>
    public double Gamma { get; init; } = 0.99;

    /// <summary>Normalise G − b over each batch (detail 2).</summary>
    public bool NormalizeAdvantages { get; init; } = true;

    /// <summary>Baseline regression steps per batch (detail 5).</summary>
    public int BaselineSteps { get; init; } = 10;

    /// <summary>Adam learning rate of the baseline.</summary>
    public double BaselineLearningRate { get; init; } = 1e-3;

    /// <summary>Entropy bonus coefficient.</summary>
    public double EntropyCoef { get; init; }

    /// <summary>Global gradient-norm clip.</summary>
    public double MaxGradNorm { get; init; } = 0.5;

    /// <summary>Hidden layer widths of policy and baseline.</summary>
    public int[] Hidden { get; init; } = [64, 64];
}

public static class ReinforceTrainer
{
    public static TrainResult Train(string envId, ReinforceConfig cfg, ulong seed, Action<MetricsRow>? onMetrics = null, Action<TrainProgress>? onProgress = null)
    {
        if (cfg.EpisodesPerBatch < 1) throw new ArgumentOutOfRangeException(nameof(cfg), cfg.EpisodesPerBatch, "REINFORCE needs EpisodesPerBatch ≥ 1.");
        var watch = Stopwatch.StartNew();
        var rng = new Rng(seed);
        int n = cfg.EpisodesPerBatch;
        var envs = new ClassicControlEnv[n];
        for (int i = 0; i < n; i++) envs[i] = EnvRegistry.Make(envId, seed + (ulong)i);
        int s = envs[0].ObservationSpace.FlatSize, aSize = envs[0].ActionSpace.FlatSize;
        var agent = new ActorCritic(s, envs[0].ActionSpace, cfg.Hidden, rng.Fork());
        var optimizer = new AgentOptimizer([agent.ActorParameters], cfg.LearningRate, epsilon: 1e-5); // 4.
        var baselineOptimizer = new AgentOptimizer([agent.CriticParameters], cfg.BaselineLearningRate, epsilon: 1e-5); // 5.
        var box = envs[0].ActionSpace as BoxSpace;
        var rows = new List<MetricsRow>();
        var recent = new List<double>();
        long globalStep = 0;
        bool firstBatch = true;

        while (globalStep < cfg.TotalSteps)
        {
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
                obs[i] = firstBatch ? envs[i].Reset(seed + (ulong)i) : envs[i].Reset();
                obsL[i] = []; actL[i] = []; rewL[i] = [];
            }
            firstBatch = false;
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
            optimizer.ClipGradNorm(cfg.MaxGradNorm);
            optimizer.Step(); // 3. one step per batch
            for (int k = 0; k < cfg.BaselineSteps; k++) // 5. fit b(s) to G by ½(V − G)²
            {
                baselineOptimizer.ZeroGrad();
                PolicyGradientLosses.ValueLoss(agent.EvaluateValues(bObs, total), ret, mask).Backward();
                baselineOptimizer.Step();
            }

            recent.AddRange(returns);
            if (recent.Count > 20) recent.RemoveRange(0, recent.Count - 20);
            var row = new MetricsRow(globalStep, new Dictionary<string, double>
            {
                ["charts/episodic_return"] = returns.Average(),
                ["charts/episodic_length"] = lengths.Average(),
                ["charts/learning_rate"] = optimizer.LearningRate,
                ["losses/policy"] = policyLoss.Item(),
                ["losses/value"] = valueLoss,
                ["losses/entropy"] = entropy.Entropy,
                ["losses/explained_variance"] = ValueDiagnostics.ExplainedVariance(values, bRet),
                ["charts/SPS"] = globalStep / Math.Max(1e-9, watch.Elapsed.TotalSeconds),
            });
            rows.Add(row);
            onMetrics?.Invoke(row);
            onProgress?.Invoke(new TrainProgress(Math.Min(globalStep, cfg.TotalSteps), cfg.TotalSteps, recent.Average()));
        }
        double wall = watch.Elapsed.TotalSeconds;
        return new TrainResult(new ControlPolicy(envId, "reinforce", agent, null), rows, wall, globalStep / Math.Max(1e-9, wall));
    }
}
