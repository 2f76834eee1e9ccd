// Modules, the flat ParameterSet, AdamW, gradient clipping and initialisers.
using RlhfSharp.Tensors.Nn;
using RlhfSharp.Tensors.Optim;

namespace RlhfSharp.Tensors.Tests;

// One test sets Parallelism.Threads, which is process-wide: the class runs alone.
[Collection(ProcessWideSettings.Name)]
public sealed class ModuleOptimizerTests
{
    private sealed class Block : Module
    {
        public Block(Rng rng)
        {
            Ln = RegisterModule("ln_1", new LayerNorm(4));
            Mlp = RegisterModule("mlp", new Mlp([4, 8, 4], Activation.Gelu, rng));
        }

        public LayerNorm Ln { get; }
        public Mlp Mlp { get; }
    }

    private sealed class Net : Module
    {
        public Net(Rng rng)
        {
            H = RegisterModule("h", new ModuleList<Block>([new Block(rng), new Block(rng)]));
            Wte = RegisterModule("wte", new Embedding(10, 4, rng, 0.02f));
        }

        public ModuleList<Block> H { get; }
        public Embedding Wte { get; }
    }

    [Fact]
    public void NestedModulesGiveDottedCheckpointStyleNames()
    {
        var names = new Net(new Rng(1)).NamedParameters().Select(p => p.Key).ToList();
        Assert.Equal("h.0.ln_1.weight", names[0]);
        Assert.Contains("h.1.mlp.layers.1.bias", names);
        Assert.Contains("wte.weight", names);
        Assert.Equal(names.Count, names.Distinct().Count());
    }

    [Fact]
    public void ParameterSetMakesParametersViewsOfOneBufferAndBackwardFillsTheFlatGradients()
    {
        var rng = new Rng(2);
        var net = new Net(rng);
        var before = net.NamedParameters().ToDictionary(p => p.Key, p => p.Value.ToArray());
        var ps = new ParameterSet(net);
        Assert.Equal(net.ParameterCount(), ps.Count);
        foreach (var slot in ps.Slots)
        {
            Assert.Same(ps.Values, slot.Value.Data);
            Assert.Equal(slot.Offset, slot.Value.Offset);
            Assert.Equal(0, slot.Offset % 16);
            Assert.Equal(before[slot.Name], slot.Value.ToArray());
        }
        var x = net.Wte.Forward([1, 2, 3], [3]);
        var y = net.H[0].Mlp.Forward(net.H[0].Ln.Forward(x));
        Ops.Sum(Ops.Square(y)).Backward();
        var w = ps["h.0.mlp.layers.0.weight"];
        Assert.Contains(ps.Grads.AsSpan(w.Offset, w.Length).ToArray(), g => g != 0f);
        ps.ZeroGrad();
        Assert.All(ps.Grads, g => Assert.Equal(0f, g));
    }

    [Fact]
    public void TiedWeightsAppearOnceInTheParameterSet()
    {
        var shared = Tensor.Ones(3, 2);
        var ps = new ParameterSet([new("wte.weight", shared), new("lm_head.weight", shared), new("b", Tensor.Zeros(2))]);
        Assert.Equal(2, ps.Slots.Count);
        Assert.Equal(8, ps.Count);
    }

    [Fact]
    public void AdamWMatchesAnIndependentFloat64Implementation()
    {
        var w = Tensor.FromArray([0.5f, -1f, 2f, 0.1f], 2, 2);
        var b = Tensor.FromArray([0.3f, -0.2f], 2);
        var ps = new ParameterSet([new("w", w), new("b", b)]);
        var cfg = new AdamWConfig { LearningRate = 0.1f, WeightDecay = 0.5f, Beta1 = 0.8f, Beta2 = 0.9f, Eps = 1e-6f };
        var opt = new AdamW(ps, cfg);
        Assert.Equal([true, false], opt.Decays); // matrices decay, 1-D parameters do not

        double[] p = [0.5, -1, 2, 0.1, 0.3, -0.2];
        double[] m = new double[6], v = new double[6];
        for (int t = 1; t <= 3; t++)
        {
            ps.ZeroGrad();
            var loss = Ops.Sum(Ops.Square(Ops.Linear(Tensor.FromArray([1f, 2f], 1, 2), w, b)));
            loss.Backward();
            var grads = w.Grad!.ToArray().Concat(b.Grad!.ToArray()).ToArray();
            opt.Step();
            for (int i = 0; i < 6; i++)
            {
                double wd = i < 4 ? 0.5 : 0.0;
                p[i] -= 0.1 * wd * p[i];
                m[i] = 0.8 * m[i] + 0.2 * grads[i];
                v[i] = 0.9 * v[i] + 0.1 * grads[i] * grads[i];
                double mh = m[i] / (1 - Math.Pow(0.8, t)), vh = v[i] / (1 - Math.Pow(0.9, t));
                p[i] -= 0.1 * mh / (Math.Sqrt(vh) + 1e-6);
            }
            var actual = w.ToArray().Concat(b.ToArray()).ToArray();
            for (int i = 0; i < 6; i++) Assert.Equal(p[i], actual[i], 5);
        }
        Assert.Equal(3, opt.StepCount);
    }

    [Fact]
    public void ClipGradNormScalesToTheLimitAndReportsTheOriginalNorm()
    {
        var a = Tensor.Zeros(3);
        var ps = new ParameterSet([new("a", a)]);
        a.Grad!.Span[0] = 3f;
        a.Grad!.Span[1] = 4f;
        Assert.Equal(5.0, ps.ClipGradNorm(1.0), 6);
        Assert.Equal(1.0, ps.GradNorm(), 5);
        Assert.Equal(0.6f, a.Grad.Span[0], 5);
        Assert.Equal(1.0, ps.ClipGradNorm(10.0), 5); // under the limit: unchanged
        Assert.Equal(0.8f, a.Grad.Span[1], 5);
    }

    [Fact]
    public void ClipGradNorm_OverTwoSets_UsesTheirOneGlobalNorm()
    {
        // Given an actor set with gradient (3, 0) and a critic set with (0, 4): the global norm is 5, though each set's is below it.
        var a = Tensor.Zeros(2);
        var c = Tensor.Zeros(2);
        var actor = new ParameterSet([new("a", a)]);
        var critic = new ParameterSet([new("c", c)]);
        a.Grad!.Span[0] = 3f;
        c.Grad!.Span[1] = 4f;
        // When clipped to 4.5 together, Then both shrink by 4.5/5, not each to its own limit.
        Assert.Equal(5.0, ParameterSet.ClipGradNorm([actor, critic], 4.5), 6);
        Assert.Equal(3f * 0.9f, a.Grad.Span[0], 5);
        Assert.Equal(4f * 0.9f, c.Grad.Span[1], 5);
        // One set alone gives the same bits as its own ClipGradNorm.
        var x = Tensor.Zeros(3);
        var y = Tensor.Zeros(3);
        var one = new ParameterSet([new("x", x)]);
        var same = new ParameterSet([new("y", y)]);
        float[] g = [0.3f, -1.7f, 2.9f];
        g.CopyTo(one.Grads, 0);
        g.CopyTo(same.Grads, 0);
        Assert.Equal(one.ClipGradNorm(0.5), ParameterSet.ClipGradNorm([same], 0.5));
        Assert.Equal(one.Grads, same.Grads);
    }

    [Fact]
    public void GradNormAndClipping_SplitOverThreads_AgreeWithOnePlainPass()
    {
        // Two slots large enough for many 4096-float partial sums and a split over threads, with a ragged last chunk.
        var rng = new Rng(4);
        var a = Tensor.Zeros(300_001);
        var b = Tensor.Zeros(77_777);
        var ps = new ParameterSet([new("a", a), new("b", b)]);
        for (int i = 0; i < ps.Grads.Length; i++) ps.Grads[i] = (float)rng.Normal();
        var original = (float[])ps.Grads.Clone();
        double plain = Math.Sqrt(original.Sum(g => (double)g * g));
        int saved = Parallelism.Threads;
        try
        {
            Parallelism.Threads = 1;
            double one = ps.GradNorm();
            Parallelism.Threads = 2;
            double two = ps.GradNorm();
            Assert.Equal(one, two); // same bits whatever the thread count
            // Each 4096-float partial sum is float32 (rounding ~1e-7 relative per add), summed in float64 across chunks.
            Assert.Equal(plain, two, plain * 1e-6);

            double reported = ps.ClipGradNorm(1.0);
            Assert.Equal(two, reported);
            for (int i = 0; i < original.Length; i++)
                Assert.Equal((float)(1.0 / (two + 1e-6)) * original[i], ps.Grads[i]);

            ps.ZeroGrad();
            Assert.All(ps.Grads, g => Assert.Equal(0f, g));
        }
        finally
        {
            Parallelism.Threads = saved;
        }
    }

    [Theory]
    [InlineData(3, 7)]
    [InlineData(7, 3)]
    [InlineData(5, 5)]
    public void OrthogonalInitGivesOrthonormalRowsOrColumns(int rows, int cols)
    {
        var t = Tensor.Zeros(rows, cols);
        Init.Orthogonal(t, new Rng(3), gain: 2f);
        int k = Math.Min(rows, cols);
        for (int i = 0; i < k; i++)
        {
            for (int j = 0; j < k; j++)
            {
                double dot = 0;
                // rows ≤ cols: rows are orthonormal; otherwise columns are
                for (int p = 0; p < Math.Max(rows, cols); p++)
                    dot += rows <= cols ? t[i, p] * t[j, p] : t[p, i] * t[p, j];
                Assert.Equal(i == j ? 4.0 : 0.0, dot, 4);
            }
        }
    }

    [Fact]
    public void XavierAndKaimingStayWithinTheirBounds()
    {
        var t = Tensor.Zeros(20, 30);
        Init.XavierUniform(t, new Rng(4));
        float a = MathF.Sqrt(6f / 50f);
        Assert.All(t.ToArray(), v => Assert.InRange(v, -a, a));
        Assert.True(t.ToArray().Max() > 0.8f * a);
        Init.KaimingUniform(t, new Rng(5));
        float b = MathF.Sqrt(2f) * MathF.Sqrt(3f / 30f);
        Assert.All(t.ToArray(), v => Assert.InRange(v, -b, b));
    }

    [Fact]
    public void LoadStateCopiesByNameAndRejectsWrongShapes()
    {
        var src = new Mlp([3, 4, 2], Activation.Tanh, new Rng(6));
        var dst = new Mlp([3, 4, 2], Activation.Tanh, new Rng(7));
        dst.LoadState(src.StateDict());
        Assert.Equal(src.Layers[1].Weight.ToArray(), dst.Layers[1].Weight.ToArray());
        var bad = src.StateDict();
        bad["layers.0.weight"] = Tensor.Zeros(3, 4);
        var e = Assert.Throws<ArgumentException>(() => dst.LoadState(bad));
        Assert.Contains("layers.0.weight", e.Message);
        bad.Remove("layers.0.weight");
        Assert.Throws<ArgumentException>(() => dst.LoadState(bad));
    }
}
