// The one seeded random number generator used everywhere (init, dropout, sampling, environments, shuffles).
// xoshiro256** (Blackman & Vigna 2018) seeded through SplitMix64: fast, 256-bit state, reproducible on
// every platform; System.Random's seeded sequence is an implementation detail we do not want to depend on.
namespace RlhfSharp.Tensors;

public sealed class Rng
{
    private ulong _s0, _s1, _s2, _s3;
    private double _spareNormal;
    private bool _hasSpare;

    public Rng(ulong seed)
    {
        ulong x = seed;
        _s0 = SplitMix64(ref x);
        _s1 = SplitMix64(ref x);
        _s2 = SplitMix64(ref x);
        _s3 = SplitMix64(ref x);
    }

    /// <summary>A generator seeded from this one's stream: independent children for workers or sub-tasks.</summary>
    public Rng Fork() => new(NextUInt64());

    public ulong NextUInt64()
    {
        ulong result = RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>Uniform double in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform float in [0, 1) with 24 random bits.</summary>
    public float NextFloat() => (NextUInt64() >> 40) * (1.0f / (1 << 24));

    /// <summary>Uniform integer in [0, n), without modulo bias (Lemire's method).</summary>
    public int NextInt(int n)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n), n, "Rng.NextInt needs n ≥ 1.");
        ulong bound = (ulong)n;
        UInt128 m = (UInt128)NextUInt64() * bound;
        ulong low = (ulong)m;
        if (low < bound)
        {
            ulong threshold = (0UL - bound) % bound;
            while (low < threshold)
            {
                m = (UInt128)NextUInt64() * bound;
                low = (ulong)m;
            }
        }
        return (int)(m >> 64);
    }

    /// <summary>Uniform double in [low, high).</summary>
    public double Uniform(double low, double high) => low + (high - low) * NextDouble();

    /// <summary>Standard normal (mean 0, std 1) by the Marsaglia polar method.</summary>
    public double Normal()
    {
        if (_hasSpare)
        {
            _hasSpare = false;
            return _spareNormal;
        }
        double u, v, s;
        do
        {
            u = 2 * NextDouble() - 1;
            v = 2 * NextDouble() - 1;
            s = u * u + v * v;
        } while (s >= 1 || s == 0);
        double f = Math.Sqrt(-2 * Math.Log(s) / s);
        _spareNormal = v * f;
        _hasSpare = true;
        return u * f;
    }

    public double Normal(double mean, double std) => mean + std * Normal();

    /// <summary>Index i drawn with probability weights[i] / Σ weights (weights need not be normalised).</summary>
    public int Categorical(ReadOnlySpan<float> weights)
    {
        double total = 0;
        foreach (float w in weights)
        {
            if (!(w >= 0) || float.IsInfinity(w))
                throw new ArgumentException($"Rng.Categorical: weight {w} is not a finite non-negative number.", nameof(weights));
            total += w;
        }
        if (total <= 0) throw new ArgumentException("Rng.Categorical: all weights are zero.", nameof(weights));
        double r = NextDouble() * total;
        double acc = 0;
        int last = -1;
        for (int i = 0; i < weights.Length; i++)
        {
            if (weights[i] <= 0) continue;
            acc += weights[i];
            last = i;
            if (r < acc) return i;
        }
        return last; // r landed in the rounding gap at the very top: the last positive weight owns it
    }

    /// <summary>A uniformly random permutation of 0..n-1 (Fisher–Yates).</summary>
    public int[] Permutation(int n)
    {
        var p = new int[n];
        for (int i = 0; i < n; i++) p[i] = i;
        Shuffle<int>(p);
        return p;
    }

    public void Shuffle<T>(Span<T> items)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    /// <summary>The full state, to checkpoint and resume a run bit-identically.</summary>
    public ulong[] GetState() => [_s0, _s1, _s2, _s3, BitConverter.DoubleToUInt64Bits(_spareNormal), _hasSpare ? 1UL : 0UL];

    public void SetState(ReadOnlySpan<ulong> state)
    {
        if (state.Length != 6) throw new ArgumentException($"Rng state has {state.Length} words; expected 6.", nameof(state));
        (_s0, _s1, _s2, _s3) = (state[0], state[1], state[2], state[3]);
        _spareNormal = BitConverter.UInt64BitsToDouble(state[4]);
        _hasSpare = state[5] != 0;
    }

    private static ulong RotateLeft(ulong x, int k) => (x << k) | (x >> (64 - k));

    private static ulong SplitMix64(ref ulong x)
    {
        ulong z = x += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
