// Acrobot-v1 as Gymnasium's gymnasium/envs/classic_control/acrobot.py (Sutton 1996; the book's dynamics, "book" branch):
// one RK4 step of dt = 0.2 s, angles wrapped to [-π, π], velocities clipped, reward −1 per step and 0 on reaching the line.
using RlhfSharp.Tensors;

namespace RlhfSharp.Control.Envs;

/// <summary>State: [theta1, theta2, dtheta1, dtheta2] (theta1 = 0 hangs down; theta2 relative to link 1). Actions: torque −1, 0, +1.</summary>
public sealed class Acrobot : ClassicControlEnv
{
    // Constants from acrobot.py AcrobotEnv.
    public const double Dt = 0.2;
    public const double LinkLength1 = 1.0;
    public const double LinkLength2 = 1.0;
    public const double LinkMass1 = 1.0;
    public const double LinkMass2 = 1.0;
    public const double LinkComPos1 = 0.5;
    public const double LinkComPos2 = 0.5;
    public const double LinkMoi = 1.0;
    public const double MaxVel1 = 4 * Math.PI;
    public const double MaxVel2 = 9 * Math.PI;
    public const double G = 9.8; // _dsdt: g = 9.8
    private static readonly double[] AvailTorque = [-1.0, 0.0, +1.0];
    // gymnasium/envs/__init__.py: register(id="Acrobot-v1", reward_threshold=-100.0, max_episode_steps=500).
    public const int TimeLimit = 500;

    private static readonly BoxSpace ObsSpace = new(
        [-1f, -1f, -1f, -1f, (float)-MaxVel1, (float)-MaxVel2],
        [1f, 1f, 1f, 1f, (float)MaxVel1, (float)MaxVel2]);

    public Acrobot(ulong defaultSeed = 0) : base(defaultSeed) { }

    public override string Id => "Acrobot-v1";

    public override BoxSpace ObservationSpace => ObsSpace;

    public override Space ActionSpace { get; } = new DiscreteSpace(3);

    public override int MaxEpisodeSteps => TimeLimit;

    public override double SecondsPerStep => Dt;

    public override int StateSize => 4;

    // reset(): uniform(-0.1, 0.1) for all four, cast to float32 as acrobot.py does (.astype(np.float32)).
    protected override double[] SampleInitialState(Rng rng)
    {
        var s = new double[4];
        for (int i = 0; i < 4; i++) s[i] = (float)rng.Uniform(-0.1, 0.1);
        return s;
    }

    protected override (double Reward, bool Terminated) Advance(ReadOnlySpan<float> action)
    {
        double torque = AvailTorque[(int)action[0]];
        double[] ns = Rk4(State, torque, Dt);
        ns[0] = Wrap(ns[0], -Math.PI, Math.PI);
        ns[1] = Wrap(ns[1], -Math.PI, Math.PI);
        ns[2] = Math.Min(Math.Max(ns[2], -MaxVel1), MaxVel1);
        ns[3] = Math.Min(Math.Max(ns[3], -MaxVel2), MaxVel2);
        State = ns;
        bool terminated = IsTerminal(ns);
        return (terminated ? 0.0 : -1.0, terminated);
    }

    /// <summary>_terminal(): the free end is above the line one link-length over the pivot.</summary>
    public static bool IsTerminal(ReadOnlySpan<double> s) => -Math.Cos(s[0]) - Math.Cos(s[1] + s[0]) > 1.0;

    public override float[] Observe() =>
        [(float)Math.Cos(State[0]), (float)Math.Sin(State[0]), (float)Math.Cos(State[1]), (float)Math.Sin(State[1]), (float)State[2], (float)State[3]];

    /// <summary>_dsdt with the book's ddtheta2 (includes the −m2·l1·lc2·dθ1²·sin θ2 term the NIPS paper omitted).</summary>
    internal static void Derivatives(ReadOnlySpan<double> s, double a, Span<double> ds)
    {
        const double m1 = LinkMass1, m2 = LinkMass2, l1 = LinkLength1, lc1 = LinkComPos1, lc2 = LinkComPos2, i1 = LinkMoi, i2 = LinkMoi;
        double theta1 = s[0], theta2 = s[1], dtheta1 = s[2], dtheta2 = s[3];
        double d1 = m1 * lc1 * lc1 + m2 * (l1 * l1 + lc2 * lc2 + 2 * l1 * lc2 * Math.Cos(theta2)) + i1 + i2;
        double d2 = m2 * (lc2 * lc2 + l1 * lc2 * Math.Cos(theta2)) + i2;
        double phi2 = m2 * lc2 * G * Math.Cos(theta1 + theta2 - Math.PI / 2.0);
        double phi1 = -m2 * l1 * lc2 * dtheta2 * dtheta2 * Math.Sin(theta2)
            - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * Math.Sin(theta2)
            + (m1 * lc1 + m2 * l1) * G * Math.Cos(theta1 - Math.PI / 2)
            + phi2;
        double ddtheta2 = (a + d2 / d1 * phi1 - m2 * l1 * lc2 * dtheta1 * dtheta1 * Math.Sin(theta2) - phi2)
            / (m2 * lc2 * lc2 + i2 - d2 * d2 / d1);
        double ddtheta1 = -(d2 * ddtheta2 + phi1) / d1;
        ds[0] = dtheta1;
        ds[1] = dtheta2;
        ds[2] = ddtheta1;
        ds[3] = ddtheta2;
    }

    /// <summary>rk4() over t = [0, dt]: one classic fourth-order Runge–Kutta step; the torque is held constant (its derivative is 0).</summary>
    private static double[] Rk4(double[] y0, double torque, double dt)
    {
        Span<double> k1 = stackalloc double[4], k2 = stackalloc double[4], k3 = stackalloc double[4], k4 = stackalloc double[4];
        Span<double> y = stackalloc double[4];
        double dt2 = dt / 2.0;
        Derivatives(y0, torque, k1);
        for (int i = 0; i < 4; i++) y[i] = y0[i] + dt2 * k1[i];
        Derivatives(y, torque, k2);
        for (int i = 0; i < 4; i++) y[i] = y0[i] + dt2 * k2[i];
        Derivatives(y, torque, k3);
        for (int i = 0; i < 4; i++) y[i] = y0[i] + dt * k3[i];
        Derivatives(y, torque, k4);
        var result = new double[4];
        for (int i = 0; i < 4; i++) result[i] = y0[i] + dt / 6.0 * (k1[i] + 2 * k2[i] + 2 * k3[i] + k4[i]);
        return result;
    }

    /// <summary>wrap(): shifts x by whole periods until m ≤ x ≤ M (unlike clipping).</summary>
    internal static double Wrap(double x, double m, double M)
    {
        double diff = M - m;
        while (x > M) x -= diff;
        while (x < m) x += diff;
        return x;
    }
}
