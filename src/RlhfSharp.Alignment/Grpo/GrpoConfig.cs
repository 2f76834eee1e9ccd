// Configuration of GRPO and its variants (Dr. GRPO, DAPO). Names and defaults follow TRL's GRPOConfig
// (trl/trainer/grpo_config.py: num_generations, beta, epsilon, epsilon_high, loss_type, scale_rewards,
// mask_truncated_completions, num_iterations) except where noted; each field is documented once here.
using System.Text.Json.Serialization;
using RlhfSharp.Objectives;
using RlhfSharp.Runs;

namespace RlhfSharp.Alignment.Grpo;

public sealed record GrpoConfig
{
    [ConfigOption("Rollout batches (policy iterations) to run.", Aliases = ["--max-steps"], Min = 1)]
    public int Steps { get; init; } = 100;

    [ConfigOption("Completions per rollout batch (prompts × G); a multiple of num_generations.", Aliases = ["--generation-batch-size"], Min = 1)]
    [JsonPropertyName("generation_batch_size")]
    public int BatchSize { get; init; } = 64;

    [ConfigOption("G: completions sampled per prompt, the group whose rewards normalise each other (TRL: 8).", Min = 2)]
    [JsonPropertyName("num_generations")]
    public int NumGenerations { get; init; } = 8;

    [ConfigOption("Completions per gradient step inside a rollout batch.", Name = "--minibatch-size", Aliases = ["--mini-batch-size"], Min = 1)]
    [JsonPropertyName("mini_batch_size")]
    public int MiniBatchSize { get; init; } = 32;

    [ConfigOption("μ: passes over each rollout batch (TRL num_iterations: 1).", Min = 1)]
    [JsonPropertyName("num_iterations")]
    public int NumIterations { get; init; } = 1;

    [ConfigOption("Completion length limit in tokens (L_max).", Name = "--max-new-tokens", Aliases = ["--max-completion-length"], Min = 1)]
    [JsonPropertyName("max_completion_length")]
    public int MaxNewTokens { get; init; } = 32;

    [ConfigOption("Sampling temperature; log-probabilities in the loss use the same temperature-scaled logits.", Min = 0, MinExclusive = true)]
    public float Temperature { get; init; } = 1f;

    [ConfigOption("AdamW learning rate (constant).", Name = "--lr", Aliases = ["--learning-rate"], Min = 0, MinExclusive = true)]
    public float LearningRate { get; init; } = 1e-5f;

    [ConfigOption("β of the k3 KL to the reference inside the loss (DeepSeekMath: 0.04; TRL's default is now 0); 0 loads no reference.", Min = 0)]
    public double Beta { get; init; } = GrpoLoss.DeepSeekMathBeta;

    [ConfigOption("ε (ε_low): the ratio's lower clip is 1 − ε.", Min = 0, MinExclusive = true)]
    public float Epsilon { get; init; } = 0.2f;

    [ConfigOption("ε_high: the ratio's upper clip is 1 + ε_high (DAPO's clip-higher: 0.28); unset = ε.", Min = 0, MinExclusive = true)]
    [JsonPropertyName("epsilon_high")]
    public float? EpsilonHigh { get; init; }

    [ConfigOption("How per-token losses are aggregated: grpo, bnpo, dr_grpo or dapo (Objectives.GrpoLoss).")]
    [JsonPropertyName("loss_type")]
    public GrpoLossType LossType { get; init; } = GrpoLossType.Grpo;

    [ConfigOption("Divide advantages by the group's reward std (Dr. GRPO turns this off).")]
    [JsonPropertyName("scale_rewards")]
    public bool ScaleRewards { get; init; } = true;

    [ConfigOption("Leave completions cut at the length limit (no EOS) out of the loss (DAPO).")]
    [JsonPropertyName("mask_truncated_completions")]
    public bool MaskTruncatedCompletions { get; init; }

    [ConfigOption("DAPO dynamic sampling: drop groups whose rewards are all equal and sample more prompts to refill the batch.")]
    [JsonPropertyName("dynamic_sampling")]
    public bool DynamicSampling { get; init; }

    [ConfigOption("Dynamic sampling: extra generation rounds per step at most before training on the groups kept (DAPO's max_num_gen_batches).", Min = 1)]
    [JsonPropertyName("max_num_gen_batches")]
    public int MaxGenerationRounds { get; init; } = 4;

    [ConfigOption("DAPO overlong shaping: L_cache, the soft-penalty interval before max_completion_length (0: off).", Aliases = ["--soft-punish-cache"], Min = 0)]
    [JsonPropertyName("overlong_buffer")]
    public int OverlongBuffer { get; init; }

    [ConfigOption("Gradient-norm clip.", Min = 0, MinExclusive = true)]
    public double MaxGradNorm { get; init; } = 1.0;

    [ConfigOption("Write a checkpoint every this many steps (0: only at the end and on cancellation).", Name = "--checkpoint-interval", Aliases = ["--save-steps"], Min = 0)]
    [JsonPropertyName("save_steps")]
    public int CheckpointInterval { get; init; } = 10;

    [ConfigOption("Checkpoints kept (0 keeps all).", Name = "--keep-checkpoints", Aliases = ["--save-total-limit"], Min = 0)]
    [JsonPropertyName("save_total_limit")]
    public int KeepCheckpoints { get; init; }

    [ConfigOption("Seed for prompt order and sampling.", Min = 0)]
    public ulong Seed { get; init; } = 1;

    [ConfigOption("Frozen weights (the reference and the reward model) held as f32 or bf16: bf16 rounds their matrices to nearest even and widens them to float32 when used (half their memory; the trainer narrows the models it is given in place).")]
    public RlhfSharp.Models.FrozenDtype FrozenDtype { get; init; }

    [ConfigOption("Activation checkpointing (HF: gradient_checkpointing): the training forward keeps only each block's input and backward recomputes the block; less memory, about a third more training compute, the same gradients bit for bit.", Name = "--activation-checkpointing", Aliases = ["--gradient-checkpointing"])]
    [JsonPropertyName("gradient_checkpointing")]
    public bool ActivationCheckpointing { get; init; }

    [ConfigOption("Slices each generation round and minibatch are cut into (sampling, scoring, gradients): under mpirun it follows -np (slice r on rank r), and one process with the same value gives the same bits (docs/distributed.md).", Min = 1)]
    public int GradShards { get; init; } = 1;

    /// <summary>The variant names <see cref="WithVariant"/> knows: grpo (DeepSeekMath), dr_grpo and dapo.</summary>
    public static IReadOnlyList<string> Variants { get; } = ["grpo", "dr_grpo", "dapo"];

    /// <summary>This configuration with the defaults of a published variant laid over it (grpo leaves it as it is).</summary>
    public GrpoConfig WithVariant(string variant) => variant switch
    {
        "grpo" => this,
        // Dr. GRPO (Liu et al. 2025): no std scaling of advantages, Σ over tokens / (B·L_max).
        "dr_grpo" => this with { LossType = GrpoLossType.DrGrpo, ScaleRewards = false },
        // DAPO (Yu et al. 2025): clip-higher, dynamic sampling, token-level loss, overlong shaping over the last quarter, no KL.
        "dapo" => this with
        {
            LossType = GrpoLossType.Dapo, EpsilonHigh = GrpoLoss.DapoEpsilonHigh, DynamicSampling = true, MaskTruncatedCompletions = true,
            OverlongBuffer = Math.Max(1, MaxNewTokens / 4), Beta = 0,
        },
        _ => throw new ArgumentException($"grpo: unknown variant \"{variant}\"; choose from {string.Join(", ", Variants)}."),
    };

    /// <summary>ε_high as used: the configured one, or ε.</summary>
    [JsonIgnore]
    public float UpperEpsilon => EpsilonHigh ?? Epsilon;

    /// <summary>Over-optimisation monitors (off unless Monitor.Every &gt; 0): see Evaluation.OverOptimisationMonitor.</summary>
    public Evaluation.MonitorConfig Monitor { get; init; } = new();

    public void Validate()
    {
        void Check(bool ok, string what) { if (!ok) throw new ArgumentException($"grpo config: {what}."); }
        ConfigRanges.Validate(Monitor, "grpo config: monitor");
        Check(Steps >= 1, $"steps {Steps} must be ≥ 1");
        Check(NumGenerations >= 2, $"num_generations {NumGenerations} must be ≥ 2 (a group needs two completions to compare)");
        Check(BatchSize >= NumGenerations && BatchSize % NumGenerations == 0, $"generation batch size {BatchSize} must be a positive multiple of num_generations {NumGenerations}");
        Check(MiniBatchSize >= 1 && MiniBatchSize <= BatchSize, $"minibatch size {MiniBatchSize} must lie in 1..{BatchSize}");
        Check(NumIterations >= 1, $"num_iterations {NumIterations} must be ≥ 1");
        Check(MaxNewTokens >= 1, $"max completion length {MaxNewTokens} must be ≥ 1");
        Check(Temperature > 0, $"temperature {Temperature} must be positive");
        Check(LearningRate > 0, $"learning rate {LearningRate} must be positive");
        Check(Beta >= 0, $"β {Beta} must be ≥ 0");
        Check(Epsilon > 0 && Epsilon < 1, $"ε {Epsilon} must lie in (0, 1)");
        Check(EpsilonHigh is null || EpsilonHigh > 0, $"ε_high {EpsilonHigh} must be positive");
        Check(MaxGenerationRounds >= 1, $"max_num_gen_batches {MaxGenerationRounds} must be ≥ 1");
        Check(OverlongBuffer >= 0 && OverlongBuffer <= MaxNewTokens, $"overlong buffer {OverlongBuffer} must lie in 0..max completion length {MaxNewTokens}");
        Check(CheckpointInterval >= 0 && KeepCheckpoints >= 0, $"checkpoint interval {CheckpointInterval} and kept checkpoints {KeepCheckpoints} must be ≥ 0");
    }
}
