// Running mean/variance and the observation and reward normalisers built on it, as Gymnasium's
// gymnasium/wrappers/utils.py RunningMeanStd and the NormalizeObservation / NormalizeReward wrappers.
// Their state is a plain record so it can be saved beside the policy and restored for evaluation.
using System.Text.Json.Serialization;

namespace RlhfSharp.Control;

/// <summary>Serializable statistics of a RunningMeanStd.</summary>
/// <param name="Mean">Per-dimension mean.</param>
/// <param name="Var">Per-dimension (population) variance.</param>
/// <param name="Count">Effective number of samples (starts at epsilon = 1e-4 as in Gymnasium).</param>
public sealed record RunningStats(
    [property: JsonPropertyName("mean")] double[] Mean,
    [property: JsonPropertyName("var")] double[] Var,
    [property: JsonPropertyName("count")] double Count);

/// <summary>Chan et al.'s parallel mean/variance update over batches ("update_mean_var_count_from_moments").</summary>
public sealed class RunningMeanStd
{
    public RunningMeanStd(int size, double epsilon = 1e-4)
    {
        if (size < 1) throw new ArgumentOutOfRangeException(nameof(size), size, "RunningMeanStd needs size ≥ 1.");
        Mean = new double[size];
        Var = new double[size];
        Array.Fill(Var, 1.0);
        Count = epsilon;
    }

    public double[] Mean { get; private set; }

    public double[] Var { get; private set; }

    public double Count { get; private set; }

    public int Size => Mean.Length;

    /// <summary>Folds in a batch of rows, [rows, Size] row-major.</summary>
    public void Update(ReadOnlySpan<float> batch)
    {
        if (batch.Length == 0 || batch.Length % Size != 0)
            throw new ArgumentException($"RunningMeanStd.Update: batch of {batch.Length} values is not a whole number of rows of {Size}.", nameof(batch));
        int rows = batch.Length / Size;
        for (int d = 0; d < Size; d++)
        {
            double m = 0;
            for (int r = 0; r < rows; r++) m += batch[r * Size + d];
            m /= rows;
            double v = 0;
            for (int r = 0; r < rows; r++) { double x = batch[r * Size + d] - m; v += x * x; }
            v /= rows;
            Combine(d, m, v, rows);
        }
        Count += rows;
    }

    /// <summary>Folds in a batch of scalars when Size is 1 (the reward normaliser's returns).</summary>
    public void Update(ReadOnlySpan<double> scalars)
    {
        if (Size != 1) throw new InvalidOperationException($"RunningMeanStd.Update(double[]) is for size 1; this one has size {Size}.");
        if (scalars.Length == 0) throw new ArgumentException("RunningMeanStd.Update: empty batch.", nameof(scalars));
        double m = 0;
        foreach (double x in scalars) m += x;
        m /= scalars.Length;
        double v = 0;
        foreach (double x in scalars) v += (x - m) * (x - m);
        v /= scalars.Length;
        Combine(0, m, v, scalars.Length);
        Count += scalars.Length;
    }

    private void Combine(int d, double batchMean, double batchVar, int batchCount)
    {
        double delta = batchMean - Mean[d];
        double tot = Count + batchCount;
        double m2 = Var[d] * Count + batchVar * batchCount + delta * delta * Count * batchCount / tot;
        Mean[d] += delta * batchCount / tot;
        Var[d] = m2 / tot;
    }

    public RunningStats Save() => new((double[])Mean.Clone(), (double[])Var.Clone(), Count);

    public void Load(RunningStats stats)
    {
        if (stats.Mean.Length != Size || stats.Var.Length != Size)
            throw new ArgumentException($"RunningMeanStd.Load: stats have {stats.Mean.Length} means and {stats.Var.Length} variances; expected {Size}.", nameof(stats));
        Mean = (double[])stats.Mean.Clone();
        Var = (double[])stats.Var.Clone();
        Count = stats.Count;
    }
}

/// <summary>NormalizeObservation: (obs − mean) / sqrt(var + 1e-8), then clipped to ±Clip (CleanRL's continuous PPO clips at 10).</summary>
public sealed class ObservationNormalizer
{
    public const double Epsilon = 1e-8;

    public ObservationNormalizer(int size, double clip = 10.0)
    {
        Stats = new RunningMeanStd(size);
        Clip = clip;
    }

    public RunningMeanStd Stats { get; }

    public double Clip { get; }

    /// <summary>False at evaluation: statistics stay frozen.</summary>
    public bool Training { get; set; } = true;

    /// <summary>Updates the statistics with the batch (when training), then returns it normalised, [rows, size].</summary>
    public float[] Normalize(ReadOnlySpan<float> batch)
    {
        if (Training) Stats.Update(batch);
        return Apply(batch);
    }

    /// <summary>Normalises without touching the statistics.</summary>
    public float[] Apply(ReadOnlySpan<float> batch)
    {
        int size = Stats.Size;
        if (batch.Length % size != 0)
            throw new ArgumentException($"ObservationNormalizer: batch of {batch.Length} values is not a whole number of observations of {size}.", nameof(batch));
        var outp = new float[batch.Length];
        for (int i = 0; i < batch.Length; i++)
        {
            int d = i % size;
            double z = (batch[i] - Stats.Mean[d]) / Math.Sqrt(Stats.Var[d] + Epsilon);
            outp[i] = (float)Math.Clamp(z, -Clip, Clip);
        }
        return outp;
    }
}

/// <summary>
/// NormalizeReward: keeps a discounted return per env copy, G ← γ·G·(1 − terminated) + r, tracks its variance, and divides
/// rewards by sqrt(var + 1e-8) (no mean shift, so the sign of a reward is kept), then clips to ±Clip.
/// </summary>
public sealed class RewardNormalizer
{
    public const double Epsilon = 1e-8;
    private readonly double[] _discounted;

    public RewardNormalizer(int envCount, double gamma, double clip = 10.0)
    {
        if (envCount < 1) throw new ArgumentOutOfRangeException(nameof(envCount), envCount, "RewardNormalizer needs ≥ 1 env.");
        if (!(gamma > 0 && gamma <= 1)) throw new ArgumentOutOfRangeException(nameof(gamma), gamma, "RewardNormalizer: gamma must be in (0, 1].");
        _discounted = new double[envCount];
        Gamma = gamma;
        Clip = clip;
        Stats = new RunningMeanStd(1);
    }

    public double Gamma { get; }

    public double Clip { get; }

    public RunningMeanStd Stats { get; }

    /// <summary>The running statistics and each copy's discounted return so far, for checkpoints.</summary>
    public RewardNormalizerState Save() => new(Stats.Save(), (double[])_discounted.Clone());

    /// <summary>Restores what <see cref="Save"/> returned.</summary>
    public void Load(RewardNormalizerState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.DiscountedReturns.Length != _discounted.Length)
            throw new ArgumentException($"RewardNormalizer.Load: the state holds {state.DiscountedReturns.Length} discounted returns; expected {_discounted.Length}.", nameof(state));
        Stats.Load(state.Stats);
        state.DiscountedReturns.CopyTo(_discounted, 0);
    }

    /// <summary>Scales one vector step's rewards in place; an episode's discounted sum restarts after it ends.</summary>
    public void Normalize(Span<double> rewards, ReadOnlySpan<bool> terminated, ReadOnlySpan<bool> truncated)
    {
        if (rewards.Length != _discounted.Length || terminated.Length != rewards.Length || truncated.Length != rewards.Length)
            throw new ArgumentException($"RewardNormalizer: got {rewards.Length} rewards for {_discounted.Length} envs.", nameof(rewards));
        for (int i = 0; i < rewards.Length; i++) _discounted[i] = _discounted[i] * Gamma + rewards[i];
        Stats.Update(_discounted);
        double scale = 1.0 / Math.Sqrt(Stats.Var[0] + Epsilon);
        for (int i = 0; i < rewards.Length; i++)
        {
            rewards[i] = Math.Clamp(rewards[i] * scale, -Clip, Clip);
            if (terminated[i] || truncated[i]) _discounted[i] = 0;
        }
    }
}

/// <summary>A RewardNormalizer's state: the return statistics and each copy's discounted return so far.</summary>
public sealed record RewardNormalizerState(
    [property: JsonPropertyName("stats")] RunningStats Stats,
    [property: JsonPropertyName("discounted_returns")] double[] DiscountedReturns);

/// <summary>What gets saved with a policy so evaluation sees observations the way training did.</summary>
/// <param name="Observation">Observation statistics, or null when observations were not normalised.</param>
/// <param name="Clip">Clip applied after normalising observations.</param>
public sealed record NormalizationState(
    [property: JsonPropertyName("observation")] RunningStats? Observation,
    [property: JsonPropertyName("clip")] double Clip);
