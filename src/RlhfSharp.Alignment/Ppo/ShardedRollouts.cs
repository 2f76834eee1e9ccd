// Rollouts split over the shards of a data-parallel job (docs/distributed.md), shared by PPO and GRPO: shard s samples
// rows [⌊s·B/S⌋, ⌊(s+1)·B/S⌋) of a prompt batch from its own random stream, every rank gathers all rows
// (ShardedGradient.Gather) and lays them out as one batch (PolicyRollouts.Layout); then shard s computes per-row figures
// (log-probs, values, rewards) for its rows of that batch, and every rank gathers those too. One process with S shards
// runs the same slices one after the other and hands back the same bytes, so the two agree bit for bit.
using System.Runtime.InteropServices;
using System.Text;
using RlhfSharp.Distributed;
using RlhfSharp.Models;
using RlhfSharp.Tensors;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment.Ppo;

internal static class ShardedRollouts
{
    /// <summary>The batch of <paramref name="prompts"/>, shard s sampling its rows from <paramref name="streamOf"/>(s); every rank gets all rows.</summary>
    public static RolloutBatch Sample(ShardedGradient shards, Func<int, Rng> streamOf, GptGenerator generator, ITokenizer tokenizer, int eos,
        List<string> prompts, int maxNewTokens, float temperature)
    {
        int B = prompts.Count;
        double generationSeconds = 0;
        var sampled = shards.Gather(s =>
        {
            var (start, count) = shards.Slice(s, B);
            if (count == 0) return [];
            var part = PolicyRollouts.Sample(generator, tokenizer, eos, prompts.GetRange(start, count), maxNewTokens, temperature, streamOf(s));
            generationSeconds += part.GenerationSeconds;
            return WriteRows(part);
        });
        var rows = new List<(int[] Prompt, int[] Response, string Text, bool Eos)>(B);
        foreach (var bytes in sampled) rows.AddRange(ReadRows(bytes));
        return PolicyRollouts.Layout(prompts, rows, generationSeconds);
    }

    /// <summary>
    /// Per-row figures of <paramref name="B"/> rows, shard s computing them for its rows [start, start + count):
    /// <paramref name="compute"/>(start, count) returns one array per figure, figure i holding count·widths[i] floats.
    /// Returns each figure for all B rows, on every rank.
    /// </summary>
    public static float[][] ScoreRows(ShardedGradient shards, int B, int[] widths, Func<int, int, float[][]> compute)
    {
        var parts = shards.Gather(s =>
        {
            var (start, count) = shards.Slice(s, B);
            if (count == 0) return [];
            var figures = compute(start, count);
            for (int i = 0; i < widths.Length; i++)
                if (figures[i].Length != count * widths[i]) throw new InvalidOperationException($"rollout scoring: figure {i} has {figures[i].Length} values for {count} rows of {widths[i]}.");
            return MemoryMarshal.AsBytes(figures.SelectMany(f => f).ToArray().AsSpan()).ToArray();
        });
        var all = widths.Select(w => new float[B * w]).ToArray();
        for (int s = 0; s < shards.Shards; s++)
        {
            var (start, count) = shards.Slice(s, B);
            var floats = MemoryMarshal.Cast<byte, float>(parts[s]);
            int offset = 0;
            for (int i = 0; i < widths.Length; i++)
            {
                floats.Slice(offset, count * widths[i]).CopyTo(all[i].AsSpan(start * widths[i]));
                offset += count * widths[i];
            }
        }
        return all;
    }

    // The rows a shard sampled, as bytes for the other ranks: prompt tokens, response tokens, response text, EOS flag.
    private static byte[] WriteRows(RolloutBatch part)
    {
        using var stream = new MemoryStream();
        using (var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(part.Batch);
            for (int b = 0; b < part.Batch; b++)
            {
                var row = part.Rows[b];
                w.Write(row.Length - part.Lengths[b]);
                w.Write(part.Lengths[b]);
                foreach (int token in row) w.Write(token);
                w.Write(part.Responses[b]);
                w.Write(part.EndsWithEos[b]);
            }
        }
        return stream.ToArray();
    }

    private static List<(int[] Prompt, int[] Response, string Text, bool Eos)> ReadRows(byte[] bytes)
    {
        var rows = new List<(int[], int[], string, bool)>();
        if (bytes.Length == 0) return rows;
        using var r = new BinaryReader(new MemoryStream(bytes), Encoding.UTF8);
        int count = r.ReadInt32();
        for (int b = 0; b < count; b++)
        {
            int promptLength = r.ReadInt32(), responseLength = r.ReadInt32();
            var prompt = new int[promptLength];
            var response = new int[responseLength];
            for (int i = 0; i < promptLength; i++) prompt[i] = r.ReadInt32();
            for (int i = 0; i < responseLength; i++) response[i] = r.ReadInt32();
            rows.Add((prompt, response, r.ReadString(), r.ReadBoolean()));
        }
        return rows;
    }
}
