// The one vocabulary of metric names every trainer logs to metrics.jsonl and TensorBoard, defined here once.
// Language-model trainers use TRL's keys (as its trainers log them to Weights & Biases: "train/loss", "eval/loss",
// PPOTrainer's "objective/…", "policy/…_avg", "loss/…_avg", "val/…", DPOTrainer's "rewards/…", GRPOTrainer's
// "completions/…"); control trainers use CleanRL's ("charts/…", "losses/…"). Names TRL or CleanRL do not have follow the
// same prefixes; timing fields are "perf/…" or "time/…" (the golden tests ignore those two prefixes and "charts/SPS").
namespace RlhfSharp.Runs;

public static class MetricKeys
{
    // Every optimiser-driven LM trainer (pretrain, SFT, reward, DPO): HF Trainer's train/… and eval/….
    public const string TrainLoss = "train/loss";
    public const string GradNorm = "train/grad_norm";
    public const string LearningRate = "train/learning_rate";
    public const string EvalLoss = "eval/loss";
    public const string EvalPerplexity = "eval/perplexity";
    public const string TokensPerSecond = "perf/tokens_per_s";

    // Reward model (TRL RewardTrainer: accuracy, margin), per member of an ensemble.
    public const string TrainAccuracy = "train/accuracy";
    public const string TrainMargin = "train/margin";
    public const string EvalAccuracy = "eval/accuracy";
    public const string EvalCalibrationError = "eval/ece";
    public const string EvalPairs = "eval/pairs";
    public const string Member = "train/member";

    // DPO (TRL DPOTrainer).
    public const string RewardsChosen = "rewards/chosen";
    public const string RewardsRejected = "rewards/rejected";
    public const string RewardsAccuracies = "rewards/accuracies";
    public const string RewardsMargins = "rewards/margins";
    public const string EvalRewardsAccuracies = "eval/rewards/accuracies";

    // PPO and RLOO for language models (TRL PPOTrainer / RLOOTrainer).
    public const string Kl = "objective/kl";
    public const string KlK3 = "objective/kl_k3";
    public const string Entropy = "objective/entropy";
    public const string NonScoreReward = "objective/non_score_reward";
    public const string RlhfReward = "objective/rlhf_reward";
    public const string Scores = "objective/scores";
    public const string KlCoef = "objective/beta";
    public const string GoldScore = "objective/gold";
    public const string PolicyApproxKl = "policy/approx_kl_avg";
    public const string PolicyClipFraction = "policy/clipfrac_avg";
    public const string PolicyEntropy = "policy/entropy_avg";
    public const string PolicyLoss = "loss/policy_avg";
    public const string ValueLoss = "loss/value_avg";
    public const string PtxLoss = "loss/ptx_avg";
    public const string ValueClipFraction = "val/clipfrac_avg";
    public const string ValueExplainedVariance = "val/explained_variance";
    public const string ValueMean = "val/mean";
    public const string MeanLength = "completions/mean_length";
    public const string ClippedRatio = "completions/clipped_ratio";

    // GRPO (TRL GRPOTrainer's logged keys, under HF Trainer's train/ prefix).
    public const string GrpoReward = "train/reward";
    public const string GrpoRewardStd = "train/reward_std";
    public const string GrpoZeroStdFraction = "train/frac_reward_zero_std";
    public const string GrpoKl = "train/kl"; // also KTO's reference point z (TRL KTOTrainer logs "kl")
    public const string GrpoEntropy = "train/entropy";
    public const string GrpoClipLow = "train/clip_ratio/low_mean";
    public const string GrpoClipHigh = "train/clip_ratio/high_mean";
    public const string GrpoClipRegion = "train/clip_ratio/region_mean";
    public const string GrpoGroupsKept = "train/groups_kept";
    public const string GrpoGenerationRounds = "train/generation_rounds";

    // Over-optimisation monitors (any RL trainer given a monitor), on held-out prompts every k steps; see OverOptimisationMonitor.
    public const string MonitorGold = "monitor/gold";
    public const string MonitorProxy = "monitor/proxy";
    public const string MonitorDisagreement = "monitor/disagreement";
    public const string MonitorKl = "monitor/kl";
    public const string MonitorProxyPerNat = "monitor/proxy_per_nat";
    public const string MonitorMeanLength = "monitor/mean_length";
    public const string MonitorMissingEos = "monitor/missing_eos_rate";
    public const string MonitorDistinct1 = "monitor/distinct_1";
    public const string MonitorDistinct2 = "monitor/distinct_2";
    public const string MonitorKlSpike = "monitor/kl_spike_ratio";
    public const string MonitorBest = "monitor/best";
    public const string MonitorBestStep = "monitor/best_step";
    public const string MonitorStopped = "monitor/stopped";
    /// <summary>monitor/fired/RULE: 1 when the rule warned at this step, 2 when it stopped the run.</summary>
    public const string MonitorFiredPrefix = "monitor/fired/";

    // Verifiable tasks: pass@k (Chen et al. 2021) on held-out problems.
    public const string EvalPassAt1 = "eval/pass@1";

    // Control (CleanRL's ppo.py).
    public const string EpisodicReturn = "charts/episodic_return";
    public const string EpisodicLength = "charts/episodic_length";
    public const string ControlLearningRate = "charts/learning_rate";
    public const string StepsPerSecond = "charts/SPS";
    public const string ControlPolicyLoss = "losses/policy_loss";
    public const string ControlValueLoss = "losses/value_loss";
    public const string ControlEntropy = "losses/entropy";
    public const string ControlApproxKl = "losses/approx_kl";
    public const string ControlClipFraction = "losses/clipfrac";
    public const string ControlExplainedVariance = "losses/explained_variance";
    public const string ControlKlCoef = "losses/kl_beta";
}
