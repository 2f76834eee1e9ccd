// Configuration of RLHF policy optimisation (PPO with a KL leash, PPO-ptx, and RLOO on the same rollouts).
// Defaults follow TRL's PPO trainer and Ziegler et al. 2019 where they apply; each field is documented once here.
namespace RlhfSharp.Alignment.Ppo;

/// <summary>Which policy-gradient estimator uses the rollouts.</summary>
public enum PolicyAlgorithm
{
    /// <summary>PPO with a value model and GAE (Ziegler et al. 2019; InstructGPT).</summary>
    Ppo,
    /// <summary>REINFORCE with a leave-one-out baseline over K samples per prompt (Ahmadian et al. 2024), no value model.</summary>
    Rloo,
}

public sealed record PpoConfig
{
    /// <summary>PPO or RLOO.</summary>
    public PolicyAlgorithm Algorithm { get; init; } = PolicyAlgorithm.Ppo;

    /// <summary>Rollout batches (policy iterations) to run.</summary>
    public int Steps { get; init; } = 100;

    /// <summary>Episodes (responses) per rollout batch; with RLOO, a multiple of <see cref="RlooSamples"/>.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Episodes per gradient step inside a batch.</summary>
    public int MiniBatchSize { get; init; } = 8;

    /// <summary>Passes of minibatches over each rollout batch (lm-human-preferences and TRL: 4).</summary>
    public int Epochs { get; init; } = 4;

    /// <summary>Response length limit in tokens.</summary>
    public int MaxNewTokens { get; init; } = 32;

    /// <summary>Sampling temperature; log-probabilities in the losses use the same temperature-scaled logits.</summary>
    public float Temperature { get; init; } = 1f;

    /// <summary>AdamW learning rate for policy and value model (constant).</summary>
    public float LearningRate { get; init; } = 1e-5f;

    /// <summary>PPO's ε for the probability ratio.</summary>
    public float ClipRange { get; init; } = 0.2f;

    /// <summary>ε for the value clipping.</summary>
    public float ClipRangeValue { get; init; } = 0.2f;

    /// <summary>Weight of the value loss (TRL vf_coef: 0.1).</summary>
    public float ValueCoef { get; init; } = 0.1f;

    /// <summary>GAE discount γ over response tokens.</summary>
    public double Gamma { get; init; } = 1.0;

    /// <summary>GAE λ.</summary>
    public double Lambda { get; init; } = 0.95;

    /// <summary>Initial KL coefficient β (fixed β when <see cref="TargetKl"/> is null).</summary>
    public double InitialKlCoef { get; init; } = 0.05;

    /// <summary>Target KL per episode for Ziegler's adaptive controller, in nats; null keeps β fixed.</summary>
    public double? TargetKl { get; init; } = 6;

    /// <summary>Ziegler's horizon (episodes) of the adaptive controller.</summary>
    public double KlHorizon { get; init; } = 10_000;

    /// <summary>Subtracted from the score of a response that never emits EOS within MaxNewTokens; null for none.</summary>
    public double? MissingEosPenalty { get; init; }

    /// <summary>Scores are clipped to [−c, c] when set.</summary>
    public double? RewardClip { get; init; }

    /// <summary>Whiten the per-token rewards over each batch (TRL whiten_rewards).</summary>
    public bool WhitenRewards { get; init; }

    /// <summary>Whiten advantages over each batch's real tokens (PPO's usual detail).</summary>
    public bool WhitenAdvantages { get; init; } = true;

    /// <summary>Gradient-norm clip, applied to the policy and the value model separately.</summary>
    public double MaxGradNorm { get; init; } = 1.0;

    /// <summary>γ_ptx of PPO-ptx: weight of the pre-training log-likelihood term (0 turns it off).</summary>
    public float PtxCoef { get; init; }

    /// <summary>Pre-training rows per gradient step for PPO-ptx.</summary>
    public int PtxBatchSize { get; init; } = 8;

    /// <summary>RLOO: samples per prompt (K ≥ 2).</summary>
    public int RlooSamples { get; init; } = 4;

    /// <summary>Write a checkpoint every this many steps (0: only at the end and on cancellation).</summary>
    public int CheckpointEvery { get; init; }

    /// <summary>Checkpoints kept (0 keeps all; the demo keeps all for its over-optimisation plot).</summary>
    public int KeepCheckpoints { get; init; }

    /// <summary>Hand the policy to Options.Snapshot at step 0, every this many steps and after the last (0: never).</summary>
    public int SnapshotEvery { get; init; }

    /// <summary>Seed for prompt order, sampling and head initialisation.</summary>
    public ulong Seed { get; init; } = 1;

    public void Validate()
    {
        void Check(bool ok, string what) { if (!ok) throw new ArgumentException($"ppo config: {what}."); }
        Check(Steps >= 1, $"steps {Steps} must be ≥ 1");
        Check(BatchSize >= 1, $"batch size {BatchSize} must be ≥ 1");
        Check(MiniBatchSize >= 1 && MiniBatchSize <= BatchSize, $"minibatch size {MiniBatchSize} must lie in 1..{BatchSize}");
        Check(Epochs >= 1, $"epochs {Epochs} must be ≥ 1");
        Check(MaxNewTokens >= 1, $"max new tokens {MaxNewTokens} must be ≥ 1");
        Check(Temperature > 0, $"temperature {Temperature} must be positive");
        Check(LearningRate > 0, $"learning rate {LearningRate} must be positive");
        Check(ClipRange > 0 && ClipRangeValue > 0, $"clip ranges {ClipRange}, {ClipRangeValue} must be positive");
        Check(InitialKlCoef >= 0, $"initial KL coefficient {InitialKlCoef} must be ≥ 0");
        Check(TargetKl is null || TargetKl > 0, $"target KL {TargetKl} must be positive");
        Check(SnapshotEvery >= 0, $"snapshot interval {SnapshotEvery} must be ≥ 0");
        Check(PtxCoef >= 0, $"ptx coefficient {PtxCoef} must be ≥ 0");
        Check(Algorithm != PolicyAlgorithm.Rloo || (RlooSamples >= 2 && BatchSize % RlooSamples == 0), $"RLOO needs K = {RlooSamples} ≥ 2 dividing batch size {BatchSize}");
    }
}
