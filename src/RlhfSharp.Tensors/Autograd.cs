// Reverse-mode automatic differentiation: the tape is the graph of Parents links each op records; Backward
// sorts it topologically with an explicit stack (a GPT graph is too deep for recursion) and runs each op's
// hand-written backward in reverse order. Gradients always accumulate (+=), so a node used twice gets both.
namespace RlhfSharp.Tensors;

public static class Autograd
{
    [ThreadStatic] private static int _noGradDepth;
    private static volatile bool _anomalyMode;

    /// <summary>True when ops on this thread record the graph (false inside a <see cref="NoGrad"/> scope).</summary>
    public static bool IsGradEnabled => _noGradDepth == 0;

    /// <summary>While the returned scope is alive, ops on this thread record nothing (inference, rollouts, targets).</summary>
    public static IDisposable NoGrad()
    {
        _noGradDepth++;
        return new Scope(() => _noGradDepth--);
    }

    /// <summary>
    /// Anomaly mode: every op checks its output (and every backward its gradients) for NaN or infinity and
    /// throws naming the first op that produced one. Slow; for debugging. Process-wide.
    /// </summary>
    public static bool AnomalyMode
    {
        get => _anomalyMode;
        set => _anomalyMode = value;
    }

    /// <summary>Turns anomaly mode on until the returned scope is disposed.</summary>
    public static IDisposable DetectAnomaly()
    {
        bool previous = _anomalyMode;
        _anomalyMode = true;
        return new Scope(() => _anomalyMode = previous);
    }

    /// <summary>
    /// Records an op's output. When gradients are off or no input needs one, the result is a plain tensor
    /// and <paramref name="backward"/> is dropped. backward(output) reads output.Grad and adds into the
    /// inputs' gradients (only those with RequiresGrad).
    /// </summary>
    internal static Tensor Record(string op, Tensor output, Tensor[] inputs, Action<Tensor> backward)
    {
        output.Name = op;
        if (_anomalyMode) CheckFinite(output.Span, $"anomaly: op '{op}' produced", output.ShapeString);
        if (!IsGradEnabled) return output;
        bool any = false;
        foreach (var t in inputs) any |= t.RequiresGrad;
        if (!any) return output;
        output.RequiresGrad = true;
        output.Parents = inputs;
        output.BackwardFn = backward;
        return output;
    }

    internal static void Backward(Tensor root, Tensor? seed, bool retainGraph)
    {
        if (!root.RequiresGrad)
            throw new InvalidOperationException($"Backward: {root} does not require grad (no input of its graph has RequiresGrad, or it was computed under NoGrad).");
        if (seed is null)
        {
            if (root.Length != 1)
                throw new InvalidOperationException($"Backward: {root} has {root.Length} elements; a non-scalar needs an explicit seed gradient of shape {root.ShapeString}.");
        }
        else if (!seed.Shape.SequenceEqual(root.Shape))
        {
            throw new ArgumentException($"Backward: seed gradient shape {seed.ShapeString} differs from the output's shape {root.ShapeString}.");
        }

        var order = TopologicalOrder(root);
        var g = root.GradForAccumulate();
        if (seed is null) g[0] += 1f;
        else
        {
            var s = seed.Span;
            for (int i = 0; i < g.Length; i++) g[i] += s[i];
        }

        for (int i = order.Count - 1; i >= 0; i--)
        {
            var node = order[i];
            var fn = node.BackwardFn;
            if (fn is null) continue; // a leaf: its gradient stays
            if (node.Grad is null)
                continue; // nothing flowed here (e.g. only through a non-differentiable path)
            fn(node);
            if (_anomalyMode)
            {
                foreach (var p in node.Parents!)
                {
                    if (p.Grad is not null) CheckFinite(p.Grad.Span, $"anomaly: backward of op '{node.Name}' produced a gradient with", p.ShapeString);
                }
            }
            if (!node.RetainGrad && !ReferenceEquals(node, root)) node.Grad = null;
            if (!retainGraph)
            {
                // Drop the saved activations; a later backward through this node fails loudly instead of silently stopping.
                node.BackwardFn = FreedGraph;
                node.Parents = null;
            }
        }
    }

    private static readonly Action<Tensor> FreedGraph = node => throw new InvalidOperationException(
        $"Backward: the graph below '{node.Name}' {node.ShapeString} was freed by an earlier Backward; pass retainGraph: true to that call, recompute the forward, or Detach() the value to use it as a constant.");

    /// <summary>Post-order of the graph below root (inputs before the ops that use them), iteratively.</summary>
    private static List<Tensor> TopologicalOrder(Tensor root)
    {
        var order = new List<Tensor>();
        var visited = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<(Tensor Node, int NextParent)>();
        stack.Push((root, 0));
        visited.Add(root);
        while (stack.Count > 0)
        {
            var (node, next) = stack.Pop();
            var parents = node.Parents;
            if (parents is not null && next < parents.Length)
            {
                stack.Push((node, next + 1));
                var p = parents[next];
                if (p.RequiresGrad && visited.Add(p)) stack.Push((p, 0));
            }
            else
            {
                order.Add(node);
            }
        }
        return order;
    }

    private static void CheckFinite(ReadOnlySpan<float> values, string what, string shape)
    {
        for (int i = 0; i < values.Length; i++)
        {
            if (!float.IsFinite(values[i]))
                throw new InvalidOperationException($"{what} {values[i]} at flat index {i} (shape {shape}).");
        }
    }

    private sealed class Scope(Action onDispose) : IDisposable
    {
        private Action? _onDispose = onDispose;

        public void Dispose()
        {
            _onDispose?.Invoke();
            _onDispose = null;
        }
    }
}
