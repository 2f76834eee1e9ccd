// The online Christiano loop on CartPole-v1 with 300 oracle labels, run once per seed and shared: the learning test checks
// its true return, the reward-hacking test sets a predictor frozen on the same number of labels beside it.
using System.Collections.Concurrent;
using RlhfSharp.Control.Preferences;
using RlhfSharp.Control.Rl;

namespace RlhfSharp.Control.Tests.Preferences;

/// <summary>One online run and its evaluation on 20 fresh episodes (env seeds from 10,000).</summary>
internal sealed record OnlineCartPoleRun(PreferenceResult Run, PreferenceEvaluation Evaluation);

internal static class OnlineCartPoleRuns
{
    public const int Labels = 300;
    public const int EvalSeed = 10_000;

    private static readonly ConcurrentDictionary<int, Lazy<OnlineCartPoleRun>> Runs = new();

    /// <summary>300 labels, 75 of them before RL, 100k PPO steps.</summary>
    public static PreferenceConfig Config(int preRlLabels = 75) => new()
    {
        EnvId = "CartPole-v1",
        Ppo = PpoConfig.ForEnv("CartPole-v1") with { TotalSteps = 100_000 },
        Schedule = new LabelSchedule(Total: Labels, PreRl: preRlLabels),
    };

    /// <summary>The run for <paramref name="seed"/> (oracle and loop seeded alike), computed by whichever test asks first.</summary>
    public static OnlineCartPoleRun Get(int seed) =>
        Runs.GetOrAdd(seed, s => new Lazy<OnlineCartPoleRun>(() => Compute(s), LazyThreadSafetyMode.ExecutionAndPublication)).Value;

    private static OnlineCartPoleRun Compute(int seed)
    {
        var run = PreferenceLoop.Run(Config(), SegmentQueries.Oracle(epsilon: 0.1, seed: seed), seed: (ulong)seed);
        return new OnlineCartPoleRun(run, PreferenceLoop.Evaluate(run.Policy, run.Predictor, episodes: 20, seed: EvalSeed));
    }
}
