// The trainers' short, seeded commands that the resume tests and the fault-injection suite run as real `rlhf` processes,
// with the SFT chain they start from. Each command checkpoints often (every update or every few steps) so that an
// interruption at any moment has a checkpoint to continue from.
using System.Diagnostics;
using RlhfSharp.Golden;

namespace RlhfSharp.Faults;

public static class ResumeJobs
{
    /// <summary>Every trainer the run contract covers, by the name the tests use.</summary>
    public static IReadOnlyList<string> Trainers { get; } =
        ["pretrain", "sft", "reward", "dpo", "ppo", "rl", "rl-reinforce", "prefrl", "grpo", "online-dpo", "kto", "orpo", "rft"];

    /// <summary>KTO's unpaired form of the preference pairs (written by <see cref="BuildChain"/>).</summary>
    public const string UnpairedFile = "unpaired.jsonl";

    public static string[] Pretrain(string outDir, string run) =>
        ["pretrain", "--stories", "300", "--vocab-size", "512", "--steps", "30", "--batch-size", "8", "--eval-interval", "15",
            "--checkpoint-interval", "4", "--seed", "3", "--out", outDir, "--run", run];

    public static string[] Sft(string outDir, string run) =>
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

    /// <summary>GRPO against the reward model with DAPO's settings (dynamic sampling re-lays batches out), a checkpoint every step.</summary>
    private static string[] Grpo(string outDir, string run) =>
        ["grpo", "--policy", "sft", "--reward", "rm", "--variant", "dapo", "--steps", "6", "--generation-batch-size", "8", "--num-generations", "4",
            "--minibatch-size", "4", "--max-new-tokens", "16", "--checkpoint-interval", "1", "--keep-checkpoints", "0", "--seed", "3", "--out", outDir, "--run", run];

    /// <summary>Expert iteration against the story world's gold scorer, 5 rounds, a checkpoint before round 1 and after each round.</summary>
    private static string[] Rft(string outDir, string run) =>
        ["rft", "--policy", "sft", "--gold", "--rounds", "5", "--prompts-per-round", "4", "--samples", "2", "--sft-steps-per-round", "2", "--batch-size", "4",
            "--max-new-tokens", "12", "--held-out-prompts", "4", "--keep-checkpoints", "0", "--seed", "3", "--out", outDir, "--run", run];

    private static string[] OnlineDpo(string outDir, string run) =>
        ["online-dpo", "--policy", "sft", "--judge", "rm", "--steps", "6", "--batch-size", "4", "--max-new-tokens", "16", "--checkpoint-interval", "1",
            "--seed", "3", "--out", outDir, "--run", run];

    private static string[] Kto(string outDir, string run) =>
        ["kto", "--model", "sft", "--data", UnpairedFile, "--batch-size", "8", "--checkpoint-interval", "2", "--seed", "3", "--out", outDir, "--run", run];

    private static string[] Orpo(string outDir, string run) =>
        ["dpo", "--loss-type", "orpo", "--model", "sft", "--data", GoldenJobs.PreferencesFile, "--batch-size", "8", "--checkpoint-interval", "2", "--seed", "3",
            "--out", outDir, "--run", run];

    /// <summary>Control PPO on CartPole (16 updates of 8 × 32 steps), a checkpoint every update.</summary>
    public static string[] ControlPpo(string run) =>
        ["rl", "--env", "CartPole-v1", "--steps", "4096", "--checkpoint-interval", "1", "--seed", "3", "--run", run];

    private static string[] ControlReinforce(string run) =>
        ["rl", "--algo", "reinforce", "--env", "CartPole-v1", "--steps", "6000", "--num-envs", "4", "--checkpoint-interval", "1", "--seed", "3", "--out", run];

    /// <summary>
    /// The Christiano loop on CartPole (16 updates, labels asked between them), a checkpoint every update: its checkpoints
    /// hold the segment pool, the predictor and the oracle's position besides PPO's state.
    /// </summary>
    private static string[] PrefRl(string run) =>
        ["prefrl", "--env", "CartPole-v1", "--labels", "20", "--steps", "4096", "--checkpoint-interval", "1", "--seed", "3", "--run", run];

    /// <summary>The command that starts <paramref name="trainer"/> with its output in <paramref name="outDir"/> and its run folder <paramref name="run"/>.</summary>
    public static string[] Command(string trainer, string outDir, string run) => trainer switch
    {
        "pretrain" => Pretrain(outDir, run),
        "sft" => Sft(outDir, run),
        "reward" => Reward(outDir, run),
        "dpo" => Dpo(outDir, run),
        "ppo" => Ppo(outDir, run),
        "rl" => ControlPpo(run),
        "rl-reinforce" => ControlReinforce(run),
        "prefrl" => PrefRl(run),
        "grpo" => Grpo(outDir, run),
        "online-dpo" => OnlineDpo(outDir, run),
        "kto" => Kto(outDir, run),
        "orpo" => Orpo(outDir, run),
        "rft" => Rft(outDir, run),
        _ => throw new ArgumentException($"unknown trainer '{trainer}'; known: {string.Join(", ", Trainers)}."),
    };

    /// <summary>The command words a resume starts with (`rlhf reward train --resume ...`).</summary>
    public static string[] ResumeArgs(string trainer) => trainer switch
    {
        "reward" => ["reward", "train"],
        "rl-reinforce" => ["rl"],
        "orpo" => ["dpo"],
        _ => [trainer],
    };

    /// <summary>Where a trainer writes its result: the --out folder, or for the control trainers RUN/policy.</summary>
    public static string Output(string trainer, string outDir, string run) =>
        trainer.StartsWith("rl", StringComparison.Ordinal) || trainer == "prefrl" ? Path.Combine(run, "policy") : outDir;

    /// <summary>The weights files each trainer's output folder holds (an ensemble of two: member 0 at the top, member 1 below).</summary>
    public static string[] Weights(string trainer, string outDir, string run)
    {
        string output = Output(trainer, outDir, run);
        return trainer == "reward"
            ? [Path.Combine(output, "model.safetensors"), Path.Combine(output, "member-1", "model.safetensors")]
            : [Path.Combine(output, "model.safetensors")];
    }

    /// <summary>Hashes of a finished run: each weights file's, then its metrics' (timing fields aside).</summary>
    public static string[] Hashes(string dir, string trainer, string outDir, string run) =>
        [.. Weights(trainer, outDir, run).Select(w => GoldenJobs.HashFile(Path.Combine(dir, w))),
            GoldenJobs.HashMetrics(Path.Combine(dir, run, "metrics.jsonl"))];

    /// <summary>Writes the preference pairs and builds the models the trainers start from (base, sft, rm) in <paramref name="dir"/>.</summary>
    public static void BuildChain(string dir)
    {
        Directory.CreateDirectory(dir);
        GoldenJobs.WritePreferences(Path.Combine(dir, GoldenJobs.PreferencesFile));
        // KTO's unpaired form of the same pairs: each chosen completion desirable, each rejected one not.
        File.WriteAllLines(Path.Combine(dir, UnpairedFile), File.ReadAllLines(Path.Combine(dir, GoldenJobs.PreferencesFile)).SelectMany(line =>
        {
            var o = System.Text.Json.Nodes.JsonNode.Parse(line)!;
            string prompt = o["prompt"]!.GetValue<string>();
            return new[]
            {
                System.Text.Json.JsonSerializer.Serialize(new { prompt, completion = o["chosen"]!.GetValue<string>(), label = true }),
                System.Text.Json.JsonSerializer.Serialize(new { prompt, completion = o["rejected"]!.GetValue<string>(), label = false }),
            };
        }));
        Run(dir, Pretrain("base", "runs/base"));
        Run(dir, Sft("sft", "runs/sft-base"));
        Run(dir, ["reward", "train", "--model", "sft", "--data", GoldenJobs.PreferencesFile, "--batch-size", "8", "--normalization-samples", "16",
            "--seed", "3", "--out", "rm", "--run", "runs/rm"]);
    }

    /// <summary>Starts `rlhf args` in <paramref name="dir"/> with both pipes redirected.</summary>
    public static Process Start(string dir, IReadOnlyList<string> args)
    {
        var start = new ProcessStartInfo(GoldenJobs.DotnetHost())
        {
            WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        start.ArgumentList.Add(GoldenJobs.FindRlhf());
        foreach (var a in args) start.ArgumentList.Add(a);
        return Process.Start(start) ?? throw new InvalidOperationException("could not start rlhf");
    }

    /// <summary>Runs `rlhf args` to the end; returns its exit code and standard error.</summary>
    public static (int ExitCode, string Stderr) RunProcess(string dir, IReadOnlyList<string> args, TimeSpan? timeout = null)
    {
        using var process = Start(dir, args);
        var stderr = process.StandardError.ReadToEndAsync();
        _ = process.StandardOutput.ReadToEndAsync();
        if (!process.WaitForExit(timeout ?? TimeSpan.FromMinutes(5)))
        {
            process.Kill();
            throw new TimeoutException($"rlhf {string.Join(' ', args)} did not finish");
        }
        return (process.ExitCode, stderr.GetAwaiter().GetResult());
    }

    /// <summary>Runs `rlhf args` to the end; a non-zero exit throws with its standard error.</summary>
    public static void Run(string dir, IReadOnlyList<string> args)
    {
        var (exit, stderr) = RunProcess(dir, args);
        if (exit != 0) throw new InvalidOperationException($"rlhf {string.Join(' ', args)} exited {exit}: {stderr}");
    }
}
