// Christiano et al. 2017's reward predictor: an ensemble of MLPs r̂(o, a), each fitted on a bootstrap resample of the
// comparisons with the segment Bradley–Terry loss (Objectives.SegmentPreferenceLoss, 10% random answers, ties ½/½).
// The ensemble mean is the reward; the spread of the members' P̂ is the disagreement that picks queries; each member's
// out-of-bag comparisons give the held-out accuracy without spending labels on a validation set.
// The absorbing state after an early termination (a padded clip's frozen tail) is one input of its own — every feature at
// its mean and an indicator set — as in Kostrikov et al. 2019 (Discriminator-Actor-Critic, "absorbing states"): a segment's
// sum is Σ r̂ over its live steps plus (padding)·r̂_abs, so r̂_abs is one number learned from how long clips last, not an
// extrapolation to terminal observations that look almost like the states just before them.
using System.Runtime.CompilerServices;
using RlhfSharp.Objectives;
using RlhfSharp.Tensors;
using RlhfSharp.Tensors.Nn;
using RlhfSharp.Tensors.Optim;

namespace RlhfSharp.Control.Preferences;

/// <summary>One answered comparison of two segments; Mu is the probability mass on the first (1, 0, or ½ for a tie).</summary>
public sealed record Comparison(Trajectory First, Trajectory Second, float Mu);

/// <summary>Settings of the reward predictor.</summary>
public sealed record RewardEnsembleConfig
{
    /// <summary>Members of the ensemble (the paper's default is 3).</summary>
    public int Members { get; init; } = 3;

    /// <summary>Hidden layer widths of each member's MLP.</summary>
    public int[] Hidden { get; init; } = [64, 64];

    /// <summary>Adam learning rate.</summary>
    public double LearningRate { get; init; } = 1e-3;

    /// <summary>
    /// Decoupled weight decay (the paper regularises the predictor with L2). Strong on purpose: the labels pin down living
    /// against dying (one weight, on the absorbing indicator) far better than differences among live states, and with 1e-4
    /// the fit grew spurious live-state differences that PPO exploited (CartPole true return 500 → ~130); with 1 they fade.
    /// </summary>
    public double WeightDecay { get; init; } = 1.0;

    /// <summary>Comparisons per minibatch.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>
    /// Whether r̂ reads the action as well as the observation (the paper's MuJoCo predictor is r̂(o, a), its Atari one reads
    /// frames only). Off by default: the classic-control labels say almost nothing about actions (no true reward here
    /// depends on them but Pendulum's 0.001·u²), and what the fit gave them anyway PPO took. On CartPole r̂ paid "push
    /// right" about 0.1 more normalised reward per step than "push left" and the cart ran off the track at step ~140
    /// (learning-test seed 1: 500 at 10k steps, 182 at the end); on Pendulum the policy's spread collapsed onto the torques
    /// r̂ favoured (entropy 0.15 at 63k steps against true-reward PPO's 0.82) and seed 2 kept spinning through the top
    /// (−725; −150 from observations only).
    /// </summary>
    public bool UseActions { get; init; }

    /// <summary>Assumed share of uniformly random answers ρ in the loss.</summary>
    public double RandomRate { get; init; } = SegmentPreferenceLoss.PaperRandomRate;
}

public sealed class RewardEnsemble
{
    private readonly Mlp[] _members;
    private readonly ParameterSet[] _sets;
    private readonly AdamW[] _optimizers;
    private readonly RewardEnsembleConfig _cfg;
    private readonly int _actionFeatures;
    private readonly int? _discreteActions;
    private readonly bool _useActions;
    private float[] _inMean;
    private float[] _inScale;
    private List<Comparison>[] _outOfBag;
    // Each segment's standardised live rows [LiveSteps, F], built once: a segment is fitted on and scored many times.
    private ConditionalWeakTable<Trajectory, float[]> _rows = new();

    /// <param name="observationSize">Observation floats S.</param>
    /// <param name="actionSpace">Discrete actions enter one-hot; box actions as they are.</param>
    public RewardEnsemble(int observationSize, Space actionSpace, RewardEnsembleConfig cfg, Rng rng)
    {
        if (cfg.Members < 1) throw new ArgumentOutOfRangeException(nameof(cfg), cfg.Members, "RewardEnsemble: Members must be ≥ 1.");
        if (cfg.BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(cfg), cfg.BatchSize, "RewardEnsemble: BatchSize must be ≥ 1.");
        _cfg = cfg;
        ObservationSize = observationSize;
        _discreteActions = actionSpace is DiscreteSpace d ? d.N : null;
        _useActions = cfg.UseActions;
        _actionFeatures = _useActions ? _discreteActions ?? actionSpace.FlatSize : 0;
        ActionSize = actionSpace.FlatSize;
        int f = observationSize + _actionFeatures + 1; // the last feature marks the absorbing state
        _inMean = new float[f];
        _inScale = Enumerable.Repeat(1f, f).ToArray();
        _members = new Mlp[cfg.Members];
        _sets = new ParameterSet[cfg.Members];
        _optimizers = new AdamW[cfg.Members];
        _outOfBag = new List<Comparison>[cfg.Members];
        for (int m = 0; m < cfg.Members; m++)
        {
            _members[m] = new Mlp([f, .. cfg.Hidden, 1], Activation.Relu, rng.Fork());
            // The output layer starts at zero, so an unfitted member is the constant reward: only labels create differences
            // between states. A random initial function is not harmless — the loop normalises r̂ to unit spread and PPO its
            // advantages per minibatch, so any variation, however small, becomes a full-strength policy gradient. On Acrobot,
            // whose pre-RL clips are all ties (random play never reaches the line), seeds 2 and 3 collapsed onto whatever
            // the random predictor favoured (entropy 1.1 → 0.06 in 40k steps) and never reached the line.
            _members[m].Layers[^1].Weight.Span.Clear();
            _members[m].Layers[^1].Bias?.Span.Clear();
            _sets[m] = new ParameterSet(_members[m]);
            _optimizers[m] = new AdamW(_sets[m], new AdamWConfig { LearningRate = (float)cfg.LearningRate, WeightDecay = (float)cfg.WeightDecay });
            _outOfBag[m] = [];
        }
    }

    public int ObservationSize { get; }

    public int ActionSize { get; }

    public int MemberCount => _members.Length;

    /// <summary>Fixes the input standardisation (per feature mean and spread) from the steps of some segments; call once, before fitting.</summary>
    public void SetInputStatistics(IEnumerable<Trajectory> segments)
    {
        var rows = segments.SelectMany(s => Enumerable.Range(0, s.LiveSteps).Select(t => Features(s.Observations[t], s.Actions[t]))).ToList();
        if (rows.Count == 0) throw new ArgumentException("RewardEnsemble.SetInputStatistics: no live steps given.", nameof(segments));
        int f = _inMean.Length - 1; // the absorbing indicator is fed as it is
        for (int j = 0; j < f; j++)
        {
            double mean = rows.Average(r => r[j]);
            double sd = Math.Sqrt(rows.Average(r => (r[j] - mean) * (r[j] - mean)));
            _inMean[j] = (float)mean;
            _inScale[j] = (float)(1.0 / Math.Max(sd, 1e-3)); // a constant feature (one-hot never used) stays finite
        }
        _rows = new(); // rows standardised with the old statistics are stale

    }

    /// <summary>r̂(o, a) of each member for a batch of rows ([rows, S] and [rows, A]), without a graph: [member][row].</summary>
    public float[][] PredictMembers(ReadOnlySpan<float> observations, ReadOnlySpan<float> actions, int rows)
    {
        using var _ = Autograd.NoGrad();
        var x = Input(observations, actions, rows, absorbing: null);
        return [.. _members.Select(m => m.Forward(x).ToArray())];
    }

    /// <summary>Ensemble-mean r̂ of the absorbing state that follows an early termination (see the file header).</summary>
    public double AbsorbingReward()
    {
        using var _ = Autograd.NoGrad();
        var x = Input(new float[ObservationSize], new float[ActionSize], 1, absorbing: [true]);
        return _members.Average(m => (double)m.Forward(x).ToArray()[0]);
    }

    /// <summary>The ensemble-mean r̂(o, a) per row.</summary>
    public double[] Predict(ReadOnlySpan<float> observations, ReadOnlySpan<float> actions, int rows)
    {
        var per = PredictMembers(observations, actions, rows);
        var mean = new double[rows];
        foreach (var p in per)
            for (int r = 0; r < rows; r++) mean[r] += p[r] / (double)per.Length;
        return mean;
    }

    /// <summary>Σ r̂ over a segment for each member.</summary>
    public double[] SegmentSums(Trajectory segment)
    {
        var per = SegmentSums([segment]);
        return [.. per.Select(p => p[0])];
    }

    /// <summary>Σ r̂ over each segment for each member, one forward pass per member: [member][segment].</summary>
    public double[][] SegmentSums(IReadOnlyList<Trajectory> segments)
    {
        using var _ = Autograd.NoGrad();
        var batch = SegmentBatch(segments);
        return [.. _members.Select(m => batch.SumsOf(m.Forward(batch.Input).ToArray()))];
    }

    /// <summary>Variance across members of P̂[first ≻ second] (the paper's disagreement score), and the members' mean P̂.</summary>
    public static (double Variance, double Mean) Disagreement(double[] firstSums, double[] secondSums)
    {
        if (firstSums.Length != secondSums.Length || firstSums.Length == 0)
            throw new ArgumentException($"Disagreement: {firstSums.Length} and {secondSums.Length} member sums.");
        var p = firstSums.Zip(secondSums, (a, b) => 1.0 / (1.0 + Math.Exp(-(a - b)))).ToArray();
        double mean = p.Average();
        return (p.Average(v => (v - mean) * (v - mean)), mean);
    }

    /// <summary>
    /// Refits every member for <paramref name="steps"/> minibatch steps (warm-started) on a fresh bootstrap resample of the
    /// comparisons; the comparisons a member's resample missed become its out-of-bag set. Returns the mean final loss.
    /// </summary>
    public double Fit(IReadOnlyList<Comparison> data, int steps, Rng rng)
    {
        if (data.Count == 0) throw new ArgumentException("RewardEnsemble.Fit: no comparisons.", nameof(data));
        double lossSum = 0;
        for (int m = 0; m < _members.Length; m++)
        {
            var inBag = new bool[data.Count];
            var sample = new Comparison[data.Count];
            for (int i = 0; i < data.Count; i++)
            {
                int k = rng.NextInt(data.Count);
                sample[i] = data[k];
                inBag[k] = true;
            }
            _outOfBag[m] = [.. data.Where((_, i) => !inBag[i])];
            double last = 0;
            int b = Math.Min(_cfg.BatchSize, sample.Length);
            for (int s = 0; s < steps; s++)
            {
                var batch = new Comparison[b];
                for (int i = 0; i < b; i++) batch[i] = sample[rng.NextInt(sample.Length)];
                _sets[m].ZeroGrad();
                var loss = SegmentPreferenceLoss.Loss(Sums(_members[m], batch.Select(c => c.First).ToArray()),
                    Sums(_members[m], batch.Select(c => c.Second).ToArray()), batch.Select(c => c.Mu).ToArray(), _cfg.RandomRate);
                loss.Backward();
                _optimizers[m].Step();
                last = loss.ToArray()[0];
            }
            lossSum += last;
        }
        return lossSum / _members.Length;
    }

    /// <summary>
    /// Accuracy on comparisons no member trained on in its last fit (each member on its own out-of-bag set, strict
    /// preferences only), pooled over members; NaN when there are none.
    /// </summary>
    public double OutOfBagAccuracy()
    {
        int right = 0, total = 0;
        for (int m = 0; m < _members.Length; m++)
        {
            var strict = _outOfBag[m].Where(c => c.Mu != 0.5f).ToList();
            if (strict.Count == 0) continue;
            var (firsts, seconds) = MemberSums(m, strict);
            for (int i = 0; i < strict.Count; i++)
            {
                double d = firsts[i] - seconds[i];
                if (d != 0) { total++; if ((d > 0) == (strict[i].Mu > 0.5f)) right++; }
            }
        }
        return total == 0 ? double.NaN : right / (double)total;
    }

    /// <summary>
    /// Evidence that r̂ has learned something: the summed out-of-bag log-likelihood gain, in nats, of each member over the
    /// constant reward (which says P = ½ to every pair, −log ½ per comparison), ties included. A member fitted only to the
    /// labeller's random answers to equal clips predicts the comparisons it did not see no better than the constant
    /// (Acrobot before the line is reached: −5.2 to +1.2 nats), so a clearly positive sum says the labels carry a preference
    /// r̂ has learned; NaN when no member has an out-of-bag comparison. Logged as prefrl/rm_oob_evidence.
    /// </summary>
    public double OutOfBagEvidence()
    {
        double gain = 0;
        int total = 0;
        for (int m = 0; m < _members.Length; m++)
        {
            var oob = _outOfBag[m];
            if (oob.Count == 0) continue;
            var (firsts, seconds) = MemberSums(m, oob);
            for (int i = 0; i < oob.Count; i++)
            {
                double first = firsts[i], second = seconds[i], mu = oob[i].Mu;
                double pFirst = SegmentPreferenceLoss.ProbabilityFirst(first, second, _cfg.RandomRate);
                double pSecond = SegmentPreferenceLoss.ProbabilityFirst(second, first, _cfg.RandomRate);
                gain += Math.Log(2) + mu * Math.Log(pFirst) + (1 - mu) * Math.Log(pSecond);
                total++;
            }
        }
        return total == 0 ? double.NaN : gain;
    }

    /// <summary>Member m's Σ r̂ over each pair's first and over its second segment, one forward pass, no graph.</summary>
    private (double[] First, double[] Second) MemberSums(int m, IReadOnlyList<Comparison> pairs)
    {
        using var _ = Autograd.NoGrad();
        var batch = SegmentBatch([.. pairs.Select(c => c.First), .. pairs.Select(c => c.Second)]);
        double[] sums = batch.SumsOf(_members[m].Forward(batch.Input).ToArray());
        return (sums[..pairs.Count], sums[pairs.Count..]);
    }

    /// <summary>Accuracy of the ensemble mean on given comparisons (strict preferences only); NaN when there are none.</summary>
    public double Accuracy(IEnumerable<Comparison> data)
    {
        var strict = data.Where(c => c.Mu != 0.5f).ToList();
        if (strict.Count == 0) return double.NaN;
        var per = SegmentSums([.. strict.Select(c => c.First), .. strict.Select(c => c.Second)]);
        int right = 0;
        for (int i = 0; i < strict.Count; i++)
        {
            double d = per.Average(p => p[i]) - per.Average(p => p[strict.Count + i]);
            if (d != 0 && (d > 0) == (strict[i].Mu > 0.5f)) right++;
        }
        return right / (double)strict.Count;
    }

    /// <summary>Σ_t r̂ per segment as a [B] tensor on the graph.</summary>
    private Tensor Sums(Mlp member, Trajectory[] segments)
    {
        var batch = SegmentBatch(segments);
        var r = member.Forward(batch.Input); // [R + 1, 1]
        return Ops.Reshape(Ops.MatMul(batch.Pick, r), segments.Length);
    }

    /// <summary>
    /// Segments as one network input: every segment's live rows, then a single absorbing-state row shared by all padded
    /// tails (the tails are identical inputs, so one forward row and a count stand in for them). Input [R + 1, F];
    /// Pick [B, R + 1] holds 1 on a segment's live rows and its padding count on the absorbing row, so Pick·r̂ = Σ_t r̂.
    /// </summary>
    private sealed record Batch(Tensor Input, Tensor Pick)
    {
        public double[] SumsOf(float[] r)
        {
            int b = Pick.Shape[0], cols = Pick.Shape[1];
            var pick = Pick.Span;
            var sums = new double[b];
            for (int i = 0; i < b; i++)
            {
                double s = 0;
                for (int j = 0; j < cols; j++) if (pick[i * cols + j] != 0) s += pick[i * cols + j] * (double)r[j];
                sums[i] = s;
            }
            return sums;
        }
    }

    private Batch SegmentBatch(IReadOnlyList<Trajectory> segments)
    {
        int f = _inMean.Length, rows = 0;
        var parts = new float[segments.Count][];
        for (int b = 0; b < segments.Count; b++)
        {
            parts[b] = _rows.GetValue(segments[b], SegmentRows);
            rows += segments[b].LiveSteps;
        }
        var x = new float[(rows + 1) * f];
        var pick = new float[segments.Count * (rows + 1)];
        int at = 0;
        for (int b = 0; b < segments.Count; b++)
        {
            parts[b].CopyTo(x, at * f);
            int live = segments[b].LiveSteps;
            for (int t = 0; t < live; t++) pick[b * (rows + 1) + at + t] = 1f;
            pick[b * (rows + 1) + rows] = segments[b].Length - live;
            at += live;
        }
        x[rows * f + f - 1] = 1f; // the absorbing row: standardised features at their mean (0), the indicator set
        return new Batch(Tensor.Wrap(x, rows + 1, f), Tensor.Wrap(pick, segments.Count, rows + 1));
    }

    /// <summary>A segment's live steps as standardised network rows [LiveSteps, F].</summary>
    private float[] SegmentRows(Trajectory s)
    {
        int f = _inMean.Length;
        var x = new float[s.LiveSteps * f];
        for (int t = 0; t < s.LiveSteps; t++) WriteRow(s.Observations[t], s.Actions[t], x.AsSpan(t * f, f));
        return x;
    }

    private float[] Features(float[] obs, float[] act)
    {
        var f = new float[ObservationSize + _actionFeatures + 1];
        WriteFeatures(obs, act, f);
        return f;
    }

    /// <summary>One step's raw features into <paramref name="row"/> [F]: observation, then the action (one-hot when discrete)
    /// unless r̂ ignores actions; the absorbing indicator 0.</summary>
    private void WriteFeatures(ReadOnlySpan<float> obs, ReadOnlySpan<float> act, Span<float> row)
    {
        row.Clear();
        obs.CopyTo(row);
        if (!_useActions) return;
        if (_discreteActions is int k)
        {
            int a = (int)act[0];
            if (a < 0 || a >= k) throw new ArgumentOutOfRangeException(nameof(act), act[0], $"RewardEnsemble: action {act[0]} is not in Discrete({k}).");
            row[ObservationSize + a] = 1f;
        }
        else act.CopyTo(row[ObservationSize..]);
    }

    /// <param name="absorbing">Per row, whether it is the absorbing state (its features are then all at their mean, the
    /// indicator 1); null when no row is.</param>
    private Tensor Input(ReadOnlySpan<float> observations, ReadOnlySpan<float> actions, int rows, IReadOnlyList<bool>? absorbing)
    {
        if (observations.Length != rows * ObservationSize || actions.Length != rows * ActionSize)
            throw new ArgumentException($"RewardEnsemble: {observations.Length} observation and {actions.Length} action values for {rows} rows of {ObservationSize} + {ActionSize}.");
        int f = _inMean.Length;
        var x = new float[rows * f];
        for (int r = 0; r < rows; r++)
        {
            if (absorbing is not null && absorbing[r])
            {
                x[r * f + f - 1] = 1f;
                continue;
            }
            WriteRow(observations.Slice(r * ObservationSize, ObservationSize), actions.Slice(r * ActionSize, ActionSize), x.AsSpan(r * f, f));
        }
        return Tensor.Wrap(x, rows, f);
    }

    /// <summary>One step's standardised features (the absorbing indicator 0) into <paramref name="row"/> [F].</summary>
    private void WriteRow(ReadOnlySpan<float> obs, ReadOnlySpan<float> act, Span<float> row)
    {
        WriteFeatures(obs, act, row);
        for (int j = 0; j < row.Length - 1; j++) row[j] = (row[j] - _inMean[j]) * _inScale[j];
    }
}
