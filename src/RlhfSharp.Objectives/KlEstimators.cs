// Monte-Carlo estimators of KL(p‖q) from samples x ~ p, per sample (Schulman, "Approximating KL divergence", 2020).
// With log r = log q(x) − log p(x):
//   k1 = −log r            unbiased, high variance, negative on some samples (why logged KL can dip below 0)
//   k2 = ½ (log r)²        biased, low variance
//   k3 = (r − 1) − log r   unbiased, low variance, never negative
// RLHF's KL to the reference samples the policy: p = π, q = π_ref. PPO's "approx KL" samples the rollout policy:
// p = π_old, q = π, so log r = log ρ (TRL logs the mean k2, CleanRL the mean k3).
namespace RlhfSharp.Objectives;

public static class KlEstimators
{
    /// <summary>k1 from the two log-probabilities of a sample of p (p = the policy, q = the reference).</summary>
    public static double K1(double logpPolicy, double logpReference) => logpPolicy - logpReference;

    /// <summary>k2 from the two log-probabilities of a sample of p.</summary>
    public static double K2(double logpPolicy, double logpReference) => K2(logpReference - logpPolicy);

    /// <summary>k3 from the two log-probabilities of a sample of p.</summary>
    public static double K3(double logpPolicy, double logpReference) => K3(logpReference - logpPolicy);

    /// <summary>k1 = −log r.</summary>
    public static double K1(double logR) => -logR;

    /// <summary>k2 = ½ (log r)².</summary>
    public static double K2(double logR) => 0.5 * logR * logR;

    /// <summary>k3 = (r − 1) − log r.</summary>
    public static double K3(double logR) => Math.Exp(logR) - 1 - logR;
}
