// The seeded Rng: reproducible streams, moments of uniform and normal draws, unbiased integers, categorical, permutation, resumable state.
namespace RlhfSharp.Tensors.Tests;

public sealed class RngTests
{
    [Fact]
    public void SameSeedGivesSameStream_DifferentSeedDoesNot()
    {
        var a = new Rng(42);
        var b = new Rng(42);
        var c = new Rng(43);
        var xs = Enumerable.Range(0, 100).Select(_ => a.NextUInt64()).ToArray();
        Assert.Equal(xs, Enumerable.Range(0, 100).Select(_ => b.NextUInt64()).ToArray());
        Assert.NotEqual(xs, Enumerable.Range(0, 100).Select(_ => c.NextUInt64()).ToArray());
    }

    [Fact]
    public void UniformAndNormalHaveTheRightMoments()
    {
        var rng = new Rng(7);
        const int n = 200_000;
        double su = 0, sn = 0, sn2 = 0;
        for (int i = 0; i < n; i++)
        {
            double u = rng.NextDouble();
            Assert.InRange(u, 0.0, 1.0 - 1e-17);
            su += u;
            double z = rng.Normal();
            sn += z;
            sn2 += z * z;
        }
        Assert.InRange(su / n, 0.495, 0.505);
        Assert.InRange(sn / n, -0.01, 0.01);
        Assert.InRange(sn2 / n, 0.98, 1.02);
    }

    [Fact]
    public void NextIntIsUnbiasedOverSmallRange()
    {
        var rng = new Rng(1);
        var counts = new int[7];
        for (int i = 0; i < 70_000; i++) counts[rng.NextInt(7)]++;
        Assert.All(counts, c => Assert.InRange(c, 9_600, 10_400));
    }

    [Fact]
    public void CategoricalFollowsWeightsAndNeverPicksZeroWeight()
    {
        var rng = new Rng(3);
        float[] w = [1f, 0f, 3f];
        var counts = new int[3];
        for (int i = 0; i < 40_000; i++) counts[rng.Categorical(w)]++;
        Assert.Equal(0, counts[1]);
        Assert.InRange(counts[2] / (double)counts[0], 2.8, 3.2);
        Assert.Throws<ArgumentException>(() => rng.Categorical([0f, 0f]));
        Assert.Throws<ArgumentException>(() => rng.Categorical([1f, float.NaN]));
    }

    [Fact]
    public void PermutationContainsEveryIndexOnce()
    {
        var p = new Rng(5).Permutation(1000);
        Assert.Equal(Enumerable.Range(0, 1000), p.OrderBy(x => x));
        Assert.NotEqual(Enumerable.Range(0, 1000), p);
    }

    [Fact]
    public void StateRoundTripResumesTheStream()
    {
        var a = new Rng(9);
        a.Normal();
        var state = a.GetState();
        var expected = Enumerable.Range(0, 10).Select(_ => a.Normal()).ToArray();
        var b = new Rng(0);
        b.SetState(state);
        Assert.Equal(expected, Enumerable.Range(0, 10).Select(_ => b.Normal()).ToArray());
    }
}
