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
        ["pretrain"] = new("180fda1f9d0ec5e0d7ade069677d8f95b098da86947d40c3732ae939d51aa16c", "7766c829a203f1b35bfba948666b0d4b35cca99cb017a20184b2516de2b4d03b"),
        ["sft"] = new("fbee2a1a3829b7afbb2b813d8ab0b243fb797ea6e199865cc80c0047c4b42034", "a0385472ea89b9942d68313051fd5655ca89387dcb6b76931d245c3fac4e79b8"),
        ["reward"] = new("7ead5302a3ccb5532df0c9585f00d45e1b109966e14e8ab4146daf5ddf667bbc", "44ab725af1d4d2ac0092e09c0bfd696acf3948f680474234bac620ac5f1923d5"),
        ["ppo"] = new("42ca2e6888ac65ce1d4e984b079c8a2f4d19bfbe6255a1e7bf4b72009033d88b", "b670e682aac1b20a4584132edf174aef9994c19c85c2d064b59e7410ad689208"),
        ["rloo"] = new("daf1632d885c2b4cfd68a622e3b50b7af2437918bc2983aa6811793671479f90", "38822bfd35072833e083904ff7e79ccb01291282f2a89e7f18b2246909db9c37"),
        ["dpo"] = new("c1c2c1f9a5b136b5ab8332ee6fd4bbcde0d75c1ba5b5567ca18cfd0942689061", "120b017866e57f2640e709ebdfdfb5e1ab0cd6c15f76ff25160555e9f48754f3"),
        ["control-ppo"] = new("33610f91765604cbabc45d39796d15e5924aa5147ff6a2dc8af1145e6be2edb4", "339553a0f2ddf2e679cbf3e9f98d7bbd43a843d867d926d5b600071715ba2e07"),
        ["prefrl"] = new("27c1ebf822ea7961aabb0b27ef8008dcf9a7572dfca24482f853830c399ffeef", "61c440a2e7a54447ec4d227b20476e57b0e102198e0f652e9f1fcaf902ad4cc6"),
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
