// N copies of one environment stepped in lock-step with same-step auto-reset (as CleanRL's SyncVectorEnv usage):
// when an episode ends, the returned observation is already the next episode's first; the last one is kept aside.
// SaveState/RestoreState carry every copy's state and the running episode sums, for checkpoints.
using System.Text.Json.Serialization;

namespace RlhfSharp.Control;

/// <summary>One finished episode: which copy ran it, its undiscounted return and its length in steps.</summary>
public sealed record EpisodeRecord(int EnvIndex, double Return, int Length, bool Truncated);

/// <summary>What VectorEnv.Step returns; arrays are indexed by environment copy.</summary>
/// <param name="Observations">Next observations, [N, obsDim] row-major; after an episode ends, the reset observation.</param>
/// <param name="Rewards">Rewards of this step.</param>
/// <param name="Terminated">True where the MDP reached a terminal state this step.</param>
/// <param name="Truncated">True where the time limit ended the episode this step.</param>
/// <param name="FinalObservations">The true last observation where an episode ended (needed to bootstrap truncated episodes), else null.</param>
/// <param name="Finished">Episodes that ended this step.</param>
public sealed record VectorStep(
    float[] Observations, double[] Rewards, bool[] Terminated, bool[] Truncated, float[]?[] FinalObservations, IReadOnlyList<EpisodeRecord> Finished);

/// <summary>A VectorEnv's state: each copy's, the return and length of each copy's episode so far, and whether Reset was called.</summary>
public sealed record VectorEnvState(
    [property: JsonPropertyName("envs")] EnvState[] Envs,
    [property: JsonPropertyName("episode_returns")] double[] EpisodeReturns,
    [property: JsonPropertyName("episode_lengths")] int[] EpisodeLengths,
    [property: JsonPropertyName("started")] bool Started);

public sealed class VectorEnv
{
    private readonly ClassicControlEnv[] _envs;
    private readonly double[] _returns;
    private readonly int[] _lengths;
    private readonly ulong _seed;
    private bool _started;

    /// <param name="id">A registered environment id (see EnvRegistry.Ids).</param>
    /// <param name="count">Number of copies, ≥ 1.</param>
    /// <param name="seed">Copy i is reset first with seed + i (as Gymnasium's vector reset(seed=s)), then continues its own stream.</param>
    public VectorEnv(string id, int count, ulong seed)
    {
        if (count < 1) throw new ArgumentOutOfRangeException(nameof(count), count, "VectorEnv needs at least one environment copy.");
        _envs = new ClassicControlEnv[count];
        for (int i = 0; i < count; i++) _envs[i] = EnvRegistry.Make(id, seed + (ulong)i);
        _returns = new double[count];
        _lengths = new int[count];
        _seed = seed;
        ObservationSize = _envs[0].ObservationSpace.FlatSize;
        ActionSize = _envs[0].ActionSpace.FlatSize;
    }

    public int Count => _envs.Length;

    public string Id => _envs[0].Id;

    public BoxSpace ObservationSpace => _envs[0].ObservationSpace;

    public Space ActionSpace => _envs[0].ActionSpace;

    public int ObservationSize { get; }

    public int ActionSize { get; }

    public ClassicControlEnv this[int index] => _envs[index];

    /// <summary>Resets every copy (the first call seeds them) and clears running episode sums.</summary>
    public float[] Reset()
    {
        var obs = new float[Count * ObservationSize];
        for (int i = 0; i < Count; i++)
        {
            float[] o = _started ? _envs[i].Reset() : _envs[i].Reset(_seed + (ulong)i);
            o.CopyTo(obs, i * ObservationSize);
            _returns[i] = 0;
            _lengths[i] = 0;
        }
        _started = true;
        return obs;
    }

    /// <summary>Steps every copy with its slice of actions ([N, actionSize] row-major) and auto-resets finished ones.</summary>
    public VectorStep Step(ReadOnlySpan<float> actions)
    {
        if (!_started) throw new InvalidOperationException($"VectorEnv({Id}).Step called before Reset.");
        if (actions.Length != Count * ActionSize)
            throw new ArgumentException($"VectorEnv({Id}).Step: got {actions.Length} action values; expected {Count} envs × {ActionSize}.", nameof(actions));
        var obs = new float[Count * ObservationSize];
        var rewards = new double[Count];
        var terminated = new bool[Count];
        var truncated = new bool[Count];
        var finals = new float[]?[Count];
        var finished = new List<EpisodeRecord>();
        for (int i = 0; i < Count; i++)
        {
            var r = _envs[i].Step(actions.Slice(i * ActionSize, ActionSize));
            rewards[i] = r.Reward;
            terminated[i] = r.Terminated;
            truncated[i] = r.Truncated;
            _returns[i] += r.Reward;
            _lengths[i]++;
            float[] next = r.Observation;
            if (r.Done)
            {
                finals[i] = r.Observation;
                finished.Add(new EpisodeRecord(i, _returns[i], _lengths[i], r.Truncated && !r.Terminated));
                _returns[i] = 0;
                _lengths[i] = 0;
                next = _envs[i].Reset();
            }
            next.CopyTo(obs, i * ObservationSize);
        }
        return new VectorStep(obs, rewards, terminated, truncated, finals, finished);
    }

    /// <summary>A copy of every copy's state and the episode sums so far.</summary>
    public VectorEnvState SaveState() =>
        new([.. _envs.Select(e => e.SaveState())], (double[])_returns.Clone(), (int[])_lengths.Clone(), _started);

    /// <summary>Puts every copy back into a saved state; stepping then continues exactly as the saved VectorEnv would have.</summary>
    public void RestoreState(VectorEnvState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Envs.Length != Count || state.EpisodeReturns.Length != Count || state.EpisodeLengths.Length != Count)
            throw new ArgumentException($"VectorEnv({Id}).RestoreState: the saved state holds {state.Envs.Length} copies; this one has {Count}.", nameof(state));
        for (int i = 0; i < Count; i++) _envs[i].RestoreState(state.Envs[i]);
        state.EpisodeReturns.CopyTo(_returns, 0);
        state.EpisodeLengths.CopyTo(_lengths, 0);
        _started = state.Started;
    }
}
