// Monte-Carlo estimators of KL(π‖π_ref) from samples of π, per token (Schulman, "Approximating KL
// divergence", 2020). With log r = log π_ref(y) − log π(y):
//   k1 = −log r            unbiased, high variance, negative on some samples (why logged KL can dip below 0)
//   k2 = ½ (log r)²        biased, low variance
//   k3 = (r − 1) − log r   unbiased, low variance, never negative
namespace RlhfSharp.Objectives;

public static class KlEstimators
{
    public static double K1(double logpPolicy, double logpReference) => logpPolicy - logpReference;

    public static double K2(double logpPolicy, double logpReference)
    {
        double logR = logpReference - logpPolicy;
        return 0.5 * logR * logR;
    }

    public static double K3(double logpPolicy, double logpReference)
    {
        double logR = logpReference - logpPolicy;
        return Math.Exp(logR) - 1 - logR;
    }
}
