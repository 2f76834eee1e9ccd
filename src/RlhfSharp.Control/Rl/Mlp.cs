// A small tanh multilayer perceptron with flat parameters, hand-written forward and backward (CleanRL's Agent networks:
// Linear → Tanh → Linear → Tanh → Linear), orthogonal initialisation, and Adam with global-norm clipping.
// Shapes: B batch rows, I inputs, H hidden units, O outputs; weights are [out, in] row-major as torch.nn.Linear.
using System.Numerics.Tensors;
using RlhfSharp.Tensors;

namespace RlhfSharp.Control.Rl;

/// <summary>Linear layers with tanh between them; the output layer is linear. Forward caches activations for one Backward.</summary>
public sealed class Mlp
{
    private readonly int[] _sizes;
    private readonly int[] _wOffset;
    private readonly int[] _bOffset;
    private float[][] _acts = []; // activations per layer (input first), each [B, size]
    private int _batch;

    /// <param name="sizes">Layer widths, input first, output last, e.g. [4, 64, 64, 2].</param>
    public Mlp(int[] sizes)
    {
        if (sizes.Length < 2 || sizes.Any(s => s < 1))
            throw new ArgumentException($"Mlp: layer sizes [{string.Join(", ", sizes)}] need at least an input and an output, all ≥ 1.", nameof(sizes));
        _sizes = (int[])sizes.Clone();
        _wOffset = new int[sizes.Length - 1];
        _bOffset = new int[sizes.Length - 1];
        int off = 0;
        for (int l = 0; l < sizes.Length - 1; l++)
        {
            _wOffset[l] = off;
            off += sizes[l + 1] * sizes[l];
            _bOffset[l] = off;
            off += sizes[l + 1];
        }
        Parameters = new float[off];
        Gradients = new float[off];
    }

    public IReadOnlyList<int> Sizes => _sizes;

    public int InputSize => _sizes[0];

    public int OutputSize => _sizes[^1];

    public int LayerCount => _sizes.Length - 1;

    /// <summary>All weights and biases in one buffer: layer 0 weight [out, in], layer 0 bias [out], layer 1 weight, ...</summary>
    public float[] Parameters { get; }

    /// <summary>Accumulated gradients, same layout as Parameters.</summary>
    public float[] Gradients { get; }

    public Span<float> Weight(int layer) => Parameters.AsSpan(_wOffset[layer], _sizes[layer + 1] * _sizes[layer]);

    public Span<float> Bias(int layer) => Parameters.AsSpan(_bOffset[layer], _sizes[layer + 1]);

    /// <summary>
    /// CleanRL's layer_init: orthogonal weights with gain √2 on hidden layers and outputGain on the last (0.01 for the actor,
    /// 1 for the critic), biases 0 — "Implementation Matters in Deep Policy Gradients" (Engstrom et al. 2020).
    /// </summary>
    public void InitOrthogonal(Rng rng, double outputGain)
    {
        for (int l = 0; l < LayerCount; l++)
        {
            Orthogonal(Weight(l), _sizes[l + 1], _sizes[l], l == LayerCount - 1 ? outputGain : Math.Sqrt(2), rng);
            Bias(l).Clear();
        }
    }

    /// <summary>y = f(x) for x [B, I]; returns [B, O] and keeps what Backward needs.</summary>
    public float[] Forward(ReadOnlySpan<float> x, int batch)
    {
        if (x.Length != batch * InputSize)
            throw new ArgumentException($"Mlp.Forward: input has {x.Length} values; expected {batch} rows × {InputSize}.", nameof(x));
        _batch = batch;
        _acts = new float[_sizes.Length][];
        _acts[0] = x.ToArray();
        for (int l = 0; l < LayerCount; l++)
        {
            int inN = _sizes[l], outN = _sizes[l + 1];
            var y = new float[batch * outN];
            ReadOnlySpan<float> w = Weight(l), bias = Bias(l);
            float[] a = _acts[l];
            for (int r = 0; r < batch; r++)
            {
                ReadOnlySpan<float> xr = a.AsSpan(r * inN, inN);
                Span<float> yr = y.AsSpan(r * outN, outN);
                for (int o = 0; o < outN; o++) yr[o] = TensorPrimitives.Dot(w.Slice(o * inN, inN), xr) + bias[o];
                if (l < LayerCount - 1) TensorPrimitives.Tanh(yr, yr);
            }
            _acts[l + 1] = y;
        }
        return _acts[^1];
    }

    /// <summary>Accumulates ∂L/∂θ into Gradients given ∂L/∂y [B, O] for the last Forward.</summary>
    public void Backward(ReadOnlySpan<float> dOut)
    {
        if (_acts.Length == 0 || dOut.Length != _batch * OutputSize)
            throw new InvalidOperationException($"Mlp.Backward: needs a Forward first and {_batch}×{OutputSize} output gradients; got {dOut.Length}.");
        float[] delta = dOut.ToArray();
        for (int l = LayerCount - 1; l >= 0; l--)
        {
            int inN = _sizes[l], outN = _sizes[l + 1];
            Span<float> gw = Gradients.AsSpan(_wOffset[l], outN * inN), gb = Gradients.AsSpan(_bOffset[l], outN);
            ReadOnlySpan<float> w = Weight(l);
            float[] x = _acts[l];
            var dx = l > 0 ? new float[_batch * inN] : null;
            for (int r = 0; r < _batch; r++)
            {
                ReadOnlySpan<float> dr = delta.AsSpan(r * outN, outN), xr = x.AsSpan(r * inN, inN);
                TensorPrimitives.Add(gb, dr, gb);
                for (int o = 0; o < outN; o++)
                {
                    float d = dr[o];
                    if (d == 0) continue;
                    Span<float> gwo = gw.Slice(o * inN, inN);
                    TensorPrimitives.MultiplyAdd(xr, d, gwo, gwo); // dW[o,:] += d·x
                    if (dx is not null)
                    {
                        Span<float> dxr = dx.AsSpan(r * inN, inN);
                        TensorPrimitives.MultiplyAdd(w.Slice(o * inN, inN), d, dxr, dxr); // dx += d·W[o,:]
                    }
                }
            }
            if (dx is null) break;
            // Through the tanh of the previous layer: d tanh(z)/dz = 1 − tanh²(z), and x holds tanh(z).
            for (int i = 0; i < dx.Length; i++) dx[i] *= 1 - x[i] * x[i];
            delta = dx;
        }
    }

    /// <summary>Orthogonal init as torch.nn.init.orthogonal_: QR of a Gaussian matrix (modified Gram–Schmidt), signs fixed so diag(R) &gt; 0.</summary>
    internal static void Orthogonal(Span<float> w, int rows, int cols, double gain, Rng rng)
    {
        bool transpose = rows < cols;
        int m = transpose ? cols : rows, n = transpose ? rows : cols; // m ≥ n: orthonormalise n columns of length m
        var a = new double[m, n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) a[i, j] = rng.Normal();
        for (int j = 0; j < n; j++)
        {
            for (int k = 0; k < j; k++)
            {
                double dot = 0;
                for (int i = 0; i < m; i++) dot += a[i, k] * a[i, j];
                for (int i = 0; i < m; i++) a[i, j] -= dot * a[i, k];
            }
            double norm = 0;
            for (int i = 0; i < m; i++) norm += a[i, j] * a[i, j];
            norm = Math.Sqrt(norm);
            for (int i = 0; i < m; i++) a[i, j] /= norm;
        }
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
                w[r * cols + c] = (float)(gain * (transpose ? a[c, r] : a[r, c]));
    }
}

/// <summary>Adam (Kingma & Ba 2015) over several flat parameter buffers, with the global gradient-norm clip applied first.</summary>
public sealed class Adam
{
    private readonly (float[] P, float[] G)[] _groups;
    private readonly float[][] _m;
    private readonly float[][] _v;
    private int _t;

    /// <param name="groups">Parameter buffers with their gradient buffers.</param>
    /// <param name="epsilon">CleanRL uses 1e-5 instead of PyTorch's 1e-8 (its implementation detail on Adam's epsilon).</param>
    public Adam(IEnumerable<(float[] Parameters, float[] Gradients)> groups, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-5)
    {
        _groups = [.. groups];
        _m = [.. _groups.Select(g => new float[g.P.Length])];
        _v = [.. _groups.Select(g => new float[g.P.Length])];
        Beta1 = beta1;
        Beta2 = beta2;
        Epsilon = epsilon;
    }

    public double Beta1 { get; }

    public double Beta2 { get; }

    public double Epsilon { get; }

    public double LearningRate { get; set; } = 3e-4;

    /// <summary>‖g‖₂ over every buffer.</summary>
    public double GradientNorm()
    {
        double s = 0;
        foreach (var (_, g) in _groups) s += TensorPrimitives.Dot(g, g);
        return Math.Sqrt(s);
    }

    /// <summary>Scales all gradients so their global norm is at most maxNorm (torch.nn.utils.clip_grad_norm_); returns the norm before.</summary>
    public double ClipGradientNorm(double maxNorm)
    {
        double norm = GradientNorm();
        if (norm > maxNorm)
        {
            float scale = (float)(maxNorm / (norm + 1e-6));
            foreach (var (_, g) in _groups) TensorPrimitives.Multiply(g, scale, g);
        }
        return norm;
    }

    public void ZeroGradients()
    {
        foreach (var (_, g) in _groups) Array.Clear(g);
    }

    /// <summary>One update: m ← β1·m + (1−β1)·g; v ← β2·v + (1−β2)·g²; θ ← θ − lr·m̂/(√v̂ + ε).</summary>
    public void Step()
    {
        _t++;
        double c1 = 1 - Math.Pow(Beta1, _t), c2 = 1 - Math.Pow(Beta2, _t);
        double stepSize = LearningRate / c1;
        double sqrtC2 = Math.Sqrt(c2);
        for (int k = 0; k < _groups.Length; k++)
        {
            var (p, g) = _groups[k];
            float[] m = _m[k], v = _v[k];
            for (int i = 0; i < p.Length; i++)
            {
                m[i] = (float)(Beta1 * m[i] + (1 - Beta1) * g[i]);
                v[i] = (float)(Beta2 * v[i] + (1 - Beta2) * g[i] * g[i]);
                p[i] -= (float)(stepSize * m[i] / (Math.Sqrt(v[i]) / sqrtC2 + Epsilon));
            }
        }
    }
}
