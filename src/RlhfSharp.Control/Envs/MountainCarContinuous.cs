// MountainCarContinuous-v0 as Gymnasium's gymnasium/envs/classic_control/continuous_mountain_car.py: force = clip(a, −1, 1)
// times power 0.0015, goal x ≥ 0.45 pays +100, each step costs 0.1·a² (on the unclipped action), TimeLimit 999.
using RlhfSharp.Tensors;

namespace RlhfSharp.Control.Envs;

/// <summary>State: [position, velocity], kept in float32 between steps as the Python code stores it. Action: one force in [−1, 1].</summary>
public sealed class MountainCarContinuous : ClassicControlEnv
{
    // Constants from continuous_mountain_car.py Continuous_MountainCarEnv.__init__.
    public const double MinAction = -1.0;
    public const double MaxAction = 1.0;
    public const double MinPosition = -1.2;
    public const double MaxPosition = 0.6;
    public const double MaxSpeed = 0.07;
    public const double GoalPosition = 0.45; // 0.5 in MountainCar-v0; 0.45 in Arnaud de Broissia's version
    public const double GoalVelocity = 0;
    public const double Power = 0.0015;
    public const double Gravity = 0.0025; // step(): "- 0.0025 * math.cos(3 * position)"
    // gymnasium/envs/__init__.py: register(id="MountainCarContinuous-v0", max_episode_steps=999, reward_threshold=90.0).
    public const int TimeLimit = 999;

    private static readonly BoxSpace ObsSpace = new([(float)MinPosition, (float)-MaxSpeed], [(float)MaxPosition, (float)MaxSpeed]);

    public MountainCarContinuous(ulong defaultSeed = 0) : base(defaultSeed) { }

    public override string Id => "MountainCarContinuous-v0";

    public override BoxSpace ObservationSpace => ObsSpace;

    public override Space ActionSpace { get; } = new BoxSpace([(float)MinAction], [(float)MaxAction]);

    public override int MaxEpisodeSteps => TimeLimit;

    // As MountainCar-v0: no physical time step; rendering runs at render_fps = 30.
    public override double SecondsPerStep => 1.0 / 30;

    public override int StateSize => 2;

    protected override double[] SampleInitialState(Rng rng) => [rng.Uniform(-0.6, -0.4), 0.0];

    protected override (double Reward, bool Terminated) Advance(ReadOnlySpan<float> action)
    {
        double position = State[0], velocity = State[1];
        double force = Math.Min(Math.Max(action[0], MinAction), MaxAction);
        velocity += force * Power - Gravity * Math.Cos(3 * position);
        if (velocity > MaxSpeed) velocity = MaxSpeed;
        if (velocity < -MaxSpeed) velocity = -MaxSpeed;
        position += velocity;
        if (position > MaxPosition) position = MaxPosition;
        if (position < MinPosition) position = MinPosition;
        if (position == MinPosition && velocity < 0) velocity = 0;
        bool terminated = position >= GoalPosition && velocity >= GoalVelocity;
        double reward = terminated ? 100.0 : 0.0;
        reward -= (double)action[0] * action[0] * 0.1;
        // self.state = np.array([position, velocity], dtype=np.float32)
        State = [(float)position, (float)velocity];
        return (reward, terminated);
    }

    public override float[] Observe() => [(float)State[0], (float)State[1]];
}
