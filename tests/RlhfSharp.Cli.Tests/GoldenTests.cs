// Golden hashes (issue 15): the golden jobs (tests/RlhfSharp.Golden/GoldenJobs.cs) run as `dotnet rlhf.dll` children on
// every vector path this CPU has, and the SHA-256 of each job's final weights and timing-free metrics must equal the one
// value written here, the same for every path and every machine. `rlhf-golden` prints the current values.
using RlhfSharp.Golden;
using Xunit.Abstractions;

namespace RlhfSharp.Cli.Tests;

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class GoldenCollection
{
    // Alone, so the children have the cores to themselves and the run stays near its ~2 minutes.
    public const string Name = "golden";
}

[Collection(GoldenCollection.Name)]
[Trait("Category", "Golden")]
public sealed class GoldenTests(ITestOutputHelper output)
{
    // Pinned on a 2-core AMD EPYC with AVX-512 and on its AVX2 path (DOTNET_EnableAVX512=0): both gave these values once
    // every reduction ran in one written-out order (Reduce.Sum/Dot, Reduce.HorizontalSum) and layer-norm backward summed
    // over shape-fixed row chunks. A change here needs a known reason: refresh with `rlhf-golden`
    // (tests/RlhfSharp.Golden/Program.cs) and check that every path prints "same".
    private static readonly Dictionary<string, GoldenHashes> Expected = new()
    {
        ["pretrain"] = new("180fda1f9d0ec5e0d7ade069677d8f95b098da86947d40c3732ae939d51aa16c", "94acfea3cd98234044e8bae647100cfc5dda85ded403fb864d67ed73ee0b904e"),
        ["sft"] = new("fbee2a1a3829b7afbb2b813d8ab0b243fb797ea6e199865cc80c0047c4b42034", "34bb492dd61ddc57c096b3bb3a93dedfd46f088e886f3f29dec99bf349b4cd09"),
        ["reward"] = new("7ead5302a3ccb5532df0c9585f00d45e1b109966e14e8ab4146daf5ddf667bbc", "6eb07fc392178b966525900a9c4d6df317e1e6a055e9e2217cf510130b9297ad"),
        ["ppo"] = new("42ca2e6888ac65ce1d4e984b079c8a2f4d19bfbe6255a1e7bf4b72009033d88b", "b287e815a8456781f75093b55987363d252cff82e374d000c6464967b8338315"),
        ["rloo"] = new("daf1632d885c2b4cfd68a622e3b50b7af2437918bc2983aa6811793671479f90", "c1b0311b350b02609d32bfd580cad0176aff5f9c76138e9c0c671798625322ad"),
        ["dpo"] = new("c1c2c1f9a5b136b5ab8332ee6fd4bbcde0d75c1ba5b5567ca18cfd0942689061", "c2ff445279d660d0fed501cab662447be680b9b24484e54fb1d8e4d0afe78574"),
        ["control-ppo"] = new("33610f91765604cbabc45d39796d15e5924aa5147ff6a2dc8af1145e6be2edb4", "ccf168fb642746c5a765ed27ebaab19391667238b7c4d7d5cf0f53092f174b2b"),
        ["prefrl"] = new("27c1ebf822ea7961aabb0b27ef8008dcf9a7572dfca24482f853830c399ffeef", "839c9d6616d0ea2a8caca649d4dca9d9b967e9b9aee0008464f1dd6faf60466a"),
    };

    [Fact]
    public void Given_the_golden_jobs_When_run_on_every_vector_path_of_this_cpu_Then_weights_and_metrics_have_the_pinned_hashes()
    {
        Assert.Equal(GoldenJobs.All.Select(j => j.Name).Order(), Expected.Keys.Order());
        string rlhf = GoldenJobs.FindRlhf();
        var drift = new List<string>();
        var byPath = new List<(string Path, IReadOnlyList<GoldenResult> Results)>();
        foreach (var path in GoldenJobs.PathsOfThisCpu())
        {
            // The switch must have taken effect in the child, or the "avx2" run would quietly repeat the avx512 one.
            string runtime = GoldenJobs.ProbeRuntime(path);
            output.WriteLine($"{path.Name}: child reports {runtime}");
            Assert.True(runtime.Contains("Avx512F=True", StringComparison.Ordinal) == (path.Name == "avx512"), $"path {path.Name}: the child reports {runtime}");

            string dir = Path.Combine(Path.GetTempPath(), "rlhf-golden-" + Guid.NewGuid().ToString("N"));
            IReadOnlyList<GoldenResult> results;
            try
            {
                results = GoldenJobs.Run(rlhf, dir, path, log: output.WriteLine);
            }
            finally
            {
                if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
            }
            byPath.Add((path.Name, results));
            foreach (var r in results)
            {
                var e = Expected[r.Job];
                if (r.Hashes.Weights != e.Weights) drift.Add($"{r.Job} on {path.Name}: weights expected {e.Weights}, actual {r.Hashes.Weights}");
                if (r.Hashes.Metrics != e.Metrics) drift.Add($"{r.Job} on {path.Name}: metrics expected {e.Metrics}, actual {r.Hashes.Metrics}");
            }
        }

        // Whether the paths agree with each other tells a kernel width dependence from a change of results everywhere.
        string paths = byPath.Count < 2 ? ""
            : byPath[0].Results.Zip(byPath[1].Results).Where(p => p.First.Hashes != p.Second.Hashes).Select(p => p.First.Job).ToList() is { Count: > 0 } split
                ? $"\n{byPath[0].Path} and {byPath[1].Path} differ on: {string.Join(", ", split)}."
                : $"\n{byPath[0].Path} and {byPath[1].Path} agree on every job.";
        Assert.True(drift.Count == 0,
            "golden hashes drifted (later jobs start from earlier ones' models, so the first drifting job is where to look):\n" + string.Join("\n", drift) + paths);
    }
}
