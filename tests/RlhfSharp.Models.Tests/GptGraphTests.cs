// The engine-op forward agrees with the fused path (and so with the reference): the trunk bit for bit, every gradient
// to float32 rounding.
using RlhfSharp.Models.Checkpoints;
using RlhfSharp.Tensors;

namespace RlhfSharp.Models.Tests;

public sealed class GptGraphTests
{
    private static Gpt Model(GptConfig config, ulong seed) => Gpt.FromTensors(config, RandomWeights.For(config, seed, withHeads: true));

    [Fact]
    public void GraphOutputs_MatchTheFusedPath_OnALeftPaddedBatch()
    {
        var config = RandomWeights.TinyConfig(vocab: 13, block: 10, embd: 12, layers: 2, heads: 3);
        var gpt = Model(config, 41);
        var input = GptInput.LeftPadded([[1, 2, 3], [4, 5, 6, 7, 8, 9], [12]], padToken: 0);

        var fused = gpt.Forward(input);
        var graph = gpt.ForwardGraph(input);

        // Both paths run the same layer-norm, GELU, attention and Gemm kernels in the same order: the trunk and the LM
        // head agree bit for bit. The heads differ in order (Reduce.Dot in the fused path, a Gemm in the graph).
        Assert.Equal(fused.LnF, graph.Hidden.ToArray());
        Assert.Equal(fused.Logits!, graph.Logits!.ToArray());
        AssertClose(fused.Values!, graph.Values!.ToArray(), 1e-5);
        AssertClose(fused.Rewards!, graph.Rewards!.ToArray(), 1e-5);
        var reference = new ReferenceGpt(config, gpt.ToTensors());
        Assert.Equal(reference.Reward([4, 5, 6, 7, 8, 9]), graph.Rewards!.ToArray()[1], 1e-4);
    }

    [Fact]
    public void GraphGradients_MatchTheFusedBackward()
    {
        var config = RandomWeights.TinyConfig(vocab: 11, block: 8, embd: 8, layers: 2, heads: 2);
        var gpt = Model(config, 42);
        var input = GptInput.LeftPadded([[1, 2, 3, 4, 5], [6, 7, 8]], padToken: 0);
        int N = input.Tokens.Length, V = config.VocabSize;
        var targets = new int[N];
        var weights = new float[N];
        for (int n = 0; n + 1 < N; n++)
            if (input.AttentionMask![n] != 0 && input.AttentionMask[n + 1] != 0 && (n + 1) % input.Length != 0)
            {
                targets[n] = input.Tokens[n + 1];
                weights[n] = 1;
            }
        // Loss = LM cross-entropy + 0.5·Σ values·mask + 2·Σ rewards: exercises all three heads.
        var valueWeights = input.AttentionMask!.Select(m => 0.5f * m).ToArray();

        gpt.ZeroGrad();
        var pass = gpt.Forward(input);
        var dLogits = new float[N * V];
        float fusedLoss = Gpt.CrossEntropy(pass, targets, weights, dLogits);
        gpt.Backward(pass, dLogits, valueWeights, [2f, 2f]);
        var fusedGrads = (float[])gpt.Gradients.Clone();

        gpt.ZeroGrad();
        var graph = gpt.ForwardGraph(input);
        var ce = Ops.CrossEntropy(Ops.Reshape(graph.Logits!, N, V), targets, rowWeights: weights);
        var loss = ce + Ops.Sum(Ops.Mul(graph.Values!, Tensor.Wrap(valueWeights, 2, input.Length))) + Ops.Sum(graph.Rewards!) * 2f;
        loss.Backward();

        Assert.Equal(fusedLoss, ce.Item(), 1e-5);
        foreach (var p in gpt.ParameterList)
        {
            var f = fusedGrads.AsSpan(p.Offset, p.Length).ToArray();
            var g = gpt.Gradients.AsSpan(p.Offset, p.Length).ToArray();
            double diff = Math.Sqrt(f.Zip(g, (a, b) => (double)(a - b) * (a - b)).Sum());
            double norm = Math.Sqrt(f.Sum(a => (double)a * a));
            Assert.True(diff <= 1e-4 * norm + 1e-6, $"{p.Name}: |fused - graph| = {diff}, |fused| = {norm}");
        }
        Assert.True(Math.Sqrt(fusedGrads.Sum(x => (double)x * x)) > 0.1);
    }

    private static void AssertClose(float[] expected, float[] actual, double tolerance)
    {
        Assert.Equal(expected.Length, actual.Length);
        double max = 0;
        for (int i = 0; i < expected.Length; i++) max = Math.Max(max, Math.Abs(expected[i] - actual[i]));
        Assert.True(max < tolerance, $"max difference {max}");
    }
}
