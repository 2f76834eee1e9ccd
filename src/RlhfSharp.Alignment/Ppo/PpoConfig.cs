// Configuration of RLHF policy optimisation (PPO with a KL leash, PPO-ptx, and RLOO on the same rollouts).
// Defaults follow TRL's PPO trainer and Ziegler et al. 2019 where they apply; each field is documented once here.
using System.Text.Json.Serialization;
using RlhfSharp.Models;
using RlhfSharp.Runs;

namespace RlhfSharp.Alignment.Ppo;

/// <summary>Which policy-gradient estimator uses the rollouts.</summary>
public enum PolicyAlgorithm
{
    /// <summary>PPO with a value model and GAE (Ziegler et al. 2019; InstructGPT).</summary>
    Ppo,
    /// <summary>REINFORCE with a leave-one-out baseline over K samples per prompt (Ahmadian et al. 2024), no value model.</summary>
    Rloo,
    /// <summary>REINFORCE (Williams 1992) with a learned baseline: A_t = G_t − V(s_t), one on-policy pass per batch.</summary>
    Reinforce,
}

public sealed record PpoConfig
{
    [ConfigOption("PPO, RLOO, or REINFORCE with a learned value baseline.", Aliases = ["--algo"])]
    public PolicyAlgorithm Algorithm { get; init; } = PolicyAlgorithm.Ppo;

    [ConfigOption("Rollout batches (policy iterations) to run.", Min = 1)]
    public int Steps { get; init; } = 100;

    [ConfigOption("Episodes (responses) per rollout batch; with RLOO, a multiple of RlooSamples.", Min = 1)]
    public int BatchSize { get; init; } = 32;

    [ConfigOption("Episodes per gradient step inside a batch.", Name = "--minibatch-size", Aliases = ["--mini-batch-size"], Min = 1)]
    [JsonPropertyName("mini_batch_size")]
    public int MiniBatchSize { get; init; } = 8;

    [ConfigOption("Passes of minibatches over each rollout batch (lm-human-preferences and TRL: 4).", Name = "--ppo-epochs", Aliases = ["--num-ppo-epochs"], Min = 1)]
    [JsonPropertyName("num_ppo_epochs")]
    public int Epochs { get; init; } = 4;

    [ConfigOption("Response length limit in tokens.", Name = "--max-new-tokens", Aliases = ["--response-length"], Min = 1)]
    [JsonPropertyName("response_length")]
    public int MaxNewTokens { get; init; } = 32;

    [ConfigOption("Sampling temperature; log-probabilities in the losses use the same temperature-scaled logits.", Min = 0, MinExclusive = true)]
    public float Temperature { get; init; } = 1f;

    [ConfigOption("AdamW learning rate for policy and value model (constant).", Name = "--lr", Aliases = ["--learning-rate"], Min = 0, MinExclusive = true)]
    public float LearningRate { get; init; } = 1e-5f;

    [ConfigOption("PPO's ε for the probability ratio.", Min = 0, MinExclusive = true)]
    [JsonPropertyName("cliprange")]
    public float ClipRange { get; init; } = 0.2f;

    [ConfigOption("ε for the value clipping.", Min = 0, MinExclusive = true)]
    [JsonPropertyName("cliprange_value")]
    public float ClipRangeValue { get; init; } = 0.2f;

    [ConfigOption("Entropy bonus c_e: the policy loss gains −c_e·H[π] over response tokens, through the logits (0: off, TRL's LM default).", Min = 0)]
    [JsonPropertyName("ent_coef")]
    public float EntropyCoef { get; init; }

    [ConfigOption("Weight of the value loss (TRL vf_coef: 0.1).", Min = 0)]
    [JsonPropertyName("vf_coef")]
    public float ValueCoef { get; init; } = 0.1f;

    [ConfigOption("GAE discount γ over response tokens.", Min = 0, Max = 1)]
    public double Gamma { get; init; } = 1.0;

    [ConfigOption("GAE λ.", Min = 0, Max = 1)]
    [JsonPropertyName("lam")]
    public double Lambda { get; init; } = 0.95;

    [ConfigOption("Initial KL coefficient β (fixed β when TargetKl is null).", Name = "--beta", Aliases = ["--init-kl-coef", "--kl-coef"], Min = 0)]
    [JsonPropertyName("init_kl_coef")]
    public double InitialKlCoef { get; init; } = 0.05;

    [ConfigOption("Target KL per episode for Ziegler's adaptive controller, in nats; null keeps β fixed.", Name = "--target-kl", Aliases = ["--target"], Min = 0, MinExclusive = true)]
    [JsonPropertyName("target")]
    public double? TargetKl { get; init; } = 6;

    [ConfigOption("Ziegler's horizon (episodes) of the adaptive controller.", Name = "--kl-horizon", Aliases = ["--horizon"], Min = 0, MinExclusive = true)]
    [JsonPropertyName("horizon")]
    public double KlHorizon { get; init; } = 10_000;

    [ConfigOption("Subtracted from the score of a response that never emits EOS within MaxNewTokens; null for none.", Min = double.NegativeInfinity)]
    public double? MissingEosPenalty { get; init; }

    [ConfigOption("Scores are clipped to [−c, c] when set.", Name = "--reward-clip", Aliases = ["--score-clip"], Min = 0, MinExclusive = true)]
    [JsonPropertyName("score_clip")]
    public double? RewardClip { get; init; }

    [ConfigOption("Whiten the per-token rewards over each batch (TRL whiten_rewards).")]
    public bool WhitenRewards { get; init; }

    [ConfigOption("Whiten advantages over each batch's real tokens (PPO's usual detail).")]
    public bool WhitenAdvantages { get; init; } = true;

    [ConfigOption("Gradient-norm clip, applied to the policy and the value model separately.", Min = 0, MinExclusive = true)]
    public double MaxGradNorm { get; init; } = 1.0;

    [ConfigOption("γ_ptx of PPO-ptx: weight of the pre-training log-likelihood term (0 turns it off).", Min = 0)]
    public float PtxCoef { get; init; }

    [ConfigOption("Pre-training rows per gradient step for PPO-ptx.", Min = 1)]
    public int PtxBatchSize { get; init; } = 8;

    [ConfigOption("RLOO: samples per prompt (K ≥ 2).", Name = "--rloo-k", Min = 1)]
    [JsonPropertyName("rloo_k")]
    public int RlooSamples { get; init; } = 4;

    [ConfigOption("Write a checkpoint every this many steps (0: only at the end and on cancellation).", Name = "--checkpoint-interval", Aliases = ["--save-steps"], Min = 0)]
    [JsonPropertyName("save_steps")]
    public int CheckpointInterval { get; init; } = 10;

    [ConfigOption("Checkpoints kept (0 keeps all; the demo keeps all for its over-optimisation plot).", Name = "--keep-checkpoints", Aliases = ["--save-total-limit"], Min = 0)]
    [JsonPropertyName("save_total_limit")]
    public int KeepCheckpoints { get; init; }

    /// <summary>Hand the policy to Options.Snapshot at step 0, every this many steps and after the last (0: never).</summary>
    public int SnapshotEvery { get; init; }

    [ConfigOption("Seed for prompt order, sampling and head initialisation.", Min = 0)]
    public ulong Seed { get; init; } = 1;

    [ConfigOption("Slices each rollout batch and minibatch are cut into (sampling, scoring, gradients): under mpirun it follows -np (slice r on rank r), and one process with the same value gives the same bits (docs/distributed.md).", Min = 1)]
    public int GradShards { get; init; } = 1;

    [ConfigOption("Frozen weights (the reference, the reward model; under LoRA the bases the adapters train on) held as f32 or bf16: bf16 rounds their matrices to nearest even and widens them to float32 when used (half their memory; the trainer narrows the models it is given in place).")]
    public RlhfSharp.Models.FrozenDtype FrozenDtype { get; init; }

    [ConfigOption("Activation checkpointing (HF: gradient_checkpointing): the training forward keeps only each block's input and backward recomputes the block; less memory, about a third more training compute, the same gradients bit for bit.", Name = "--activation-checkpointing", Aliases = ["--gradient-checkpointing"])]
    [JsonPropertyName("gradient_checkpointing")]
    public bool ActivationCheckpointing { get; init; }

    /// <summary>LoRA: with r &gt; 0 only low-rank adapters (and heads) train; the base stays frozen.</summary>
    public LoraConfig Lora { get; init; } = new();

    /// <summary>Over-optimisation monitors (off unless Monitor.Every &gt; 0): see Evaluation.OverOptimisationMonitor.</summary>
    public Evaluation.MonitorConfig Monitor { get; init; } = new();

    public void Validate()
    {
        Lora.Validate();
        ConfigRanges.Validate(Monitor, "ppo config: monitor");
        void Check(bool ok, string what) { if (!ok) throw new ArgumentException($"ppo config: {what}."); }
        ConfigRanges.Validate(this, "ppo config");
        Check(MiniBatchSize <= BatchSize, $"minibatch_size = {MiniBatchSize} must be at most batch_size = {BatchSize}");
        Check(SnapshotEvery >= 0, $"snapshot interval {SnapshotEvery} must be ≥ 0");
        Check(GradShards == 1 || PtxCoef == 0, $"PPO-ptx (ptx_coef = {PtxCoef}) is not data-parallel yet: run it with grad_shards = 1, outside mpirun");
        Check(Algorithm != PolicyAlgorithm.Rloo || (RlooSamples >= 2 && BatchSize % RlooSamples == 0), $"RLOO needs K = {RlooSamples} ≥ 2 dividing batch size {BatchSize}");
    }
}
