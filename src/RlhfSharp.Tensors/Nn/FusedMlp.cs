// The fused path of an Mlp: forward and backward over buffers kept between calls, with no tape and no allocation once
// the buffers have grown to the largest batch. For a small network trained on thousands of rows per step (the
// Christiano reward predictor scores every step of 32 clips per minibatch) the graph path's fresh per-op arrays, each
// above the large-object threshold, made the garbage collector the bottleneck (a full collection nearly every step).
// Same GEMM kernels as Ops.Linear; Mlp.Forward (the graph path) stays the reference: a test keeps the two equal and
// checks this backward against float64 central differences. ReLU and identity activations only.
// Shapes: R rows; layer l maps [R, in_l] → [R, out_l]: A_0 = x, Z_l = A_{l−1}·W_lᵀ + b_l, A_l = act(Z_l).
using System.Numerics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using RlhfSharp.Tensors.Kernels;

namespace RlhfSharp.Tensors.Nn;

public sealed class FusedMlp
{
    private readonly Mlp _mlp;
    private readonly int[] _widths; // in_0, out_0, out_1, ..., out_{L−1}
    private float[][] _acts;        // A_0 (a copy of the input) .. A_L, each [capacity, width]
    private float[] _grad;          // dL/dZ of the layer being differentiated, [capacity, max width]
    private float[] _gradPrev;      // dL/dZ of the layer below
    private float[] _weightT;       // a transposed weight gradient [in, out] for layers narrower in than out
    private int _capacity;
    private int _rows = -1;

    /// <param name="mlp">The network whose parameters (and their gradients) this path reads and accumulates into.</param>
    public FusedMlp(Mlp mlp)
    {
        if (mlp.Activation is not (Activation.Relu or Activation.Identity))
            throw new ArgumentException($"FusedMlp: activation {mlp.Activation} has no fused path (ReLU and identity only).", nameof(mlp));
        _mlp = mlp;
        _widths = [mlp.Layers[0].InFeatures, .. mlp.Layers.Select(l => l.OutFeatures)];
        _acts = [.. _widths.Select(_ => Array.Empty<float>())];
        _grad = _gradPrev = [];
        int maxArea = mlp.Layers.Max(l => l.InFeatures * l.OutFeatures);
        _weightT = new float[maxArea];
    }

    /// <summary>Input features per row.</summary>
    public int InFeatures => _widths[0];

    /// <summary>Output features per row.</summary>
    public int OutFeatures => _widths[^1];

    /// <summary>
    /// y = Mlp(x) for <paramref name="rows"/> rows of x [rows, in]; returns a view of y [rows, out] that stays valid until the
    /// next Forward. Keeps the activations for <see cref="Backward"/>.
    /// </summary>
    /// <param name="threads">Threads the GEMMs may use (0: Parallelism.Threads; 1 when the caller runs several networks side by side).</param>
    public ReadOnlySpan<float> Forward(ReadOnlySpan<float> x, int rows, int threads = 0)
    {
        if (rows < 1 || x.Length != rows * InFeatures)
            throw new ArgumentException($"FusedMlp: {x.Length} input values for {rows} rows of {InFeatures}.", nameof(x));
        Reserve(rows);
        x.CopyTo(_acts[0]);
        var layers = _mlp.Layers;
        for (int l = 0; l < layers.Count; l++)
        {
            int inF = _widths[l], outF = _widths[l + 1];
            ReadOnlySpan<float> a = _acts[l].AsSpan(0, rows * inF);
            Span<float> z = _acts[l + 1].AsSpan(0, rows * outF);
            ReadOnlySpan<float> w = layers[l].Weight.Span;
            if (outF == 1)
            {
                for (int r = 0; r < rows; r++) z[r] = Reduce.Dot(a.Slice(r * inF, inF), w); // a GEMM with one column is slow
            }
            else
            {
                Gemm.Multiply(GemmForm.NT, rows, outF, inF, a, inF, w, inF, z, outF, accumulate: false, threads);
            }
            bool relu = Activated(l);
            if (layers[l].Bias is { } bias) AddToEveryRow(z, bias.Span, relu);
            else if (relu) TensorPrimitives.Max(z, 0f, z);
        }
        _rows = rows;
        return _acts[^1].AsSpan(0, rows * OutFeatures);
    }

    /// <summary>
    /// Adds dL/dW and dL/db of every layer into the parameters' gradients, given dL/dy [rows, out] of the last Forward. The
    /// gradient with respect to the input is not formed.
    /// </summary>
    /// <param name="dOut">dL/dy [rows, out].</param>
    /// <param name="threads">As for <see cref="Forward"/>.</param>
    public void Backward(ReadOnlySpan<float> dOut, int threads = 0)
    {
        int rows = _rows;
        if (rows < 0) throw new InvalidOperationException("FusedMlp.Backward needs a Forward first.");
        if (dOut.Length != rows * OutFeatures)
            throw new ArgumentException($"FusedMlp.Backward: {dOut.Length} output gradients for {rows} rows of {OutFeatures}.", nameof(dOut));
        var layers = _mlp.Layers;
        dOut.CopyTo(_grad);
        for (int l = layers.Count - 1; l >= 0; l--)
        {
            int inF = _widths[l], outF = _widths[l + 1];
            Span<float> dz = _grad.AsSpan(0, rows * outF);
            if (Activated(l)) ReluMask(_acts[l + 1].AsSpan(0, rows * outF), dz); // dZ = dA ⊙ [Z > 0], read from A = max(Z, 0)
            ReadOnlySpan<float> a = _acts[l].AsSpan(0, rows * inF);
            var layer = layers[l];
            // dW = dZᵀ·A_{l−1} [out, in]. A GEMM wants its columns wide: a layer narrower in than out forms dWᵀ = A_{l−1}ᵀ·dZ.
            Span<float> dw = layer.Weight.GradForAccumulate();
            if (inF < outF)
            {
                Span<float> t = _weightT.AsSpan(0, inF * outF);
                Gemm.Multiply(GemmForm.TN, inF, outF, rows, a, inF, dz, outF, t, outF, accumulate: false, threads);
                for (int i = 0; i < inF; i++)
                    for (int o = 0; o < outF; o++) dw[o * inF + i] += t[i * outF + o];
            }
            else
            {
                Gemm.Multiply(GemmForm.TN, outF, inF, rows, dz, outF, a, inF, dw, inF, accumulate: true, threads);
            }
            if (layer.Bias is { } bias)
            {
                Span<float> db = bias.GradForAccumulate();
                if (outF == 1) db[0] += Reduce.Sum(dz);
                else AddEveryRow(db, dz); // db = Σ_rows dZ
            }
            if (l == 0) break;
            // dA_{l−1} = dZ·W [rows, in].
            Span<float> da = _gradPrev.AsSpan(0, rows * inF);
            ReadOnlySpan<float> w = layer.Weight.Span;
            Gemm.Multiply(GemmForm.NN, rows, inF, outF, dz, outF, w, inF, da, inF, accumulate: false, threads);
            (_grad, _gradPrev) = (_gradPrev, _grad);
        }
    }

    private bool Activated(int layer) => _mlp.Activation == Activation.Relu && (layer < _mlp.Layers.Count - 1 || _mlp.ActivateLast);

    /// <summary>rows[r] += b for every row of rows [R, width] (width = b.Length), then max(·, 0) when <paramref name="relu"/>, in one pass.</summary>
    private static void AddToEveryRow(Span<float> rows, ReadOnlySpan<float> b, bool relu)
    {
        int w = b.Length;
        if (!Vector.IsHardwareAccelerated || w % Vector<float>.Count != 0)
        {
            for (int r = 0; r < rows.Length; r += w) TensorPrimitives.Add(rows.Slice(r, w), b, rows.Slice(r, w));
            if (relu) TensorPrimitives.Max(rows, 0f, rows);
            return;
        }
        var bv = MemoryMarshal.Cast<float, Vector<float>>(b);
        var rv = MemoryMarshal.Cast<float, Vector<float>>(rows);
        if (relu)
            for (int r = 0; r < rv.Length; r += bv.Length)
                for (int j = 0; j < bv.Length; j++) rv[r + j] = Vector.Max(rv[r + j] + bv[j], Vector<float>.Zero);
        else
            for (int r = 0; r < rv.Length; r += bv.Length)
                for (int j = 0; j < bv.Length; j++) rv[r + j] += bv[j];
    }

    /// <summary>sum += rows[r] for every row of rows [R, width] in row order (width = sum.Length), as Ops.Linear's bias gradient.</summary>
    private static void AddEveryRow(Span<float> sum, ReadOnlySpan<float> rows)
    {
        int w = sum.Length;
        if (!Vector.IsHardwareAccelerated || w % Vector<float>.Count != 0)
        {
            for (int r = 0; r < rows.Length; r += w) TensorPrimitives.Add(sum, rows.Slice(r, w), sum);
            return;
        }
        var sv = MemoryMarshal.Cast<float, Vector<float>>(sum);
        var rv = MemoryMarshal.Cast<float, Vector<float>>(rows);
        for (int r = 0; r < rv.Length; r += sv.Length)
            for (int j = 0; j < sv.Length; j++) sv[j] += rv[r + j];
    }

    /// <summary>grad ← grad where activated &gt; 0, else 0 (elementwise, so the same on every vector width).</summary>
    private static void ReluMask(ReadOnlySpan<float> activated, Span<float> grad)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var a = MemoryMarshal.Cast<float, Vector<float>>(activated);
            var g = MemoryMarshal.Cast<float, Vector<float>>(grad);
            for (int v = 0; v < g.Length; v++) g[v] = Vector.ConditionalSelect(Vector.GreaterThan(a[v], Vector<float>.Zero), g[v], Vector<float>.Zero);
            i = g.Length * Vector<float>.Count;
        }
        for (; i < grad.Length; i++) if (!(activated[i] > 0f)) grad[i] = 0f;
    }

    private void Reserve(int rows)
    {
        if (rows <= _capacity) return;
        int capacity = Math.Max(rows, _capacity + _capacity / 2);
        _acts = [.. _widths.Select(w => new float[capacity * w])];
        int widest = _widths.Max();
        _grad = new float[capacity * widest];
        _gradPrev = new float[capacity * widest];
        _capacity = capacity;
    }
}
