// All trainable parameters of a model gathered into one flat value buffer and one flat gradient buffer;
// each parameter tensor becomes a named view into them. Optimiser steps, zeroing, norms and clipping are
// then single loops over contiguous memory, and an all-reduce across processes would be one call.
using RlhfSharp.Tensors.Kernels;

namespace RlhfSharp.Tensors.Nn;

/// <summary>One parameter's place in the flat buffers.</summary>
/// <param name="Name">Dotted name, e.g. <c>h.0.attn.c_attn.weight</c>.</param>
/// <param name="Value">The live parameter tensor (a view into <see cref="ParameterSet.Values"/>).</param>
/// <param name="Offset">Start of its values (and gradient) in the flat buffers.</param>
public sealed record ParameterSlot(string Name, Tensor Value, int Offset)
{
    public int Length => Value.Length;
}

public sealed class ParameterSet
{
    // Each slot starts on a 16-float (64-byte) boundary of the buffer so vector loops see whole vectors.
    private const int Align = 16;

    private readonly List<ParameterSlot> _slots = [];

    /// <summary>Gathers <paramref name="parameters"/> (a tensor listed twice, as with tied weights, is kept once, under its first name).</summary>
    public ParameterSet(IEnumerable<KeyValuePair<string, Tensor>> parameters)
    {
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        var list = new List<(string, Tensor?, int[])>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in parameters)
        {
            if (!seen.Add(p.Value)) continue;
            if (!names.Add(p.Key)) throw new ArgumentException($"ParameterSet: two different tensors are both named '{p.Key}'.");
            list.Add((p.Key, p.Value, p.Value.ShapeRef.ToArray()));
        }
        (Values, Grads) = Layout(list);
    }

    /// <summary>
    /// Zero-filled parameters of the given shapes, each a view of the flat buffers from the start. The constructor above
    /// copies tensors that already exist: building them as zeros only to copy them doubled a model's memory while it was
    /// created (a 774M-parameter GPT-2 large held 3.1 GB of per-tensor arrays that were garbage at once).
    /// </summary>
    public static ParameterSet Zeros(IEnumerable<(string Name, int[] Shape)> shapes) => new(shapes.Select(s => (s.Name, (Tensor?)null, s.Shape)).ToList());

    private ParameterSet(List<(string Name, Tensor? Source, int[] Shape)> items)
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, _, _) in items)
            if (!names.Add(name)) throw new ArgumentException($"ParameterSet: two parameters are both named '{name}'.");
        (Values, Grads) = Layout(items);
    }

    /// <summary>
    /// Allocates the flat buffers and makes each parameter a view of them: an existing tensor's values are copied in and
    /// the tensor rebound; a missing one (Source null) is created as a view of the zeros.
    /// </summary>
    private (float[] Values, float[] Grads) Layout(List<(string Name, Tensor? Source, int[] Shape)> items)
    {
        long total = 0;
        var offsets = new int[items.Count];
        for (int i = 0; i < items.Count; i++)
        {
            offsets[i] = (int)total;
            long length = 1;
            foreach (int d in items[i].Shape) length *= d;
            total += (length + Align - 1) / Align * Align;
            if (total > Array.MaxLength) throw new ArgumentException($"ParameterSet: {total} values do not fit in one buffer.");
        }
        var values = new float[total];
        var grads = new float[total];
        for (int i = 0; i < items.Count; i++)
        {
            var (name, t, shape) = items[i];
            if (t is null) t = Tensor.View(values, offsets[i], shape);
            else
            {
                t.Span.CopyTo(values.AsSpan(offsets[i], t.Length));
                t.Rebind(values, offsets[i]);
            }
            t.RequiresGrad = true;
            t.Grad = Tensor.View(grads, offsets[i], shape);
            _slots.Add(new ParameterSlot(name, t, offsets[i]));
        }
        return (values, grads);
    }

    /// <summary>Gathers every parameter of <paramref name="module"/>. Build it right after constructing the model.</summary>
    public ParameterSet(Module module) : this(module.NamedParameters())
    {
    }

    /// <summary>All parameter values (with zero padding between slots).</summary>
    public float[] Values { get; }

    /// <summary>All gradients, at the same offsets as <see cref="Values"/>.</summary>
    public float[] Grads { get; }

    public IReadOnlyList<ParameterSlot> Slots => _slots;

    /// <summary>Number of parameter values (padding excluded).</summary>
    public long Count => _slots.Sum(s => (long)s.Length);

    /// <summary>Sets every gradient to zero (one clear of the flat buffer, split over the kernel threads).</summary>
    public void ZeroGrad() => ParallelChunks.For(Grads.Length, (start, end) => Array.Clear(Grads, start, end - start), minPerChunk: 1 << 18);

    /// <summary>Floats per partial sum of <see cref="GradNorm"/>: float partial sums keep it fast, float64 across them accurate.</summary>
    private const int NormChunk = 4096;

    /// <summary>
    /// ‖g‖₂ over all gradients, accumulated in float64 in a fixed order: the partial sums of fixed 4096-float chunks are
    /// computed over the kernel threads, then added in chunk order, so the result does not depend on the thread count.
    /// </summary>
    public double GradNorm() => Math.Sqrt(GradSquaredSum());

    /// <summary>‖g‖₂² over all gradients (see <see cref="GradNorm"/> for the order of the sum).</summary>
    private double GradSquaredSum()
    {
        var g = Grads;
        int chunks = (g.Length + NormChunk - 1) / NormChunk;
        var partial = new double[chunks];
        ParallelChunks.For(chunks, (first, last) =>
        {
            for (int c = first; c < last; c++)
            {
                var part = g.AsSpan(c * NormChunk, Math.Min(NormChunk, g.Length - c * NormChunk));
                partial[c] = Reduce.Dot(part, part);
            }
        }, minPerChunk: 64);
        double s = 0;
        foreach (double p in partial) s += p;
        return s;
    }

    /// <summary>
    /// Scales all gradients so their global norm is at most <paramref name="maxNorm"/> (as torch's
    /// clip_grad_norm_). Returns the norm before clipping.
    /// </summary>
    public double ClipGradNorm(double maxNorm) => ClipGradNorm([this], maxNorm);

    /// <summary>
    /// Scales the gradients of several sets so their one global norm, sqrt(Σ over sets of ‖g‖²), is at most
    /// <paramref name="maxNorm"/>: torch.nn.utils.clip_grad_norm_ over all of a model's parameters when they live in more
    /// than one set (an actor and a critic). Returns the norm before clipping.
    /// </summary>
    public static double ClipGradNorm(IReadOnlyList<ParameterSet> sets, double maxNorm)
    {
        if (!(maxNorm > 0)) throw new ArgumentOutOfRangeException(nameof(maxNorm), maxNorm, "ClipGradNorm: maxNorm must be positive.");
        double sq = 0;
        foreach (var set in sets) sq += set.GradSquaredSum();
        double norm = Math.Sqrt(sq);
        double scale = maxNorm / (norm + 1e-6);
        if (scale < 1)
            foreach (var set in sets)
            {
                var grads = set.Grads;
                ParallelChunks.For(grads.Length, (start, end) =>
                    System.Numerics.Tensors.TensorPrimitives.Multiply(grads.AsSpan(start, end - start), (float)scale, grads.AsSpan(start, end - start)), minPerChunk: 1 << 18);
            }
        return norm;
    }

    /// <summary>The slot of a parameter by name.</summary>
    public ParameterSlot this[string name] => _slots.FirstOrDefault(s => s.Name == name)
        ?? throw new KeyNotFoundException($"ParameterSet: no parameter named '{name}'.");
}
