// Reward hacking made visible (Christiano et al. §3.3, "offline" reward predictor): fit r̂ once on 20 comparisons of the
// untrained policy and keep optimising it, beside the online loop with the same seed and budget. The frozen run's Σ r̂
// climbs far above where it started while its true return ends well below the online run's. Measured with these
// settings (seed 1, 50k steps): online 500, frozen 134.4 (its Σ r̂ 13 → 461); `rlhf prefrl --with-frozen` charts both runs
// in report.html.
using RlhfSharp.Control.Preferences;
using RlhfSharp.Control.Rl;
using Xunit.Abstractions;

namespace RlhfSharp.Control.Tests.Preferences;

[Trait("Category", "Learning")]
public sealed class RewardHackingTests(ITestOutputHelper output)
{
    [Fact]
    public void FrozenPredictor_PredictedReturnRises_WhileTrueReturnLagsTheOnlineRun()
    {
        var cfg = new PreferenceConfig
        {
            EnvId = "CartPole-v1",
            Ppo = PpoConfig.ForEnv("CartPole-v1") with { TotalSteps = 50_000 },
            Schedule = new LabelSchedule(Total: 300, PreRl: 20),
        };
        var online = PreferenceLoop.Run(cfg, SegmentQueries.Oracle(epsilon: 0.1, seed: 1), seed: 1);
        var frozen = PreferenceLoop.Run(cfg with { FreezeAfterFirstFit = true }, SegmentQueries.Oracle(epsilon: 0.1, seed: 1), seed: 1);
        double onlineTrue = PreferenceLoop.Evaluate(online.Policy, online.Predictor, 20, 1_000_001).MeanTrueReturn;
        double frozenTrue = PreferenceLoop.Evaluate(frozen.Policy, frozen.Predictor, 20, 1_000_001).MeanTrueReturn;
        double[] predicted = [.. frozen.Metrics.Select(r => r.Values["prefrl/predicted_episodic_return"]).Where(double.IsFinite)];
        double early = predicted.Take(5).Average(), late = predicted.TakeLast(20).Average();
        output.WriteLine($"online true {onlineTrue}, frozen true {frozenTrue}, frozen Σ r̂ first 5 updates {early:F1}, last 20 {late:F1}; " +
            $"labels online {online.LabelsUsed}, frozen {frozen.LabelsUsed}; wall {online.WallSeconds + frozen.WallSeconds:F0}s");

        Assert.Equal(20, frozen.LabelsUsed); // frozen means no label after the first fit
        Assert.Equal(300, online.LabelsUsed);
        // PPO did optimise the frozen r̂: its episodes' predicted return ends several times higher than it started.
        Assert.True(late > 3 * Math.Max(early, 1), $"frozen Σ r̂ went from {early:F1} to {late:F1}");
        // ...and that bought less true return than the online loop earned with the same seed and budget.
        Assert.True(onlineTrue >= 450, $"online true return {onlineTrue}");
        Assert.True(frozenTrue <= onlineTrue - 150, $"frozen true return {frozenTrue} is not well below the online run's {onlineTrue}");
    }
}
