// Pendulum-v1 as Gymnasium's gymnasium/envs/classic_control/pendulum.py: semi-implicit Euler with dt = 0.05, torque clipped
// to ±2, speed clipped to ±8, reward −(θ² + 0.1·θ̇² + 0.001·u²) on the state before the step, never terminates, TimeLimit 200.
using RlhfSharp.Tensors;

namespace RlhfSharp.Control.Envs;

/// <summary>State: [theta, theta_dot] (theta = 0 upright, counter-clockwise positive). Action: one torque in [−2, 2].</summary>
public sealed class Pendulum : ClassicControlEnv
{
    // Constants from pendulum.py PendulumEnv.__init__ (g defaults to 10.0).
    public const double MaxSpeed = 8;
    public const double MaxTorque = 2.0;
    public const double Dt = 0.05;
    public const double G = 10.0;
    public const double M = 1.0;
    public const double L = 1.0;
    // reset(): DEFAULT_X = π, DEFAULT_Y = 1.0, symmetric bounds.
    public const double DefaultX = Math.PI;
    public const double DefaultY = 1.0;
    // gymnasium/envs/__init__.py: register(id="Pendulum-v1", max_episode_steps=200).
    public const int TimeLimit = 200;

    private static readonly BoxSpace ObsSpace = new([-1f, -1f, (float)-MaxSpeed], [1f, 1f, (float)MaxSpeed]);

    public Pendulum(ulong defaultSeed = 0) : base(defaultSeed) { }

    public override string Id => "Pendulum-v1";

    public override BoxSpace ObservationSpace => ObsSpace;

    public override Space ActionSpace { get; } = new BoxSpace([(float)-MaxTorque], [(float)MaxTorque]);

    public override int MaxEpisodeSteps => TimeLimit;

    public override double SecondsPerStep => Dt;

    public override int StateSize => 2;

    /// <summary>The clipped torque of the last step (the renderer draws it); null right after Reset.</summary>
    public double? LastTorque { get; private set; }

    // The last torque, or nothing right after Reset.
    protected override double[] SaveExtraState() => LastTorque is double u ? [u] : [];

    protected override void RestoreExtraState(double[] extra)
    {
        if (extra.Length > 1) throw new ArgumentException($"{Id}.RestoreState: {extra.Length} extra values; Pendulum keeps at most its last torque.", nameof(extra));
        LastTorque = extra.Length == 1 ? extra[0] : null;
    }

    protected override double[] SampleInitialState(Rng rng)
    {
        LastTorque = null;
        return [rng.Uniform(-DefaultX, DefaultX), rng.Uniform(-DefaultY, DefaultY)];
    }

    protected override (double Reward, bool Terminated) Advance(ReadOnlySpan<float> action)
    {
        double th = State[0], thdot = State[1];
        double u = Math.Clamp((double)action[0], -MaxTorque, MaxTorque);
        LastTorque = u;
        double costs = AngleNormalize(th) * AngleNormalize(th) + 0.1 * thdot * thdot + 0.001 * (u * u);
        double newThdot = thdot + (3 * G / (2 * L) * Math.Sin(th) + 3.0 / (M * L * L) * u) * Dt;
        newThdot = Math.Clamp(newThdot, -MaxSpeed, MaxSpeed);
        double newTh = th + newThdot * Dt;
        State = [newTh, newThdot];
        return (-costs, false);
    }

    public override float[] Observe() => [(float)Math.Cos(State[0]), (float)Math.Sin(State[0]), (float)State[1]];

    /// <summary>angle_normalize(): ((x + π) mod 2π) − π with Python's floor modulo, so the result lies in [−π, π).</summary>
    public static double AngleNormalize(double x)
    {
        double twoPi = 2 * Math.PI;
        double m = (x + Math.PI) % twoPi;
        if (m < 0) m += twoPi;
        return m - Math.PI;
    }
}
