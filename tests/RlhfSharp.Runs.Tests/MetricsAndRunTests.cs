// metrics.jsonl, atomic writes and the run folder: resume semantics, torn lines, checkpoints.
using System.Text.Json;

namespace RlhfSharp.Runs.Tests;

public sealed class MetricsAndRunTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("runs-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void Metrics_OneJsonObjectPerLine_InvariantNumbers()
    {
        string path = Path.Combine(_dir, "metrics.jsonl");
        using (var m = new MetricsWriter(path))
        {
            m.Write(1, new Dictionary<string, double> { ["loss/policy"] = 0.125, ["objective/kl"] = 1234567.5 }, DateTimeOffset.FromUnixTimeMilliseconds(1_700_000_000_250));
            m.Write(2, new Dictionary<string, double> { ["loss/policy"] = double.NaN });
        }
        string[] lines = File.ReadAllLines(path);
        Assert.Equal(2, lines.Length);
        Assert.Equal("{\"step\":1,\"wall_time\":1700000000.25,\"loss/policy\":0.125,\"objective/kl\":1234567.5}", lines[0]);
        using (var doc = JsonDocument.Parse(lines[1]))
        {
            Assert.Equal(2, doc.RootElement.GetProperty("step").GetInt64());
            Assert.Equal("NaN", doc.RootElement.GetProperty("loss/policy").GetString());
        }
        var records = MetricsWriter.ReadAll(path);
        Assert.Equal(0.125, records[0].Values["loss/policy"]);
        Assert.True(double.IsNaN(records[1].Values["loss/policy"]));
    }

    [Fact]
    public void Metrics_ReopeningDropsTornLine_AndAppends()
    {
        string path = Path.Combine(_dir, "metrics.jsonl");
        File.WriteAllText(path, "{\"step\":1,\"wall_time\":1,\"a\":1}\n{\"step\":2,\"wall_time\":2,\"a\":2}\n{\"step\":3,\"wall_t");
        using (var m = new MetricsWriter(path))
        {
            Assert.Equal(1, m.DroppedLines);
            m.Write(3, new Dictionary<string, double> { ["a"] = 3 });
        }
        Assert.Equal([1L, 2, 3], MetricsWriter.ReadAll(path).Select(r => r.Step));
    }

    [Fact]
    public void Metrics_ResumeDropsStepsAfterTheCheckpoint()
    {
        string path = Path.Combine(_dir, "metrics.jsonl");
        using (var m = new MetricsWriter(path))
        {
            for (int s = 1; s <= 5; s++) m.Write(s * 10, new Dictionary<string, double> { ["a"] = s });
        }
        using (var m = new MetricsWriter(path, resumeAfterStep: 30))
        {
            Assert.Equal(2, m.DroppedLines);
            m.Write(40, new Dictionary<string, double> { ["a"] = 99 });
        }
        var records = MetricsWriter.ReadAll(path);
        Assert.Equal([10L, 20, 30, 40], records.Select(r => r.Step));
        Assert.Equal(99, records[^1].Values["a"]);
    }

    [Fact]
    public void Metrics_BadLineIsReportedWithItsNumber()
    {
        string path = Path.Combine(_dir, "metrics.jsonl");
        File.WriteAllText(path, "{\"step\":1,\"wall_time\":1}\nnot json\n");
        var ex = Assert.Throws<FormatException>(() => new MetricsWriter(path, resumeAfterStep: 5));
        Assert.Contains("line 2", ex.Message);
        Assert.Contains(path, ex.Message);
    }

    [Fact]
    public void AtomicFile_ReplacesWhole_AndFailedWriteKeepsOldContent()
    {
        string path = Path.Combine(_dir, "sub", "model.bin");
        AtomicFile.WriteAllBytes(path, [1, 2, 3]);
        AtomicFile.WriteAllBytes(path, [4, 5]);
        Assert.Equal([4, 5], File.ReadAllBytes(path));
        Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, s =>
        {
            s.Write([9, 9, 9, 9]);
            throw new InvalidOperationException("crash mid-write");
        }));
        Assert.Equal([4, 5], File.ReadAllBytes(path));
        Assert.Equal(["model.bin"], Directory.GetFileSystemEntries(Path.Combine(_dir, "sub")).Select(Path.GetFileName));
    }

    [Fact]
    public void AtomicFile_Copy_ReplacesTheDestinationWithTheSourceBytes()
    {
        string source = Path.Combine(_dir, "vocab.json"), destination = Path.Combine(_dir, "out", "vocab.json");
        File.WriteAllBytes(source, [7, 8, 9]);
        AtomicFile.WriteAllBytes(destination, [1]);
        AtomicFile.Copy(source, destination);
        Assert.Equal([7, 8, 9], File.ReadAllBytes(destination));
        Assert.Equal(["vocab.json"], Directory.GetFileSystemEntries(Path.Combine(_dir, "out")).Select(Path.GetFileName));
    }

    [Fact]
    public void Run_ConfigCheckpointsAndResume()
    {
        string runPath = Path.Combine(_dir, "runs", "demo");
        using (var run = RunDirectory.Open(runPath, resume: false))
        {
            run.WriteConfig(new SampleConfig(3e-4, 8, "tiny", Mode.Fast));
            run.Log(100, new Dictionary<string, double> { ["loss/policy"] = 1.5 });
            run.SaveCheckpoint(100, dir => File.WriteAllText(Path.Combine(dir, "model.safetensors"), "weights@100"));
            run.Log(200, new Dictionary<string, double> { ["loss/policy"] = 1.0 });
            run.SaveCheckpoint(200, dir => File.WriteAllText(Path.Combine(dir, "model.safetensors"), "weights@200"));
            run.Log(250, new Dictionary<string, double> { ["loss/policy"] = 0.9 });
            // A save that crashes leaves no checkpoint behind.
            Assert.Throws<IOException>(() => run.SaveCheckpoint(300, _ => throw new IOException("disk full")));
        }
        string config = File.ReadAllText(Path.Combine(runPath, "config.json"));
        // The trainer's record sits in its own section, snake_case as TRL's and CleanRL's configs.
        Assert.Contains("\n  \"trainer\": {\n    \"learning_rate\": 0.0003", config);
        Assert.Contains("\"mode\": \"fast\"", config);
        Assert.Single(Directory.GetFiles(runPath, "events.out.tfevents.*"));

        Assert.Throws<IOException>(() => RunDirectory.Open(runPath, resume: false));
        Assert.Throws<DirectoryNotFoundException>(() => RunDirectory.Open(Path.Combine(_dir, "runs", "missing"), resume: true));

        using (var run = RunDirectory.Open(runPath, resume: true))
        {
            Assert.Equal(new SampleConfig(3e-4, 8, "tiny", Mode.Fast), run.ReadConfig<SampleConfig>());
            var latest = run.LatestCheckpoint();
            Assert.NotNull(latest);
            Assert.Equal(200, latest.Step);
            Assert.Equal("weights@200", File.ReadAllText(Path.Combine(latest.Path, "model.safetensors")));
            // Step 250 was logged after the last checkpoint: it is dropped and logged again.
            run.Log(250, new Dictionary<string, double> { ["loss/policy"] = 0.8 });
            run.SaveCheckpoint(300, dir => File.WriteAllText(Path.Combine(dir, "model.safetensors"), "weights@300"), keepLast: 2);
            Assert.Equal([200L, 300], run.Checkpoints().Select(c => c.Step));
        }
        var records = MetricsWriter.ReadAll(Path.Combine(runPath, "metrics.jsonl"));
        Assert.Equal([100L, 200, 250], records.Select(r => r.Step));
        // The resumed run's TensorBoard events go to a second file beside the first.
        Assert.Equal(2, Directory.GetFiles(runPath, "events.out.tfevents.*").Length);
        Assert.Equal(0.8, records[^1].Values["loss/policy"]);
    }

    [Fact]
    public void Run_OverwritingACheckpointReplacesItWhole()
    {
        using var run = RunDirectory.Open(Path.Combine(_dir, "r"), resume: false);
        run.SaveCheckpoint(5, dir =>
        {
            File.WriteAllText(Path.Combine(dir, "a"), "old");
            File.WriteAllText(Path.Combine(dir, "b"), "old");
        });
        run.SaveCheckpoint(5, dir => File.WriteAllText(Path.Combine(dir, "a"), "new"));
        string path = run.CheckpointPath(5);
        Assert.Equal(["a", CheckpointManifest.FileName], Directory.GetFiles(path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal("new", File.ReadAllText(Path.Combine(path, "a")));
        Assert.Equal([path], Directory.GetDirectories(Path.GetDirectoryName(path)!));
    }

    public enum Mode { Fast, Careful }

    public sealed record SampleConfig(double LearningRate, int BatchSize, string ModelSize, Mode Mode);

    [Fact]
    public void Given_a_truncated_newest_checkpoint_When_resumed_Then_the_previous_one_is_used_and_the_bad_one_named()
    {
        string runPath = Path.Combine(_dir, "corrupt");
        using (var run = RunDirectory.Open(runPath, resume: false))
        {
            run.SaveCheckpoint(100, dir => File.WriteAllText(Path.Combine(dir, "model.safetensors"), "weights@100"));
            run.SaveCheckpoint(200, dir => File.WriteAllText(Path.Combine(dir, "model.safetensors"), "weights@200"));
        }
        // The manifest is written last and lists every other file with its size and hash.
        string newest = Path.Combine(runPath, "checkpoints", "step-00000200");
        Assert.Null(CheckpointManifest.Problem(newest));
        using (var f = new FileStream(Path.Combine(newest, "model.safetensors"), FileMode.Open)) f.SetLength(4);
        Assert.Contains("model.safetensors holds 4 bytes", CheckpointManifest.Problem(newest));

        var warnings = new List<string>();
        using (var run = RunDirectory.Open(runPath, resume: true, warnings.Add))
        {
            Assert.Equal(100, run.LatestCheckpoint()!.Step);
            Assert.Equal(100, run.LatestCheckpoint()!.Step);
        }
        string warning = Assert.Single(warnings);
        Assert.Contains("step-00000200", warning);
        Assert.Contains("model.safetensors", warning);

        // Same size, one byte changed: only the hash can tell.
        string older = Path.Combine(runPath, "checkpoints", "step-00000100");
        File.WriteAllText(Path.Combine(older, "model.safetensors"), "weights@1X0");
        Assert.Contains("SHA-256", CheckpointManifest.Problem(older));
        // A checkpoint with no manifest cannot be validated, so it is not resumed from either.
        File.Delete(Path.Combine(older, CheckpointManifest.FileName));
        using (var run = RunDirectory.Open(runPath, resume: true)) Assert.Null(run.LatestCheckpoint());
    }

    [Fact]
    public void Given_staging_folders_of_a_killed_save_When_the_run_is_opened_Then_they_are_removed()
    {
        string runPath = Path.Combine(_dir, "staging");
        using (var run = RunDirectory.Open(runPath, resume: false))
            run.SaveCheckpoint(4, dir => File.WriteAllText(Path.Combine(dir, "model.safetensors"), "w"));
        string checkpoints = Path.Combine(runPath, "checkpoints");
        // What a kill -9 during the save of step 8 (and during an atomic file write) leaves behind.
        string tmp = Path.Combine(checkpoints, ".step-00000008.tmp-0123456789abcdef");
        Directory.CreateDirectory(tmp);
        File.WriteAllText(Path.Combine(tmp, "model.safetensors"), "half");
        string old = Path.Combine(checkpoints, ".step-00000004.old-0123456789abcdef");
        Directory.CreateDirectory(old);
        string tmpFile = Path.Combine(runPath, ".config.json.tmp-0123456789abcdef");
        File.WriteAllText(tmpFile, "{");

        using (var run = RunDirectory.Open(runPath, resume: true)) Assert.Equal(4, run.LatestCheckpoint()!.Step);
        Assert.False(Directory.Exists(tmp));
        Assert.False(Directory.Exists(old));
        Assert.False(File.Exists(tmpFile));
        Assert.True(Directory.Exists(Path.Combine(checkpoints, "step-00000004")));

        // A run killed during its very first save left only a staging folder: it can start afresh.
        string first = Path.Combine(_dir, "first");
        Directory.CreateDirectory(Path.Combine(first, "checkpoints", ".step-00000002.tmp-0123456789abcdef"));
        using (var run = RunDirectory.Open(first, resume: false)) Assert.Null(run.LatestCheckpoint());
        Assert.False(Directory.Exists(Path.Combine(first, "checkpoints")));
    }
}

public sealed class ConfigRangesTests
{
    private sealed record Inner
    {
        [ConfigOption("x", Min = 0, MinExclusive = true)]
        public float LearningRate { get; init; } = 1e-3f;

        [ConfigOption("x", Min = 1)]
        public int[] Hidden { get; init; } = [64, 64];
    }

    private sealed record Outer
    {
        [ConfigOption("x", Min = 0, Max = 1, MaxExclusive = true)]
        public double HeldOut { get; init; } = 0.1;

        [ConfigOption("no range declared")]
        public double Free { get; init; }

        public Inner Training { get; init; } = new();
    }

    [Fact]
    public void Validate_NamesTheSettingWithItsPathAndWhatItMustBe()
    {
        ConfigRanges.Validate(new Outer(), "cfg");
        Assert.Equal("cfg: held_out = 1 must be a finite number in [0, 1).",
            Assert.Throws<ArgumentException>(() => ConfigRanges.Validate(new Outer { HeldOut = 1 }, "cfg")).Message);
        Assert.Equal("cfg: training.learning_rate = Infinity must be a finite number > 0.",
            Assert.Throws<ArgumentException>(() => ConfigRanges.Validate(new Outer { Training = new() { LearningRate = float.PositiveInfinity } }, "cfg")).Message);
        Assert.Equal("cfg: training.hidden = 0 must be a whole number >= 1.",
            Assert.Throws<ArgumentException>(() => ConfigRanges.Validate(new Outer { Training = new() { Hidden = [64, 0] } }, "cfg")).Message);
        // A field without a declared range must still be finite.
        Assert.Contains("free = NaN must be a finite number.", Assert.Throws<ArgumentException>(() => ConfigRanges.Validate(new Outer { Free = double.NaN }, "cfg")).Message);
    }
}
