// The environment contract in the shape Gymnasium users know: Reset(seed) -> observation; Step(action) ->
// (observation, reward, terminated, truncated). Time limits are part of each environment, as gymnasium.make adds them.
// SaveState/RestoreState capture everything that decides an environment's future (physics, step count, RNG), so a
// checkpointed training run continues bit-identically.
using System.Text.Json.Serialization;
using RlhfSharp.Tensors;

namespace RlhfSharp.Control;

/// <summary>What one Step returns. Terminated: the MDP reached a terminal state; Truncated: the time limit cut the episode.</summary>
public sealed record StepResult(float[] Observation, double Reward, bool Terminated, bool Truncated)
{
    /// <summary>The episode is over for either reason; the caller must Reset before stepping again.</summary>
    public bool Done => Terminated || Truncated;
}

/// <summary>Everything that decides an environment's future, for checkpoints (see IEnvironment.SaveState).</summary>
/// <param name="Physics">The physical state (ClassicControlEnv.State, double precision).</param>
/// <param name="ElapsedSteps">Steps since the last Reset (the TimeLimit counter).</param>
/// <param name="NeedsReset">True before the first Reset and after an episode ended.</param>
/// <param name="Rng">The environment's own generator (Rng.GetState), which the next Reset draws from.</param>
/// <param name="Extra">State an environment keeps beside its physics (Pendulum: the last torque its renderer draws); empty for most.</param>
public sealed record EnvState(
    [property: JsonPropertyName("physics")] double[] Physics,
    [property: JsonPropertyName("elapsed_steps")] int ElapsedSteps,
    [property: JsonPropertyName("needs_reset")] bool NeedsReset,
    [property: JsonPropertyName("rng")] ulong[] Rng,
    [property: JsonPropertyName("extra")] double[] Extra);

/// <summary>A single-agent episodic environment with Gymnasium's reset/step semantics.</summary>
public interface IEnvironment
{
    /// <summary>The registered id, e.g. "CartPole-v1".</summary>
    string Id { get; }

    BoxSpace ObservationSpace { get; }

    Space ActionSpace { get; }

    /// <summary>The TimeLimit Gymnasium registers for this id: Step reports Truncated when the episode reaches it.</summary>
    int MaxEpisodeSteps { get; }

    /// <summary>Simulated seconds per step (for segment lengths in seconds and clip playback speed).</summary>
    double SecondsPerStep { get; }

    /// <summary>Starts an episode. With a seed the RNG is re-seeded (as reset(seed=...)); without one it continues its stream.</summary>
    float[] Reset(ulong? seed = null);

    /// <summary>Advances one step. A discrete action is one float holding its index.</summary>
    StepResult Step(ReadOnlySpan<float> action);

    /// <summary>Steps since the last Reset.</summary>
    int ElapsedSteps { get; }

    /// <summary>A copy of everything that decides what Reset and Step return next.</summary>
    EnvState SaveState();

    /// <summary>Puts the environment back into a saved state: stepping it then gives exactly what the original gave.</summary>
    void RestoreState(EnvState state);
}

/// <summary>
/// Shared plumbing for the classic-control tasks: seeding, the TimeLimit wrapper, action validation and a
/// double-precision internal state (Gymnasium keeps Python floats / float64 arrays and casts to float32 only
/// when it builds the observation).
/// </summary>
public abstract class ClassicControlEnv : IEnvironment
{
    private Rng _rng;
    private bool _needsReset = true;

    protected ClassicControlEnv(ulong defaultSeed = 0)
    {
        _rng = new Rng(defaultSeed);
    }

    public abstract string Id { get; }

    public abstract BoxSpace ObservationSpace { get; }

    public abstract Space ActionSpace { get; }

    public abstract int MaxEpisodeSteps { get; }

    public abstract double SecondsPerStep { get; }

    public int ElapsedSteps { get; private set; }

    /// <summary>The physical state (layout per environment, documented there); tests and renderers read and set it.</summary>
    public double[] State { get; protected set; } = [];

    /// <summary>Number of doubles in State.</summary>
    public abstract int StateSize { get; }

    protected Rng Random => _rng;

    public float[] Reset(ulong? seed = null)
    {
        if (seed is ulong s) _rng = new Rng(s);
        State = SampleInitialState(_rng);
        ElapsedSteps = 0;
        _needsReset = false;
        return Observe();
    }

    /// <summary>Puts the environment in a given physical state, as if an episode had just started there (for tests and replays).</summary>
    public void SetState(ReadOnlySpan<double> state, int elapsedSteps = 0)
    {
        if (state.Length != StateSize)
            throw new ArgumentException($"{Id}.SetState: state has {state.Length} values; expected {StateSize}.", nameof(state));
        State = state.ToArray();
        ElapsedSteps = elapsedSteps;
        _needsReset = false;
    }

    public EnvState SaveState() => new((double[])State.Clone(), ElapsedSteps, _needsReset, _rng.GetState(), SaveExtraState());

    public void RestoreState(EnvState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        // An environment never reset has no physics yet.
        if (state.Physics.Length != StateSize && !(state.Physics.Length == 0 && state.NeedsReset))
            throw new ArgumentException($"{Id}.RestoreState: the saved state has {state.Physics.Length} physics values; expected {StateSize}.", nameof(state));
        var rng = new Rng(0);
        rng.SetState(state.Rng);
        _rng = rng;
        State = (double[])state.Physics.Clone();
        ElapsedSteps = state.ElapsedSteps;
        _needsReset = state.NeedsReset;
        RestoreExtraState(state.Extra);
    }

    /// <summary>State kept beside the physics (most environments have none).</summary>
    protected virtual double[] SaveExtraState() => [];

    /// <summary>Restores what <see cref="SaveExtraState"/> returned.</summary>
    protected virtual void RestoreExtraState(double[] extra)
    {
        if (extra.Length != 0) throw new ArgumentException($"{Id}.RestoreState: {extra.Length} extra values; this environment keeps none.", nameof(extra));
    }

    public StepResult Step(ReadOnlySpan<float> action)
    {
        if (_needsReset)
            throw new InvalidOperationException($"{Id}.Step called before Reset or after the episode ended; call Reset first.");
        if (action.Length != ActionSpace.FlatSize)
            throw new ArgumentException($"{Id}.Step: action has {action.Length} values; {ActionSpace} takes {ActionSpace.FlatSize}.", nameof(action));
        if (ActionSpace is DiscreteSpace && !ActionSpace.Contains(action))
            throw new ArgumentOutOfRangeException(nameof(action), action[0], $"{Id}.Step: action {action[0]} is not in {ActionSpace}.");
        foreach (float a in action)
            if (!float.IsFinite(a)) throw new ArgumentOutOfRangeException(nameof(action), a, $"{Id}.Step: action value {a} is not finite.");

        (double reward, bool terminated) = Advance(action);
        ElapsedSteps++;
        // gymnasium.wrappers.TimeLimit: truncated = elapsed_steps >= max_episode_steps (both flags may be true at once).
        bool truncated = ElapsedSteps >= MaxEpisodeSteps;
        if (terminated || truncated) _needsReset = true;
        return new StepResult(Observe(), reward, terminated, truncated);
    }

    /// <summary>Draws the reset distribution of the task.</summary>
    protected abstract double[] SampleInitialState(Rng rng);

    /// <summary>Applies the dynamics to State; returns the reward and whether the new state is terminal.</summary>
    protected abstract (double Reward, bool Terminated) Advance(ReadOnlySpan<float> action);

    /// <summary>The float32 observation of the current State.</summary>
    public abstract float[] Observe();
}
