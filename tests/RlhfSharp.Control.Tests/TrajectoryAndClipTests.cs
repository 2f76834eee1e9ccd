// Trajectory JSONL round trips and errors, segments, and the SVG drawings (angles from observations, animation shape, no scripts).
using System.Globalization;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using RlhfSharp.Control;
using RlhfSharp.Control.Clips;

namespace RlhfSharp.Control.Tests;

public sealed class TrajectoryAndClipTests
{
    private static Trajectory Rollout(string id, int steps, ulong seed, Func<float[], float[]> policy)
    {
        var env = EnvRegistry.Make(id);
        var obs = env.Reset(seed);
        var os = new List<float[]>(); var acts = new List<float[]>(); var rs = new List<double>();
        StepResult? last = null;
        for (int t = 0; t < steps; t++)
        {
            float[] a = policy(obs);
            last = env.Step(a);
            os.Add(obs); acts.Add(a); rs.Add(last.Reward);
            obs = last.Observation;
            if (last.Done) break;
        }
        return new Trajectory(id, [.. os], [.. acts], [.. rs], last!.Terminated, last.Truncated);
    }

    [Fact]
    public void Jsonl_RoundTripsEpisodes_AndNamesFileAndLineOfABadStep()
    {
        var a = Rollout("CartPole-v1", 500, 1, _ => [0f]);
        var b = Rollout("CartPole-v1", 500, 2, _ => [1f]);
        string path = Path.Combine(Path.GetTempPath(), $"traj-{Guid.NewGuid():N}.jsonl");
        try
        {
            using (var w = new StreamWriter(path)) { TrajectoryJsonl.Write(w, 0, a); TrajectoryJsonl.Write(w, 1, b); }
            var back = TrajectoryJsonl.Read(path, "CartPole-v1");
            Assert.Equal(2, back.Count);
            Assert.Equal(a.Length, back[0].Length);
            Assert.True(back[0].Terminated);
            for (int t = 0; t < a.Length; t++) Assert.Equal(a.Observations[t], back[0].Observations[t]);
            Assert.Equal(b.Return, back[1].Return);
            string first = File.ReadLines(path).First();
            Assert.StartsWith("{\"episode\":0,\"t\":0,\"obs\":[", first);

            File.AppendAllText(path, "{\"episode\":2,\"t\":0,\"obs\":[1,2,3,4],\"action\":[0],\"reward\":1,\"terminated\":false,\"truncated\":false}\n{\"episode\":2,\"t\":5,\"obs\":[1,2,3,4],\"action\":[0],\"reward\":1}\n");
            int badLine = File.ReadLines(path).Count();
            var ex = Assert.Throws<FormatException>(() => TrajectoryJsonl.Read(path, "CartPole-v1"));
            Assert.Contains($"{path}:{badLine}", ex.Message);
            File.AppendAllText(path, "not json\n");
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void Segment_SlicesStepsAndKeepsEndFlagsOnlyAtTheEnd()
    {
        var a = Rollout("CartPole-v1", 500, 3, _ => [0f]);
        var mid = a.Segment(2, 5);
        Assert.Equal(5, mid.Length);
        Assert.Equal(a.Observations[2], mid.Observations[0]);
        Assert.False(mid.Terminated);
        var tail = a.Segment(a.Length - 3, 3);
        Assert.True(tail.Terminated);
        Assert.Throws<ArgumentOutOfRangeException>(() => a.Segment(a.Length - 2, 3));
        Assert.Equal(75, Trajectory.StepsFor("CartPole-v1", 1.5)); // τ = 0.02 s
        Assert.Equal(30, Trajectory.StepsFor("Pendulum-v1", 1.5)); // dt = 0.05 s
        Assert.Equal(8, Trajectory.StepsFor("Acrobot-v1", 1.5));   // dt = 0.2 s
    }

    [Fact]
    public void CartPoleState_DrawsPoleAtMinusThetaDegrees_AndCartAtXTimesScale()
    {
        string svg = ClipRenderers.For("CartPole-v1").RenderState([1.2f, 0f, 0.3f, 0f], [1f]);
        var doc = XDocument.Parse(svg);
        Assert.Equal("svg", doc.Root!.Name.LocalName);
        Assert.Contains($"rotate({(-0.3f * 180 / Math.PI).ToString("0.###", CultureInfo.InvariantCulture)})", svg);
        Assert.Contains($"translate({(1.2f * 125).ToString("0.###", CultureInfo.InvariantCulture)} 0)", svg); // 600 px / 4.8 m = 125 px per m
        Assert.DoesNotContain("<script", svg);
    }

    [Fact]
    public void AcrobotState_RecoversJointAnglesFromCosSin()
    {
        double t1 = 2.0, t2 = -0.8;
        string svg = ClipRenderers.For("Acrobot-v1").RenderState([(float)Math.Cos(t1), (float)Math.Sin(t1), (float)Math.Cos(t2), (float)Math.Sin(t2), 0, 0]);
        var rotations = Regex.Matches(svg, @"rotate\((-?[\d.]+)\)").Select(m => double.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)).ToList();
        Assert.Equal(2, rotations.Count);
        Assert.Equal(t1 * 180 / Math.PI, rotations[0], 1);
        Assert.Equal(t2 * 180 / Math.PI, rotations[1], 1);
    }

    [Theory]
    [InlineData("CartPole-v1")]
    [InlineData("Acrobot-v1")]
    [InlineData("MountainCar-v0")]
    [InlineData("MountainCarContinuous-v0")]
    [InlineData("Pendulum-v1")]
    public void AnimatedClip_HasOneValuePerStepOverRealTime_AndFramesFormHasOneSvgPerStep(string id)
    {
        var env = EnvRegistry.Make(id);
        var rng = new RlhfSharp.Tensors.Rng(4);
        var seg = Rollout(id, 40, 4, _ => env.ActionSpace.Sample(rng));
        string svg = ClipRenderers.For(id).RenderAnimated(seg, speed: 2.0);
        XDocument.Parse(svg);
        Assert.DoesNotContain("<script", svg);
        var anims = Regex.Matches(svg, "<animateTransform[^>]*values=\"([^\"]*)\"");
        Assert.NotEmpty(anims);
        foreach (Match m in anims.Where(m => !m.Value.Contains("type=\"scale\" values=\"0 1;1 1\"", StringComparison.Ordinal)))
            Assert.Equal(seg.Length, m.Groups[1].Value.Split(';').Length);
        string dur = (seg.Length * env.SecondsPerStep / 2.0).ToString("0.###", CultureInfo.InvariantCulture);
        Assert.Contains($"dur=\"{dur}s\"", svg);

        var frames = ClipRenderers.For(id).RenderFrames(seg);
        Assert.Equal(seg.Length, frames.Count);
        Assert.All(frames, f => Assert.DoesNotContain("animateTransform", f));
        Assert.NotEqual(frames[0], frames[^1]);
    }

    [Fact]
    public void PendulumClip_UnwrapsAnglesSoItNeverSpinsTheLongWayRound()
    {
        // A pendulum swinging through the bottom crosses θ = ±π: raw atan2 jumps by 360°, the animation must not.
        float[][] obs = [.. new[] { 3.0, 3.1, -3.1, -3.0 }.Select(th => new[] { (float)Math.Cos(th), (float)Math.Sin(th), 0f })];
        var seg = new Trajectory("Pendulum-v1", obs, [[0f], [0f], [0f], [0f]], [0, 0, 0, 0], false, false);
        string svg = ClipRenderers.For("Pendulum-v1").RenderAnimated(seg);
        var m = Regex.Match(svg, "type=\"rotate\"[^>]*values=\"([^\"]*)\"");
        var deg = m.Groups[1].Value.Split(';').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        for (int i = 1; i < deg.Length; i++) Assert.InRange(Math.Abs(deg[i] - deg[i - 1]), 0, 10);
    }

    [Fact]
    public void Renderers_RefuseUnknownEnvsAndForeignTrajectories()
    {
        var ex = Assert.Throws<ArgumentException>(() => ClipRenderers.For("Hopper-v4"));
        Assert.Contains("Pendulum-v1", ex.Message);
        var seg = new Trajectory("Pendulum-v1", [[1f, 0f, 0f]], [[0f]], [0], false, false);
        var ex2 = Assert.Throws<ArgumentException>(() => ClipRenderers.For("CartPole-v1").RenderAnimated(seg));
        Assert.Contains("Pendulum-v1", ex2.Message);
    }
}
