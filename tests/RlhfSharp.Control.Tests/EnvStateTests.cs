// Saved and restored environment state (what a control checkpoint holds of its environments): for every environment, a
// fresh copy restored from a state that went through the trainer state file steps, ends episodes and resets exactly as the
// original does, bit for bit; the same for a VectorEnv (with its running episode sums) and the reward normaliser.
using RlhfSharp.Control.Envs;
using RlhfSharp.Models.Checkpoints;
using RlhfSharp.Tensors;

namespace RlhfSharp.Control.Tests;

public sealed class EnvStateTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("envstate-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<string> Envs => [.. EnvRegistry.Ids];

    /// <summary>The state as a checkpoint stores it: written to the trainer state file and read back.</summary>
    private T ThroughCheckpoint<T>(T state)
    {
        string dir = Path.Combine(_dir, Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        TrainerCheckpoint.WriteState(dir, state);
        return TrainerCheckpoint.ReadState<T>(dir);
    }

    private static void AssertSameBits(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++) Assert.Equal(BitConverter.SingleToInt32Bits(expected[i]), BitConverter.SingleToInt32Bits(actual[i]));
    }

    private static void AssertSameBits(double[] expected, double[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++) Assert.Equal(BitConverter.DoubleToInt64Bits(expected[i]), BitConverter.DoubleToInt64Bits(actual[i]));
    }

    /// <summary>Steps both environments with the same random actions for <paramref name="steps"/> steps, resetting (without a seed) where an episode ends.</summary>
    private static void AssertSameFuture(ClassicControlEnv original, ClassicControlEnv copy, bool needsReset, int steps, ulong actionSeed)
    {
        var actions = new Rng(actionSeed);
        int episodes = 0;
        for (int t = 0; t < steps; t++)
        {
            if (needsReset)
            {
                AssertSameBits(original.Reset(), copy.Reset());
                episodes++;
            }
            float[] a = original.ActionSpace.Sample(actions);
            var expected = original.Step(a);
            var actual = copy.Step(a);
            AssertSameBits(expected.Observation, actual.Observation);
            Assert.Equal(BitConverter.DoubleToInt64Bits(expected.Reward), BitConverter.DoubleToInt64Bits(actual.Reward));
            Assert.Equal((expected.Terminated, expected.Truncated), (actual.Terminated, actual.Truncated));
            Assert.Equal(original.ElapsedSteps, copy.ElapsedSteps);
            needsReset = expected.Done;
        }
        AssertSameBits(original.State, copy.State);
        if (original is Pendulum p) Assert.Equal(p.LastTorque, ((Pendulum)copy).LastTorque);
        // Every time limit (CartPole and Acrobot 500, Pendulum and MountainCar 200, MountainCarContinuous 999) is shorter.
        Assert.True(episodes > 0, "the comparison must cross an episode end and a reset without a seed");
    }

    [Theory]
    [MemberData(nameof(Envs))]
    public void RestoredMidEpisode_StepsEndsAndResetsExactlyAsTheOriginal(string id)
    {
        var original = EnvRegistry.Make(id, defaultSeed: 5);
        original.Reset(seed: 11);
        var warmup = new Rng(3);
        bool needsReset = false;
        for (int t = 0; t < 15; t++)
        {
            if (needsReset) original.Reset();
            needsReset = original.Step(original.ActionSpace.Sample(warmup)).Done;
        }
        Assert.True(original.ElapsedSteps > 0);
        // Another default seed: the copy's future must come from the saved state alone.
        var copy = EnvRegistry.Make(id, defaultSeed: 999);
        copy.RestoreState(ThroughCheckpoint(original.SaveState()));
        AssertSameFuture(original, copy, needsReset, steps: 1200, actionSeed: 4);
    }

    [Theory]
    [MemberData(nameof(Envs))]
    public void RestoredRightAfterAnEpisodeEnded_ResetsFromTheSameRngAsTheOriginal(string id)
    {
        var original = EnvRegistry.Make(id, defaultSeed: 2);
        original.Reset(seed: 7);
        var warmup = new Rng(8);
        while (!original.Step(original.ActionSpace.Sample(warmup)).Done) { }
        var copy = EnvRegistry.Make(id, defaultSeed: 3);
        copy.RestoreState(ThroughCheckpoint(original.SaveState()));
        // Stepping an ended episode is refused in both, as it was before the save.
        Assert.Throws<InvalidOperationException>(() => copy.Step(copy.ActionSpace.Sample(new Rng(1))));
        AssertSameFuture(original, copy, needsReset: true, steps: 600, actionSeed: 9);
    }

    [Fact]
    public void RestoreState_OfAnotherEnvironment_IsRefusedByName()
    {
        var cartPole = new CartPole();
        cartPole.Reset(seed: 1);
        var ex = Assert.Throws<ArgumentException>(() => new MountainCar().RestoreState(cartPole.SaveState()));
        Assert.Contains("MountainCar-v0", ex.Message);
        Assert.Contains("4 physics values", ex.Message);
    }

    [Theory]
    [InlineData("CartPole-v1")]
    [InlineData("Pendulum-v1")]
    public void RestoredVectorEnv_ContinuesWithTheSameStepsAndEpisodeSums(string id)
    {
        var original = new VectorEnv(id, 3, seed: 100);
        original.Reset();
        var actions = new Rng(5);
        int a = original.ActionSize;
        float[] Actions()
        {
            var all = new float[3 * a];
            for (int i = 0; i < 3; i++) original.ActionSpace.Sample(actions).CopyTo(all, i * a);
            return all;
        }
        for (int t = 0; t < 150; t++) original.Step(Actions());
        var copy = new VectorEnv(id, 3, seed: 1);
        copy.RestoreState(ThroughCheckpoint(original.SaveState()));
        int finished = 0;
        for (int t = 0; t < 400; t++)
        {
            float[] act = Actions();
            var expected = original.Step(act);
            var actual = copy.Step(act);
            AssertSameBits(expected.Observations, actual.Observations);
            AssertSameBits(expected.Rewards, actual.Rewards);
            Assert.Equal(expected.Terminated, actual.Terminated);
            Assert.Equal(expected.Truncated, actual.Truncated);
            for (int i = 0; i < 3; i++) Assert.Equal(expected.FinalObservations[i], actual.FinalObservations[i]);
            // The returns and lengths of episodes that began before the save include the steps before it.
            Assert.Equal(expected.Finished, actual.Finished);
            finished += expected.Finished.Count;
        }
        Assert.True(finished > 0, "episodes that span the save must end inside the comparison");
    }

    [Fact]
    public void RestoredRewardNormalizer_ScalesTheNextRewardsAsTheOriginal()
    {
        var original = new RewardNormalizer(2, gamma: 0.9);
        var rng = new Rng(1);
        double[] Rewards() => [rng.Normal(), rng.Normal()];
        for (int t = 0; t < 30; t++) original.Normalize(Rewards(), [false, t % 7 == 0], [false, false]);
        var copy = new RewardNormalizer(2, gamma: 0.9);
        copy.Load(ThroughCheckpoint(original.Save()));
        for (int t = 0; t < 30; t++)
        {
            double[] r = Rewards(), s = (double[])r.Clone();
            bool[] terminated = [t % 5 == 0, false];
            original.Normalize(r, terminated, [false, false]);
            copy.Normalize(s, terminated, [false, false]);
            AssertSameBits(r, s);
        }
    }
}
