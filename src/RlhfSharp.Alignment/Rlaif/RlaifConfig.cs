// Settings of `rlhf rlaif`: how many comparisons the judge learns from (n) and how many label the reward model (N), the
// judge's fine-tuning, and the budget every condition shares (reward-model epochs, PPO steps and batch, β's controller,
// completion length, evaluation prompts). Each field is documented once here; the CLI's options and help come from it.
using System.Text.Json.Serialization;
using RlhfSharp.Runs;

namespace RlhfSharp.Alignment.Rlaif;

public sealed record RlaifConfig
{
    [ConfigOption("n: oracle-labelled comparisons the judge is trained on; condition (c) trains its reward model on these same labels.", Min = 4)]
    [JsonPropertyName("judge_pairs")]
    public int JudgePairs { get; init; } = 300;

    [ConfigOption("N: comparisons labelled by the judge for condition (a) and by the oracle for condition (b) (the same N response pairs).", Min = 4)]
    [JsonPropertyName("pairs")]
    public int Pairs { get; init; } = 1000;

    [ConfigOption("Seeds (seed, seed + 1, …); each seed samples its own pairs, trains its own judge, reward models and policies.", Min = 1, Max = 100)]
    public int Seeds { get; init; } = 3;

    [ConfigOption("First seed.", Min = 0)]
    public ulong Seed { get; init; } = 1;

    [ConfigOption("Judge fine-tuning steps (SFT on the verdict, both orders of every pair).", Min = 1)]
    [JsonPropertyName("judge_steps")]
    public int JudgeSteps { get; init; } = 300;

    [ConfigOption("Judge fine-tuning batch size (examples per step).", Min = 1)]
    [JsonPropertyName("judge_batch_size")]
    public int JudgeBatchSize { get; init; } = 16;

    [ConfigOption("Judge fine-tuning learning rate (`rlhf judge train`'s default).", Min = 0, MinExclusive = true, Max = 1)]
    [JsonPropertyName("judge_lr")]
    public float JudgeLearningRate { get; init; } = 1e-3f;

    [ConfigOption("Reward-model epochs over each condition's labels (the same for all three).", Min = 1)]
    [JsonPropertyName("reward_epochs")]
    public int RewardEpochs { get; init; } = 2;

    [ConfigOption("Held-out response pairs, ordered by gold (equal scores left out), every reward model's accuracy is measured on.", Min = 1)]
    [JsonPropertyName("reward_eval_pairs")]
    public int RewardEvalPairs { get; init; } = 200;

    [ConfigOption("PPO rollout batches per condition.", Min = 1)]
    [JsonPropertyName("ppo_steps")]
    public int PpoSteps { get; init; } = 20;

    [ConfigOption("Episodes per PPO rollout batch.", Min = 2)]
    [JsonPropertyName("ppo_batch_size")]
    public int PpoBatchSize { get; init; } = 16;

    [ConfigOption("PPO's learning rate (policy and value model; the demo's).", Min = 0, MinExclusive = true, Max = 1)]
    [JsonPropertyName("ppo_lr")]
    public float PpoLearningRate { get; init; } = 5e-4f;

    [ConfigOption("β at the start of PPO's adaptive-β run (the demo's).", Min = 0)]
    [JsonPropertyName("init_kl_coef")]
    public double InitialKlCoef { get; init; } = 0.2;

    [ConfigOption("Target KL per episode (nats) of Ziegler's controller; its horizon is a tenth of the run's episodes, as in the demo.", Min = 0, MinExclusive = true)]
    [JsonPropertyName("target_kl")]
    public double TargetKl { get; init; } = 4;

    [ConfigOption("Longest response (tokens) sampled for pairs, PPO rollouts and evaluation.", Name = "--max-new-tokens", Min = 1, Max = 4096)]
    [JsonPropertyName("max_new_tokens")]
    public int MaxNewTokens { get; init; } = 24;

    [ConfigOption("Held-out prompts each policy is judged on by the gold scorer against the SFT model (the same prompts and SFT samples for every condition of a seed).", Min = 1)]
    [JsonPropertyName("eval_prompts")]
    public int EvalPrompts { get; init; } = 128;

    public void Validate() => ConfigRanges.Validate(this, "rlaif config");
}
