// Learning with fixed seeds and bounded budgets on CartPole-v1: the bars, evaluated deterministically on 20 fresh
// seeds, each held on three training seeds (`rlhf rl --env CartPole-v1 --algo ALGO --seed K --steps N`).
using RlhfSharp.Control.Rl;

namespace RlhfSharp.Control.Tests;

[Trait("Category", "Learning")]
public sealed class LearningTests
{
    // Seeds 1, 2, 3: 500, 500, 500 (seeds 4-10 too), about 5 CPU seconds each.
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Ppo_CartPole_ReachesEvalMean475_Within100kSteps(int seed)
    {
        var cfg = PpoConfig.ForEnv("CartPole-v1") with { TotalSteps = 100_000 };
        var result = PpoTrainer.Train("CartPole-v1", cfg, seed: (ulong)seed);
        Assert.True(result.Metrics[^1].GlobalStep <= 100_000);
        double eval = result.Policy.EvaluateMeanReturn(20, seed: 10_000);
        Assert.True(eval >= 475, $"PPO eval mean return {eval} < 475 after {result.Metrics[^1].GlobalStep} steps (seed {seed})");
    }

    // Seeds 1, 2, 3: 500, 500, 500 (seeds 1-10: nine at 500, seed 7 344), about 5 CPU seconds each. With the sampled KL
    // penalty mean(log π_old(a) − log π(a)) in place of the exact per-state KL, seeds 1-3 ended at 137, 500 and 108.
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void PpoPenalty_CartPole_ReachesEvalMean475_Within100kSteps(int seed)
    {
        var cfg = PpoConfig.ForEnv("CartPole-v1") with { TotalSteps = 100_000, KlPenalty = true };
        var result = PpoTrainer.Train("CartPole-v1", cfg, seed: (ulong)seed);
        double eval = result.Policy.EvaluateMeanReturn(20, seed: 10_000);
        Assert.True(eval >= 475, $"PPO-penalty eval mean return {eval} < 475 (seed {seed})");
        Assert.True(result.Metrics.All(m => m.Values.ContainsKey("losses/kl_beta")));
    }

    // The issue asks for 400 within 200k steps; seeds 1-6 reach 500 within 120k (seeds 1-3 within 100k too), about 9 CPU
    // seconds each (200k took 17).
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Reinforce_CartPole_ReachesEvalMean400_Within120kSteps(int seed)
    {
        var result = ReinforceTrainer.Train("CartPole-v1", new ReinforceConfig { TotalSteps = 120_000 }, seed: (ulong)seed);
        // A batch of whole episodes may run past the budget by at most one batch (8 episodes × 500 steps).
        Assert.True(result.Metrics[^1].GlobalStep <= 120_000 + 8 * 500);
        double eval = result.Policy.EvaluateMeanReturn(20, seed: 10_000);
        Assert.True(eval >= 400, $"REINFORCE eval mean return {eval} < 400 (seed {seed})");
    }
}
