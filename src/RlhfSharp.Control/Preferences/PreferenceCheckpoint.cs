// What the Christiano loop adds to a PPO checkpoint, in the checkpoint's "preferences" folder, so that `rlhf prefrl
// --resume` continues bit-identically: the segments (the pool, the comparisons' clips, the env copies' unfinished
// segments) in segments.bin; the reward ensemble's weights, input standardisation and AdamW moments (ensemble.safetensors,
// optimizer.safetensors); and the loop's own state (RNG, labels used, who was asked, r̂'s normalisation, the recent-step
// ring) in preferences_state.json. Written inside RunDirectory.SaveCheckpoint's temporary folder, so a checkpoint holds
// both PPO's state and the loop's, or neither.
// segments.bin is a small binary file of our own because a segment's true rewards are float64 (the oracle compares their
// sums, so rounding them to safetensors' float32 would change its answers after a resume): little-endian, "RLHFSEG1",
// the count, then per segment its length L, live steps, terminated and truncated flags, widths S and A, L·S observation
// floats, L·A action floats and L reward doubles.
using System.Text;

namespace RlhfSharp.Control.Preferences;

/// <summary>The loop's own state at a checkpoint (segments and comparisons by index into segments.bin).</summary>
internal sealed record PreferenceState(
    ulong[] Rng, int LabelsUsed, long QueryId, int Due, double Accuracy, double Evidence,
    double RewardMean, double RewardStd, double RewardZero, double RewardScale,
    double[] PredictedSoFar, double[] PredictedFinished, int RecentCount, int RecentNext,
    int[] PoolSegments, long PoolProduced, int[] Partials, ComparisonRef[] Comparisons, int[] Asked,
    int[] AdamSteps, int[][] OutOfBag, double[][] OracleScores,
    double AskSeconds, double FitSeconds, double RewardSeconds, double RenormaliseSeconds);

/// <summary>A comparison of segments i and j (indices into segments.bin) with its μ.</summary>
internal sealed record ComparisonRef(int First, int Second, float Mu);

internal static class PreferenceCheckpoint
{
    public const string FolderName = "preferences";
    public const string SegmentsFileName = "segments.bin";
    public const string StateFileName = "preferences_state.json";
    public const string RecentFileName = "recent.safetensors";
    private static readonly byte[] Magic = "RLHFSEG1"u8.ToArray();

    public static void WriteSegments(string path, IReadOnlyList<Trajectory> segments)
    {
        using var w = new BinaryWriter(File.Create(path), Encoding.UTF8);
        w.Write(Magic);
        w.Write(segments.Count);
        foreach (var t in segments)
        {
            int s = t.Length > 0 ? t.Observations[0].Length : 0, a = t.Length > 0 ? t.Actions[0].Length : 0;
            w.Write(t.Length);
            w.Write(t.LiveSteps);
            w.Write(t.Terminated);
            w.Write(t.Truncated);
            w.Write(s);
            w.Write(a);
            foreach (var o in t.Observations) foreach (float v in o) w.Write(v);
            foreach (var act in t.Actions) foreach (float v in act) w.Write(v);
            foreach (double r in t.Rewards) w.Write(r);
        }
    }

    public static List<Trajectory> ReadSegments(string path, string envId)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: the checkpoint has no preference segments; it was not written by `rlhf prefrl`.", path);
        using var r = new BinaryReader(File.OpenRead(path), Encoding.UTF8);
        try
        {
            if (!r.ReadBytes(Magic.Length).AsSpan().SequenceEqual(Magic)) throw new FormatException($"{path}: not a segments file (bad magic).");
            int count = r.ReadInt32();
            var list = new List<Trajectory>(count);
            for (int k = 0; k < count; k++)
            {
                int length = r.ReadInt32(), live = r.ReadInt32();
                bool terminated = r.ReadBoolean(), truncated = r.ReadBoolean();
                int s = r.ReadInt32(), a = r.ReadInt32();
                if (length < 0 || live < 0 || live > length || s < 0 || a < 0) throw new FormatException($"{path}: segment {k} has a bad header.");
                var obs = new float[length][];
                var acts = new float[length][];
                var rewards = new double[length];
                for (int t = 0; t < length; t++) { obs[t] = new float[s]; for (int j = 0; j < s; j++) obs[t][j] = r.ReadSingle(); }
                for (int t = 0; t < length; t++) { acts[t] = new float[a]; for (int j = 0; j < a; j++) acts[t][j] = r.ReadSingle(); }
                for (int t = 0; t < length; t++) rewards[t] = r.ReadDouble();
                list.Add(new Trajectory(envId, obs, acts, rewards, terminated, truncated) { LiveSteps = live });
            }
            if (r.BaseStream.Position != r.BaseStream.Length) throw new FormatException($"{path}: {r.BaseStream.Length - r.BaseStream.Position} bytes after the last segment.");
            return list;
        }
        catch (EndOfStreamException)
        {
            throw new FormatException($"{path}: the file ends inside a segment (truncated).");
        }
    }
}
