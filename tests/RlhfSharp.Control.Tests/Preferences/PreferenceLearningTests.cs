// Christiano et al.'s claim on CartPole-v1: PPO on a reward learned from ≤ 300 oracle comparisons reaches true return ≥ 450.
// Seeds 1-3. Before the absorbing-state input, the RMS reward scale and the predictor's weight decay, oracle seeds 2, 3 and
// 5 ended at 9.2, 78 and 9.7 (300 labels, 100k steps); after them seeds 1–5 all reach 500 (`rlhf prefrl --env CartPole-v1
// --labels 300 --pre-rl-labels 75 --steps 100000 --seed K`). With the zero-initialised predictor seed 1 fell again (500 at 10k
// steps, 182 at the end: r̂(o, a) paid "push right" more and the cart ran off the track); r̂ reading observations only for
// discrete actions brought both seeds back to 500. The runs are shared with RewardHackingTests (OnlineCartPoleRuns).
using RlhfSharp.Control.Preferences;
using RlhfSharp.Control.Rl;
using Xunit.Abstractions;

namespace RlhfSharp.Control.Tests.Preferences;

[Trait("Category", "Learning")]
public sealed class PreferenceLearningTests(ITestOutputHelper output)
{
    // Seeds 1, 2, 3: 500, 500, 500; 5-8 wall seconds each (35-50 before the fused reward predictor and its minibatch of 16).
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void CartPole_300OracleLabels_ReachesTrueReturn450(int seed)
    {
        var (run, eval) = OnlineCartPoleRuns.Get(seed);
        output.WriteLine($"labels {run.LabelsUsed}, eval {eval.MeanTrueReturn}, corr {eval.RewardCorrelation}, oob {run.Predictor.OutOfBagAccuracy()}, wall {run.WallSeconds:F1}s");
        foreach (var row in run.Metrics.Where((_, i) => i % 40 == 0))
            output.WriteLine($"{row.GlobalStep}: true {row.Values["charts/episodic_return"]:F1} pred {row.Values["prefrl/predicted_episodic_return"]:F2} labels {row.Values["prefrl/labels"]}");
        Assert.Equal(OnlineCartPoleRuns.Labels, run.LabelsUsed);
        Assert.True(eval.MeanTrueReturn >= 450, $"true return {eval.MeanTrueReturn} < 450 with {run.LabelsUsed} labels (seed {seed})");
    }

    // Random Acrobot play never reaches the line, so every pre-RL clip is a tie and r̂ starts as noise. With a neutral zero
    // PPO settled on that noise (seed 1: −500 to the end); optimism about the unknown ending and showing the labeller each
    // new ending clip make seeds 1–6 reach the line in 82–95 steps, as true-reward PPO (−80 to −87) does. Seeds 1, 2, 3:
    // −81.3, −84.1, −82.5, r̂ correlation 1.000 each, about 5 wall seconds each; with 200k steps seed 1 ended at −144.
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Acrobot_700OracleLabels_ReachesTheLineLikeTrueRewardPpo(int seed)
    {
        var cfg = new PreferenceConfig
        {
            EnvId = "Acrobot-v1",
            Ppo = PpoConfig.ForEnv("Acrobot-v1") with { TotalSteps = 300_000 },
            Schedule = new LabelSchedule(Total: 700, PreRl: 175),
        };
        var run = PreferenceLoop.Run(cfg, SegmentQueries.Oracle(epsilon: 0.1, seed: seed), seed: (ulong)seed);
        var eval = PreferenceLoop.Evaluate(run.Policy, run.Predictor, episodes: 20, seed: 1_000_001);
        output.WriteLine($"labels {run.LabelsUsed}, eval {eval.MeanTrueReturn}, corr {eval.RewardCorrelation}, wall {run.WallSeconds:F1}s");
        Assert.True(eval.MeanTrueReturn >= -100, $"true return {eval.MeanTrueReturn} < −100 (true-reward PPO: about −83; seed {seed})");
        // r̂'s episode returns, taken relative to the absorbing state, rise with the true ones.
        Assert.True(eval.RewardCorrelation > 0.5, $"reward correlation {eval.RewardCorrelation}");
    }
}
