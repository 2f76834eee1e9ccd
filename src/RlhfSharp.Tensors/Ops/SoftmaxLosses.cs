// Softmax-family ops over the last axis (V) with their backward: softmax, log-softmax, cross-entropy with
// an ignore index and per-row weights, token log-probabilities, gather, categorical entropy.
// The fused ops keep only one log-sum-exp per row and recompute probabilities in backward, so a
// [rows, V] probability matrix is never stored for a large vocabulary.
using System.Numerics.Tensors;
using KSoftmax = RlhfSharp.Tensors.Kernels.Softmax;

namespace RlhfSharp.Tensors;

public static partial class Ops
{
    /// <summary>softmax along the last axis.</summary>
    public static Tensor Softmax(Tensor x)
    {
        var (rows, V) = Rows("softmax", x);
        var y = Tensor.Uninitialized(x.ShapeRef);
        ForRows(rows, V, (start, end) =>
        {
            var xs = x.Span;
            var ys = y.Span;
            for (int r = start; r < end; r++) KSoftmax.Forward(xs.Slice(r * V, V), ys.Slice(r * V, V));
        });
        return Autograd.Record("softmax", y, [x], o =>
        {
            x.GradForAccumulate();
            ForRows(rows, V, (start, end) =>
            {
                var g = o.Grad!.Span;
                var dx = x.Grad!.Span;
                var yv = y.Span;
                var t = Kernels.Scratch.B(V);
                for (int r = start; r < end; r++)
                {
                    var gr = g.Slice(r * V, V);
                    var yr = yv.Slice(r * V, V);
                    var dr = dx.Slice(r * V, V);
                    TensorPrimitives.Subtract(gr, Kernels.Reduce.Dot(gr, yr), t); // dx = y ⊙ (g − ⟨g, y⟩)
                    TensorPrimitives.MultiplyAdd(t, yr, dr, dr);
                }
            });
        });
    }

    /// <summary>log softmax along the last axis: x − logsumexp(x).</summary>
    public static Tensor LogSoftmax(Tensor x)
    {
        var (rows, V) = Rows("log_softmax", x);
        var y = Tensor.Uninitialized(x.ShapeRef);
        ForRows(rows, V, (start, end) =>
        {
            var xs = x.Span;
            var ys = y.Span;
            for (int r = start; r < end; r++)
                TensorPrimitives.Subtract(xs.Slice(r * V, V), KSoftmax.LogSumExp(xs.Slice(r * V, V)), ys.Slice(r * V, V));
        });
        return Autograd.Record("log_softmax", y, [x], o =>
        {
            x.GradForAccumulate();
            ForRows(rows, V, (start, end) =>
            {
                var g = o.Grad!.Span;
                var dx = x.Grad!.Span;
                var yv = y.Span;
                for (int r = start; r < end; r++)
                {
                    var gr = g.Slice(r * V, V);
                    var dr = dx.Slice(r * V, V);
                    TensorPrimitives.Add(dr, gr, dr); // dx = g − softmax·Σg, softmax = exp(y)
                    KSoftmax.AddScaledProbabilities(yv.Slice(r * V, V), 0f, -Kernels.Reduce.Sum(gr), dr);
                }
            });
        });
    }

    /// <summary>
    /// Mean cross-entropy of logits [..., V] against one target class per row. Rows whose target equals
    /// <paramref name="ignoreIndex"/> count for nothing; <paramref name="rowWeights"/> (optional, one per row,
    /// e.g. a 0/1 completion mask) weight the rest. Result: Σ wᵢ·nllᵢ / Σ wᵢ, and 0 when no row counts.
    /// </summary>
    public static Tensor CrossEntropy(Tensor logits, ReadOnlySpan<int> targets, int ignoreIndex = -100, ReadOnlySpan<float> rowWeights = default)
    {
        var (rows, V) = Rows("cross_entropy", logits);
        CheckTargets("cross_entropy", logits, targets, rows, V, ignoreIndex);
        if (!rowWeights.IsEmpty && rowWeights.Length != rows)
            throw new ArgumentException($"cross_entropy: {rowWeights.Length} row weights for {rows} rows of {logits.ShapeString}.");
        var tgt = targets.ToArray();
        var w = new float[rows];
        for (int r = 0; r < rows; r++) w[r] = tgt[r] == ignoreIndex ? 0f : rowWeights.IsEmpty ? 1f : rowWeights[r];
        var lse = new float[rows];
        ForRows(rows, V, (start, end) =>
        {
            var xs = logits.Span;
            for (int r = start; r < end; r++)
                if (w[r] != 0f) lse[r] = KSoftmax.LogSumExp(xs.Slice(r * V, V));
        });
        double total = 0, count = 0; // summed in row order: the same bits for any thread count
        var xv0 = logits.Span;
        for (int r = 0; r < rows; r++)
        {
            if (w[r] == 0f) continue;
            total += (double)w[r] * (lse[r] - xv0[r * V + tgt[r]]);
            count += w[r];
        }
        float inv = count > 0 ? (float)(1.0 / count) : 0f;
        var y = Tensor.Scalar((float)(total * inv));
        return Autograd.Record("cross_entropy", y, [logits], o =>
        {
            float g = o.Grad!.Span[0] * inv;
            logits.GradForAccumulate();
            ForRows(rows, V, (start, end) =>
            {
                var dx = logits.Grad!.Span;
                var xv = logits.Span;
                for (int r = start; r < end; r++)
                {
                    if (w[r] == 0f) continue;
                    float scale = g * w[r];
                    KSoftmax.AddScaledProbabilities(xv.Slice(r * V, V), lse[r], scale, dx.Slice(r * V, V)); // softmax − onehot
                    dx[r * V + tgt[r]] -= scale;
                }
            });
        });
    }

    /// <summary>log softmax(logits)[target] per row: logits [..., V], one target per row → [...].</summary>
    public static Tensor TokenLogProbs(Tensor logits, ReadOnlySpan<int> targets)
    {
        var (rows, V) = Rows("token_log_probs", logits);
        CheckTargets("token_log_probs", logits, targets, rows, V, int.MinValue);
        var tgt = targets.ToArray();
        var lse = new float[rows];
        var y = Tensor.Uninitialized(logits.ShapeRef[..^1]);
        ForRows(rows, V, (start, end) =>
        {
            var xs = logits.Span;
            var ys = y.Span;
            for (int r = start; r < end; r++)
            {
                lse[r] = KSoftmax.LogSumExp(xs.Slice(r * V, V));
                ys[r] = xs[r * V + tgt[r]] - lse[r];
            }
        });
        return Autograd.Record("token_log_probs", y, [logits], o =>
        {
            logits.GradForAccumulate();
            ForRows(rows, V, (start, end) =>
            {
                var g = o.Grad!.Span;
                var dx = logits.Grad!.Span;
                var xv = logits.Span;
                for (int r = start; r < end; r++)
                {
                    float gr = g[r];
                    if (gr == 0f) continue;
                    KSoftmax.AddScaledProbabilities(xv.Slice(r * V, V), lse[r], -gr, dx.Slice(r * V, V)); // onehot − softmax
                    dx[r * V + tgt[r]] += gr;
                }
            });
        });
    }

    /// <summary>x[..., index[row]] per row: x [..., V], one index per row → [...].</summary>
    public static Tensor Gather(Tensor x, ReadOnlySpan<int> index)
    {
        var (rows, V) = Rows("gather", x);
        CheckTargets("gather", x, index, rows, V, int.MinValue);
        var idx = index.ToArray();
        var y = Tensor.Uninitialized(x.ShapeRef[..^1]);
        var xs = x.Span;
        var ys = y.Span;
        for (int r = 0; r < rows; r++) ys[r] = xs[r * V + idx[r]];
        return Autograd.Record("gather", y, [x], o =>
        {
            var g = o.Grad!.Span;
            var dx = x.GradForAccumulate();
            for (int r = 0; r < rows; r++) dx[r * V + idx[r]] += g[r];
        });
    }

    /// <summary>Entropy −Σ p log p of the categorical distribution softmax(logits) per row: [..., V] → [...].</summary>
    public static Tensor Entropy(Tensor logits)
    {
        var (rows, V) = Rows("entropy", logits);
        var lse = new float[rows];
        var y = Tensor.Uninitialized(logits.ShapeRef[..^1]);
        ForRows(rows, V, (start, end) =>
        {
            var xs = logits.Span;
            var ys = y.Span;
            for (int r = start; r < end; r++)
            {
                var xr = xs.Slice(r * V, V);
                lse[r] = KSoftmax.LogSumExp(xr);
                var p = Kernels.Scratch.A(V);
                TensorPrimitives.Subtract(xr, lse[r], p);
                TensorPrimitives.Exp(p, p);
                ys[r] = lse[r] - Kernels.Reduce.Dot(p, xr); // H = lse − Σ p·z
            }
        });
        return Autograd.Record("entropy", y, [logits], o =>
        {
            logits.GradForAccumulate();
            ForRows(rows, V, (start, end) =>
            {
                var g = o.Grad!.Span;
                var dx = logits.Grad!.Span;
                var xv = logits.Span;
                var h = y.Span;
                var p = Kernels.Scratch.A(V);
                var u = Kernels.Scratch.B(V);
                for (int r = start; r < end; r++)
                {
                    if (g[r] == 0f) continue;
                    var xr = xv.Slice(r * V, V);
                    var dr = dx.Slice(r * V, V);
                    TensorPrimitives.Subtract(xr, lse[r], u);     // log p
                    TensorPrimitives.Exp(u, p);                   // p
                    TensorPrimitives.Add(u, h[r], u);             // log p + H
                    TensorPrimitives.Multiply(p, u, p);
                    TensorPrimitives.MultiplyAdd(p, -g[r], dr, dr); // ∂H/∂z = −p(log p + H)
                }
            });
        });
    }

    // Row loops run over Parallelism.Threads in fixed chunks once a tensor is big enough to pay for it;
    // each row's result depends only on that row, so the split never changes the numbers.
    private static void ForRows(int rows, int V, Action<int, int> body) =>
        Kernels.ParallelChunks.For(rows, body, minPerChunk: Math.Max(1, 32768 / V));

    private static (int Rows, int V) Rows(string op, Tensor x)
    {
        if (x.Rank == 0 || x.Dim(-1) == 0) throw new ArgumentException($"{op}: input {x.ShapeString} needs a non-empty last axis.");
        int V = x.Dim(-1);
        return (x.Length / V, V);
    }

    private static void CheckTargets(string op, Tensor x, ReadOnlySpan<int> targets, int rows, int V, int ignoreIndex)
    {
        if (targets.Length != rows)
            throw new ArgumentException($"{op}: {targets.Length} targets for {rows} rows of {x.ShapeString}.");
        for (int r = 0; r < rows; r++)
        {
            int t = targets[r];
            if (t != ignoreIndex && (uint)t >= (uint)V)
                throw new ArgumentOutOfRangeException(nameof(targets), $"{op}: target {t} at row {r} is outside [0, {V}).");
        }
    }
}
