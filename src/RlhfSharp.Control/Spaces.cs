// Action and observation spaces in Gymnasium's shape: Discrete(n) and Box(low, high).
// Actions travel as float spans everywhere (a discrete action is one float holding its index) so one runner serves both.
namespace RlhfSharp.Control;

/// <summary>The set of valid actions or observations of an environment.</summary>
public abstract class Space
{
    /// <summary>Number of floats one element of the space occupies (1 for Discrete).</summary>
    public abstract int FlatSize { get; }

    /// <summary>True when the value lies in the space (a Discrete value must be a whole number in [0, n)).</summary>
    public abstract bool Contains(ReadOnlySpan<float> value);

    /// <summary>A uniformly random element, as Gymnasium's space.sample().</summary>
    public abstract float[] Sample(RlhfSharp.Tensors.Rng rng);
}

/// <summary>Gymnasium's Discrete(n): the integers 0..n-1.</summary>
public sealed class DiscreteSpace : Space
{
    public DiscreteSpace(int n)
    {
        if (n < 1) throw new ArgumentOutOfRangeException(nameof(n), n, "DiscreteSpace needs n ≥ 1.");
        N = n;
    }

    public int N { get; }

    public override int FlatSize => 1;

    public override bool Contains(ReadOnlySpan<float> value) =>
        value.Length == 1 && value[0] >= 0 && value[0] < N && value[0] == MathF.Floor(value[0]);

    public override float[] Sample(RlhfSharp.Tensors.Rng rng) => [rng.NextInt(N)];

    public override string ToString() => $"Discrete({N})";
}

/// <summary>Gymnasium's Box(low, high, shape=(n,)): a 1-D float32 box; infinite bounds are allowed.</summary>
public sealed class BoxSpace : Space
{
    private readonly float[] _low;
    private readonly float[] _high;

    public BoxSpace(float[] low, float[] high)
    {
        if (low.Length != high.Length || low.Length == 0)
            throw new ArgumentException($"BoxSpace: low has {low.Length} entries and high has {high.Length}; they must be equal and non-zero.");
        for (int i = 0; i < low.Length; i++)
            if (!(low[i] <= high[i]))
                throw new ArgumentException($"BoxSpace: low[{i}] = {low[i]} is not ≤ high[{i}] = {high[i]}.");
        _low = (float[])low.Clone();
        _high = (float[])high.Clone();
    }

    public ReadOnlySpan<float> Low => _low;

    public ReadOnlySpan<float> High => _high;

    /// <summary>The shape, always one-dimensional here: (n,).</summary>
    public int[] Shape => [_low.Length];

    public override int FlatSize => _low.Length;

    public override bool Contains(ReadOnlySpan<float> value)
    {
        if (value.Length != _low.Length) return false;
        for (int i = 0; i < value.Length; i++)
            if (!(value[i] >= _low[i] && value[i] <= _high[i])) return false;
        return true;
    }

    /// <summary>Uniform inside bounded dimensions; a standard normal where a bound is infinite (as Gymnasium does).</summary>
    public override float[] Sample(RlhfSharp.Tensors.Rng rng)
    {
        var x = new float[_low.Length];
        for (int i = 0; i < x.Length; i++)
        {
            bool lo = float.IsFinite(_low[i]), hi = float.IsFinite(_high[i]);
            x[i] = (lo, hi) switch
            {
                (true, true) => (float)rng.Uniform(_low[i], _high[i]),
                (true, false) => _low[i] + (float)-Math.Log(1 - rng.NextDouble()),
                (false, true) => _high[i] - (float)-Math.Log(1 - rng.NextDouble()),
                _ => (float)rng.Normal(),
            };
        }
        return x;
    }

    public override string ToString() => $"Box(shape=({_low.Length},))";
}
