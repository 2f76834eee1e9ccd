// Work split over threads in fixed chunks must not change the numbers: elementwise and row ops give the
// same bits with 1 and 2 threads. Runs alone because Parallelism.Threads is process-wide.
using RlhfSharp.Tensors.Kernels;

namespace RlhfSharp.Tensors.Tests;

/// <summary>Tests that change process-wide settings (Parallelism.Threads, anomaly mode) run alone, not beside other classes.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessWideSettings
{
    public const string Name = "process-wide settings";
}

[Collection(ProcessWideSettings.Name)]
public sealed class ThreadDeterminismTests
{
    private static (float[] Out, float[][] Grads) Run(int threads, Func<Tensor[], Tensor> f, Tensor[] inputs)
    {
        int saved = Parallelism.Threads;
        Parallelism.Threads = threads;
        try
        {
            foreach (var x in inputs)
            {
                x.RequiresGrad = true;
                x.Grad = null;
            }
            var y = f(inputs);
            var seed = Tensor.Randn(new Rng(99), 1f, y.ShapeArray());
            y.Backward(seed);
            return (y.ToArray(), inputs.Select(x => x.Grad!.ToArray()).ToArray());
        }
        finally
        {
            Parallelism.Threads = saved;
        }
    }

    public static TheoryData<string> CaseNames() => new(["bias_add", "mul_exp_tanh_sigmoid", "gelu", "softmax_logsoftmax", "token_log_probs", "entropy", "attention"]);

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void OneAndTwoThreadsGiveIdenticalBits(string name)
    {
        var rng = new Rng(1);
        (Func<Tensor[], Tensor> f, Tensor[] inputs) = name switch
        {
            "bias_add" => ((Func<Tensor[], Tensor>)(x => x[0] + x[1]), new[] { Tensor.Randn(rng, 1f, 600, 512), Tensor.Randn(rng, 1f, 512) }),
            "mul_exp_tanh_sigmoid" => (x => Ops.Exp(Ops.Tanh(x[0] * x[1])) + Ops.Sigmoid(x[1]), [Tensor.Randn(rng, 1f, 300_001), Tensor.Randn(rng, 1f, 300_001)]),
            "gelu" => (x => Ops.Gelu(x[0]), [Tensor.Randn(rng, 1f, 200_003)]),
            "softmax_logsoftmax" => (x => Ops.Softmax(x[0]) + Ops.LogSoftmax(x[0]), [Tensor.Randn(rng, 2f, 301, 700)]),
            "token_log_probs" => (x => Ops.TokenLogProbs(x[0], Enumerable.Range(0, 301).Select(i => i % 700).ToArray()), [Tensor.Randn(rng, 2f, 301, 700)]),
            "entropy" => (x => Ops.Entropy(x[0]), [Tensor.Randn(rng, 2f, 301, 700)]),
            "attention" => (x => Ops.CausalAttention(x[0], 3), [Tensor.Randn(rng, 1f, 3, 70, 3 * 24)]),
            _ => throw new ArgumentException(name),
        };
        var one = Run(1, f, inputs);
        var two = Run(2, f, inputs);
        Assert.Equal(one.Out, two.Out);
        for (int i = 0; i < inputs.Length; i++) Assert.Equal(one.Grads[i], two.Grads[i]);
    }

    [Fact]
    public void LayerNormIsIdenticalForOneAndTwoThreads()
    {
        var rng = new Rng(2);
        Tensor[] inputs = [Tensor.Randn(rng, 1f, 2000, 64), Tensor.Randn(rng, 1f, 64), Tensor.Randn(rng, 1f, 64)];
        Func<Tensor[], Tensor> f = x => Ops.LayerNorm(x[0], x[1], x[2]);
        var a = Run(2, f, inputs);
        var b = Run(2, f, inputs);
        Assert.Equal(a.Out, b.Out);
        Assert.Equal(a.Grads[1], b.Grads[1]);
        var one = Run(1, f, inputs);
        Assert.Equal(one.Out, a.Out);
        Assert.Equal(one.Grads[0], a.Grads[0]); // dx is per row
        Assert.Equal(one.Grads[1], a.Grads[1]); // dweight: each column sums its rows in order, whatever the split
        Assert.Equal(one.Grads[2], a.Grads[2]);
    }

    [Fact]
    public void AdamWStepIsIdenticalForOneAndTwoThreads()
    {
        float[] Step(int threads)
        {
            int saved = Parallelism.Threads;
            Parallelism.Threads = threads;
            try
            {
                var rng = new Rng(3);
                var w = Tensor.Randn(rng, 1f, 700, 300);
                var ps = new Nn.ParameterSet([new("w", w)]);
                Tensor.Randn(rng, 1f, ps.Grads.Length).Span.CopyTo(ps.Grads);
                var opt = new Optim.AdamW(ps, new Optim.AdamWConfig { WeightDecay = 0.1f });
                opt.Step();
                opt.Step(3e-3f);
                return w.ToArray();
            }
            finally
            {
                Parallelism.Threads = saved;
            }
        }
        Assert.Equal(Step(1), Step(2));
    }

    [Fact]
    public void ParallelChunksCoverEveryIndexExactlyOnce()
    {
        int saved = Parallelism.Threads;
        try
        {
            foreach (int threads in new[] { 1, 2, 3 })
            {
                Parallelism.Threads = threads;
                foreach (int count in new[] { 0, 1, 5, 31, 32, 1000 })
                {
                    var hits = new int[count];
                    var chunks = new System.Collections.Concurrent.ConcurrentBag<(int, int)>();
                    ParallelChunks.For(count, (start, end) =>
                    {
                        chunks.Add((start, end));
                        for (int i = start; i < end; i++) Interlocked.Increment(ref hits[i]);
                    }, minPerChunk: 16);
                    Assert.All(hits, h => Assert.Equal(1, h));
                    Assert.True(chunks.Count <= Math.Max(1, Math.Min(threads, count / 16)), $"threads {threads} count {count}: {chunks.Count} chunks");
                }
            }
        }
        finally
        {
            Parallelism.Threads = saved;
        }
    }

    [Fact]
    public void ParallelChunksOnTheGemmWorkersKeepAChunksExceptionTypeAndAllowAGemmInsideAChunk()
    {
        // The chunks run on the GEMM workers: an exception thrown in the worker's chunk must reach the caller as itself,
        // and a chunk that runs a 2-thread GEMM (the workers are busy with the chunk loop) must get the GEMM's usual bits.
        int saved = Parallelism.Threads;
        try
        {
            Parallelism.Threads = 2;
            var thrown = Assert.Throws<ArgumentException>(() => ParallelChunks.For(10, (start, end) =>
            {
                if (start > 0) throw new ArgumentException($"chunk from {start}");
            }));
            Assert.Equal("chunk from 5", thrown.Message);

            const int m = 64, n = 96, k = 300;
            var rng = new Rng(5);
            var a = Enumerable.Range(0, m * k).Select(_ => rng.NextFloat() - 0.5f).ToArray();
            var b = Enumerable.Range(0, k * n).Select(_ => rng.NextFloat() - 0.5f).ToArray();
            var expected = new float[m * n];
            Gemm.Multiply(GemmForm.NN, m, n, k, a, k, b, n, expected, n, accumulate: false, threads: 2);
            var inChunks = new float[2][];
            ParallelChunks.For(2, (start, end) =>
            {
                for (int c = start; c < end; c++)
                {
                    inChunks[c] = new float[m * n];
                    Gemm.Multiply(GemmForm.NN, m, n, k, a, k, b, n, inChunks[c], n, accumulate: false, threads: 2);
                }
            });
            Assert.Equal(expected, inChunks[0]);
            Assert.Equal(expected, inChunks[1]);
            // And the workers are free again afterwards: a plain loop still covers every index once.
            var hits = new int[100];
            ParallelChunks.For(100, (start, end) => { for (int i = start; i < end; i++) hits[i]++; });
            Assert.All(hits, h => Assert.Equal(1, h));
        }
        finally
        {
            Parallelism.Threads = saved;
        }
    }
}
