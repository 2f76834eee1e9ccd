// Each environment's step against Gymnasium's equations written out again here in double, for fixed states and actions,
// plus termination and truncation at the documented limits.
using RlhfSharp.Control;
using RlhfSharp.Control.Envs;

namespace RlhfSharp.Control.Tests;

public sealed class EnvironmentDynamicsTests
{
    private static void AssertClose(double expected, double actual, double tol = 1e-12, string what = "")
        => Assert.True(Math.Abs(expected - actual) <= tol * Math.Max(1, Math.Abs(expected)), $"{what}: expected {expected:R}, got {actual:R}");

    [Theory]
    [InlineData(0.01, -0.2, 0.05, 0.3, 1)]
    [InlineData(-1.0, 0.5, -0.15, -1.2, 0)]
    [InlineData(2.0, 1.0, 0.1, 0.0, 1)]
    public void CartPole_Step_MatchesFlorianEquationsWithEuler(double x, double xd, double th, double thd, int action)
    {
        var env = new CartPole();
        env.SetState([x, xd, th, thd]);
        var r = env.Step([action]);

        // Gymnasium cartpole.py step(), by hand: g=9.8, mc=1, mp=0.1, l=0.5, F=±10, tau=0.02.
        double f = action == 1 ? 10.0 : -10.0, total = 1.1, pml = 0.05;
        double temp = (f + pml * thd * thd * Math.Sin(th)) / total;
        double thacc = (9.8 * Math.Sin(th) - Math.Cos(th) * temp) / (0.5 * (4.0 / 3.0 - 0.1 * Math.Cos(th) * Math.Cos(th) / total));
        double xacc = temp - pml * thacc * Math.Cos(th) / total;
        double[] expected = [x + 0.02 * xd, xd + 0.02 * xacc, th + 0.02 * thd, thd + 0.02 * thacc];

        for (int i = 0; i < 4; i++) AssertClose(expected[i], env.State[i], what: $"state[{i}]");
        for (int i = 0; i < 4; i++) Assert.Equal((float)expected[i], r.Observation[i]);
        Assert.Equal(1.0, r.Reward);
        bool fell = Math.Abs(expected[0]) > 2.4 || Math.Abs(expected[2]) > 12 * 2 * Math.PI / 360;
        Assert.Equal(fell, r.Terminated);
        Assert.False(r.Truncated);
    }

    [Fact]
    public void CartPole_TerminatesPastTwelveDegreesWithRewardOne_AndRefusesFurtherSteps()
    {
        var env = new CartPole();
        env.SetState([0, 0, 0.2094, 2.0]); // 0.2094 + 0.02·2 = 0.2494 > 0.20944 after the Euler step
        var r = env.Step([1]);
        Assert.True(r.Terminated);
        Assert.Equal(1.0, r.Reward);
        var ex = Assert.Throws<InvalidOperationException>(() => env.Step([1]));
        Assert.Contains("Reset", ex.Message);
    }

    [Fact]
    public void CartPole_TruncatesAtStep500()
    {
        var env = new CartPole();
        env.Reset(seed: 3);
        env.SetState([0, 0, 0, 0], elapsedSteps: 498);
        Assert.False(env.Step([0]).Truncated);
        var last = env.Step([1]);
        Assert.True(last.Truncated);
        Assert.False(last.Terminated);
        Assert.Equal(500, env.ElapsedSteps);
    }

    [Fact]
    public void CartPole_BalancingController_RunsExactly500StepsUntruncatedBefore()
    {
        // A PD rule keeps the pole up, so the only way the episode ends is the 500-step TimeLimit.
        var env = new CartPole();
        var obs = env.Reset(seed: 7);
        int steps = 0;
        StepResult r;
        do
        {
            float a = obs[2] + 0.5f * obs[3] + 0.01f * obs[0] + 0.1f * obs[1] > 0 ? 1 : 0;
            r = env.Step([a]);
            obs = r.Observation;
            steps++;
        } while (!r.Done);
        Assert.Equal(500, steps);
        Assert.True(r.Truncated);
        Assert.False(r.Terminated);
    }

    [Fact]
    public void CartPole_Reset_IsSeededAndInsideFivePercent()
    {
        var a = new CartPole().Reset(seed: 42);
        var b = new CartPole().Reset(seed: 42);
        var c = new CartPole().Reset(seed: 43);
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        Assert.All(a, v => Assert.InRange(v, -0.05f, 0.05f));
    }

    [Theory]
    [InlineData(0.1, -0.05, 0.2, -0.3, 0)]
    [InlineData(2.5, 1.0, 3.0, -5.0, 2)]
    [InlineData(-3.0, 2.9, -12.0, 27.0, 1)]
    public void Acrobot_Step_MatchesBookDynamicsWithOneRk4Step(double t1, double t2, double d1, double d2, int action)
    {
        var env = new Acrobot();
        env.SetState([t1, t2, d1, d2]);
        var r = env.Step([action]);

        // acrobot.py _dsdt ("book") and rk4 over [0, 0.2], written out independently.
        double torque = action - 1.0;
        static double[] F(double[] s, double a)
        {
            double m1 = 1, m2 = 1, l1 = 1, lc1 = 0.5, lc2 = 0.5, I1 = 1, I2 = 1, g = 9.8;
            double dd1 = m1 * lc1 * lc1 + m2 * (l1 * l1 + lc2 * lc2 + 2 * l1 * lc2 * Math.Cos(s[1])) + I1 + I2;
            double dd2 = m2 * (lc2 * lc2 + l1 * lc2 * Math.Cos(s[1])) + I2;
            double phi2 = m2 * lc2 * g * Math.Cos(s[0] + s[1] - Math.PI / 2);
            double phi1 = -m2 * l1 * lc2 * s[3] * s[3] * Math.Sin(s[1]) - 2 * m2 * l1 * lc2 * s[3] * s[2] * Math.Sin(s[1])
                          + (m1 * lc1 + m2 * l1) * g * Math.Cos(s[0] - Math.PI / 2) + phi2;
            double a2 = (a + dd2 / dd1 * phi1 - m2 * l1 * lc2 * s[2] * s[2] * Math.Sin(s[1]) - phi2) / (m2 * lc2 * lc2 + I2 - dd2 * dd2 / dd1);
            double a1 = -(dd2 * a2 + phi1) / dd1;
            return [s[2], s[3], a1, a2];
        }
        static double[] Axpy(double[] y, double h, double[] k) => [y[0] + h * k[0], y[1] + h * k[1], y[2] + h * k[2], y[3] + h * k[3]];
        double[] y0 = [t1, t2, d1, d2];
        double[] k1 = F(y0, torque), k2 = F(Axpy(y0, 0.1, k1), torque), k3 = F(Axpy(y0, 0.1, k2), torque), k4 = F(Axpy(y0, 0.2, k3), torque);
        var e = new double[4];
        for (int i = 0; i < 4; i++) e[i] = y0[i] + 0.2 / 6 * (k1[i] + 2 * k2[i] + 2 * k3[i] + k4[i]);
        static double WrapPi(double v) { while (v > Math.PI) v -= 2 * Math.PI; while (v < -Math.PI) v += 2 * Math.PI; return v; }
        e[0] = WrapPi(e[0]);
        e[1] = WrapPi(e[1]);
        e[2] = Math.Clamp(e[2], -4 * Math.PI, 4 * Math.PI);
        e[3] = Math.Clamp(e[3], -9 * Math.PI, 9 * Math.PI);

        for (int i = 0; i < 4; i++) AssertClose(e[i], env.State[i], 1e-11, $"state[{i}]");
        float[] obs = [(float)Math.Cos(e[0]), (float)Math.Sin(e[0]), (float)Math.Cos(e[1]), (float)Math.Sin(e[1]), (float)e[2], (float)e[3]];
        Assert.Equal(obs, r.Observation);
        bool up = -Math.Cos(e[0]) - Math.Cos(e[0] + e[1]) > 1.0;
        Assert.Equal(up, r.Terminated);
        Assert.Equal(up ? 0.0 : -1.0, r.Reward);
    }

    [Fact]
    public void Acrobot_ReachingTheLine_TerminatesWithRewardZero_AndIdleTruncatesAt500()
    {
        var env = new Acrobot();
        env.SetState([Math.PI - 0.01, 0.0, 0.0, 0.0]); // both links nearly straight up: the tip sits ~2 above the pivot
        var r = env.Step([1]);
        Assert.True(r.Terminated);
        Assert.Equal(0.0, r.Reward);

        env.Reset(seed: 1);
        int n = 0;
        double total = 0;
        StepResult s;
        do { s = env.Step([1]); n++; total += s.Reward; } while (!s.Done);
        Assert.Equal(500, n); // doing nothing never swings up: only the TimeLimit ends it
        Assert.True(s.Truncated);
        Assert.Equal(-500.0, total);
    }

    [Theory]
    [InlineData(-0.5, 0.0, 2)]
    [InlineData(-1.19, -0.05, 0)]
    [InlineData(0.3, 0.069, 2)]
    [InlineData(0.49, 0.02, 1)]
    public void MountainCar_Step_MatchesMooreDynamics(double p, double v, int action)
    {
        var env = new MountainCar();
        env.SetState([p, v]);
        var r = env.Step([action]);
        double ev = Math.Clamp(v + (action - 1) * 0.001 - 0.0025 * Math.Cos(3 * p), -0.07, 0.07);
        double ep = Math.Clamp(p + ev, -1.2, 0.6);
        if (ep == -1.2 && ev < 0) ev = 0;
        AssertClose(ep, env.State[0], what: "position");
        AssertClose(ev, env.State[1], what: "velocity");
        Assert.Equal(-1.0, r.Reward);
        Assert.Equal(ep >= 0.5 && ev >= 0, r.Terminated);
    }

    [Fact]
    public void MountainCar_LeftWallIsInelastic_AndIdleTruncatesAt200()
    {
        var env = new MountainCar();
        env.SetState([-1.19, -0.05]);
        env.Step([0]);
        Assert.Equal(-1.2, env.State[0]);
        Assert.Equal(0.0, env.State[1]);

        var obs = env.Reset(seed: 9);
        Assert.InRange(obs[0], -0.6f, -0.4f);
        Assert.Equal(0f, obs[1]);
        int n = 0;
        StepResult s;
        do { s = env.Step([1]); n++; } while (!s.Done);
        Assert.Equal(200, n);
        Assert.True(s.Truncated);
        Assert.False(s.Terminated);
    }

    [Theory]
    [InlineData(-0.5, 0.0, 0.7f)]
    [InlineData(0.44, 0.02, 1.8f)] // clipped force, but the cost uses the raw action; reaches the goal
    [InlineData(-1.0, -0.03, -0.4f)]
    public void MountainCarContinuous_Step_MatchesEquationsAndReward(double p, double v, float a)
    {
        var env = new MountainCarContinuous();
        env.SetState([p, v]);
        var r = env.Step([a]);
        double force = Math.Clamp((double)a, -1, 1);
        double ev = Math.Clamp(v + force * 0.0015 - 0.0025 * Math.Cos(3 * p), -0.07, 0.07);
        double ep = Math.Clamp(p + ev, -1.2, 0.6);
        if (ep == -1.2 && ev < 0) ev = 0;
        bool done = ep >= 0.45 && ev >= 0;
        Assert.Equal((float)ep, (float)env.State[0]);
        Assert.Equal((float)ev, (float)env.State[1]);
        AssertClose((done ? 100 : 0) - 0.1 * a * (double)a, r.Reward, 1e-12, "reward");
        Assert.Equal(done, r.Terminated);
    }

    [Fact]
    public void MountainCarContinuous_TruncatesAt999()
    {
        var env = new MountainCarContinuous();
        env.Reset(seed: 2);
        int n = 0;
        StepResult s;
        do { s = env.Step([0f]); n++; } while (!s.Done);
        Assert.Equal(999, n);
        Assert.True(s.Truncated);
    }

    [Theory]
    [InlineData(0.3, -0.4, 1.5f)]
    [InlineData(3.0, 7.9, -2.5f)]  // torque clipped to −2; speed clipped to 8
    [InlineData(-4.0, -2.0, 0.0f)] // angle outside [−π, π) is normalised in the cost
    public void Pendulum_Step_MatchesEquationsAndCost(double th, double thdot, float u)
    {
        var env = new Pendulum();
        env.SetState([th, thdot]);
        var r = env.Step([u]);
        double uc = Math.Clamp((double)u, -2, 2);
        double thn = th + Math.PI - 2 * Math.PI * Math.Floor((th + Math.PI) / (2 * Math.PI)) - Math.PI;
        double cost = thn * thn + 0.1 * thdot * thdot + 0.001 * uc * uc;
        double newThdot = Math.Clamp(thdot + (3 * 10.0 / 2 * Math.Sin(th) + 3.0 * uc) * 0.05, -8, 8);
        double newTh = th + newThdot * 0.05;
        AssertClose(newTh, env.State[0], what: "theta");
        AssertClose(newThdot, env.State[1], what: "theta_dot");
        AssertClose(-cost, r.Reward, 1e-12, "reward");
        Assert.Equal([(float)Math.Cos(newTh), (float)Math.Sin(newTh), (float)newThdot], r.Observation);
        Assert.False(r.Terminated);
    }

    [Fact]
    public void Pendulum_NeverTerminates_TruncatesAt200_ResetInsideBounds()
    {
        var env = new Pendulum();
        env.Reset(seed: 5);
        Assert.InRange(env.State[0], -Math.PI, Math.PI);
        Assert.InRange(env.State[1], -1.0, 1.0);
        int n = 0;
        StepResult s;
        do { s = env.Step([0.5f]); n++; Assert.False(s.Terminated); } while (!s.Done);
        Assert.Equal(200, n);
        Assert.True(s.Truncated);
    }

    [Fact]
    public void Registry_UnknownId_ListsValidOnes_AndBadActionsAreNamed()
    {
        var ex = Assert.Throws<ArgumentException>(() => EnvRegistry.Make("CartPole-v0"));
        Assert.Contains("CartPole-v0", ex.Message);
        foreach (var id in new[] { "CartPole-v1", "Acrobot-v1", "MountainCar-v0", "MountainCarContinuous-v0", "Pendulum-v1" })
        {
            Assert.Contains(id, ex.Message);
            Assert.Equal(id, EnvRegistry.Make(id).Id);
        }
        var env = EnvRegistry.Make("Acrobot-v1");
        env.Reset(seed: 0);
        var bad = Assert.Throws<ArgumentOutOfRangeException>(() => env.Step([3]));
        Assert.Contains("Discrete(3)", bad.Message);
        Assert.Throws<ArgumentException>(() => env.Step([0, 1]));
    }
}
