// The vectorised runner's auto-reset and episode statistics, and the running mean/std normalisers against direct computation.
using System.Text.Json;
using RlhfSharp.Control;
using RlhfSharp.Control.Envs;

namespace RlhfSharp.Control.Tests;

public sealed class VectorEnvAndNormalizationTests
{
    [Fact]
    public void VectorEnv_SeedsCopyIWithSeedPlusI()
    {
        var venv = new VectorEnv("CartPole-v1", 3, seed: 100);
        float[] obs = venv.Reset();
        for (int i = 0; i < 3; i++)
            Assert.Equal(new CartPole().Reset(seed: 100 + (ulong)i), obs[(i * 4)..(i * 4 + 4)]);
    }

    [Fact]
    public void VectorEnv_AutoResets_ReportsFinishedEpisodes_AndKeepsFinalObservation()
    {
        var venv = new VectorEnv("CartPole-v1", 2, seed: 1);
        venv.Reset();
        var finished = new List<EpisodeRecord>();
        int[] running = new int[2];
        int[] lastLengths = [-1, -1];
        for (int step = 0; step < 300; step++)
        {
            // Always pushing left topples the pole within a few dozen steps.
            var r = venv.Step([0f, 0f]);
            for (int i = 0; i < 2; i++)
            {
                running[i]++;
                if (r.Terminated[i] || r.Truncated[i])
                {
                    var final = r.FinalObservations[i];
                    Assert.NotNull(final);
                    Assert.True(Math.Abs(final![0]) > 2.4f || Math.Abs(final[2]) > 0.2094f, "the final observation is the failing state");
                    float[] next = r.Observations[(i * 4)..(i * 4 + 4)];
                    Assert.All(next, v => Assert.InRange(v, -0.05f, 0.05f)); // already the next episode's reset state
                    lastLengths[i] = running[i];
                    running[i] = 0;
                }
                else
                {
                    Assert.Null(r.FinalObservations[i]);
                }
            }
            finished.AddRange(r.Finished);
        }
        Assert.True(finished.Count >= 6, $"only {finished.Count} episodes finished");
        foreach (var e in finished)
        {
            Assert.Equal(e.Length, e.Return); // CartPole pays 1 per step, the failing step included
            Assert.False(e.Truncated);
        }
        Assert.Equal(lastLengths[0], finished.Last(e => e.EnvIndex == 0).Length);
        var ex = Assert.Throws<ArgumentException>(() => venv.Step([0f]));
        Assert.Contains("2 envs", ex.Message);
    }

    [Fact]
    public void RunningMeanStd_MatchesDirectMomentsOfAllBatches_AndRoundTripsThroughJson()
    {
        var rng = new RlhfSharp.Tensors.Rng(3);
        var rms = new RunningMeanStd(2);
        var all = new List<float[]>();
        for (int b = 0; b < 5; b++)
        {
            var batch = new float[7 * 2];
            for (int i = 0; i < batch.Length; i++) batch[i] = (float)(i % 2 == 0 ? rng.Normal(3, 2) : rng.Normal(-1, 0.5));
            rms.Update(batch);
            all.Add(batch);
        }
        for (int d = 0; d < 2; d++)
        {
            var xs = all.SelectMany(b => b.Where((_, i) => i % 2 == d)).Select(v => (double)v).ToArray();
            double mean = xs.Average(), var = xs.Select(x => (x - mean) * (x - mean)).Average();
            // The 1e-4 pseudo-count prior (mean 0, var 1) moves the result by at most ~1e-5 relative here.
            Assert.Equal(mean, rms.Mean[d], 4);
            Assert.Equal(var, rms.Var[d], 4);
        }
        Assert.Equal(35 + 1e-4, rms.Count, 10);

        string json = JsonSerializer.Serialize(rms.Save());
        var back = new RunningMeanStd(2);
        back.Load(JsonSerializer.Deserialize<RunningStats>(json)!);
        Assert.Equal(rms.Mean, back.Mean);
        Assert.Equal(rms.Var, back.Var);
        Assert.Throws<ArgumentException>(() => new RunningMeanStd(3).Load(rms.Save()));
    }

    [Fact]
    public void ObservationNormalizer_StandardisesAndClips_AndFreezesWhenNotTraining()
    {
        var n = new ObservationNormalizer(1, clip: 2.0);
        float[] z = n.Normalize([1f, 2f, 3f, 4f, 100f]);
        double mean = 22, sd = Math.Sqrt(new[] { 1.0, 2, 3, 4, 100 }.Select(x => (x - mean) * (x - mean)).Average());
        Assert.Equal((float)((1 - mean) / sd), z[0], 3);
        Assert.Equal((float)((100 - mean) / sd), z[4], 3); // ≈ 1.99, just inside the clip
        n.Training = false;
        double before = n.Stats.Mean[0];
        n.Normalize([1000f]);
        Assert.Equal(before, n.Stats.Mean[0]);
        Assert.Equal(2f, n.Apply([1000f])[0]);
    }

    [Fact]
    public void RewardNormalizer_DividesByStdOfDiscountedReturn_AndRestartsAfterDone()
    {
        var n = new RewardNormalizer(1, gamma: 0.5, clip: 1000); // wide clip: the early scale (~90) is the point here
        double[] r1 = [2.0];
        n.Normalize(r1, [false], [false]);
        // G = 2. Chan update from (mean 0, var 1, count 1e-4) with one sample 2: var = (1e-4 + 4·1e-4/1.0001)/1.0001.
        double c = 1e-4, tot = c + 1;
        double var1 = (1 * c + 0 + 4 * c * 1 / tot) / tot, mean1 = 2 / tot;
        Assert.Equal(2 / Math.Sqrt(var1 + 1e-8), r1[0], 6);
        double[] r2 = [1.0];
        n.Normalize(r2, [true], [false]);
        // G = 0.5·2 + 1 = 2; second update with sample 2.
        double delta = 2 - mean1, tot2 = tot + 1;
        double var2 = (var1 * tot + 0 + delta * delta * tot * 1 / tot2) / tot2;
        Assert.Equal(1 / Math.Sqrt(var2 + 1e-8), r2[0], 6);
        double[] r3 = [1.0];
        n.Normalize(r3, [false], [false]); // G restarted: 0·0.5 + 1 = 1
        Assert.Equal(3 + 1e-4, n.Stats.Count, 9);
        Assert.True(n.Stats.Mean[0] < 2, "the restarted return (1) pulled the mean below 2");
        var clipped = new RewardNormalizer(1, gamma: 0.5);
        double[] big = [2.0];
        clipped.Normalize(big, [false], [false]);
        Assert.Equal(10.0, big[0]); // the default clip of ±10
    }
}
