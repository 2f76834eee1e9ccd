// Trajectories as JSONL, one object per step ({"episode","t","obs","action","reward","terminated","truncated"}), the format
// `rlhf rl record` writes; episodes group back into Trajectory records, and segments are slices of them (clips to compare).
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace RlhfSharp.Control;

/// <summary>One step: the observation the agent saw, the action it took, and what followed.</summary>
/// <param name="Episode">Episode number within the file, from 0.</param>
/// <param name="T">Step index within the episode, from 0.</param>
/// <param name="Observation">Observation before the action.</param>
/// <param name="Action">The action (a discrete one as its index).</param>
/// <param name="Reward">True environment reward of the step.</param>
/// <param name="Terminated">The step reached a terminal state.</param>
/// <param name="Truncated">The time limit ended the episode at this step.</param>
public sealed record TrajectoryStep(
    [property: JsonPropertyName("episode")] int Episode,
    [property: JsonPropertyName("t")] int T,
    [property: JsonPropertyName("obs")] float[] Observation,
    [property: JsonPropertyName("action")] float[] Action,
    [property: JsonPropertyName("reward")] double Reward,
    [property: JsonPropertyName("terminated")] bool Terminated,
    [property: JsonPropertyName("truncated")] bool Truncated);

/// <summary>One episode (or a segment of one) of an environment.</summary>
/// <param name="EnvId">The environment id, so a clip knows how to draw itself.</param>
/// <param name="Observations">Observation before each step.</param>
/// <param name="Actions">Action of each step.</param>
/// <param name="Rewards">True reward of each step.</param>
/// <param name="Terminated">The last step reached a terminal state.</param>
/// <param name="Truncated">The last step hit the time limit.</param>
public sealed record Trajectory(string EnvId, float[][] Observations, float[][] Actions, double[] Rewards, bool Terminated, bool Truncated)
{
    public int Length => Rewards.Length;

    /// <summary>
    /// Steps before the absorbing padding of a segment whose episode terminated early (SegmentPool holds the terminal state
    /// still until the clip's end); Length when nothing is padded.
    /// </summary>
    public int LiveSteps { get => _liveSteps ?? Length; init => _liveSteps = value; }

    private readonly int? _liveSteps;

    public double Return => Rewards.Sum();

    /// <summary>Steps covering about the given simulated seconds in an environment (Christiano et al. use ~1.5 s clips); at least 1.</summary>
    public static int StepsFor(string envId, double seconds)
    {
        if (!(seconds > 0)) throw new ArgumentOutOfRangeException(nameof(seconds), seconds, "Segment length in seconds must be > 0.");
        return Math.Max(1, (int)Math.Round(seconds / EnvRegistry.Make(envId).SecondsPerStep));
    }

    /// <summary>Steps [start, start + length) as a trajectory of its own (Christiano et al.'s segment); never ends early.</summary>
    public Trajectory Segment(int start, int length)
    {
        if (start < 0 || length < 1 || start + length > Length)
            throw new ArgumentOutOfRangeException(nameof(length), $"Segment [{start}, {start + length}) does not fit in a trajectory of {Length} steps.");
        bool last = start + length == Length;
        return new Trajectory(EnvId, Observations[start..(start + length)], Actions[start..(start + length)], Rewards[start..(start + length)],
            last && Terminated, last && Truncated);
    }
}

public static class TrajectoryJsonl
{
    private static readonly JsonSerializerOptions Options = new() { WriteIndented = false };

    /// <summary>One compact JSON line for a step (floats round-trip; invariant culture throughout).</summary>
    public static string ToLine(TrajectoryStep step) => JsonSerializer.Serialize(step, Options);

    /// <summary>Appends the steps of an episode to a writer, one line each.</summary>
    public static void Write(TextWriter writer, int episode, Trajectory trajectory)
    {
        for (int t = 0; t < trajectory.Length; t++)
        {
            bool last = t == trajectory.Length - 1;
            writer.WriteLine(ToLine(new TrajectoryStep(episode, t, trajectory.Observations[t], trajectory.Actions[t], trajectory.Rewards[t],
                last && trajectory.Terminated, last && trajectory.Truncated)));
        }
    }

    /// <summary>Reads a file back into episodes; a malformed line or out-of-order step is reported with its file and line number.</summary>
    public static List<Trajectory> Read(string path, string envId)
    {
        var result = new List<Trajectory>();
        var obs = new List<float[]>();
        var acts = new List<float[]>();
        var rewards = new List<double>();
        int episode = -1, lineNo = 0;
        bool term = false, trunc = false;
        void Flush()
        {
            if (rewards.Count > 0) result.Add(new Trajectory(envId, [.. obs], [.. acts], [.. rewards], term, trunc));
            obs.Clear(); acts.Clear(); rewards.Clear();
            term = trunc = false;
        }
        foreach (var (number, line) in RlhfSharp.Text.Utf8TextFile.ReadLines(path)) // strict UTF-8: a bad byte names file, line and offset
        {
            lineNo = number;
            if (string.IsNullOrWhiteSpace(line)) continue;
            TrajectoryStep? step;
            try { step = JsonSerializer.Deserialize<TrajectoryStep>(line, Options); }
            catch (JsonException ex) { throw new FormatException($"{path}:{lineNo}: not a trajectory step: {ex.Message}", ex); }
            if (step is null || step.Observation is null || step.Action is null)
                throw new FormatException($"{path}:{lineNo}: a trajectory step needs \"obs\" and \"action\".");
            if (step.Episode != episode)
            {
                Flush();
                episode = step.Episode;
            }
            if (step.T != rewards.Count)
                throw new FormatException($"{path}:{lineNo}: episode {step.Episode} has step t={step.T.ToString(CultureInfo.InvariantCulture)} where t={rewards.Count} was expected.");
            obs.Add(step.Observation);
            acts.Add(step.Action);
            rewards.Add(step.Reward);
            term = step.Terminated;
            trunc = step.Truncated;
        }
        Flush();
        return result;
    }
}
