// Data parallelism over MPI (issue 22), end to end: `mpirun -np 2 dotnet rlhf.dll pretrain|sft|reward train|dpo|ppo ...` on localhost against
// one process run with `--grad-shards 2` (the same two row slices of every batch, computed one after the other and summed
// in the same order): final weights and metrics (timing fields aside) must be byte-identical. Also: a run stopped in one
// process resumes under mpirun with the same bits (every rank reads the same checkpoint), rank 0 alone writes, and a
// command that is not data-parallel yet refuses to start under mpirun. Skipped, with the reason, where mpirun is absent;
// `.ci/run` installs Open MPI so CI runs them.
using System.Diagnostics;
using System.Runtime.InteropServices;
using RlhfSharp.Faults;
using RlhfSharp.Golden;
using RlhfSharp.TestSupport;

namespace RlhfSharp.Cli.Tests;

/// <summary>A temporary folder holding the one-process reference run (pretrain with --grad-shards 2), built once.</summary>
public sealed class DistributedChain : IDisposable
{
    public DistributedChain()
    {
        Dir = Path.Combine(Path.GetTempPath(), "rlhf-mpi-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Dir);
        if (DistributedTests.SkipReason is null) ResumeJobs.Run(Dir, DistributedTests.Pretrain("one", "runs/one", "--grad-shards", "2"));
        GoldenJobs.WritePreferences(Path.Combine(Dir, GoldenJobs.PreferencesFile));
    }

    public string Dir { get; }

    private readonly object _rewardModelLock = new();
    private bool _rewardModelMade;

    /// <summary>The one-process reward run ("rm-one", --grad-shards 2), made once: the reward test's reference and PPO's reward model.</summary>
    public void EnsureRewardModel()
    {
        lock (_rewardModelLock)
        {
            if (!_rewardModelMade) ResumeJobs.Run(Dir, DistributedTests.Reward("rm-one", "--grad-shards", "2"));
            _rewardModelMade = true;
        }
    }

    public void Dispose()
    {
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { }
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class DistributedCollection : ICollectionFixture<DistributedChain>
{
    public const string Name = "mpi";
}

[Collection(DistributedCollection.Name)]
public sealed class DistributedTests(DistributedChain chain)
{
    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);

    private const int SigTerm = 15;

    private static readonly string? MpiRun = new[] { "/usr/bin/mpirun", "/usr/local/bin/mpirun" }.FirstOrDefault(File.Exists);

    /// <summary>Why these tests cannot run here, or null.</summary>
    public static string? SkipReason => MpiRun is null
        ? "mpirun is not installed (Debian: apt-get install openmpi-bin libopenmpi-dev; .ci/run installs it)"
        : null;

    /// <summary>A tiny GPT on 300 stories, 30 steps of 8 rows, a checkpoint every 5 steps, one kernel thread.</summary>
    internal static string[] Pretrain(string outDir, string run, params string[] extra) =>
        ["pretrain", "--stories", "300", "--vocab-size", "512", "--steps", "30", "--batch-size", "8", "--eval-interval", "10",
            "--checkpoint-interval", "5", "--seed", "3", "--threads", "1", "--out", outDir, "--run", run, .. extra];

    [ServerFact]
    public void Pretrain_TwoRanks_EqualOneProcessWithTwoGradShards_AndOnlyRankZeroWrites()
    {
        var (exit, stdout, stderr) = MpiRlhf(Pretrain("two", "runs/two"));
        Assert.True(exit == 0, $"mpirun exited {exit}: {stderr}");
        AssertSameRun("one", "two");
        // One summary line on standard output and one TensorBoard file: rank 1 wrote nothing.
        Assert.Single(stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.Contains("{\"steps\":30", StringComparison.Ordinal));
        Assert.Single(Directory.GetFiles(Path.Combine(chain.Dir, "runs", "two"), "events.out.tfevents.*"));
        // The ranks' run recorded the shard count it followed from -np, so `--resume` in one process means the same thing.
        Assert.Contains("\"grad_shards\": 2", File.ReadAllText(Path.Combine(chain.Dir, "runs", "two", "config.json")));
    }

    [ServerFact]
    public void OneProcessStoppedAfterACheckpoint_ResumedByTwoRanks_EqualsTheUninterruptedRun()
    {
        const string run = "runs/stopped";
        string checkpoints = Path.Combine(chain.Dir, run, "checkpoints");
        using (var process = ResumeJobs.Start(chain.Dir, Pretrain("stopped", run, "--grad-shards", "2")))
        {
            var stderr = process.StandardError.ReadToEndAsync();
            _ = process.StandardOutput.ReadToEndAsync();
            var clock = Stopwatch.StartNew();
            while (!process.HasExited && !(Directory.Exists(checkpoints) && Directory.GetDirectories(checkpoints, "step-*").Any(d => !Path.GetFileName(d).Contains('.')))
                   && clock.Elapsed < TimeSpan.FromMinutes(3))
                Thread.Sleep(5);
            Assert.False(process.HasExited, "the one-process run finished before it could be stopped");
            Assert.Equal(0, kill(process.Id, SigTerm));
            Assert.True(process.WaitForExit(TimeSpan.FromMinutes(3)));
            Assert.True(process.ExitCode == 143, $"expected 143 after SIGTERM, got {process.ExitCode}: {stderr.GetAwaiter().GetResult()}");
        }
        var (exit, _, err) = MpiRlhf(["pretrain", "--resume", "--run", run]);
        Assert.True(exit == 0, $"mpirun --resume exited {exit}: {err}");
        AssertSameRun("one", "stopped");
    }

    [ServerFact]
    public void Sft_TwoRanks_EqualOneProcessWithTwoGradShards()
    {
        // Demonstrations have padded rows and a masked prompt: each shard divides by the whole batch's target count.
        string[] Sft(string outDir, params string[] extra) =>
            ["sft", "--model", "one", "--demos", "120", "--steps", "12", "--batch-size", "8", "--eval-interval", "6", "--checkpoint-interval", "0",
                "--seed", "3", "--threads", "1", "--out", outDir, "--run", "runs/" + outDir, .. extra];
        ResumeJobs.Run(chain.Dir, Sft("sft-one", "--grad-shards", "2"));
        var (exit, _, stderr) = MpiRlhf(Sft("sft-two"));
        Assert.True(exit == 0, $"mpirun exited {exit}: {stderr}");
        AssertSameRun("sft-one", "sft-two");
    }

    [ServerFact]
    public void RewardTraining_TwoRanks_EqualOneProcessWithTwoGradShards()
    {
        // Each slice divides by the whole batch's example count; accuracy and margin add the slices' pair counts in order.
        chain.EnsureRewardModel();
        var (exit, stdout, stderr) = MpiRlhf(Reward("rm-two"));
        Assert.True(exit == 0, $"mpirun exited {exit}: {stderr}");
        AssertSameRun("rm-one", "rm-two");
        Assert.Single(stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.Contains("reward model: held-out accuracy", StringComparison.Ordinal));
        Assert.Contains("\"grad_shards\": 2", File.ReadAllText(Path.Combine(chain.Dir, "runs", "rm-two", "config.json")));
    }

    [ServerFact]
    public void Ppo_TwoRanks_EqualOneProcessWithTwoGradShards()
    {
        // Each rank samples and scores its half of every rollout batch (a stream of (seed, step, slice) each), all ranks
        // then hold the whole batch; each minibatch of 3 rows is cut 1 + 2, each slice weighted by its share of the real
        // tokens. The value model's weights are checked equal across ranks inside the run.
        chain.EnsureRewardModel();
        string[] Ppo(string outDir, params string[] extra) =>
            ["ppo", "--policy", "one", "--reward", "rm-one", "--steps", "2", "--batch-size", "6", "--minibatch-size", "3", "--ppo-epochs", "2",
                "--max-new-tokens", "12", "--checkpoint-interval", "0", "--seed", "3", "--out", outDir, "--run", "runs/" + outDir, .. extra];
        ResumeJobs.Run(chain.Dir, Ppo("ppo-one", "--grad-shards", "2"));
        var (exit, _, stderr) = MpiRlhf(Ppo("ppo-two"));
        Assert.True(exit == 0, $"mpirun exited {exit}: {stderr}");
        AssertSameRun("ppo-one", "ppo-two");
    }

    [ServerFact]
    public void Dpo_TwoRanks_EqualOneProcessWithTwoGradShards()
    {
        string[] Dpo(string outDir, params string[] extra) =>
            ["dpo", "--model", "one", "--data", GoldenJobs.PreferencesFile, "--batch-size", "7", "--held-out", "0.6", "--seed", "3", "--out", outDir, "--run", "runs/" + outDir, .. extra];
        ResumeJobs.Run(chain.Dir, Dpo("dpo-one", "--grad-shards", "2"));
        var (exit, _, stderr) = MpiRlhf(Dpo("dpo-two"));
        Assert.True(exit == 0, $"mpirun exited {exit}: {stderr}");
        AssertSameRun("dpo-one", "dpo-two");
    }

    [ServerFact]
    public void ACommandNotYetDataParallel_RefusesToStartUnderMpirun()
    {
        var (exit, _, stderr) = MpiRlhf(["kto", "--model", "one", "--data", "feedback.jsonl", "--out", "kto"]);
        Assert.NotEqual(0, exit);
        Assert.Contains("`rlhf kto` does not run under mpirun yet (2 ranks)", stderr);
        Assert.False(Directory.Exists(Path.Combine(chain.Dir, "kto")));
    }

    /// <summary>
    /// Reward training on the golden preferences: 7 examples a batch (slices of 3 and 4, and the epoch's last, shorter
    /// batch), 40 examples trained on (60 % held out to keep it short).
    /// </summary>
    internal static string[] Reward(string outDir, params string[] extra) =>
        ["reward", "train", "--model", "one", "--data", GoldenJobs.PreferencesFile, "--batch-size", "7", "--held-out", "0.6", "--eval-interval", "4",
            "--normalization-samples", "8", "--seed", "3", "--out", outDir, "--run", "runs/" + outDir, .. extra];

    private void AssertSameRun(string a, string b)
    {
        Assert.Equal(GoldenJobs.HashFile(Path.Combine(chain.Dir, a, "model.safetensors")), GoldenJobs.HashFile(Path.Combine(chain.Dir, b, "model.safetensors")));
        Assert.Equal(GoldenJobs.HashMetrics(Path.Combine(chain.Dir, "runs", a, "metrics.jsonl")), GoldenJobs.HashMetrics(Path.Combine(chain.Dir, "runs", b, "metrics.jsonl")));
    }

    /// <summary>`mpirun -np 2 dotnet rlhf.dll args` on localhost (as root too), to the end.</summary>
    private (int Exit, string Stdout, string Stderr) MpiRlhf(string[] args)
    {
        var start = new ProcessStartInfo(MpiRun!)
        {
            WorkingDirectory = chain.Dir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (string a in (string[])["-np", "2", "--oversubscribe", "--allow-run-as-root", GoldenJobs.DotnetHost(), GoldenJobs.FindRlhf(), .. args])
            start.ArgumentList.Add(a);
        using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start mpirun");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"mpirun rlhf {string.Join(' ', args)} did not finish");
        }
        return (process.ExitCode, stdout.GetAwaiter().GetResult(), stderr.GetAwaiter().GetResult());
    }
}
