// The policy-gradient equations used by the control trainers, as pure functions on flat arrays: GAE, returns-to-go,
// advantage normalisation, explained variance, and the PPO-clip, PPO-penalty and REINFORCE losses. Each loss returns its
// value and its exact gradient with respect to the per-sample log-probability, entropy and value (and PPO-penalty's exact
// KL), so a network only has to backpropagate those few numbers per sample (see ActorCritic.Backward). Destined for
// RlhfSharp.Objectives.
// Shapes: T steps × N envs, stored row-major as [t·N + i]; B = one minibatch of samples.
namespace RlhfSharp.Control.Rl;

/// <summary>
/// Per-sample gradients of a scalar loss with respect to each sample's new log π(a|s), entropy H(π(·|s)) and V(s), and (PPO-penalty
/// only) the exact KL(π_old(·|s)‖π(·|s)).
/// </summary>
public sealed record LossGradients(float[] LogProb, float[] Entropy, float[] Value, float[]? Kl = null);

/// <summary>A loss's value, its parts and diagnostics (CleanRL's logged quantities), and its gradients.</summary>
/// <param name="Total">The loss that is minimised.</param>
/// <param name="Policy">Policy part (losses/policy).</param>
/// <param name="ValueLoss">Value part before its coefficient (losses/value).</param>
/// <param name="Entropy">Mean entropy (losses/entropy).</param>
/// <param name="ApproxKl">KL(π_old‖π): the k3 estimate mean((ρ−1) − log ρ), or the exact mean for PPO-penalty (losses/approx_kl).</param>
/// <param name="ClipFraction">Fraction of samples with |ρ − 1| &gt; ε (losses/clipfrac).</param>
/// <param name="Gradients">∂Total/∂(log π, H, V) per sample.</param>
public sealed record LossResult(double Total, double Policy, double ValueLoss, double Entropy, double ApproxKl, double ClipFraction, LossGradients Gradients);

public static class ControlObjectives
{
    /// <summary>
    /// Generalised advantage estimation (Schulman et al. 2016), in CleanRL's backward loop:
    /// δ_t = r_t + γ·V(s_{t+1})·(1 − done_t) − V(s_t);  A_t = δ_t + γλ·(1 − done_t)·A_{t+1}; returns R_t = A_t + V(s_t).
    /// done_t means the episode ended at step t (the next observation starts a new one); nextValues holds V of the
    /// observation after the last step, per env. A truncated episode is bootstrapped by folding γ·V(final obs) into r_t first.
    /// </summary>
    public static (float[] Advantages, float[] Returns) Gae(
        ReadOnlySpan<float> rewards, ReadOnlySpan<float> values, ReadOnlySpan<bool> dones, ReadOnlySpan<float> nextValues,
        int steps, int envs, double gamma, double lambda)
    {
        int n = steps * envs;
        if (rewards.Length != n || values.Length != n || dones.Length != n || nextValues.Length != envs)
            throw new ArgumentException($"Gae: expected {steps}×{envs} rewards, values, dones and {envs} next values; got {rewards.Length}, {values.Length}, {dones.Length}, {nextValues.Length}.");
        var adv = new float[n];
        var ret = new float[n];
        for (int i = 0; i < envs; i++)
        {
            double last = 0;
            for (int t = steps - 1; t >= 0; t--)
            {
                int k = t * envs + i;
                double next = t == steps - 1 ? nextValues[i] : values[k + envs];
                double notDone = dones[k] ? 0 : 1;
                double delta = rewards[k] + gamma * next * notDone - values[k];
                last = delta + gamma * lambda * notDone * last;
                adv[k] = (float)last;
                ret[k] = (float)(last + values[k]);
            }
        }
        return (adv, ret);
    }

    /// <summary>Discounted returns-to-go G_t = r_t + γ·G_{t+1}·(1 − done_t), bootstrapped from nextValues after the last step (REINFORCE).</summary>
    public static float[] ReturnsToGo(ReadOnlySpan<float> rewards, ReadOnlySpan<bool> dones, ReadOnlySpan<float> nextValues, int steps, int envs, double gamma)
    {
        var zeros = new float[steps * envs];
        // With λ = 1 and V ≡ 0, GAE's return is exactly the discounted return-to-go.
        return Gae(rewards, zeros, dones, nextValues, steps, envs, gamma, 1.0).Returns;
    }

    /// <summary>CleanRL's per-minibatch advantage normalisation: (A − mean)/(std + 1e-8), std with Bessel's correction as torch.std.</summary>
    public static float[] NormalizeAdvantages(ReadOnlySpan<float> advantages)
    {
        int n = advantages.Length;
        var outp = new float[n];
        if (n < 2) { advantages.CopyTo(outp); return outp; }
        double mean = 0;
        foreach (float a in advantages) mean += a;
        mean /= n;
        double sq = 0;
        foreach (float a in advantages) sq += (a - mean) * (a - mean);
        double std = Math.Sqrt(sq / (n - 1));
        for (int i = 0; i < n; i++) outp[i] = (float)((advantages[i] - mean) / (std + 1e-8));
        return outp;
    }

    /// <summary>1 − Var[returns − values]/Var[returns] (NaN when the returns are constant), CleanRL's losses/explained_variance.</summary>
    public static double ExplainedVariance(ReadOnlySpan<float> values, ReadOnlySpan<float> returns)
    {
        int n = returns.Length;
        if (values.Length != n) throw new ArgumentException($"ExplainedVariance: {values.Length} values for {n} returns.");
        double my = 0, md = 0;
        for (int i = 0; i < n; i++) { my += returns[i]; md += returns[i] - values[i]; }
        my /= n; md /= n;
        double vy = 0, vd = 0;
        for (int i = 0; i < n; i++)
        {
            vy += (returns[i] - my) * (returns[i] - my);
            double d = returns[i] - values[i] - md;
            vd += d * d;
        }
        return vy == 0 ? double.NaN : 1 - vd / vy;
    }

    /// <summary>
    /// PPO-clip (Schulman et al. 2017, eq. 7) with CleanRL's value clipping and entropy bonus, averaged over the minibatch:
    ///   L = mean(max(−A·ρ, −A·clip(ρ, 1−ε, 1+ε)))                                   [policy]
    ///     + c_v · ½·mean(max((V − R)², (V_old + clip(V − V_old, −ε, ε) − R)²))        [value; plain ½(V − R)² when clipValue is false]
    ///     − c_e · mean(H)                                                             [entropy bonus]
    /// with ρ = exp(log π − log π_old).
    /// </summary>
    public static LossResult PpoClip(
        ReadOnlySpan<float> newLogProb, ReadOnlySpan<float> oldLogProb, ReadOnlySpan<float> advantages, ReadOnlySpan<float> entropy,
        ReadOnlySpan<float> newValues, ReadOnlySpan<float> oldValues, ReadOnlySpan<float> returns,
        double clipCoef, double valueCoef, double entropyCoef, bool clipValue)
    {
        int b = CheckBatch(newLogProb, oldLogProb, advantages, entropy, newValues, oldValues, returns);
        var gLogp = new float[b];
        double pg = 0, kl = 0, clipped = 0;
        for (int i = 0; i < b; i++)
        {
            double logRatio = newLogProb[i] - oldLogProb[i];
            double ratio = Math.Exp(logRatio);
            double a = advantages[i];
            double unclippedLoss = -a * ratio;
            double clippedLoss = -a * Math.Clamp(ratio, 1 - clipCoef, 1 + clipCoef);
            pg += Math.Max(unclippedLoss, clippedLoss);
            // The clipped branch is constant in θ; only the unclipped branch (when it is the max) carries gradient: ∂(−Aρ)/∂log π = −Aρ.
            if (unclippedLoss >= clippedLoss) gLogp[i] = (float)(-a * ratio / b);
            kl += ratio - 1 - logRatio;
            if (Math.Abs(ratio - 1) > clipCoef) clipped++;
        }
        var (vLoss, gValue) = ValueLoss(newValues, oldValues, returns, clipCoef, clipValue, valueCoef);
        var (meanH, gEntropy) = EntropyBonus(entropy, entropyCoef);
        double policy = pg / b;
        return new LossResult(policy + valueCoef * vLoss - entropyCoef * meanH, policy, vLoss, meanH, kl / b, clipped / b,
            new LossGradients(gLogp, gEntropy, gValue));
    }

    /// <summary>
    /// PPO with an adaptive KL penalty (Schulman et al. 2017, eq. 8) instead of the clip:
    ///   L = −mean(ρ·A) + β·mean(KL[π_old(·|s), π(·|s)]) + c_v·½·mean((V − R)²) − c_e·mean(H).
    /// The KL is eq. 8's KL[π_old(·|s), π(·|s)] taken exactly per state (over all actions), not the sampled
    /// mean(log π_old(a) − log π(a)): on a fixed batch that estimate is smallest where π imitates the batch's own actions, not at
    /// π_old, so a large β pushed the policy away and the halving/doubling controller ran β up without bound (CartPole,
    /// d_targ = 0.003: 1e16). The reported ApproxKl is mean(KL), the d the β controller sees.
    /// </summary>
    public static LossResult PpoPenalty(
        ReadOnlySpan<float> newLogProb, ReadOnlySpan<float> oldLogProb, ReadOnlySpan<float> kl, ReadOnlySpan<float> advantages,
        ReadOnlySpan<float> entropy, ReadOnlySpan<float> newValues, ReadOnlySpan<float> returns, double beta, double valueCoef, double entropyCoef)
    {
        int b = CheckBatch(newLogProb, oldLogProb, advantages, entropy, newValues, kl, returns);
        var gLogp = new float[b];
        var gKl = new float[b];
        double surrogate = 0, klSum = 0;
        for (int i = 0; i < b; i++)
        {
            double ratio = Math.Exp(newLogProb[i] - oldLogProb[i]);
            surrogate += ratio * advantages[i];
            klSum += kl[i];
            gLogp[i] = (float)(-advantages[i] * ratio / b);
            gKl[i] = (float)(beta / b);
        }
        var (vLoss, gValue) = ValueLoss(newValues, newValues, returns, 0, clip: false, valueCoef);
        var (meanH, gEntropy) = EntropyBonus(entropy, entropyCoef);
        double policy = -surrogate / b + beta * klSum / b;
        return new LossResult(policy + valueCoef * vLoss - entropyCoef * meanH, policy, vLoss, meanH, klSum / b, 0,
            new LossGradients(gLogp, gEntropy, gValue, gKl));
    }

    /// <summary>
    /// REINFORCE with a learned baseline (Williams 1992; the lecture's ∇J = E[R·∇log p] with R replaced by R − b(s)):
    ///   L = −mean((G − b)·log π) + c_v·½·mean((b − G)²) − c_e·mean(H), where G − b is passed in as advantages (held constant).
    /// </summary>
    public static LossResult Reinforce(
        ReadOnlySpan<float> logProb, ReadOnlySpan<float> advantages, ReadOnlySpan<float> entropy,
        ReadOnlySpan<float> values, ReadOnlySpan<float> returns, double valueCoef, double entropyCoef)
    {
        int b = CheckBatch(logProb, logProb, advantages, entropy, values, values, returns);
        var gLogp = new float[b];
        double pg = 0;
        for (int i = 0; i < b; i++)
        {
            pg += -advantages[i] * logProb[i];
            gLogp[i] = -advantages[i] / b;
        }
        var (vLoss, gValue) = ValueLoss(values, values, returns, 0, clip: false, valueCoef);
        var (meanH, gEntropy) = EntropyBonus(entropy, entropyCoef);
        return new LossResult(pg / b + valueCoef * vLoss - entropyCoef * meanH, pg / b, vLoss, meanH, 0, 0, new LossGradients(gLogp, gEntropy, gValue));
    }

    /// <summary>½·mean((V − R)²), or CleanRL's clipped form ½·mean(max((V − R)², (V_old + clip(V − V_old, −ε, ε) − R)²)); gradients scaled by c_v.</summary>
    private static (double Loss, float[] Grad) ValueLoss(ReadOnlySpan<float> v, ReadOnlySpan<float> vOld, ReadOnlySpan<float> ret, double eps, bool clip, double coef)
    {
        int b = v.Length;
        var g = new float[b];
        double sum = 0;
        for (int i = 0; i < b; i++)
        {
            double du = v[i] - ret[i];
            double lu = du * du;
            if (!clip) { sum += lu; g[i] = (float)(coef * du / b); continue; }
            double step = v[i] - vOld[i];
            double vc = vOld[i] + Math.Clamp(step, -eps, eps);
            double dc = vc - ret[i];
            double lc = dc * dc;
            if (lu >= lc) { sum += lu; g[i] = (float)(coef * du / b); }
            else { sum += lc; g[i] = Math.Abs(step) < eps ? (float)(coef * dc / b) : 0f; }
        }
        return (0.5 * sum / b, g);
    }

    private static (double Mean, float[] Grad) EntropyBonus(ReadOnlySpan<float> entropy, double coef)
    {
        int b = entropy.Length;
        double mean = 0;
        foreach (float h in entropy) mean += h;
        var g = new float[b];
        Array.Fill(g, (float)(-coef / b));
        return (mean / b, g);
    }

    private static int CheckBatch(ReadOnlySpan<float> a, ReadOnlySpan<float> b, ReadOnlySpan<float> c, ReadOnlySpan<float> d,
        ReadOnlySpan<float> e, ReadOnlySpan<float> f, ReadOnlySpan<float> g)
    {
        int n = a.Length;
        if (n == 0) throw new ArgumentException("Loss over an empty minibatch.");
        if (b.Length != n || c.Length != n || d.Length != n || e.Length != n || f.Length != n || g.Length != n)
            throw new ArgumentException($"Loss inputs disagree in length: {n}, {b.Length}, {c.Length}, {d.Length}, {e.Length}, {f.Length}, {g.Length}.");
        return n;
    }
}
