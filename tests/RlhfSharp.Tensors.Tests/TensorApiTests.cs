// The tensor surface and autograd rules: factories, views, error messages, NoGrad, Detach, accumulation,
// deep graphs.
namespace RlhfSharp.Tensors.Tests;

public sealed class TensorApiTests
{
    [Fact]
    public void ShapeMismatchNamesTheOpAndBothShapes()
    {
        var a = Tensor.Zeros(2, 3);
        var b = Tensor.Zeros(4, 5);
        var e = Assert.Throws<ArgumentException>(() => a + b);
        Assert.Contains("add", e.Message);
        Assert.Contains("[2,3]", e.Message);
        Assert.Contains("[4,5]", e.Message);
        var m = Assert.Throws<ArgumentException>(() => Ops.MatMul(a, b));
        Assert.Contains("matmul", m.Message);
        Assert.Contains("[2,3]", m.Message);
        Assert.Contains("[4,5]", m.Message);
        var l = Assert.Throws<ArgumentException>(() => Ops.Linear(a, Tensor.Zeros(4, 5)));
        Assert.Contains("linear", l.Message);
    }

    [Fact]
    public void BackwardOnNonScalarWithoutSeedSaysSo()
    {
        var x = Tensor.Ones(3);
        x.RequiresGrad = true;
        var y = x * 2f;
        var e = Assert.Throws<InvalidOperationException>(() => y.Backward());
        Assert.Contains("seed", e.Message);
        Assert.Contains("[3]", e.Message);
    }

    [Fact]
    public void GradientsAccumulateAcrossBackwardCalls()
    {
        var x = Tensor.FromArray([1f, 2f], 2);
        x.RequiresGrad = true;
        Ops.Sum(x * x).Backward();
        Ops.Sum(x * 3f).Backward();
        Assert.Equal([2f + 3f, 4f + 3f], x.Grad!.ToArray()); // d(x²)=2x plus d(3x)=3
    }

    [Fact]
    public void SecondBackwardThroughAFreedGraphSaysSoUnlessRetained()
    {
        var x = Tensor.FromArray([1f, 2f], 2);
        x.RequiresGrad = true;
        var h = Ops.Exp(x);
        Ops.Sum(h).Backward(retainGraph: true);
        Ops.Sum(h * 2f).Backward(); // the retained graph under h serves a second loss
        Assert.Equal(3f * MathF.Exp(2f), x.Grad!.Span[1], 4);
        var e = Assert.Throws<InvalidOperationException>(() => Ops.Sum(h).Backward());
        Assert.Contains("'exp'", e.Message);
        Assert.Contains("retainGraph", e.Message);
        Assert.Throws<ArgumentException>(() => x.Grad = Tensor.Zeros(3));
    }

    [Fact]
    public void NoGradRecordsNothingAndDetachCutsTheGraph()
    {
        var x = Tensor.FromArray([1f, 2f], 2);
        x.RequiresGrad = true;
        using (Autograd.NoGrad())
        {
            var y = Ops.Exp(x);
            Assert.False(y.RequiresGrad);
            Assert.False(Autograd.IsGradEnabled);
        }
        Assert.True(Autograd.IsGradEnabled);
        var d = x.Detach();
        Assert.False(d.RequiresGrad);
        var loss = Ops.Sum(x * d); // gradient only through the first factor: d(x·c)/dx = c = x
        loss.Backward();
        Assert.Equal([1f, 2f], x.Grad!.ToArray());
    }

    [Fact]
    public void ReshapeIsAViewSharingStorage()
    {
        var x = Tensor.FromArray([1f, 2f, 3f, 4f, 5f, 6f], 2, 3);
        var v = x.Reshape(3, -1);
        Assert.Equal([3, 2], v.ShapeArray());
        Assert.Same(x.Data, v.Data);
        x[1, 0] = 40f;
        Assert.Equal(40f, v[1, 1]);
        Assert.Throws<ArgumentException>(() => x.Reshape(4, -1));
    }

    [Fact]
    public void DeepChainBackpropagatesWithoutRecursion()
    {
        var x = Tensor.Scalar(0.5f);
        x.RequiresGrad = true;
        var y = x;
        const int depth = 100_000; // far deeper than a recursive sort could survive
        for (int i = 0; i < depth; i++) y = y * 1.0001f;
        y.Backward();
        double expected = Math.Pow(1.0001, depth);
        Assert.InRange(x.Grad!.Item(), expected * 0.99, expected * 1.01);
    }

    [Fact]
    public void LogSigmoidStaysFiniteForLargeInputs()
    {
        var x = Tensor.FromArray([-200f, -30f, 0f, 30f, 200f], 5);
        var y = Ops.LogSigmoid(x).ToArray();
        Assert.All(y, v => Assert.True(float.IsFinite(v)));
        Assert.Equal(-200f, y[0], 3);
        Assert.Equal(-MathF.Log(2f), y[2], 5);
        Assert.Equal(0f, y[4], 6);
    }

    [Fact]
    public void CrossEntropyMatchesAnIndependentFloat64Computation()
    {
        var rng = new Rng(4);
        var logits = Tensor.Randn(rng, 3f, 4, 7);
        int[] t = [6, -100, 0, 3];
        var loss = Ops.CrossEntropy(logits, t).Item();
        double total = 0;
        int count = 0;
        for (int r = 0; r < 4; r++)
        {
            if (t[r] < 0) continue;
            double lse = Math.Log(Enumerable.Range(0, 7).Sum(i => Math.Exp(logits[r, i])));
            total += lse - logits[r, t[r]];
            count++;
        }
        Assert.Equal(total / count, loss, 1e-5);
        Assert.Equal(0f, Ops.CrossEntropy(logits, [-100, -100, -100, -100]).Item());
    }

    [Fact]
    public void EntropyOfUniformLogitsIsLogV()
    {
        var h = Ops.Entropy(Tensor.Full(3.7f, 2, 10)).ToArray();
        Assert.All(h, v => Assert.Equal(MathF.Log(10f), v, 5));
    }

    [Fact]
    public void LayerNormOutputHasZeroMeanAndUnitVariance()
    {
        var x = Tensor.Randn(new Rng(8), 5f, 3, 64) + 10f;
        var y = Ops.LayerNorm(x, Tensor.Ones(64), Tensor.Zeros(64));
        for (int r = 0; r < 3; r++)
        {
            var row = y.Span.Slice(r * 64, 64).ToArray();
            Assert.Equal(0.0, row.Average(), 4);
            Assert.Equal(1.0, row.Average(v => v * v), 3);
        }
    }

    [Fact]
    public void MatMulAgreesWithTheScalarReference()
    {
        var rng = new Rng(2);
        var a = Tensor.Randn(rng, 1f, 3, 5, 7);
        var b = Tensor.Randn(rng, 1f, 3, 7, 4);
        var c = Ops.MatMul(a, b);
        for (int n = 0; n < 3; n++)
            for (int i = 0; i < 5; i++)
                for (int j = 0; j < 4; j++)
                {
                    double s = 0;
                    for (int k = 0; k < 7; k++) s += a[n, i, k] * b[n, k, j];
                    Assert.Equal(s, c[n, i, j], 1e-4);
                }
        Assert.Throws<ArgumentException>(() => Ops.MatMul(a, b, transA: true, transB: true));
        var shared = Tensor.Randn(rng, 1f, 7, 4); // one 2-D b for every batch (folded into one product internally)
        var cs = Ops.MatMul(a, shared);
        for (int n = 0; n < 3; n++)
            for (int i = 0; i < 5; i++)
                for (int j = 0; j < 4; j++)
                {
                    double s = 0;
                    for (int k = 0; k < 7; k++) s += a[n, i, k] * shared[k, j];
                    Assert.Equal(s, cs[n, i, j], 1e-4);
                }
    }

    [Fact]
    public void EmbeddingRejectsOutOfRangeIds()
    {
        var w = Tensor.Zeros(4, 2);
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Ops.Embedding(w, [1, 4], 2));
        Assert.Contains("id 4", e.Message);
    }
}
