// Settings of `rlhf compare`: which methods, tasks and seeds, the budget, and the few knobs every method shares so the
// comparison is apples to apples (completions per step, completion length, learning rate, group size). Each field is
// documented once here; the CLI's options and help come from it.
using System.Text.Json.Serialization;
using RlhfSharp.Runs;

namespace RlhfSharp.Alignment.Comparison;

public sealed record CompareConfig
{
    [ConfigOption("Methods, comma-separated: ppo, rloo, grpo, dr_grpo, dapo, online_dpo, dpo, ipo, kto, simpo, best_of_n, expert_iteration.")]
    public string Methods { get; init; } = string.Join(",", ComparisonMethods.All);

    [ConfigOption("Tasks, comma-separated: story, sentiment, arithmetic.")]
    public string Tasks { get; init; } = string.Join(",", ComparisonTask.Names);

    [ConfigOption("Seeds per method × task (seed, seed + 1, …).", Min = 1, Max = 100)]
    public int Seeds { get; init; } = 3;

    [ConfigOption("First seed.", Min = 0)]
    public ulong Seed { get; init; } = 1;

    [ConfigOption("Wall-clock budget per method × task × seed in seconds, turned into a step count per method × task by timing a few steps here (0: every method runs --steps steps).", Min = 0)]
    [JsonPropertyName("budget_seconds")]
    public double BudgetSeconds { get; init; } = 60;

    [ConfigOption("Steps of every method when the budget is 0 (best-of-N: N; expert iteration: rounds).", Min = 1)]
    public int Steps { get; init; } = 20;

    [ConfigOption("k: the calibration times 1 step and 1 + k steps of each method; the difference over k is its seconds per step.", Min = 1, Max = 50)]
    [JsonPropertyName("calibration_steps")]
    public int CalibrationSteps { get; init; } = 4;

    [ConfigOption("Most steps the planner gives a method (best-of-N: most N).", Min = 1)]
    [JsonPropertyName("max_steps")]
    public int MaxSteps { get; init; } = 500;

    [ConfigOption("Completions every method scores per step (PPO/RLOO/GRPO episodes, online DPO 2 × prompts, DPO-family 2 × pairs, KTO examples).", Min = 2, Max = 4096)]
    [JsonPropertyName("batch_size")]
    public int BatchSize { get; init; } = 16;

    [ConfigOption("G: completions per prompt of GRPO, Dr. GRPO, DAPO, RLOO's k and expert iteration's N; divides the batch size.", Min = 2, Max = 64)]
    [JsonPropertyName("group_size")]
    public int GroupSize { get; init; } = 4;

    [ConfigOption("Completion length limit in tokens, for training and evaluation.", Name = "--max-new-tokens", Min = 1, Max = 4096)]
    [JsonPropertyName("max_new_tokens")]
    public int MaxNewTokens { get; init; } = 32;

    [ConfigOption("AdamW learning rate of every method (one untuned setting for all).", Name = "--lr", Min = 0, MinExclusive = true, Max = 1)]
    [JsonPropertyName("learning_rate")]
    public float LearningRate { get; init; } = 1e-4f;

    [ConfigOption("PPO's adaptive-β target KL per episode, nats (Ziegler's controller from β 0.05).", Min = 0, MinExclusive = true)]
    [JsonPropertyName("target_kl")]
    public double TargetKl { get; init; } = 4;

    [ConfigOption("Ziegler's horizon (episodes) of PPO's adaptive β.", Min = 0, MinExclusive = true)]
    [JsonPropertyName("kl_horizon")]
    public double KlHorizon { get; init; } = 1000;

    [ConfigOption("RLOO's fixed β of the KL penalty in its reward (TRL's kl_coef 0.05).", Min = 0)]
    [JsonPropertyName("rloo_beta")]
    public double RlooBeta { get; init; } = 0.05;

    [ConfigOption("β of online DPO, DPO, IPO and KTO (TRL: 0.1).", Min = 0, MinExclusive = true)]
    [JsonPropertyName("dpo_beta")]
    public float DpoBeta { get; init; } = 0.1f;

    [ConfigOption("SimPO's β (paper: 2–2.5; γ is DpoConfig's default).", Min = 0, MinExclusive = true)]
    [JsonPropertyName("simpo_beta")]
    public float SimPoBeta { get; init; } = 2f;

    [ConfigOption("Training prompts per task.", Min = 1)]
    [JsonPropertyName("train_prompts")]
    public int TrainPrompts { get; init; } = 1000;

    [ConfigOption("Held-out prompts per task, the same for every method and seed.", Min = 1)]
    [JsonPropertyName("eval_prompts")]
    public int EvalPrompts { get; init; } = 64;

    [ConfigOption("Samples per held-out problem for pass@1 on the verifiable task (Chen et al.'s estimator).", Min = 1, Max = 256)]
    [JsonPropertyName("pass_samples")]
    public int PassSamples { get; init; } = 4;

    /// <summary>The methods as a list, validated.</summary>
    public IReadOnlyList<string> MethodList() => Split(Methods, ComparisonMethods.All, "methods");

    /// <summary>The tasks as a list, validated.</summary>
    public IReadOnlyList<string> TaskList() => Split(Tasks, ComparisonTask.Names, "tasks");

    public void Validate()
    {
        MethodList();
        TaskList();
        void Check(bool ok, string what) { if (!ok) throw new ArgumentException($"compare config: {what}."); }
        Check(BatchSize % GroupSize == 0, $"batch_size {BatchSize} must be a multiple of group_size {GroupSize}");
        Check(BatchSize % 2 == 0, $"batch_size {BatchSize} must be even (online DPO and the DPO family score completions in pairs)");
        Check(Seeds >= 1 && Steps >= 1 && MaxSteps >= 1 && CalibrationSteps >= 1, "seeds, steps, max_steps and calibration_steps must be ≥ 1");
        Check(BudgetSeconds >= 0 && double.IsFinite(BudgetSeconds), $"budget_seconds {BudgetSeconds} must be a finite number ≥ 0");
    }

    private static List<string> Split(string value, IReadOnlyList<string> known, string field)
    {
        var list = value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
        if (list.Count == 0) throw new ArgumentException($"compare config: {field} is empty; choose from {string.Join(", ", known)}.");
        foreach (string x in list)
            if (!known.Contains(x)) throw new ArgumentException($"compare config: {field}: unknown \"{x}\"; choose from {string.Join(", ", known)}.");
        if (list.Distinct().Count() != list.Count) throw new ArgumentException($"compare config: {field} names one twice ({value}).");
        return list;
    }
}
