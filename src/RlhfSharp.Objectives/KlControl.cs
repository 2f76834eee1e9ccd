// KL coefficient controllers: how strongly the RLHF reward r − β·KL(π‖π_ref) leashes the policy.
// Ziegler et al. 2019 (§2.2, "Fine-tuning details") adapt β proportionally toward a target KL;
// Schulman et al. 2017 (PPO §4, "adaptive KL penalty coefficient") halve or double it.
namespace RlhfSharp.Objectives;

/// <summary>Supplies β for the KL penalty and updates it from the KL measured on the latest batch.</summary>
public interface IKlController
{
    double Beta { get; }

    /// <summary>Called once per batch with the mean KL per episode and the number of episodes in the batch.</summary>
    void Update(double currentKl, int episodes);
}

/// <summary>β stays where it was set.</summary>
public sealed class FixedKlController(double beta) : IKlController
{
    public double Beta { get; } = beta >= 0 ? beta : throw new ArgumentOutOfRangeException(nameof(beta), beta, "β must be ≥ 0.");

    public void Update(double currentKl, int episodes) { }
}

/// <summary>
/// Ziegler et al.'s proportional controller: e = clip((KL − KL_target)/KL_target, −0.2, 0.2),
/// β ← β·(1 + K_β·e·n/horizon), with K_β = 1 as in their code (lm-human-preferences, AdaptiveKLController)
/// and n the batch size in episodes.
/// </summary>
public sealed class AdaptiveKlController : IKlController
{
    private readonly double _target;
    private readonly double _horizon;

    public AdaptiveKlController(double initialBeta, double targetKl, double horizon)
    {
        if (initialBeta < 0) throw new ArgumentOutOfRangeException(nameof(initialBeta), initialBeta, "initial β must be ≥ 0.");
        if (targetKl <= 0) throw new ArgumentOutOfRangeException(nameof(targetKl), targetKl, "target KL must be > 0.");
        if (horizon <= 0) throw new ArgumentOutOfRangeException(nameof(horizon), horizon, "horizon must be > 0.");
        Beta = initialBeta;
        _target = targetKl;
        _horizon = horizon;
    }

    public double Beta { get; private set; }

    public void Update(double currentKl, int episodes)
    {
        double error = Math.Clamp((currentKl - _target) / _target, -0.2, 0.2);
        Beta *= 1 + error * episodes / _horizon;
    }
}

/// <summary>
/// PPO's adaptive penalty (Schulman et al. 2017, §4): after each update, if KL &lt; target/1.5 then β ← β/2;
/// if KL &gt; target·1.5 then β ← β·2. The constants 1.5 and 2 are the paper's.
/// </summary>
public sealed class HalvingDoublingKlController : IKlController
{
    private readonly double _target;

    public HalvingDoublingKlController(double initialBeta, double targetKl)
    {
        if (initialBeta <= 0) throw new ArgumentOutOfRangeException(nameof(initialBeta), initialBeta, "initial β must be > 0.");
        if (targetKl <= 0) throw new ArgumentOutOfRangeException(nameof(targetKl), targetKl, "target KL must be > 0.");
        Beta = initialBeta;
        _target = targetKl;
    }

    public double Beta { get; private set; }

    public void Update(double currentKl, int episodes)
    {
        if (currentKl < _target / 1.5) Beta /= 2;
        else if (currentKl > _target * 1.5) Beta *= 2;
    }
}
