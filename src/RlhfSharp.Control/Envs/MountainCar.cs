// MountainCar-v0 as Gymnasium's gymnasium/envs/classic_control/mountain_car.py (Moore 1990): three discrete pushes,
// velocity then position updated and clipped, inelastic left wall, reward −1 per step, goal x ≥ 0.5, TimeLimit 200.
using RlhfSharp.Tensors;

namespace RlhfSharp.Control.Envs;

/// <summary>State: [position, velocity]. Actions: 0 push left, 1 no push, 2 push right.</summary>
public sealed class MountainCar : ClassicControlEnv
{
    // Constants from mountain_car.py MountainCarEnv.__init__ (goal_velocity defaults to 0).
    public const double MinPosition = -1.2;
    public const double MaxPosition = 0.6;
    public const double MaxSpeed = 0.07;
    public const double GoalPosition = 0.5;
    public const double GoalVelocity = 0;
    public const double Force = 0.001;
    public const double Gravity = 0.0025;
    // gymnasium/envs/__init__.py: register(id="MountainCar-v0", max_episode_steps=200, reward_threshold=-110.0).
    public const int TimeLimit = 200;

    private static readonly BoxSpace ObsSpace = new([(float)MinPosition, (float)-MaxSpeed], [(float)MaxPosition, (float)MaxSpeed]);

    public MountainCar(ulong defaultSeed = 0) : base(defaultSeed) { }

    public override string Id => "MountainCar-v0";

    public override BoxSpace ObservationSpace => ObsSpace;

    public override Space ActionSpace { get; } = new DiscreteSpace(3);

    public override int MaxEpisodeSteps => TimeLimit;

    // The task has no physical time step; rendering runs at metadata["render_fps"] = 30.
    public override double SecondsPerStep => 1.0 / 30;

    public override int StateSize => 2;

    // reset(): position uniform in [-0.6, -0.4], velocity 0.
    protected override double[] SampleInitialState(Rng rng) => [rng.Uniform(-0.6, -0.4), 0.0];

    protected override (double Reward, bool Terminated) Advance(ReadOnlySpan<float> action)
    {
        double position = State[0], velocity = State[1];
        velocity += (action[0] - 1) * Force + Math.Cos(3 * position) * -Gravity;
        velocity = Math.Clamp(velocity, -MaxSpeed, MaxSpeed);
        position += velocity;
        position = Math.Clamp(position, MinPosition, MaxPosition);
        if (position == MinPosition && velocity < 0) velocity = 0;
        State = [position, velocity];
        bool terminated = position >= GoalPosition && velocity >= GoalVelocity;
        return (-1.0, terminated);
    }

    public override float[] Observe() => [(float)State[0], (float)State[1]];

    /// <summary>_height(): the hill's profile, used by the renderer.</summary>
    public static double Height(double x) => Math.Sin(3 * x) * 0.45 + 0.55;
}
