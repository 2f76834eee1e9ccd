// Short training runs: CleanRL's metric keys are all logged, every parameter moves, runs are reproducible from the seed,
// the Box-action path (Gaussian actor, clipping, normalisation) trains, and bad settings are refused by name.
using RlhfSharp.Control.Rl;

namespace RlhfSharp.Control.Tests;

public sealed class TrainerTests
{
    private static readonly string[] CleanRlKeys =
    [
        "charts/episodic_return", "losses/policy_loss", "losses/value_loss", "losses/entropy", "losses/approx_kl",
        "losses/clipfrac", "losses/explained_variance", "charts/SPS",
    ];

    [Fact]
    public void Ppo_LogsCleanRlKeys_MovesEveryParameter_AndIsReproducibleFromTheSeed()
    {
        var cfg = PpoConfig.ForEnv("CartPole-v1") with { TotalSteps = 1024, UpdateEpochs = 2 };
        var a = PpoTrainer.Train("CartPole-v1", cfg, seed: 3);
        var b = PpoTrainer.Train("CartPole-v1", cfg, seed: 3);
        var fresh = new ActorCritic(4, new DiscreteSpace(2), [64, 64], new RlhfSharp.Tensors.Rng(3).Fork());
        Assert.Equal(4, a.Metrics.Count); // 1024 steps / (8 envs × 32 steps)
        foreach (var key in CleanRlKeys) Assert.True(a.Metrics[^1].Values.ContainsKey(key), $"missing {key}");
        Assert.Equal(1024, a.Metrics[^1].GlobalStep);
        // Same seed, same numbers (SPS aside, which is wall-clock).
        Assert.Equal(a.Policy.Agent.ActorParameters.Values, b.Policy.Agent.ActorParameters.Values);
        Assert.Equal(a.Metrics[^1].Values["losses/policy_loss"], b.Metrics[^1].Values["losses/policy_loss"]);
        // Every parameter tensor changed from its initial value (TRL's "all parameters updated" check).
        var trained = a.Policy.Agent.StateDict();
        foreach (var (name, init) in fresh.StateDict())
            Assert.False(init.ToArray().SequenceEqual(trained[name].ToArray()), $"{name} did not change");
    }

    [Fact]
    public void Ppo_OnPendulum_UsesGaussianActor_LearnsLogStd_AndSavesObservationStatistics()
    {
        var cfg = PpoConfig.ForEnv("Pendulum-v1") with { TotalSteps = 4096, NumSteps = 256, NumMinibatches = 4, UpdateEpochs = 2 };
        var r = PpoTrainer.Train("Pendulum-v1", cfg, seed: 1);
        Assert.False(r.Policy.Agent.IsDiscrete);
        Assert.NotEqual(0f, r.Policy.Agent.LogStd!.Span[0]);
        Assert.NotNull(r.Policy.Normalization?.Observation);
        Assert.True(r.Policy.Normalization!.Observation!.Count > 4096, "statistics saw every observation of training");
        var eval = r.Policy.EvaluateMeanReturn(2, seed: 5);
        Assert.InRange(eval, -16.2736044 * 200, 0); // Pendulum's per-step reward lies in [−16.27, 0]
    }

    [Fact]
    public void Reinforce_LogsItsKeys_AndIsReproducible()
    {
        var cfg = new ReinforceConfig { TotalSteps = 600, EpisodesPerBatch = 4 };
        var a = ReinforceTrainer.Train("CartPole-v1", cfg, seed: 2);
        var b = ReinforceTrainer.Train("CartPole-v1", cfg, seed: 2);
        Assert.True(a.Metrics[^1].GlobalStep >= 600);
        Assert.Equal(a.Metrics.Select(m => m.Values["charts/episodic_return"]), b.Metrics.Select(m => m.Values["charts/episodic_return"]));
        Assert.True(a.Metrics[^1].Values.ContainsKey("losses/explained_variance"));
    }

    [Fact]
    public void BadSettings_AreRefusedByName()
    {
        // House wording, not .NET's ("Specified argument was out of the range", "Parameter 'x'"): issue 17.
        var ex = Assert.Throws<ArgumentException>(() => PpoTrainer.Train("CartPole-v1", new PpoConfig { TotalSteps = 100 }, 1));
        Assert.Contains("512", ex.Message); // one rollout is 4 envs × 128 steps
        Assert.DoesNotContain("Parameter", ex.Message);
        var ex2 = Assert.Throws<ArgumentException>(() => PpoTrainer.Train("CartPole-v1", new PpoConfig { NumMinibatches = 3 }, 1));
        Assert.Contains("minibatches", ex2.Message);
        var ex4 = Assert.Throws<ArgumentException>(() => PpoTrainer.Train("CartPole-v1", new PpoConfig { LearningRate = double.PositiveInfinity }, 1));
        Assert.Contains("learning_rate = Infinity must be a finite number > 0", ex4.Message);
        var ex3 = Assert.Throws<ArgumentException>(() => PpoTrainer.Train("LunarLander-v3", new PpoConfig(), 1));
        Assert.Contains("CartPole-v1", ex3.Message);
    }
}
