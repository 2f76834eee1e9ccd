// Over-optimisation evaluation: PPO snapshots (step 0 is the SFT model, KL ≈ 0), the best-of-N estimator against brute
// force, the analytic best-of-N KL against a hand value, and KL reached falling as the fixed β of a run rises.
using RlhfSharp.Alignment.Evaluation;
using RlhfSharp.Alignment.Ppo;
using RlhfSharp.Alignment.Sampling;
using RlhfSharp.Models;
using RlhfSharp.Tensors;
using RlhfSharp.Text;
using Xunit.Abstractions;

namespace RlhfSharp.Alignment.Tests;

public sealed class OverOptimisationTests(ITestOutputHelper output)
{
    private static readonly ITokenizer Chars = CharTokenizer.FromCorpus("abcdefghijklmnopqrstuvwxyz .,!?");
    private static readonly string[] Prompts = ["the cat", "a dog", "one day", "we saw", "it was", "she said"];
    private static readonly Func<string, string, double> CountA = (_, r) => r.Count(c => c == 'a') / 4.0;

    private static Gpt TinySft() => TinyStoryModel.Random(Chars.VocabSize, 3) is var g ? Gpt.FromTensors(g.Config with { EosTokenId = Chars.EosId }, g.ToTensors()) : null!;

    private static PpoConfig Small(int steps, ulong seed = 5) => new()
    {
        Steps = steps, BatchSize = 8, MiniBatchSize = 4, Epochs = 2, MaxNewTokens = 6, LearningRate = 3e-3f, InitialKlCoef = 0, TargetKl = null, Seed = seed,
    };

    [Fact]
    public void Given_snapshots_every_step_When_step_zero_is_evaluated_Then_it_equals_the_SFT_evaluation_with_zero_KL()
    {
        var sft = TinySft();
        var snapshots = new SortedDictionary<int, Gpt>();
        var result = new PpoTrainer(Small(steps: 3) with { SnapshotEvery = 2 }).Train(sft, Chars, Prompts, new FunctionReward(CountA),
            options: new PpoTrainer.Options(Snapshot: (step, p) => snapshots.Add(step, p.Clone())));
        // Step 0, every 2nd step, and the last step.
        Assert.Equal([0, 2, 3], snapshots.Keys);

        var evaluator = new CheckpointEvaluator(new EvaluationOptions { MaxNewTokens = 6, Seed = 17 });
        var proxy = new FunctionReward(CountA);
        var sftEval = evaluator.Evaluate("SFT", 0, sft, sft, Chars, Prompts, proxy, CountA);
        var step0 = evaluator.Evaluate("run", 0, snapshots[0], sft, Chars, Prompts, proxy, CountA);
        output.WriteLine($"SFT {sftEval}\nstep 0 {step0}");
        Assert.Equal(sftEval with { Run = "run" }, step0);
        // The generator's KV-cached log-probs and the reference's full forward agree to float rounding.
        Assert.True(Math.Abs(step0.KlK1) < 1e-3 && step0.KlK3 < 1e-3, $"KL of the SFT snapshot: k1 {step0.KlK1}, k3 {step0.KlK3}");

        // Later snapshots are copies taken as training went on, not the live policy: the last one is the trained policy.
        var last = evaluator.Evaluate("run", 3, snapshots[3], sft, Chars, Prompts, proxy, CountA);
        Assert.Equal(evaluator.Evaluate("run", 3, result.Policy, sft, Chars, Prompts, proxy, CountA), last);
        Assert.NotEqual(snapshots[0].Parameters, snapshots[3].Parameters);
        Assert.True(last.KlK3 > 1e-3, $"the trained policy's KL k3 {last.KlK3} should be positive");
    }

    [Fact]
    public void AnalyticBestOfNKlMatchesHandValues()
    {
        Assert.Equal(0, BestOfNSample.AnalyticKl(1));
        // log 2 − 1/2 = 0.693147… − 0.5; log 4 − 3/4 = 1.386294… − 0.75; log 64 − 63/64 = 4.158883083… − 0.984375.
        Assert.Equal(0.1931471805599453, BestOfNSample.AnalyticKl(2), 12);
        Assert.Equal(0.6362943611198906, BestOfNSample.AnalyticKl(4), 12);
        Assert.Equal(3.1745080833596715, BestOfNSample.AnalyticKl(64), 12);
        Assert.Equal([1, 2, 4, 8, 16, 32, 64], BestOfNCurve.Settings(64));
        Assert.Equal([1, 2, 4, 6], BestOfNCurve.Settings(6));
        Assert.Throws<ArgumentException>(() => BestOfNCurve.Settings(0));
    }

    [Fact]
    public void ExpectedOfBestEqualsTheAverageOverEveryNSubset()
    {
        var rng = new Rng(3);
        const int M = 7;
        var scores = Enumerable.Range(0, M).Select(_ => (double)rng.NextFloat()).ToList();
        var values = Enumerable.Range(0, M).Select(_ => (double)rng.NextFloat() * 4 - 2).ToList();
        for (int n = 1; n <= M; n++)
        {
            // Brute force: every N-subset (a bit mask with N bits set), the value of its top-scored member, averaged.
            double sum = 0;
            int subsets = 0;
            for (int mask = 1; mask < 1 << M; mask++)
            {
                if (System.Numerics.BitOperations.PopCount((uint)mask) != n) continue;
                int best = -1;
                for (int i = 0; i < M; i++) if ((mask >> i & 1) != 0 && (best < 0 || scores[i] > scores[best])) best = i;
                sum += values[best];
                subsets++;
            }
            Assert.Equal(sum / subsets, BestOfNCurve.ExpectedOfBest(scores, values, n), 10);
        }
        Assert.Equal(values.Average(), BestOfNCurve.ExpectedOfBest(scores, values, 1), 10);
        Assert.Throws<ArgumentException>(() => BestOfNCurve.ExpectedOfBest(scores, values, M + 1));
    }

    // Sampling seeds 1, 2, 3: proxy 0.021, 0.042, 0.036 at N = 1 → 0.125, 0.208, 0.250 at N = 8.
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void BestOfNCurveRaisesTheProxyWithN(int seed)
    {
        var sft = TinySft();
        var generation = new GenerationOptions { MaxNewTokens = 6, EosTokenId = Chars.EosId };
        var points = BestOfNCurve.Evaluate(sft, Chars, Prompts, 8, new FunctionReward(CountA), CountA, generation, new Rng((ulong)seed));
        output.WriteLine(string.Join("\n", points));
        Assert.Equal([1, 2, 4, 8], points.Select(p => p.N));
        // The pick maximises the proxy, so its expectation cannot fall as N grows (the estimator is exact for each pool).
        for (int i = 1; i < points.Count; i++) Assert.True(points[i].Proxy >= points[i - 1].Proxy - 1e-12, $"proxy fell from N = {points[i - 1].N} to {points[i].N}");
        // Proxy and gold are the same function here, and the random model sometimes writes an 'a': best-of-8 must gain.
        Assert.True(points[^1].Proxy > points[0].Proxy, $"{points[^1].Proxy} vs {points[0].Proxy} (seed {seed})");
        Assert.All(points, p => Assert.Equal(p.Proxy, p.Gold, 12));
    }

    // PPO seeds 1, 2, 3: KL (k3) 0.305, 0.359, 0.181 with β = 0 vs 0.059, 0.046, 0.057 with β = 1.
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void A_stronger_fixed_beta_ends_nearer_the_reference(int seed)
    {
        // The frontier sweep's premise: the KL a run reaches falls as its fixed β rises. With the same seed and a reward
        // the tiny model can chase, β = 0 must drift further than β = 1 (a strong leash for a reward of a few units).
        var sft = TinySft();
        var evaluator = new CheckpointEvaluator(new EvaluationOptions { MaxNewTokens = 6, Seed = 17 });
        double KlAt(double beta)
        {
            var r = new PpoTrainer(Small(steps: 8, seed: (ulong)seed) with { InitialKlCoef = beta }).Train(sft, Chars, Prompts, new FunctionReward(CountA));
            var e = evaluator.Evaluate($"β = {beta}", 8, r.Policy, sft, Chars, Prompts, new FunctionReward(CountA), CountA);
            output.WriteLine(e.ToString());
            return e.KlK3;
        }
        double free = KlAt(0), leashed = KlAt(1);
        Assert.True(free > leashed, $"KL with β = 0: {free:F3}; with β = 1: {leashed:F3} (seed {seed})");
    }
}
