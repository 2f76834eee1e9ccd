// Parameter initialisers, in place, drawing from the shared seeded Rng. Fan-in/fan-out follow PyTorch's
// torch.nn.init for a weight stored [out, in, ...]: fan_in = in·receptive, fan_out = out·receptive.
namespace RlhfSharp.Tensors.Nn;

public static class Init
{
    /// <summary>Entries from N(mean, std²).</summary>
    public static void Normal(Tensor t, Rng rng, float std, float mean = 0f)
    {
        var s = t.Span;
        for (int i = 0; i < s.Length; i++) s[i] = (float)rng.Normal(mean, std);
    }

    /// <summary>Entries from U(low, high).</summary>
    public static void Uniform(Tensor t, Rng rng, float low, float high)
    {
        var s = t.Span;
        for (int i = 0; i < s.Length; i++) s[i] = (float)rng.Uniform(low, high);
    }

    public static void Constant(Tensor t, float value) => t.Span.Fill(value);

    /// <summary>Glorot/Xavier uniform: U(−a, a), a = gain·√(6/(fan_in + fan_out)).</summary>
    public static void XavierUniform(Tensor t, Rng rng, float gain = 1f)
    {
        var (fanIn, fanOut) = Fans(t, "XavierUniform");
        float a = gain * MathF.Sqrt(6f / (fanIn + fanOut));
        Uniform(t, rng, -a, a);
    }

    /// <summary>He/Kaiming uniform: U(−b, b), b = gain·√(3/fan_in); gain √2 suits ReLU.</summary>
    public static void KaimingUniform(Tensor t, Rng rng, float gain = 1.4142135f)
    {
        var (fanIn, _) = Fans(t, "KaimingUniform");
        float b = gain * MathF.Sqrt(3f / fanIn);
        Uniform(t, rng, -b, b);
    }

    /// <summary>He/Kaiming normal: N(0, (gain/√fan_in)²); gain √2 suits ReLU.</summary>
    public static void KaimingNormal(Tensor t, Rng rng, float gain = 1.4142135f)
    {
        var (fanIn, _) = Fans(t, "KaimingNormal");
        Normal(t, rng, gain / MathF.Sqrt(fanIn));
    }

    /// <summary>
    /// (Semi-)orthogonal matrix times <paramref name="gain"/> (Saxe et al. 2014), as torch.nn.init.orthogonal_:
    /// the weight viewed as [rows, cols] gets orthonormal rows (rows ≤ cols) or columns (rows &gt; cols), from
    /// the QR factorisation (sign-fixed to a positive R diagonal) of a Gaussian matrix. CleanRL's PPO uses
    /// gain √2 for hidden layers, 0.01 for the policy head and 1 for the value head.
    /// </summary>
    public static void Orthogonal(Tensor t, Rng rng, float gain = 1f)
    {
        if (t.Rank < 2) throw new ArgumentException($"Orthogonal: needs a tensor of rank ≥ 2, got {t.ShapeString}.");
        int rows = t.Shape[0], cols = t.Length / rows;
        // Orthonormalise the shorter side: work on a tall n×k matrix (n ≥ k), by modified Gram–Schmidt in float64.
        bool transpose = rows < cols;
        int n = transpose ? cols : rows, k = transpose ? rows : cols;
        var q = new double[n * k]; // column-major: column j is q[j*n .. j*n+n)
        for (int i = 0; i < q.Length; i++) q[i] = rng.Normal();
        for (int j = 0; j < k; j++)
        {
            var cj = q.AsSpan(j * n, n);
            for (int p = 0; p < j; p++)
            {
                var cp = q.AsSpan(p * n, n);
                double dot = 0;
                for (int i = 0; i < n; i++) dot += cp[i] * cj[i];
                for (int i = 0; i < n; i++) cj[i] -= dot * cp[i];
            }
            double norm = 0;
            for (int i = 0; i < n; i++) norm += cj[i] * cj[i];
            norm = Math.Sqrt(norm);
            if (norm < 1e-12) throw new InvalidOperationException("Orthogonal: Gaussian matrix was rank-deficient (astronomically unlikely); try another seed.");
            for (int i = 0; i < n; i++) cj[i] /= norm;
        }
        var s = t.Span;
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < cols; c++)
            {
                // tall case: W[r,c] = Q[r,c] (column c); wide case: W = Qᵀ, so W[r,c] = Q[c,r] (column r)
                double v = transpose ? q[r * n + c] : q[c * n + r];
                s[r * cols + c] = (float)(gain * v);
            }
        }
    }

    private static (float FanIn, float FanOut) Fans(Tensor t, string op)
    {
        if (t.Rank < 2) throw new ArgumentException($"{op}: fan-in/fan-out need a tensor of rank ≥ 2, got {t.ShapeString}.");
        int receptive = t.Length / (t.Shape[0] * t.Shape[1]);
        return (t.Shape[1] * receptive, t.Shape[0] * receptive);
    }
}
