// Learning with fixed seeds and bounded budgets on CartPole-v1: the bars, evaluated deterministically on 20 fresh seeds.
using RlhfSharp.Control.Rl;

namespace RlhfSharp.Control.Tests;

[Trait("Category", "Learning")]
public sealed class LearningTests
{
    [Fact]
    public void Ppo_CartPole_ReachesEvalMean475_Within100kSteps()
    {
        var cfg = PpoConfig.ForEnv("CartPole-v1") with { TotalSteps = 100_000 };
        var result = PpoTrainer.Train("CartPole-v1", cfg, seed: 1);
        Assert.True(result.Metrics[^1].GlobalStep <= 100_000);
        double eval = result.Policy.EvaluateMeanReturn(20, seed: 10_000);
        Assert.True(eval >= 475, $"PPO eval mean return {eval} < 475 after {result.Metrics[^1].GlobalStep} steps");
    }

    [Fact]
    public void PpoPenalty_CartPole_ReachesEvalMean475_Within100kSteps()
    {
        var cfg = PpoConfig.ForEnv("CartPole-v1") with { TotalSteps = 100_000, KlPenalty = true };
        var result = PpoTrainer.Train("CartPole-v1", cfg, seed: 1);
        double eval = result.Policy.EvaluateMeanReturn(20, seed: 10_000);
        Assert.True(eval >= 475, $"PPO-penalty eval mean return {eval} < 475");
        Assert.True(result.Metrics.All(m => m.Values.ContainsKey("losses/kl_beta")));
    }

    [Fact]
    public void Reinforce_CartPole_ReachesEvalMean400_Within200kSteps()
    {
        var result = ReinforceTrainer.Train("CartPole-v1", new ReinforceConfig { TotalSteps = 200_000 }, seed: 1);
        // A batch of whole episodes may run past the budget by at most one batch (8 episodes × 500 steps).
        Assert.True(result.Metrics[^1].GlobalStep <= 200_000 + 8 * 500);
        double eval = result.Policy.EvaluateMeanReturn(20, seed: 10_000);
        Assert.True(eval >= 400, $"REINFORCE eval mean return {eval} < 400");
    }
}
