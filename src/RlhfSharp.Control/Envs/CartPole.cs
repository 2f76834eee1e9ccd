// CartPole-v1 exactly as Gymnasium's gymnasium/envs/classic_control/cartpole.py (Barto, Sutton & Anderson 1983):
// explicit Euler, constants and thresholds below, reward +1 per step including the failing one, TimeLimit 500.
using RlhfSharp.Tensors;

namespace RlhfSharp.Control.Envs;

/// <summary>State: [x, x_dot, theta, theta_dot] (theta in radians, 0 = upright, positive leans right). Actions: 0 push left, 1 push right.</summary>
public sealed class CartPole : ClassicControlEnv
{
    // Constants from cartpole.py CartPoleEnv.__init__.
    public const double Gravity = 9.8;
    public const double MassCart = 1.0;
    public const double MassPole = 0.1;
    public const double TotalMass = MassPole + MassCart;
    public const double Length = 0.5; // half the pole's length
    public const double PoleMassLength = MassPole * Length;
    public const double ForceMag = 10.0;
    public const double Tau = 0.02; // seconds between state updates
    public const double ThetaThresholdRadians = 12 * 2 * Math.PI / 360;
    public const double XThreshold = 2.4;
    // gymnasium/envs/__init__.py: register(id="CartPole-v1", max_episode_steps=500, reward_threshold=475.0).
    public const int TimeLimit = 500;

    private static readonly BoxSpace ObsSpace = new(
        [(float)(-XThreshold * 2), float.MinValue, (float)(-ThetaThresholdRadians * 2), float.MinValue],
        [(float)(XThreshold * 2), float.MaxValue, (float)(ThetaThresholdRadians * 2), float.MaxValue]);

    public CartPole(ulong defaultSeed = 0) : base(defaultSeed) { }

    public override string Id => "CartPole-v1";

    public override BoxSpace ObservationSpace => ObsSpace;

    public override Space ActionSpace { get; } = new DiscreteSpace(2);

    public override int MaxEpisodeSteps => TimeLimit;

    public override double SecondsPerStep => Tau;

    public override int StateSize => 4;

    // reset(): every state variable uniform in (-0.05, 0.05).
    protected override double[] SampleInitialState(Rng rng) =>
        [rng.Uniform(-0.05, 0.05), rng.Uniform(-0.05, 0.05), rng.Uniform(-0.05, 0.05), rng.Uniform(-0.05, 0.05)];

    protected override (double Reward, bool Terminated) Advance(ReadOnlySpan<float> action)
    {
        double x = State[0], xDot = State[1], theta = State[2], thetaDot = State[3];
        double force = action[0] == 1 ? ForceMag : -ForceMag;
        double cosTheta = Math.Cos(theta), sinTheta = Math.Sin(theta);
        // Florian (2007), "Correct equations for the dynamics of the cart-pole system", as cartpole.py cites.
        double temp = (force + PoleMassLength * thetaDot * thetaDot * sinTheta) / TotalMass;
        double thetaAcc = (Gravity * sinTheta - cosTheta * temp)
            / (Length * (4.0 / 3.0 - MassPole * cosTheta * cosTheta / TotalMass));
        double xAcc = temp - PoleMassLength * thetaAcc * cosTheta / TotalMass;

        // kinematics_integrator == "euler": positions use the old velocities.
        x += Tau * xDot;
        xDot += Tau * xAcc;
        theta += Tau * thetaDot;
        thetaDot += Tau * thetaAcc;
        State = [x, xDot, theta, thetaDot];

        bool terminated = x < -XThreshold || x > XThreshold || theta < -ThetaThresholdRadians || theta > ThetaThresholdRadians;
        return (1.0, terminated);
    }

    public override float[] Observe() => [(float)State[0], (float)State[1], (float)State[2], (float)State[3]];
}
