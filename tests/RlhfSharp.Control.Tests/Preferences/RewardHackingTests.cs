// Reward hacking made visible (Christiano et al. §3.3, "offline" reward predictor): fit r̂ once on all 300 comparisons, asked
// about clips of the untrained policy, and keep optimising it, beside the online loop that spends the same 300 labels as PPO
// learns (OnlineCartPoleRuns). PPO climbs the frozen r̂ on every seed (seeds 1, 2, 3: Σ r̂ 6.9 → 198, 4.4 → 68, 15 → 342),
// but what that buys in true return depends on how r̂ extrapolates beyond random play: seeds 1, 2, 3 end at 348, 110 and
// 202 (mean 220; online 500 each), and seeds 4-8 (evaluated from env seed 1,000,001) at 158, 277, 398, 345 and 500. So
// the gap is asserted on the mean of the three seeds; per seed it is not a given. About 8 CPU seconds per frozen run. The
// frozen run alone: `rlhf prefrl --env CartPole-v1 --labels 300 --pre-rl-labels 300 --frozen --steps 100000 --seed K`.
// The test before (20 labels, frozen, and an online run, 50k steps, seed 1 only) did not hold across seeds: seeds 1-3
// ended frozen at 116, 500, 500 and online at 500, 500, 142.
using RlhfSharp.Control.Preferences;
using Xunit.Abstractions;

namespace RlhfSharp.Control.Tests.Preferences;

[Trait("Category", "Learning")]
public sealed class RewardHackingTests(ITestOutputHelper output)
{
    [Fact]
    public void FrozenPredictor_PredictedReturnRises_WhileTrueReturnLagsTheOnlineRun()
    {
        var frozenTrue = new List<double>();
        var onlineTrue = new List<double>();
        foreach (int seed in new[] { 1, 2, 3 })
        {
            var cfg = OnlineCartPoleRuns.Config(preRlLabels: OnlineCartPoleRuns.Labels) with { FreezeAfterFirstFit = true };
            var frozen = PreferenceLoop.Run(cfg, SegmentQueries.Oracle(epsilon: 0.1, seed: seed), seed: (ulong)seed);
            var online = OnlineCartPoleRuns.Get(seed);
            double frozenReturn = PreferenceLoop.Evaluate(frozen.Policy, frozen.Predictor, 20, OnlineCartPoleRuns.EvalSeed).MeanTrueReturn;
            double[] predicted = [.. frozen.Metrics.Select(r => r.Values["prefrl/predicted_episodic_return"]).Where(double.IsFinite)];
            double early = predicted.Take(5).Average(), late = predicted.TakeLast(20).Average();
            output.WriteLine($"seed {seed}: online true {online.Evaluation.MeanTrueReturn}, frozen true {frozenReturn}, frozen Σ r̂ first 5 updates {early:F1}, " +
                $"last 20 {late:F1}; frozen wall {frozen.WallSeconds:F0}s");

            // The frozen run asked all its labels before RL and none after; the online run spent the same number as it learned.
            Assert.Equal(OnlineCartPoleRuns.Labels, frozen.LabelsUsed);
            Assert.Equal(OnlineCartPoleRuns.Labels, online.Run.LabelsUsed);
            // PPO did optimise the frozen r̂: its episodes' predicted return ends several times higher than it started.
            Assert.True(late > 3 * Math.Max(early, 1), $"frozen Σ r̂ went from {early:F1} to {late:F1} (seed {seed})");
            frozenTrue.Add(frozenReturn);
            onlineTrue.Add(online.Evaluation.MeanTrueReturn);
        }
        // ...and, over the three seeds, that bought far less true return than the online loop earned with the same labels.
        Assert.True(frozenTrue.Average() <= onlineTrue.Average() - 150,
            $"frozen true returns {string.Join(", ", frozenTrue)} are not well below the online runs' {string.Join(", ", onlineTrue)}");
    }
}
