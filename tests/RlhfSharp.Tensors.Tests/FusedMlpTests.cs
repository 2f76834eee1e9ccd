// The fused MLP path against the graph path it stands in for (Mlp.Forward and autograd), and its backward against float64
// central differences of an MLP written out again in float64.
using RlhfSharp.Tensors.Nn;

namespace RlhfSharp.Tensors.Tests;

public sealed class FusedMlpTests
{
    private static float[] Normal(Rng rng, int n, double sd = 1) => [.. Enumerable.Range(0, n).Select(_ => (float)rng.Normal(0, sd))];

    /// <summary>Two MLPs with the same weights, each in its own ParameterSet (so their gradients are kept apart).</summary>
    private static (Mlp Graph, ParameterSet GraphSet, Mlp Fused, ParameterSet FusedSet) Twins(int[] sizes, Activation act, ulong seed)
    {
        var a = new Mlp(sizes, act, new Rng(seed));
        var b = new Mlp(sizes, act, new Rng(seed));
        return (a, new ParameterSet(a), b, new ParameterSet(b));
    }

    [Theory]
    [InlineData(new[] { 6, 40, 3 }, 37)]      // every layer through the GEMM: the same bits as the graph
    [InlineData(new[] { 6, 64, 32 }, 53)]     // widths that fill whole vectors (the vector bias loop): the same bits too
    [InlineData(new[] { 5, 64, 64, 1 }, 301)] // the reward predictor's shape; its one-column layer is a dot product per row
    public void Forward_EqualsTheGraphPath(int[] sizes, int rows)
    {
        var (graph, _, fusedMlp, _) = Twins(sizes, Activation.Relu, 3);
        var x = Normal(new Rng(4), rows * sizes[0]);
        float[] expected;
        using (Autograd.NoGrad()) expected = graph.Forward(Tensor.FromArray(x, rows, sizes[0])).ToArray();
        var fused = new FusedMlp(fusedMlp);
        float[] actual = fused.Forward(x, rows).ToArray();
        if (sizes[^1] > 1) Assert.Equal(expected, actual);
        else for (int i = 0; i < rows; i++) Assert.Equal(expected[i], actual[i], 1e-5f * Math.Max(1f, Math.Abs(expected[i])));
    }

    [Theory]
    [InlineData(new[] { 6, 40, 3 }, 37)]
    [InlineData(new[] { 5, 64, 64, 1 }, 301)]
    [InlineData(new[] { 3, 2, 7, 1 }, 5)] // a layer narrower in than out, and one wider
    public void Backward_EqualsAutograd_AndAccumulates(int[] sizes, int rows)
    {
        var (graph, graphSet, fusedMlp, fusedSet) = Twins(sizes, Activation.Relu, 5);
        var rng = new Rng(6);
        var x = Normal(rng, rows * sizes[0]);
        var c = Normal(rng, rows * sizes[^1]); // L = Σ c ⊙ y
        graphSet.ZeroGrad();
        Ops.Sum(graph.Forward(Tensor.FromArray(x, rows, sizes[0])) * Tensor.FromArray(c, rows, sizes[^1])).Backward();
        var fused = new FusedMlp(fusedMlp);
        fusedSet.ZeroGrad();
        fused.Forward(x, rows);
        fused.Backward(c);
        double scale = graphSet.Grads.Max(g => Math.Abs(g));
        for (int i = 0; i < graphSet.Grads.Length; i++)
            Assert.True(Math.Abs(graphSet.Grads[i] - fusedSet.Grads[i]) <= 1e-5 * scale, $"gradient {i}: graph {graphSet.Grads[i]}, fused {fusedSet.Grads[i]}");
        // A second backward adds the same again (gradients accumulate, as autograd's).
        fused.Backward(c);
        for (int i = 0; i < graphSet.Grads.Length; i++)
            Assert.True(Math.Abs(2 * graphSet.Grads[i] - fusedSet.Grads[i]) <= 2e-5 * scale);
    }

    [Fact]
    public void Backward_MatchesFloat64CentralDifferences()
    {
        int[] sizes = [4, 9, 6, 1];
        int rows = 11;
        var mlp = new Mlp(sizes, Activation.Relu, new Rng(7));
        var set = new ParameterSet(mlp);
        var rng = new Rng(8);
        var x = Normal(rng, rows * sizes[0]);
        var c = Normal(rng, rows);
        var fused = new FusedMlp(mlp);
        set.ZeroGrad();
        fused.Forward(x, rows);
        fused.Backward(c);
        double[] p = [.. set.Values.Select(v => (double)v)];

        // L(θ) = Σ_r c_r·MLP(x_r) in float64, reading each parameter at its place in the flat buffer.
        double Loss()
        {
            double total = 0;
            for (int r = 0; r < rows; r++)
            {
                double[] a = [.. x.Skip(r * sizes[0]).Take(sizes[0]).Select(v => (double)v)];
                for (int l = 0; l < mlp.Layers.Count; l++)
                {
                    var layer = mlp.Layers[l];
                    int wOff = set.Slots.Single(s => ReferenceEquals(s.Value, layer.Weight)).Offset;
                    int bOff = set.Slots.Single(s => ReferenceEquals(s.Value, layer.Bias)).Offset;
                    var z = new double[layer.OutFeatures];
                    for (int o = 0; o < z.Length; o++)
                    {
                        z[o] = p[bOff + o];
                        for (int i = 0; i < a.Length; i++) z[o] += p[wOff + o * a.Length + i] * a[i];
                        if (l < mlp.Layers.Count - 1) z[o] = Math.Max(z[o], 0);
                    }
                    a = z;
                }
                total += c[r] * a[0];
            }
            return total;
        }

        const double h = 1e-6;
        foreach (var slot in set.Slots)
            for (int k = slot.Offset; k < slot.Offset + slot.Length; k++)
            {
                double keep = p[k];
                p[k] = keep + h; double up = Loss();
                p[k] = keep - h; double down = Loss();
                p[k] = keep;
                double numeric = (up - down) / (2 * h);
                Assert.True(Math.Abs(numeric - set.Grads[k]) <= 1e-5 + 1e-4 * Math.Abs(numeric), $"{slot.Name}[{k - slot.Offset}]: fused {set.Grads[k]}, float64 central difference {numeric}");
            }
    }

    [Fact]
    public void BuffersGrowAndShrinkWithTheBatch_WithoutChangingResults()
    {
        int[] sizes = [5, 16, 1];
        var (graph, _, fusedMlp, _) = Twins(sizes, Activation.Relu, 9);
        var fused = new FusedMlp(fusedMlp);
        var rng = new Rng(10);
        foreach (int rows in new[] { 3, 50, 7, 120 })
        {
            var x = Normal(rng, rows * 5);
            float[] expected;
            using (Autograd.NoGrad()) expected = graph.Forward(Tensor.FromArray(x, rows, 5)).ToArray();
            var y = fused.Forward(x, rows);
            Assert.Equal(rows, y.Length);
            for (int i = 0; i < rows; i++) Assert.Equal(expected[i], y[i], 1e-5f);
        }
    }

    [Fact]
    public void RefusesActivationsWithoutAFusedPath_AndABackwardBeforeAForward()
    {
        var ex = Assert.Throws<ArgumentException>(() => new FusedMlp(new Mlp([2, 3, 1], Activation.Tanh, new Rng(1))));
        Assert.Contains("Tanh", ex.Message);
        var fused = new FusedMlp(new Mlp([2, 3, 1], Activation.Relu, new Rng(1)));
        Assert.Throws<InvalidOperationException>(() => fused.Backward([1f]));
        Assert.Throws<ArgumentException>(() => fused.Forward([1f, 2f, 3f], 1));
    }
}
