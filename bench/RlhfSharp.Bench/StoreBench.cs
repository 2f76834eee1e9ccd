// Judgments per second into the SQLite preference store, as the labelling loop writes them (`rlhf bench store`): each
// judgment is two write transactions, the hand-out (NextAssignmentAsync) and the answer (SubmitAsync). Run once with
// synchronous=NORMAL (the default: survives a process crash) and once with synchronous=FULL (--durable: every commit
// fsynced, survives power loss), on a fresh file in the folder given, so the figure is that disk's fsync cost.
using System.Diagnostics;
using RlhfSharp.Feedback;
using RlhfSharp.Feedback.Stores;

namespace RlhfSharp.Bench;

/// <summary>One measured mode: <see cref="Judgments"/> stored by <see cref="Labelers"/> concurrent labellers in <see cref="Seconds"/>.</summary>
public sealed record StoreBenchResult(bool Durable, int Judgments, int Labelers, double Seconds, double LoadAverage)
{
    public double JudgmentsPerSecond => Judgments / Seconds;

    /// <summary>Commits per second: a judgment is two (hand-out and answer).</summary>
    public double CommitsPerSecond => 2 * Judgments / Seconds;

    public Dictionary<string, object> ToFields() => new()
    {
        ["store"] = "sqlite",
        ["synchronous"] = Durable ? "FULL" : "NORMAL",
        ["durable"] = Durable,
        ["judgments"] = Judgments,
        ["labelers"] = Labelers,
        ["seconds"] = Math.Round(Seconds, 3),
        ["judgments_per_s"] = Math.Round(JudgmentsPerSecond, 1),
        ["commits_per_s"] = Math.Round(CommitsPerSecond, 1),
        ["load_average"] = LoadAverage,
    };
}

public static class StoreBench
{
    /// <summary>
    /// Creates a store file in <paramref name="folder"/>, adds <paramref name="judgments"/> text pairs and
    /// <paramref name="labelers"/> labellers (untimed), then times the labellers, each on its own task, taking and
    /// answering queries (overlap 1) until none is left. The file and its WAL are deleted afterwards.
    /// </summary>
    public static async Task<StoreBenchResult> MeasureAsync(string folder, bool durable, int judgments, int labelers)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(judgments, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(labelers, 1);
        Directory.CreateDirectory(folder);
        string path = Path.Combine(folder, $"bench-store-{Guid.NewGuid():N}.db");
        try
        {
            await using var store = await SqlitePreferenceStore.OpenAsync(path, seed: 1, durable: durable);
            await store.AddQueriesAsync([.. Enumerable.Range(0, judgments).Select(i =>
                new NewQuery(QueryKind.Text, $"prompt {i}", [new Candidate($"first answer {i}"), new Candidate($"second answer {i}")], "bench"))]);
            var ids = new List<long>();
            for (int l = 0; l < labelers; l++) ids.Add((await store.AddLabelerAsync($"bench-{l}", LabelerRole.Labeler)).Labeler.Id);

            double load = BenchConditions.LoadAverage();
            var clock = Stopwatch.StartNew();
            var counts = await Task.WhenAll(ids.Select(id => Task.Run(async () =>
            {
                int done = 0;
                while (await store.NextAssignmentAsync(id, "bench", overlap: 1) is { } a)
                {
                    await store.SubmitAsync(a.Id, id, Answer.Prefer((int)(a.Query.Id % 2)), TimeSpan.FromSeconds(1));
                    done++;
                }
                return done;
            })));
            double seconds = clock.Elapsed.TotalSeconds;
            if (counts.Sum() != judgments) throw new InvalidOperationException($"store bench: {counts.Sum()} judgments stored, expected {judgments}.");
            return new StoreBenchResult(durable, judgments, labelers, seconds, load);
        }
        finally
        {
            foreach (var suffix in new[] { "", "-wal", "-shm" })
                try { File.Delete(path + suffix); } catch (IOException) { /* still open elsewhere: leave it */ }
        }
    }
}
