// --grad-shards (issue 22): the gradient of a batch cut into S row slices, each divided by the whole batch's target weight
// and summed in slice order (ShardedGradient), is the gradient of the whole batch — up to float rounding, since one pass
// associates the sums differently. A shard with every target masked out, and uneven masks, check the normaliser.
using RlhfSharp.Alignment.LanguageModeling;
using RlhfSharp.Distributed;
using RlhfSharp.Models;
using RlhfSharp.Tensors;

namespace RlhfSharp.Alignment.Tests.LanguageModeling;

public sealed class GradShardsTests
{
    [Theory]
    [InlineData(2)]
    [InlineData(4)]
    public void ShardGradientsSummedInOrder_EqualTheWholeBatchGradient(int S)
    {
        var model = Gpt.Create(GptConfig.Named("tiny", 97), new Rng(7));
        int B = 8, T = 16, V = model.Config.VocabSize;
        var rng = new Rng(11);
        var tokens = Enumerable.Range(0, B * T).Select(_ => (int)(rng.NextFloat() * V)).ToArray();
        var targets = Enumerable.Range(0, B * T).Select(_ => (int)(rng.NextFloat() * V)).ToArray();
        // Uneven weights; rows 0 and 1 (all of shard 0 when S = 4) are masked out entirely.
        var weights = Enumerable.Range(0, B * T).Select(i => i < 2 * T ? 0f : rng.NextFloat() < 0.3f ? 0f : 1f).ToArray();
        var batch = new LmBatch(new GptInput(B, T, tokens), targets, weights, B * T);

        model.ZeroGrad();
        var pass = model.Forward(batch.Input);
        var dLogits = new float[B * T * V];
        double wholeLoss = Gpt.CrossEntropy(pass, targets, weights, dLogits);
        model.Backward(pass, dLogits);
        var whole = (float[])model.Gradients.Clone();

        double total = weights.Sum(w => (double)w);
        var shards = new ShardedGradient(SingleProcess.Instance, S);
        Assert.Equal(Enumerable.Range(0, S), shards.LocalShards);
        foreach (int s in shards.LocalShards)
        {
            var (start, count) = shards.Rows(s, B);
            var slice = batch.Rows(start, count);
            model.ZeroGrad();
            var p = model.Forward(slice.Input);
            var d = new float[count * T * V];
            double loss = Gpt.CrossEntropy(p, slice.Targets, slice.Weights, d, total);
            model.Backward(p, d);
            shards.Add(s, model.Gradients, loss);
        }
        var summed = new float[whole.Length];
        double shardLoss = shards.Finish(summed);

        Assert.Equal(wholeLoss, shardLoss, 5);
        double maxAbs = whole.Max(Math.Abs);
        for (int i = 0; i < whole.Length; i++)
            Assert.True(Math.Abs(whole[i] - summed[i]) <= 1e-5 * maxAbs, $"gradient {i}: whole batch {whole[i]}, {S} shards {summed[i]}");
    }

    [Fact]
    public void BatchNotAMultipleOfTheShards_IsRefusedNamingBoth()
    {
        var ex = Assert.Throws<ArgumentException>(() => new ShardedGradient(SingleProcess.Instance, 3).Rows(0, 8));
        Assert.Contains("batch_size = 8 must be a multiple of grad_shards = 3", ex.Message);
    }
}
