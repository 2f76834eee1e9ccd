// When labels are asked for: a share of the budget before RL starts, the rest spread over training at a decaying rate
// (more early, when the policy and the predictor change fastest — Christiano et al. §2.2 / App. A decay their label rate).
namespace RlhfSharp.Control.Preferences;

/// <summary>A label budget over training. Cumulative labels after a fraction f of the RL updates:
/// PreRl + (Total − PreRl)·ln(1 + Decay·f)/ln(1 + Decay), rounded down, and exactly Total at f = 1.</summary>
/// <param name="Total">The whole budget.</param>
/// <param name="PreRl">Labels collected on the untrained policy's segments before RL starts.</param>
/// <param name="Decay">How front-loaded the rate is (0 is uniform; larger asks more early).</param>
public sealed record LabelSchedule(int Total, int PreRl, double Decay = 4.0)
{
    /// <summary>Throws with both numbers when the pre-RL share does not fit in the budget.</summary>
    public void Validate()
    {
        if (Total < 1) throw new ArgumentOutOfRangeException(nameof(Total), Total, "label schedule: the label budget must be ≥ 1.");
        if (PreRl < 1) throw new ArgumentOutOfRangeException(nameof(PreRl), PreRl, "label schedule: at least 1 label must come before RL (the first fit).");
        if (Total < PreRl)
            throw new ArgumentException($"label schedule: the label budget {Total} is smaller than the pre-RL share {PreRl}.");
        if (!(Decay >= 0) || !double.IsFinite(Decay)) throw new ArgumentOutOfRangeException(nameof(Decay), Decay, "label schedule: Decay must be a finite number ≥ 0.");
    }

    /// <summary>Labels wanted by the end of update <paramref name="update"/> of <paramref name="updates"/> (update 0 = before RL).</summary>
    public int CumulativeAfter(int update, int updates)
    {
        if (updates < 1 || update < 0 || update > updates)
            throw new ArgumentOutOfRangeException(nameof(update), update, $"label schedule: update must lie in 0..{updates}.");
        if (update == updates) return Total;
        double f = update / (double)updates;
        double g = Decay == 0 ? f : Math.Log(1 + Decay * f) / Math.Log(1 + Decay);
        return Math.Min(Total, PreRl + (int)Math.Floor((Total - PreRl) * g));
    }

    /// <summary>New labels to ask for during update <paramref name="update"/> (from 1).</summary>
    public int DueAt(int update, int updates) => CumulativeAfter(update, updates) - CumulativeAfter(update - 1, updates);
}
