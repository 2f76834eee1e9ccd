// The pool of recent trajectory segments that queries are drawn from: each env copy's steps are cut into consecutive
// segments of a fixed length (about 1.5 s of simulated time, Christiano et al. §2.2); an episode that terminates inside a
// segment is padded with its last state held still and zero true reward, so every clip lasts the same time and dying
// early is visible (and bad) in both the clip and the oracle's segment return.
namespace RlhfSharp.Control.Preferences;

public sealed class SegmentPool
{
    private readonly List<Trajectory> _segments = [];
    private readonly List<float[]>[] _obs;
    private readonly List<float[]>[] _acts;
    private readonly List<double>[] _rewards;

    /// <param name="envId">Environment of the segments.</param>
    /// <param name="envCount">Copies feeding the pool in lock-step.</param>
    /// <param name="segmentLength">Steps per segment (≥ 1).</param>
    /// <param name="capacity">Most recent segments kept.</param>
    public SegmentPool(string envId, int envCount, int segmentLength, int capacity = 1000)
    {
        if (segmentLength < 1) throw new ArgumentOutOfRangeException(nameof(segmentLength), segmentLength, "SegmentPool: segment length must be ≥ 1.");
        if (capacity < 2) throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "SegmentPool: capacity must be ≥ 2.");
        EnvId = envId;
        SegmentLength = segmentLength;
        Capacity = capacity;
        _obs = [.. Enumerable.Range(0, envCount).Select(_ => new List<float[]>())];
        _acts = [.. Enumerable.Range(0, envCount).Select(_ => new List<float[]>())];
        _rewards = [.. Enumerable.Range(0, envCount).Select(_ => new List<double>())];
    }

    public string EnvId { get; }

    public int SegmentLength { get; }

    public int Capacity { get; }

    public IReadOnlyList<Trajectory> Segments => _segments;

    /// <summary>Segments completed so far (including ones since dropped for capacity).</summary>
    public long Produced { get; private set; }

    /// <summary>Records one vector step: raw observations before it [N, S], actions [N, A], and what happened.</summary>
    public void Add(float[] observations, float[] actions, VectorStep step)
    {
        int n = _obs.Length, s = observations.Length / n, a = actions.Length / n;
        for (int i = 0; i < n; i++)
        {
            _obs[i].Add(observations[(i * s)..((i + 1) * s)]);
            _acts[i].Add(actions[(i * a)..((i + 1) * a)]);
            _rewards[i].Add(step.Rewards[i]);
            if (_rewards[i].Count == SegmentLength) Emit(i, terminated: step.Terminated[i] && _rewards[i].Count == SegmentLength, pad: null);
            else if (step.Terminated[i]) Emit(i, terminated: true, pad: step.FinalObservations[i]);
            else if (step.Truncated[i]) Clear(i); // a time-limit cut is not an outcome: the partial segment is dropped
        }
    }

    /// <summary>Each env copy's unfinished segment (the steps since its last cut), for a checkpoint.</summary>
    internal IReadOnlyList<Trajectory> Partials() =>
        [.. Enumerable.Range(0, _obs.Length).Select(i => new Trajectory(EnvId, [.. _obs[i]], [.. _acts[i]], [.. _rewards[i]], false, false))];

    /// <summary>Puts back what a checkpoint held: the kept segments (oldest first), the unfinished ones and the count produced.</summary>
    internal void Restore(IEnumerable<Trajectory> segments, IReadOnlyList<Trajectory> partials, long produced)
    {
        if (partials.Count != _obs.Length) throw new FormatException($"SegmentPool: the checkpoint holds {partials.Count} env copies' steps; the run has {_obs.Length}.");
        _segments.Clear();
        _segments.AddRange(segments);
        for (int i = 0; i < _obs.Length; i++)
        {
            Clear(i);
            _obs[i].AddRange(partials[i].Observations);
            _acts[i].AddRange(partials[i].Actions);
            _rewards[i].AddRange(partials[i].Rewards);
        }
        Produced = produced;
    }

    private void Emit(int i, bool terminated, float[]? pad)
    {
        var obs = _obs[i];
        var acts = _acts[i];
        var rewards = _rewards[i];
        int live = rewards.Count;
        if (pad is not null)
        {
            float[] lastAct = acts[^1];
            while (rewards.Count < SegmentLength)
            {
                obs.Add(pad);
                acts.Add(lastAct);
                rewards.Add(0.0);
            }
        }
        _segments.Add(new Trajectory(EnvId, [.. obs], [.. acts], [.. rewards], terminated, false) { LiveSteps = live });
        Produced++;
        if (_segments.Count > Capacity) _segments.RemoveAt(0);
        Clear(i);
    }

    private void Clear(int i)
    {
        _obs[i].Clear();
        _acts[i].Clear();
        _rewards[i].Clear();
    }
}
