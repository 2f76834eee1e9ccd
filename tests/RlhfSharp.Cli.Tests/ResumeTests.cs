// The run contract end to end (issue 16): each trainer, run as the real `rlhf` process, is killed with SIGKILL at two
// checkpoints and resumed with `--resume --run RUN` alone, or stopped with SIGTERM and resumed; its final weights and its
// metrics (timing fields aside) must be byte-identical to an uninterrupted run of the same command. The trainers: the
// language-model ones (pretrain, sft, reward, dpo, ppo, grpo with DAPO's settings, online-dpo, kto, dpo --loss-type orpo) and control PPO and REINFORCE (`rl`, `rl --algo reinforce`, whose
// run folder is also its output). Also: an option that contradicts the run is refused naming both values, and a finished
// run has nothing to do.
using System.Diagnostics;
using System.Runtime.InteropServices;
using RlhfSharp.Golden;

namespace RlhfSharp.Cli.Tests;

/// <summary>The SFT chain the trainers start from, built once in a temporary folder.</summary>
public sealed class ResumeChain : IDisposable
{
    public ResumeChain()
    {
        Dir = Path.Combine(Path.GetTempPath(), "rlhf-resume-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Dir);
        GoldenJobs.WritePreferences(Path.Combine(Dir, GoldenJobs.PreferencesFile));
        // KTO's unpaired form of the same pairs: each chosen completion desirable, each rejected one not.
        File.WriteAllLines(Path.Combine(Dir, ResumeTests.UnpairedFile), File.ReadAllLines(Path.Combine(Dir, GoldenJobs.PreferencesFile)).SelectMany(line =>
        {
            var o = System.Text.Json.Nodes.JsonNode.Parse(line)!;
            string prompt = o["prompt"]!.GetValue<string>();
            return new[]
            {
                System.Text.Json.JsonSerializer.Serialize(new { prompt, completion = o["chosen"]!.GetValue<string>(), label = true }),
                System.Text.Json.JsonSerializer.Serialize(new { prompt, completion = o["rejected"]!.GetValue<string>(), label = false }),
            };
        }));
        ResumeTests.Rlhf(Dir, [.. ResumeTests.Pretrain("base", "runs/base")]);
        ResumeTests.Rlhf(Dir, [.. ResumeTests.Sft("sft", "runs/sft-base")]);
        ResumeTests.Rlhf(Dir, ["reward", "train", "--model", "sft", "--data", GoldenJobs.PreferencesFile, "--batch-size", "8", "--normalization-samples", "16",
            "--seed", "3", "--out", "rm", "--run", "runs/rm"]);
    }

    public string Dir { get; }

    public void Dispose()
    {
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { }
    }
}

[Collection("resume")]
public sealed class ResumeTests(ResumeChain chain) : IClassFixture<ResumeChain>
{
    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int signal);

    private const int SigTerm = 15;

    internal const string UnpairedFile = "unpaired.jsonl";

    internal static string[] Pretrain(string outDir, string run) =>
        ["pretrain", "--stories", "300", "--vocab-size", "512", "--steps", "30", "--batch-size", "8", "--eval-interval", "15",
            "--checkpoint-interval", "4", "--seed", "3", "--out", outDir, "--run", run];

    internal static string[] Sft(string outDir, string run) =>
        ["sft", "--model", "base", "--demos", "200", "--steps", "20", "--batch-size", "8", "--eval-interval", "10",
            "--checkpoint-interval", "3", "--seed", "3", "--out", outDir, "--run", run];

    private static string[] Reward(string outDir, string run) =>
        ["reward", "train", "--model", "sft", "--data", GoldenJobs.PreferencesFile, "--batch-size", "8", "--members", "2",
            "--normalization-samples", "16", "--checkpoint-interval", "2", "--seed", "3", "--out", outDir, "--run", run];

    private static string[] Dpo(string outDir, string run) =>
        ["dpo", "--model", "sft", "--data", GoldenJobs.PreferencesFile, "--batch-size", "8", "--checkpoint-interval", "2", "--seed", "3",
            "--out", outDir, "--run", run];

    private static string[] Ppo(string outDir, string run) =>
        ["ppo", "--policy", "sft", "--reward", "rm", "--steps", "6", "--batch-size", "8", "--minibatch-size", "4", "--ppo-epochs", "2",
            "--max-new-tokens", "16", "--checkpoint-interval", "1", "--seed", "3", "--out", outDir, "--run", run];

    // GRPO against the reward model with DAPO's settings (dynamic sampling re-lays batches out), a checkpoint every step.
    private static string[] Grpo(string outDir, string run) =>
        ["grpo", "--policy", "sft", "--reward", "rm", "--variant", "dapo", "--steps", "6", "--generation-batch-size", "8", "--num-generations", "4",
            "--minibatch-size", "4", "--max-new-tokens", "16", "--checkpoint-interval", "1", "--keep-checkpoints", "0", "--seed", "3", "--out", outDir, "--run", run];

    private static string[] OnlineDpo(string outDir, string run) =>
        ["online-dpo", "--policy", "sft", "--judge", "rm", "--steps", "6", "--batch-size", "4", "--max-new-tokens", "16", "--checkpoint-interval", "1",
            "--seed", "3", "--out", outDir, "--run", run];

    private static string[] Kto(string outDir, string run) =>
        ["kto", "--model", "sft", "--data", UnpairedFile, "--batch-size", "8", "--checkpoint-interval", "2", "--seed", "3", "--out", outDir, "--run", run];

    private static string[] Orpo(string outDir, string run) =>
        ["dpo", "--loss-type", "orpo", "--model", "sft", "--data", GoldenJobs.PreferencesFile, "--batch-size", "8", "--checkpoint-interval", "2", "--seed", "3",
            "--out", outDir, "--run", run];

    // Control PPO on CartPole (16 updates of 8 × 32 steps) and REINFORCE (batches of 4 episodes), a checkpoint every update.
    private static string[] ControlPpo(string run) =>
        ["rl", "--env", "CartPole-v1", "--steps", "4096", "--checkpoint-interval", "1", "--seed", "3", "--run", run];

    private static string[] ControlReinforce(string run) =>
        ["rl", "--algo", "reinforce", "--env", "CartPole-v1", "--steps", "6000", "--num-envs", "4", "--checkpoint-interval", "1", "--seed", "3", "--out", run];

    public static TheoryData<string> Trainers => ["pretrain", "sft", "reward", "dpo", "ppo", "rl", "rl-reinforce", "grpo", "online-dpo", "kto", "orpo"];

    private static string[] Command(string trainer, string outDir, string run) => trainer switch
    {
        "pretrain" => Pretrain(outDir, run),
        "sft" => Sft(outDir, run),
        "reward" => Reward(outDir, run),
        "dpo" => Dpo(outDir, run),
        "ppo" => Ppo(outDir, run),
        "grpo" => Grpo(outDir, run),
        "online-dpo" => OnlineDpo(outDir, run),
        "kto" => Kto(outDir, run),
        "orpo" => Orpo(outDir, run),
        "rl" => ControlPpo(run),
        "rl-reinforce" => ControlReinforce(run),
        _ => throw new ArgumentException(trainer),
    };

    /// <summary>Where a trainer writes its result: the --out folder, or for the control trainers RUN/policy.</summary>
    private static string Output(string trainer, string outDir, string run) => trainer.StartsWith("rl", StringComparison.Ordinal) ? Path.Combine(run, "policy") : outDir;

    /// <summary>The weights files each trainer's output folder holds (an ensemble of two: member 0 at the top, member 1 below).</summary>
    private static string[] Weights(string trainer, string outDir, string run)
    {
        string output = Output(trainer, outDir, run);
        return trainer == "reward"
            ? [Path.Combine(output, "model.safetensors"), Path.Combine(output, "member-1", "model.safetensors")]
            : [Path.Combine(output, "model.safetensors")];
    }

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

    private static string[] ResumeArgs(string trainer) => trainer switch
    {
        "reward" => ["reward", "train"],
        "rl-reinforce" => ["rl"],
        "orpo" => ["dpo"],
        _ => [trainer],
    };

    private void AssertSameRun(string trainer, string straight, string resumed)
    {
        string dir = chain.Dir;
        foreach (var (a, b) in Weights(trainer, straight, $"runs/{straight}").Zip(Weights(trainer, resumed, $"runs/{resumed}")))
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

    private static Process Start(string dir, string[] args)
    {
        var start = new ProcessStartInfo(GoldenJobs.DotnetHost())
        {
            WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        start.ArgumentList.Add(GoldenJobs.FindRlhf());
        foreach (var a in args) start.ArgumentList.Add(a);
        return Process.Start(start) ?? throw new InvalidOperationException("could not start rlhf");
    }

    private static (int ExitCode, string Stderr) RunProcess(string dir, string[] args)
    {
        using var process = Start(dir, args);
        var stderr = process.StandardError.ReadToEndAsync();
        _ = process.StandardOutput.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(5))) { process.Kill(); throw new TimeoutException($"rlhf {string.Join(' ', args)} did not finish"); }
        return (process.ExitCode, stderr.GetAwaiter().GetResult());
    }

    /// <summary>Runs `rlhf args` in <paramref name="dir"/> to the end; a non-zero exit fails with its standard error.</summary>
    internal static void Rlhf(string dir, string[] args)
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
