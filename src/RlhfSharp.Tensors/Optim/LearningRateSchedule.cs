// Learning-rate schedules as data (so a run's config.json can hold one): constant, linear warm-up then
// constant, linear warm-up then cosine decay, linear warm-up then linear decay.
namespace RlhfSharp.Tensors.Optim;

public enum ScheduleKind
{
    /// <summary>PeakRate at every step.</summary>
    Constant,
    /// <summary>Linear from 0 to PeakRate over WarmupSteps, then PeakRate.</summary>
    LinearWarmup,
    /// <summary>Warm-up, then half a cosine from PeakRate down to FinalRate at TotalSteps (nanoGPT's get_lr).</summary>
    Cosine,
    /// <summary>Warm-up, then a straight line from PeakRate down to FinalRate at TotalSteps (CleanRL's annealing).</summary>
    LinearDecay,
}

/// <summary>A learning rate per optimiser step (step counts from 0).</summary>
public sealed record LearningRateSchedule
{
    /// <summary>The shape of the schedule.</summary>
    public ScheduleKind Kind { get; init; } = ScheduleKind.Constant;

    /// <summary>The rate after warm-up (the maximum).</summary>
    public float PeakRate { get; init; } = 1e-3f;

    /// <summary>Steps of linear warm-up from 0 (step s uses PeakRate·(s+1)/WarmupSteps).</summary>
    public int WarmupSteps { get; init; }

    /// <summary>The step at which decay reaches FinalRate (Cosine, LinearDecay); later steps keep FinalRate.</summary>
    public int TotalSteps { get; init; }

    /// <summary>The rate at the end of decay.</summary>
    public float FinalRate { get; init; }

    public float At(int step)
    {
        if (step < 0) throw new ArgumentOutOfRangeException(nameof(step), step, "LearningRateSchedule: step must be ≥ 0.");
        if (Kind != ScheduleKind.Constant && step < WarmupSteps) return PeakRate * (step + 1) / WarmupSteps;
        switch (Kind)
        {
            case ScheduleKind.Constant:
            case ScheduleKind.LinearWarmup:
                return PeakRate;
            case ScheduleKind.Cosine:
            case ScheduleKind.LinearDecay:
                int span = TotalSteps - WarmupSteps;
                if (span <= 0)
                    throw new InvalidOperationException($"LearningRateSchedule: TotalSteps ({TotalSteps}) must exceed WarmupSteps ({WarmupSteps}) for {Kind}.");
                double frac = Math.Min(1.0, (double)(step - WarmupSteps) / span);
                double shape = Kind == ScheduleKind.Cosine ? 0.5 * (1 + Math.Cos(Math.PI * frac)) : 1 - frac;
                return (float)(FinalRate + shape * (PeakRate - FinalRate));
            default:
                throw new InvalidOperationException($"LearningRateSchedule: unknown kind {Kind}.");
        }
    }
}
