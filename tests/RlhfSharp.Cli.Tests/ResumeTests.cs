// The run contract end to end (issue 16): each trainer, run as the real `rlhf` process, is killed with SIGKILL at two
// checkpoints and resumed with `--resume --run RUN` alone, or stopped with SIGTERM and resumed; its final weights and its
// metrics (timing fields aside) must be byte-identical to an uninterrupted run of the same command. The trainers: the
// language-model ones (pretrain, sft, reward, dpo, ppo, grpo with DAPO's settings, online-dpo, kto, dpo --loss-type orpo, rft) and control PPO and REINFORCE (`rl`, `rl --algo reinforce`, whose
// run folder is also its output). Also: an option that contradicts the run is refused naming both values, and a finished
// run has nothing to do.
using System.Diagnostics;
using System.Runtime.InteropServices;
using RlhfSharp.Faults;
using RlhfSharp.Golden;

namespace RlhfSharp.Cli.Tests;

/// <summary>The SFT chain the trainers start from, built once in a temporary folder and shared by the resume and fault tests.</summary>
public sealed class ResumeChain : IDisposable
{
    public ResumeChain()
    {
        Dir = Path.Combine(Path.GetTempPath(), "rlhf-resume-" + Guid.NewGuid().ToString("N")[..8]);
        ResumeJobs.BuildChain(Dir);
    }

    public string Dir { get; }

    public void Dispose()
    {
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { }
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ResumeCollection : ICollectionFixture<ResumeChain>
{
    public const string Name = "resume";
}

[Collection("resume")]
public sealed class ResumeTests(ResumeChain chain)
{
    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);

    private const int SigTerm = 15;

    private static string[] Pretrain(string outDir, string run) => ResumeJobs.Pretrain(outDir, run);

    private static string[] ControlPpo(string run) => ResumeJobs.ControlPpo(run);

    private static string[] Command(string trainer, string outDir, string run) => ResumeJobs.Command(trainer, outDir, run);

    private static string[] ResumeArgs(string trainer) => ResumeJobs.ResumeArgs(trainer);

    private static string Output(string trainer, string outDir, string run) => ResumeJobs.Output(trainer, outDir, run);

    public static TheoryData<string> Trainers => [.. ResumeJobs.Trainers];

    [Theory]
    [MemberData(nameof(Trainers))]
    public void KilledTwiceThenResumed_EqualsAnUninterruptedRun(string trainer)
    {
        string straight = $"{trainer}-straight", killed = $"{trainer}-killed";
        Rlhf(chain.Dir, Command(trainer, straight, $"runs/{straight}"));

        // SIGKILL just after the first and just after a later checkpoint; each resume names the run folder and nothing else.
        var first = StartAndSignal(Command(trainer, killed, $"runs/{killed}"), $"runs/{killed}", checkpoints: 1, signal: null);
        Assert.True(first.Killed, $"{trainer}: the run ended before it could be killed");
        var second = StartAndSignal(["rlhf-resume", trainer, "--resume", "--run", $"runs/{killed}"], $"runs/{killed}", checkpoints: 2, signal: null);
        Assert.True(second.Killed, $"{trainer}: the resumed run ended before it could be killed");
        Rlhf(chain.Dir, [.. ResumeArgs(trainer), "--resume", "--run", $"runs/{killed}"]);

        AssertSameRun(trainer, straight, killed);
    }

    [Theory]
    [MemberData(nameof(Trainers))]
    public void StoppedBySigtermThenResumed_EqualsAnUninterruptedRun(string trainer)
    {
        string straight = $"{trainer}-straight2", stopped = $"{trainer}-term";
        Rlhf(chain.Dir, Command(trainer, straight, $"runs/{straight}"));
        var run = StartAndSignal(Command(trainer, stopped, $"runs/{stopped}"), $"runs/{stopped}", checkpoints: 1, signal: SigTerm);
        // SIGTERM is answered like Ctrl-C: a checkpoint, a line naming it, exit code 128 + 15.
        Assert.Equal(143, run.ExitCode);
        Assert.Contains("SIGTERM", run.Stderr);
        Assert.False(Directory.Exists(Path.Combine(chain.Dir, Output(trainer, stopped, $"runs/{stopped}"))), "a stopped run must not write its output folder");
        Rlhf(chain.Dir, [.. ResumeArgs(trainer), "--resume", "--run", $"runs/{stopped}"]);
        AssertSameRun(trainer, straight, stopped);
    }

    [Fact]
    public void Resume_RefusesAContradictingOption_AndAFinishedRunHasNothingToDo()
    {
        string outDir = "contra", run = "runs/contra";
        var started = StartAndSignal(Pretrain(outDir, run), run, checkpoints: 1, signal: null);
        Assert.True(started.Killed);
        var refused = RlhfExpectingFailure(chain.Dir, ["pretrain", "--resume", "--run", run, "--steps", "40"]);
        Assert.Contains("--steps 40 contradicts the run, which was started with --steps 30", refused);
        // Repeating an option with the value the run was started with is fine, and so is the default run folder of --out.
        Rlhf(chain.Dir, ["pretrain", "--resume", "--out", outDir, "--run", run, "--steps", "30", "--threads", "1"]);
        Assert.True(File.Exists(Path.Combine(chain.Dir, outDir, "model.safetensors")));
        var again = RunProcess(chain.Dir, ["pretrain", "--resume", "--run", run]);
        Assert.Equal(0, again.ExitCode);
        Assert.Contains("nothing to do", again.Stderr);
        var wrongCommand = RlhfExpectingFailure(chain.Dir, ["sft", "--resume", "--run", run]);
        Assert.Contains("was started by `rlhf pretrain`", wrongCommand);
    }

    [Fact]
    public void Rl_ResumeByItsOutAlias_RefusesAContradiction_AndARerunIntoTheFolder()
    {
        string run = "runs/rl-contra";
        var started = StartAndSignal(ControlPpo(run), run, checkpoints: 1, signal: null);
        Assert.True(started.Killed);
        var refused = RlhfExpectingFailure(chain.Dir, ["rl", "--resume", "--out", run, "--steps", "8192"]);
        Assert.Contains("--total-timesteps 8192 contradicts the run, which was started with --total-timesteps 4096", refused);
        // Starting a new run in the folder would append a second history to its metrics: refused.
        var rerun = RlhfExpectingFailure(chain.Dir, ControlPpo(run));
        Assert.Contains("already holds a run", rerun);
        Rlhf(chain.Dir, ["rl", "--resume", "--out", run]);
        Assert.True(File.Exists(Path.Combine(chain.Dir, run, "policy", "model.safetensors")));
        Assert.True(File.Exists(Path.Combine(chain.Dir, run, "report.html")));
        var again = RunProcess(chain.Dir, ["rl", "--resume", "--run", run]);
        Assert.Equal(0, again.ExitCode);
        Assert.Contains("nothing to do", again.Stderr);
    }

    private void AssertSameRun(string trainer, string straight, string resumed)
    {
        string dir = chain.Dir;
        foreach (var (a, b) in ResumeJobs.Weights(trainer, straight, $"runs/{straight}").Zip(ResumeJobs.Weights(trainer, resumed, $"runs/{resumed}")))
            Assert.Equal(GoldenJobs.HashFile(Path.Combine(dir, a)), GoldenJobs.HashFile(Path.Combine(dir, b)));
        Assert.Equal(GoldenJobs.HashMetrics(Path.Combine(dir, "runs", straight, "metrics.jsonl")), GoldenJobs.HashMetrics(Path.Combine(dir, "runs", resumed, "metrics.jsonl")));
        Assert.Equal("finished", Runs.RunDirectory.ReadStatus(Path.Combine(dir, "runs", resumed))?.State);
    }

    private sealed record Signalled(bool Killed, int ExitCode, string Stderr);

    /// <summary>
    /// Starts `rlhf args` and, once the run folder holds <paramref name="checkpoints"/> more completed checkpoints than when
    /// it started, sends SIGKILL (signal null) or the given signal; returns whether the process was still running then.
    /// An args list starting with "rlhf-resume" runs the rest with the resume form (trainer, --resume, --run).
    /// </summary>
    private Signalled StartAndSignal(string[] args, string run, int checkpoints, int? signal)
    {
        if (args[0] == "rlhf-resume") args = [.. ResumeArgs(args[1]), .. args[2..]];
        string checkpointDir = Path.Combine(chain.Dir, run, "checkpoints");
        int Completed() => Directory.Exists(checkpointDir) ? Directory.GetDirectories(checkpointDir, "step-*").Count(d => !Path.GetFileName(d).Contains('.')) : 0;
        int before = Completed();
        using var process = Start(chain.Dir, args);
        var stderr = process.StandardError.ReadToEndAsync();
        _ = process.StandardOutput.ReadToEndAsync();
        var clock = Stopwatch.StartNew();
        while (!process.HasExited && Completed() < before + checkpoints && clock.Elapsed < TimeSpan.FromMinutes(3)) Thread.Sleep(5);
        bool running = !process.HasExited;
        if (running)
        {
            if (signal is int s) Assert.Equal(0, kill(process.Id, s));
            else process.Kill();
        }
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(3)), "the signalled process did not exit");
        return new Signalled(running, process.ExitCode, stderr.GetAwaiter().GetResult());
    }

    private static Process Start(string dir, string[] args) => ResumeJobs.Start(dir, args);

    private static (int ExitCode, string Stderr) RunProcess(string dir, string[] args) => ResumeJobs.RunProcess(dir, args);

    /// <summary>Runs `rlhf args` in <paramref name="dir"/> to the end; a non-zero exit fails with its standard error.</summary>
    private static void Rlhf(string dir, string[] args)
    {
        var (exit, stderr) = RunProcess(dir, args);
        if (exit != 0) throw new Xunit.Sdk.XunitException($"rlhf {string.Join(' ', args)} exited {exit}: {stderr}");
    }

    private static string RlhfExpectingFailure(string dir, string[] args)
    {
        var (exit, stderr) = RunProcess(dir, args);
        Assert.Equal(1, exit);
        return stderr;
    }
}
