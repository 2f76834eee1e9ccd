// Christiano et al. 2017's reward predictor: an ensemble of MLPs r̂(o, a), each fitted on a bootstrap resample of the
// comparisons with the segment Bradley–Terry loss (Objectives.SegmentPreferenceLoss, 10% random answers, ties ½/½).
// The ensemble mean is the reward; the spread of the members' P̂ is the disagreement that picks queries; each member's
// out-of-bag comparisons give the held-out accuracy without spending labels on a validation set.
// The absorbing state after an early termination (a padded clip's frozen tail) is one input of its own — every feature at
// its mean and an indicator set — as in Kostrikov et al. 2019 (Discriminator-Actor-Critic, "absorbing states"): a segment's
// sum is Σ r̂ over its live steps plus (padding)·r̂_abs, so r̂_abs is one number learned from how long clips last, not an
// extrapolation to terminal observations that look almost like the states just before them.
// Every pass over segments runs the members' fused path (FusedMlp: preallocated buffers, no tape) on one input that holds
// each segment's live rows once and the absorbing row once; a segment's Σ r̂ is then a sum over its own row range. The
// members train and score side by side on the kernel threads (each on its own buffers, its random draws made first in
// the order one-after-another training would make them), so the results do not depend on how they are scheduled.
// Shapes: B segments (2B in a fit minibatch: the firsts, then the seconds), R live rows in all, F features per row.
using System.Runtime.CompilerServices;
using RlhfSharp.Models.Checkpoints;
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

    /// <summary>
    /// Comparisons per minibatch. 16: the loop learns as with 32 (seeds 1–5 at 300 CartPole labels, 700 labels on three
    /// tasks) at half the predictor's cost, which on CartPole's 75-step clips had been as large as PPO's; 12 and 8 lost
    /// one and two of the five 300-label seeds (docs/control.md).
    /// </summary>
    public int BatchSize { get; init; } = 16;

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
    private readonly FusedMlp[] _fused;
    private readonly ParameterSet[] _sets;
    private readonly AdamW[] _optimizers;
    private readonly RewardEnsembleConfig _cfg;
    private readonly int _actionFeatures;
    private readonly int? _discreteActions;
    private readonly bool _useActions;
    private float[] _inMean;
    private float[] _inScale;
    private List<Comparison>[] _outOfBag;
    // Each member's Σ r̂ over its out-of-bag pairs (firsts, seconds), computed once after a fit for accuracy and evidence.
    private (double[] First, double[] Second)?[] _outOfBagSums;
    // Each segment's standardised live rows [LiveSteps, F], built once: a segment is fitted on and scored many times.
    private ConditionalWeakTable<Trajectory, float[]> _rows = new();
    // Segment-pass inputs [R + 1, F], reused so a fit step allocates no row buffer: one shared by passes every member
    // reads, one per member for its fit and out-of-bag passes.
    private float[] _input = [];
    private readonly float[][] _memberInputs;

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
        _fused = new FusedMlp[cfg.Members];
        _sets = new ParameterSet[cfg.Members];
        _optimizers = new AdamW[cfg.Members];
        _outOfBag = new List<Comparison>[cfg.Members];
        _outOfBagSums = new (double[], double[])?[cfg.Members];
        _memberInputs = [.. Enumerable.Range(0, cfg.Members).Select(_ => Array.Empty<float>())];
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
            _fused[m] = new FusedMlp(_members[m]);
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
        Array.Clear(_outOfBagSums);
    }

    /// <summary>
    /// Writes what a resumed loop needs to continue bit-identically into <paramref name="dir"/>: each member's weights and
    /// the input standardisation (ensemble.safetensors), AdamW's moments (optimizer.safetensors); the step counts and the
    /// out-of-bag sets (as indices into the owner's comparison list) are returned for the owner's state file.
    /// </summary>
    public (int[] AdamSteps, int[][] OutOfBag) Save(string dir, IReadOnlyDictionary<Comparison, int> comparisonIndex)
    {
        var tensors = new Dictionary<string, StoredTensor>
        {
            ["input_mean"] = new([_inMean.Length], (float[])_inMean.Clone()),
            ["input_scale"] = new([_inScale.Length], (float[])_inScale.Clone()),
        };
        for (int m = 0; m < _members.Length; m++) tensors[$"member{m}"] = new([_sets[m].Values.Length], (float[])_sets[m].Values.Clone());
        Safetensors.Write(System.IO.Path.Combine(dir, EnsembleFileName), tensors);
        TrainerCheckpoint.WriteOptimizers(dir, [.. _optimizers.Select((o, m) => ($"member{m}", o))]);
        return ([.. _optimizers.Select(o => o.StepCount)], [.. _outOfBag.Select(list => list.Select(c => comparisonIndex[c]).ToArray())]);
    }

    /// <summary>Reads back what <see cref="Save"/> wrote into a freshly built ensemble of the same configuration.</summary>
    public void Load(string dir, int[] adamSteps, int[][] outOfBag, IReadOnlyList<Comparison> comparisons)
    {
        string file = System.IO.Path.Combine(dir, EnsembleFileName);
        var tensors = Safetensors.Read(file).Tensors;
        float[] Take(string key, int length) => tensors.TryGetValue(key, out var t) && t.Values.Length == length ? t.Values
            : throw new FormatException($"{file}: tensor '{key}' is missing or does not hold {length} values.");
        Take("input_mean", _inMean.Length).CopyTo(_inMean, 0);
        Take("input_scale", _inScale.Length).CopyTo(_inScale, 0);
        for (int m = 0; m < _members.Length; m++) Take($"member{m}", _sets[m].Values.Length).CopyTo(_sets[m].Values, 0);
        TrainerCheckpoint.ReadOptimizers(dir, [.. _optimizers.Select((o, m) => ($"member{m}", o))]);
        if (adamSteps.Length != _members.Length || outOfBag.Length != _members.Length)
            throw new FormatException($"{dir}: the checkpoint holds {adamSteps.Length} ensemble members; the run has {_members.Length}.");
        for (int m = 0; m < _members.Length; m++)
        {
            _optimizers[m].StepCount = adamSteps[m];
            _outOfBag[m] = [.. outOfBag[m].Select(i => comparisons[i])];
        }
        _rows = new();
        Array.Clear(_outOfBagSums);
    }

    /// <summary>The file <see cref="Save"/> writes the members' weights and the input standardisation to.</summary>
    public const string EnsembleFileName = "ensemble.safetensors";

    /// <summary>r̂(o, a) of each member for a batch of rows ([rows, S] and [rows, A]): [member][row].</summary>
    public float[][] PredictMembers(ReadOnlySpan<float> observations, ReadOnlySpan<float> actions, int rows)
    {
        var x = Input(observations, actions, rows);
        var per = new float[_members.Length][];
        for (int m = 0; m < per.Length; m++) per[m] = _fused[m].Forward(x, rows).ToArray();
        return per;
    }

    /// <summary>Ensemble-mean r̂ of the absorbing state that follows an early termination (see the file header).</summary>
    public double AbsorbingReward()
    {
        var x = new float[_inMean.Length];
        x[^1] = 1f; // every feature at its mean (0 once standardised), the indicator set
        double sum = 0;
        foreach (var f in _fused) sum += f.Forward(x, 1)[0];
        return sum / _fused.Length;
    }

    /// <summary>The ensemble-mean r̂(o, a) per row.</summary>
    public double[] Predict(ReadOnlySpan<float> observations, ReadOnlySpan<float> actions, int rows)
    {
        var x = Input(observations, actions, rows);
        var per = new float[_members.Length][];
        ForEachMember((m, threads) => per[m] = _fused[m].Forward(x, rows, threads).ToArray(), rows);
        var mean = new double[rows];
        foreach (var r in per)
            for (int i = 0; i < rows; i++) mean[i] += r[i] / (double)per.Length;
        return mean;
    }

    /// <summary>Σ r̂ over a segment for each member.</summary>
    public double[] SegmentSums(Trajectory segment)
    {
        var per = SegmentSums([segment]);
        return [.. per.Select(p => p[0])];
    }

    /// <summary>Σ r̂ over each segment for each member, one pass per member: [member][segment].</summary>
    public double[][] SegmentSums(IReadOnlyList<Trajectory> segments)
    {
        var layout = Layout(segments, ref _input);
        var sums = new double[_members.Length][];
        ForEachMember((m, threads) => sums[m] = layout.SumsOf(_fused[m].Forward(_input.AsSpan(0, layout.InputLength), layout.Rows, threads)), layout.Rows);
        return sums;
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
        Array.Clear(_outOfBagSums); // the members move: their out-of-bag sums are stale
        // Every member's random draws first (its bootstrap resample, then each step's minibatch), in member order.
        int b = Math.Min(_cfg.BatchSize, data.Count);
        var samples = new Comparison[_members.Length][];
        var picks = new int[_members.Length][];
        for (int m = 0; m < _members.Length; m++)
        {
            var inBag = new bool[data.Count];
            samples[m] = new Comparison[data.Count];
            for (int i = 0; i < data.Count; i++)
            {
                int k = rng.NextInt(data.Count);
                samples[m][i] = data[k];
                inBag[k] = true;
            }
            _outOfBag[m] = [.. data.Where((_, i) => !inBag[i])];
            picks[m] = new int[steps * b];
            for (int i = 0; i < picks[m].Length; i++) picks[m][i] = rng.NextInt(data.Count);
        }
        var last = new double[_members.Length];
        ForEachMember((m, threads) =>
        {
            var segments = new Trajectory[2 * b]; // the pairs' first segments, then their second ones
            var mu = new float[b];
            for (int s = 0; s < steps; s++)
            {
                for (int i = 0; i < b; i++)
                {
                    var c = samples[m][picks[m][s * b + i]];
                    (segments[i], segments[b + i], mu[i]) = (c.First, c.Second, c.Mu);
                }
                _sets[m].ZeroGrad();
                last[m] = Step(m, segments, mu, threads);
                _optimizers[m].Step();
            }
        }, rows: steps * b); // minibatch pairs to score: each is two segments of many rows
        // A diverged predictor stops the loop before it scores or steers anything (NumericGuard).
        for (int m = 0; m < _members.Length; m++)
        {
            NumericGuard.Check("reward-predictor training", $"member {m}'s loss", last[m], NumericGuard.LearningRateHint(_optimizers[m].Config.LearningRate));
            NumericGuard.CheckParameters("reward-predictor training", _sets[m], NumericGuard.LearningRateHint(_optimizers[m].Config.LearningRate), $"member {m}");
        }
        double lossSum = 0;
        foreach (double l in last) lossSum += l;
        return lossSum / _members.Length;
    }

    /// <summary>Member m's loss on <paramref name="batch"/>, its gradient left in <see cref="MemberParameters"/>(m).Grads (tests).</summary>
    internal double LossGradient(int m, IReadOnlyList<Comparison> batch)
    {
        _sets[m].ZeroGrad();
        return Step(m, [.. batch.Select(c => c.First), .. batch.Select(c => c.Second)], [.. batch.Select(c => c.Mu)]);
    }

    /// <summary>Member m's parameters and gradients (tests).</summary>
    internal ParameterSet MemberParameters(int m) => _sets[m];

    /// <summary>
    /// One gradient of member m's segment loss: Σ r̂ per segment by the fused forward, the Bradley–Terry loss on the sums on
    /// the tape (Objectives.SegmentPreferenceLoss), and dL/dS spread back over each segment's rows — every live row of
    /// segment b gets dL/dS_b, the shared absorbing row Σ_b padding_b·dL/dS_b — through the fused backward. Returns the loss.
    /// </summary>
    private double Step(int m, Trajectory[] segments, float[] mu, int threads = 0)
    {
        int b = mu.Length;
        var layout = Layout(segments, ref _memberInputs[m]);
        double[] sums = layout.SumsOf(_fused[m].Forward(_memberInputs[m].AsSpan(0, layout.InputLength), layout.Rows, threads));
        var first = Tensor.FromArray([.. sums[..b].Select(v => (float)v)], b);
        var second = Tensor.FromArray([.. sums[b..].Select(v => (float)v)], b);
        first.RequiresGrad = second.RequiresGrad = true;
        var loss = SegmentPreferenceLoss.Loss(first, second, mu, _cfg.RandomRate);
        loss.Backward();
        var dSums = new float[2 * b];
        first.Grad!.Span.CopyTo(dSums);
        second.Grad!.Span.CopyTo(dSums.AsSpan(b));
        _fused[m].Backward(layout.RowGradients(dSums), threads);
        return loss.Item();
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
            var oob = _outOfBag[m];
            if (!oob.Any(c => c.Mu != 0.5f)) continue;
            var (firsts, seconds) = OutOfBagSums(m);
            for (int i = 0; i < oob.Count; i++)
            {
                if (oob[i].Mu == 0.5f) continue;
                double d = firsts[i] - seconds[i];
                if (d != 0) { total++; if ((d > 0) == (oob[i].Mu > 0.5f)) right++; }
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
            var (firsts, seconds) = OutOfBagSums(m);
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

    /// <summary>Member m's Σ r̂ over its out-of-bag pairs, one pass per member and fit (all members' at once).</summary>
    private (double[] First, double[] Second) OutOfBagSums(int m)
    {
        if (_outOfBagSums[m] is not { } sums)
        {
            ForEachMember((k, threads) => _outOfBagSums[k] ??= MemberSums(k, _outOfBag[k], threads), rows: _outOfBag.Sum(o => o.Count));
            sums = _outOfBagSums[m]!.Value;
        }
        return sums;
    }

    /// <summary>Member m's Σ r̂ over each pair's first and over its second segment, one pass.</summary>
    private (double[] First, double[] Second) MemberSums(int m, IReadOnlyList<Comparison> pairs, int threads)
    {
        var layout = Layout([.. pairs.Select(c => c.First), .. pairs.Select(c => c.Second)], ref _memberInputs[m]);
        double[] sums = layout.SumsOf(_fused[m].Forward(_memberInputs[m].AsSpan(0, layout.InputLength), layout.Rows, threads));
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

    /// <summary>
    /// Where each segment's rows lie in the input of a segment pass: segment b's live rows are [Start_b, Start_b + Live_b),
    /// and its Pad_b padded steps all read the one absorbing row, the last of the Rows.
    /// </summary>
    private sealed record SegmentLayout(int Rows, int InputLength, int[] Start, int[] Live, int[] Pad)
    {
        /// <summary>S_b = Σ_{t &lt; Live_b} r̂[Start_b + t] + Pad_b·r̂_abs in float64, from r̂ [Rows].</summary>
        public double[] SumsOf(ReadOnlySpan<float> r)
        {
            double abs = r[Rows - 1];
            var sums = new double[Start.Length];
            for (int b = 0; b < sums.Length; b++)
            {
                double s = 0;
                for (int t = 0; t < Live[b]; t++) s += r[Start[b] + t];
                sums[b] = s + Pad[b] * abs;
            }
            return sums;
        }

        /// <summary>dL/dr̂ [Rows] from dL/dS [B]: the chain rule through SumsOf.</summary>
        public float[] RowGradients(ReadOnlySpan<float> dSums)
        {
            var g = new float[Rows];
            double abs = 0;
            for (int b = 0; b < dSums.Length; b++)
            {
                g.AsSpan(Start[b], Live[b]).Fill(dSums[b]);
                abs += Pad[b] * (double)dSums[b];
            }
            g[Rows - 1] = (float)abs;
            return g;
        }
    }

    /// <summary>
    /// Writes segments into the reused input [R + 1, F]: every segment's live rows, then a single absorbing-state row shared
    /// by all padded tails (the tails are identical inputs, so one row and a count stand in for them).
    /// </summary>
    private SegmentLayout Layout(IReadOnlyList<Trajectory> segments, ref float[] input)
    {
        int f = _inMean.Length, rows = 0;
        var parts = new float[segments.Count][];
        var start = new int[segments.Count];
        var live = new int[segments.Count];
        var pad = new int[segments.Count];
        for (int b = 0; b < segments.Count; b++)
        {
            parts[b] = _rows.GetValue(segments[b], SegmentRows);
            (start[b], live[b], pad[b]) = (rows, segments[b].LiveSteps, segments[b].Length - segments[b].LiveSteps);
            rows += live[b];
        }
        int length = (rows + 1) * f;
        if (input.Length < length) input = new float[Math.Max(length, input.Length + input.Length / 2)];
        for (int b = 0; b < segments.Count; b++) parts[b].CopyTo(input, start[b] * f);
        var absorbing = input.AsSpan(rows * f, f);
        absorbing.Clear();
        absorbing[^1] = 1f; // the absorbing row: standardised features at their mean (0), the indicator set
        return new SegmentLayout(rows + 1, length, start, live, pad);
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

    /// <summary>
    /// Runs body(m, gemmThreads) for every member: side by side on up to Parallelism.Threads threads, each member's GEMMs on
    /// its own thread (gemmThreads 1), when there is enough work (at least 64 rows or minibatch pairs); else one after
    /// another with the GEMMs split over the kernel threads (gemmThreads 0). Each member touches only its own network,
    /// buffers and result slot, and a GEMM's result does not depend on its thread count, so both give the same bits.
    /// </summary>
    private void ForEachMember(Action<int, int> body, int rows)
    {
        if (rows < 64 || Parallelism.Threads < 2 || _members.Length < 2)
        {
            for (int m = 0; m < _members.Length; m++) body(m, 0);
            return;
        }
        try
        {
            Parallel.For(0, _members.Length, new ParallelOptions { MaxDegreeOfParallelism = Parallelism.Threads }, m => body(m, 1));
        }
        catch (AggregateException e) when (e.InnerExceptions.Count == 1)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
        }
    }

    /// <summary>Standardised network rows [rows, F] (the absorbing indicator 0) for raw observations and actions.</summary>
    private float[] Input(ReadOnlySpan<float> observations, ReadOnlySpan<float> actions, int rows)
    {
        if (observations.Length != rows * ObservationSize || actions.Length != rows * ActionSize)
            throw new ArgumentException($"RewardEnsemble: {observations.Length} observation and {actions.Length} action values for {rows} rows of {ObservationSize} + {ActionSize}.");
        int f = _inMean.Length;
        var x = new float[rows * f];
        for (int r = 0; r < rows; r++)
            WriteRow(observations.Slice(r * ObservationSize, ObservationSize), actions.Slice(r * ActionSize, ActionSize), x.AsSpan(r * f, f));
        return x;
    }

    /// <summary>One step's standardised features (the absorbing indicator 0) into <paramref name="row"/> [F].</summary>
    private void WriteRow(ReadOnlySpan<float> obs, ReadOnlySpan<float> act, Span<float> row)
    {
        WriteFeatures(obs, act, row);
        for (int j = 0; j < row.Length - 1; j++) row[j] = (row[j] - _inMean[j]) * _inScale[j];
    }
}
