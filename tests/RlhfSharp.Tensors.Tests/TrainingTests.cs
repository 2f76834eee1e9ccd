// End-to-end learning on a small problem, plus the other optimiser pieces (SGD, schedules, dropout).
using RlhfSharp.Tensors.Nn;
using RlhfSharp.Tensors.Optim;
using Xunit.Abstractions;

namespace RlhfSharp.Tensors.Tests;

public sealed class TrainingTests(ITestOutputHelper output)
{
    // Two interleaved half-moons as sklearn.datasets.make_moons draws them, with Gaussian noise.
    private static (float[] X, int[] Y) Moons(int n, float noise, Rng rng)
    {
        var x = new float[n * 2];
        var y = new int[n];
        for (int i = 0; i < n; i++)
        {
            double t = Math.PI * rng.NextDouble();
            bool inner = i % 2 == 1;
            x[2 * i] = (float)((inner ? 1 - Math.Cos(t) : Math.Cos(t)) + noise * rng.Normal());
            x[2 * i + 1] = (float)((inner ? 0.5 - Math.Sin(t) : Math.Sin(t)) + noise * rng.Normal());
            y[i] = inner ? 1 : 0;
        }
        return (x, y);
    }

    private static (List<float> Losses, double Accuracy) TrainMoons(ulong seed)
    {
        var rng = new Rng(seed);
        var (xTrain, yTrain) = Moons(256, 0.1f, rng);
        var (xTest, yTest) = Moons(512, 0.1f, rng);
        var mlp = new Mlp([2, 32, 32, 2], Activation.Tanh, rng);
        var ps = new ParameterSet(mlp);
        var opt = new AdamW(ps, new AdamWConfig { LearningRate = 0.02f, WeightDecay = 1e-4f });
        var schedule = new LearningRateSchedule { Kind = ScheduleKind.Cosine, PeakRate = 0.02f, WarmupSteps = 20, TotalSteps = 400, FinalRate = 0.002f };
        var input = Tensor.FromArray(xTrain, 256, 2);
        var losses = new List<float>();
        for (int step = 0; step < 400; step++)
        {
            ps.ZeroGrad();
            var loss = Ops.CrossEntropy(mlp.Forward(input), yTrain);
            loss.Backward();
            ps.ClipGradNorm(5.0);
            opt.Step(schedule.At(step));
            losses.Add(loss.Item());
        }
        using var _ = Autograd.NoGrad();
        var predicted = Ops.ArgMax(mlp.Forward(Tensor.FromArray(xTest, 512, 2)));
        double accuracy = predicted.Zip(yTest).Count(p => p.First == p.Second) / (double)yTest.Length;
        return (losses, accuracy);
    }

    // Seeds 1, 2, 3: held-out accuracy 99.8%, 100%, 99.8% (bar 98%); loss 0.73, 0.79, 0.68 → below 0.0015.
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void MlpWithAdamWSeparatesHalfMoonsAndIsBitReproducible(int seed)
    {
        var first = TrainMoons((ulong)seed);
        output.WriteLine($"seed {seed}: held-out accuracy {first.Accuracy:P1}, loss {first.Losses[0]:F3} → {first.Losses[^1]:F4}");
        Assert.True(first.Accuracy >= 0.98, $"held-out accuracy {first.Accuracy:P1} (seed {seed})");
        Assert.True(first.Losses[^1] < 0.1f * first.Losses[0], $"loss {first.Losses[0]} → {first.Losses[^1]} (seed {seed})");
        var second = TrainMoons((ulong)seed);
        Assert.Equal(first.Losses, second.Losses); // exact float equality, step by step
    }

    [Fact]
    public void SgdWithMomentumMatchesTheTorchRecurrence()
    {
        var w = Tensor.FromArray([1f, -2f], 2);
        var ps = new ParameterSet([new("w", w)]);
        var opt = new Sgd(ps, new SgdConfig { LearningRate = 0.1f, Momentum = 0.9f, WeightDecay = 0.01f });
        double[] p = [1, -2], b = [0, 0];
        for (int t = 0; t < 4; t++)
        {
            ps.ZeroGrad();
            Ops.Sum(Ops.Square(w) * 0.5f).Backward(); // gradient = w
            opt.Step();
            for (int i = 0; i < 2; i++)
            {
                double d = p[i] + 0.01 * p[i];
                b[i] = t == 0 ? d : 0.9 * b[i] + d;
                p[i] -= 0.1 * b[i];
            }
            Assert.Equal(p[0], w.Span[0], 1e-5);
            Assert.Equal(p[1], w.Span[1], 1e-5);
        }
    }

    [Fact]
    public void SchedulesFollowTheirFormulas()
    {
        var cos = new LearningRateSchedule { Kind = ScheduleKind.Cosine, PeakRate = 1f, WarmupSteps = 10, TotalSteps = 110, FinalRate = 0.1f };
        Assert.Equal(0.1f, cos.At(0), 6);
        Assert.Equal(1f, cos.At(9), 6);
        Assert.Equal(1f, cos.At(10), 6);
        Assert.Equal(0.55f, cos.At(60), 5); // halfway: (1 + 0.1) / 2
        Assert.Equal(0.1f, cos.At(110), 6);
        Assert.Equal(0.1f, cos.At(500), 6);
        var lin = new LearningRateSchedule { Kind = ScheduleKind.LinearDecay, PeakRate = 2f, TotalSteps = 100 };
        Assert.Equal(2f, lin.At(0), 6);
        Assert.Equal(1f, lin.At(50), 6);
        Assert.Equal(0f, lin.At(100), 6);
        var warm = new LearningRateSchedule { Kind = ScheduleKind.LinearWarmup, PeakRate = 4f, WarmupSteps = 4 };
        Assert.Equal([1f, 2f, 3f, 4f, 4f], Enumerable.Range(0, 5).Select(warm.At));
        Assert.Equal(3f, new LearningRateSchedule { PeakRate = 3f }.At(1000));
    }

    [Fact]
    public void DropoutKeepsTheExpectationAndIsOffInEvalMode()
    {
        var x = Tensor.Ones(100_000);
        var y = Ops.Dropout(x, 0.25f, new Rng(1)).ToArray();
        Assert.InRange(y.Count(v => v == 0f) / 100_000.0, 0.24, 0.26);
        Assert.All(y, v => Assert.True(v == 0f || Math.Abs(v - 4f / 3f) < 1e-6));
        Assert.InRange(y.Average(), 0.99, 1.01);
        Assert.Equal(y, Ops.Dropout(x, 0.25f, new Rng(1)).ToArray());
        var layer = new Dropout(0.5f, new Rng(2));
        layer.Eval();
        Assert.Same(x, layer.Forward(x));
    }
}
