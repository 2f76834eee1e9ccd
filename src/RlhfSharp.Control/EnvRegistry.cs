// gymnasium.make for our environments: ids to constructors; an unknown id is refused with the list of valid ones.
using RlhfSharp.Control.Envs;

namespace RlhfSharp.Control;

public static class EnvRegistry
{
    private static readonly Dictionary<string, Func<ulong, ClassicControlEnv>> Factories = new(StringComparer.Ordinal)
    {
        ["CartPole-v1"] = s => new CartPole(s),
        ["Acrobot-v1"] = s => new Acrobot(s),
        ["MountainCar-v0"] = s => new MountainCar(s),
        ["MountainCarContinuous-v0"] = s => new MountainCarContinuous(s),
        ["Pendulum-v1"] = s => new Pendulum(s),
    };

    /// <summary>Every id Make accepts, in a stable order.</summary>
    public static IReadOnlyList<string> Ids { get; } = [.. Factories.Keys];

    /// <summary>A fresh environment; defaultSeed seeds its RNG until Reset is given a seed.</summary>
    public static ClassicControlEnv Make(string id, ulong defaultSeed = 0)
    {
        if (Factories.TryGetValue(id, out var factory)) return factory(defaultSeed);
        throw new ArgumentException($"Unknown environment '{id}'. Valid environments: {string.Join(", ", Ids)}.");
    }
}
