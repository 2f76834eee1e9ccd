// Configurations of the two next-token trainers: pre-training on raw text and supervised fine-tuning on
// {"prompt","completion"} pairs. Optimisation and run settings are shared (LmTrainingOptions), documented here once.
using System.Text.Json.Serialization;
using RlhfSharp.Models;
using RlhfSharp.Runs;

namespace RlhfSharp.Alignment.LanguageModeling;

/// <summary>How a next-token trainer optimises and keeps its run (shared by pre-training and SFT).</summary>
public sealed record LmTrainingOptions
{
    [ConfigOption("Peak learning rate, reached at the end of warm-up (AdamW).", Name = "--lr", Aliases = ["--learning-rate"], Min = 0, MinExclusive = true)]
    public float LearningRate { get; init; } = 1e-3f;

    [ConfigOption("Steps of linear warm-up from 0 to LearningRate.", Name = "--warmup", Aliases = ["--warmup-steps"], Min = 0)]
    public int WarmupSteps { get; init; } = 50;

    [ConfigOption("The cosine decay ends at LearningRate × this fraction at the last step (nanoGPT: min_lr = lr/10).", Min = 0, Max = 1)]
    [JsonPropertyName("min_lr_rate")]
    public float MinLearningRateFraction { get; init; } = 0.1f;

    [ConfigOption("AdamW's decoupled weight decay on matrices and embeddings; biases and LayerNorm gains get none (nanoGPT).", Min = 0)]
    public float WeightDecay { get; init; } = 0.1f;

    [ConfigOption("AdamW's first-moment decay.", Min = 0, Max = 1, MaxExclusive = true)]
    [JsonPropertyName("adam_beta1")]
    public float Beta1 { get; init; } = 0.9f;

    [ConfigOption("AdamW's second-moment decay (0.95 as GPT-3 and nanoGPT use for language models).", Min = 0, Max = 1, MaxExclusive = true)]
    [JsonPropertyName("adam_beta2")]
    public float Beta2 { get; init; } = 0.95f;

    [ConfigOption("AdamW's epsilon.", Min = 0, MinExclusive = true)]
    [JsonPropertyName("adam_epsilon")]
    public float Eps { get; init; } = 1e-8f;

    [ConfigOption("Global gradient-norm clip (torch's clip_grad_norm_); 0 turns clipping off.", Min = 0)]
    public double MaxGradNorm { get; init; } = 1.0;

    [ConfigOption("Rows per optimiser step.", Name = "--batch-size", Aliases = ["--per-device-train-batch-size"], Min = 1)]
    [JsonPropertyName("per_device_train_batch_size")]
    public int BatchSize { get; init; } = 16;

    [ConfigOption("Optimiser steps in the whole run (the cosine schedule ends here).", Name = "--steps", Aliases = ["--max-steps"], Min = 1)]
    [JsonPropertyName("max_steps")]
    public int Steps { get; init; } = 1000;

    [ConfigOption("Held-out loss is measured every this many steps, and after the last one.", Name = "--eval-interval", Aliases = ["--eval-steps"], Min = 1)]
    [JsonPropertyName("eval_steps")]
    public int EvalInterval { get; init; } = 100;

    [ConfigOption("Held-out batches (of BatchSize rows) averaged per evaluation; the same rows every time.", Min = 1)]
    public int EvalBatches { get; init; } = 8;

    [ConfigOption("Fraction of the data (the end of the token stream, or the last examples) kept out of training for evaluation.", Name = "--held-out", Aliases = ["--held-out-fraction"], Min = 0, MinExclusive = true, Max = 1, MaxExclusive = true)]
    public double HeldOutFraction { get; init; } = 0.05;

    [ConfigOption("A checkpoint is written every this many steps (0: only at the end or when cancelled).", Name = "--checkpoint-interval", Aliases = ["--save-steps"], Min = 0)]
    [JsonPropertyName("save_steps")]
    public int CheckpointInterval { get; init; } = 500;

    [ConfigOption("Checkpoints kept on disk, newest first (0 keeps all).", Name = "--keep-checkpoints", Aliases = ["--save-total-limit"], Min = 0)]
    [JsonPropertyName("save_total_limit")]
    public int KeepCheckpoints { get; init; } = 3;

    [ConfigOption("Seed of the data order and dropout (initialisation uses its own stream of the same seed).", Min = 0)]
    public ulong Seed { get; init; } = 1;

    [ConfigOption("Activation checkpointing (HF: gradient_checkpointing): the training forward keeps only each block's input and backward recomputes the block; less memory, about a third more training compute, the same gradients bit for bit.", Name = "--activation-checkpointing", Aliases = ["--gradient-checkpointing"])]
    [JsonPropertyName("gradient_checkpointing")]
    public bool ActivationCheckpointing { get; init; }

    [ConfigOption("Kernel threads (0: leave the engine's setting, the machine's core count by default).", Min = 0)]
    public int Threads { get; init; }

    [ConfigOption("Equal shards each batch is cut into, their gradients summed in shard order: under mpirun it follows -np (shard r on rank r), and one process with the same value gives the same bits (docs/distributed.md).", Min = 1)]
    public int GradShards { get; init; } = 1;

    /// <summary>Throws if a field is not finite or out of its declared range, naming it and its value.</summary>
    public void Validate(string source)
    {
        ConfigRanges.Validate(this, source);
        if (WarmupSteps >= Math.Max(1, Steps))
            throw new ArgumentException($"{source}: warmup_steps = {WarmupSteps} must be below max_steps = {Steps}.");
    }
}

/// <summary>Pre-training a GPT from scratch on a token stream.</summary>
public sealed record PretrainConfig
{
    [ConfigOption("Named architecture (GptConfig.Sizes: tiny, mini, small, medium, gpt2, gpt2-medium, gpt2-large); the vocabulary comes from the tokenizer.")]
    public string ModelSize { get; init; } = "tiny";

    [ConfigOption("Tokens per training row (the context length); 0 uses the size's full block.", Min = 0)]
    public int BlockSize { get; init; }

    [ConfigOption("Dropout probability during training (GPT-2: 0.1; 0 for small data and short runs).", Min = 0, Max = 1, MaxExclusive = true)]
    public float Dropout { get; init; }

    /// <summary>Optimisation and run settings.</summary>
    public LmTrainingOptions Training { get; init; } = new();
}

/// <summary>Where SFT rows put their padding; the attention mask and position ids make both give the same loss.</summary>
public enum SftPadding
{
    /// <summary>Real tokens first, padding after (the usual training layout).</summary>
    Right,
    /// <summary>Padding first (the generation layout).</summary>
    Left,
}

/// <summary>Supervised fine-tuning on demonstrations: loss on completion tokens (and EOS) only.</summary>
public sealed record SftConfig
{
    [ConfigOption("Padding side of a batch.")]
    public SftPadding Padding { get; init; } = SftPadding.Right;

    [ConfigOption("Append the tokenizer's EOS to every completion, so the model learns where to stop.")]
    public bool AppendEos { get; init; } = true;

    /// <summary>Optimisation and run settings (SFT defaults: lower rate, shorter warm-up than pre-training).</summary>
    public LmTrainingOptions Training { get; init; } = new() { LearningRate = 3e-4f, WarmupSteps = 20, Steps = 300, EvalInterval = 50, CheckpointInterval = 100 };

    /// <summary>LoRA: with r &gt; 0 only low-rank adapters (and heads) train; the base stays frozen.</summary>
    public LoraConfig Lora { get; init; } = new();
}
