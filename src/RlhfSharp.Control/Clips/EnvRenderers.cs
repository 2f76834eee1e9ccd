// The four drawings, with Gymnasium's render() geometry (screen sizes, scales, colours) so clips look like the Python ones:
// cart and pole; two-link arm; car on the hill; pendulum. Each works in a y-up frame made by scale(1,-1).
using System.Globalization;
using System.Text;
using RlhfSharp.Control.Envs;

namespace RlhfSharp.Control.Clips;

/// <summary>cartpole.py render(): 600×400, 4.8 m wide world, cart 50×30 px, pole 10 px wide and 2·length long, track at y = 100.</summary>
internal sealed class CartPoleRenderer : ClipRenderer
{
    private const double W = 600, H = 400, Margin = 40;
    private const double Scale = W / (CartPole.XThreshold * 2);

    public override string EnvId => "CartPole-v1";

    protected override (double Width, double Height) Size => (W + 2 * Margin, H);

    protected override double SecondsPerStep => CartPole.Tau;

    protected override void Draw(StringBuilder svg, Frames f)
    {
        double poleLen = Scale * 2 * CartPole.Length, axle = 30 / 4.0;
        svg.Append(CultureInfo.InvariantCulture, $"<g transform=\"translate({F(W / 2 + Margin)} {F(H - 100)}) scale(1 -1)\">");
        svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{F(-W / 2 - Margin)}\" y1=\"0\" x2=\"{F(W / 2 + Margin)}\" y2=\"0\" stroke=\"#000\" stroke-width=\"1\"/>");
        // The ±2.4 m limits, past which the episode terminates.
        foreach (double x in new[] { -CartPole.XThreshold * Scale, CartPole.XThreshold * Scale })
            svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{F(x)}\" y1=\"-12\" x2=\"{F(x)}\" y2=\"12\" stroke=\"#dc2626\" stroke-width=\"3\"/>");
        string arrow = "<polygon points=\"30,-8 50,0 30,8\" fill=\"#2563eb\"/><rect x=\"14\" y=\"-3\" width=\"18\" height=\"6\" fill=\"#2563eb\"/>";
        string pole = $"<rect x=\"-5\" y=\"-5\" width=\"10\" height=\"{F(poleLen)}\" fill=\"rgb(202,152,101)\"/><circle cx=\"0\" cy=\"0\" r=\"5\" fill=\"rgb(129,132,203)\"/>";
        string cart = "<rect x=\"-25\" y=\"-15\" width=\"50\" height=\"30\" fill=\"#000\"/>"
            + (f.Actions is null ? "" : f.Group("scale", t => [f.ActionAt(t) is { } a && a[0] == 1 ? 1 : -1, 1], arrow, discrete: true))
            + $"<g transform=\"translate(0 {F(axle)})\">" + f.Group("rotate", t => [-Deg(f.Observations[t][2])], pole) + "</g>";
        svg.Append(f.Group("translate", t => [f.Observations[t][0] * Scale, 0], cart));
        svg.Append("</g>");
    }
}

/// <summary>acrobot.py render(): 500×500, bound 2.2 m, cyan links 0.2 m thick, yellow joints, the goal line one link above the pivot.</summary>
internal sealed class AcrobotRenderer : ClipRenderer
{
    private const double D = 500;
    private const double Scale = D / ((Acrobot.LinkLength1 + Acrobot.LinkLength2 + 0.2) * 2);

    public override string EnvId => "Acrobot-v1";

    protected override (double Width, double Height) Size => (D, D);

    protected override double SecondsPerStep => Acrobot.Dt;

    protected override void Draw(StringBuilder svg, Frames f)
    {
        double l1 = Acrobot.LinkLength1 * Scale, l2 = Acrobot.LinkLength2 * Scale, w = 0.2 * Scale;
        svg.Append(CultureInfo.InvariantCulture, $"<g transform=\"translate({F(D / 2)} {F(D / 2)}) scale(1 -1)\">");
        svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{F(-2.2 * Scale)}\" y1=\"{F(Scale)}\" x2=\"{F(2.2 * Scale)}\" y2=\"{F(Scale)}\" stroke=\"#000\" stroke-width=\"1.5\"/>");
        string Link(double len) => $"<rect x=\"{F(-w / 2)}\" y=\"{F(-len)}\" width=\"{F(w)}\" height=\"{F(len)}\" fill=\"rgb(0,204,204)\"/>";
        string Joint() => $"<circle cx=\"0\" cy=\"0\" r=\"{F(w / 2)}\" fill=\"rgb(204,204,0)\"/>";
        // Torque at the actuated joint: AVAIL_TORQUE[a] = a − 1, drawn as a curved arrow scaled by it.
        string torque = f.Actions is null ? ""
            : f.Group("scale", t => f.ActionAt(t) is { } a ? [a[0] - 1, Math.Abs(a[0] - 1)] : [0, 0], CurvedArrow(0.3 * Scale, "#7c3aed", 4), discrete: true);
        // Angles from the observation: theta = atan2(sin, cos); link 1 hangs along −y at theta1 = 0, link 2 is relative to it.
        string link2 = Link(l2) + Joint() + torque;
        string link1 = Link(l1) + Joint()
            + $"<g transform=\"translate(0 {F(-l1)})\">" + f.Group("rotate", t => [Deg(Math.Atan2(f.Observations[t][3], f.Observations[t][2]))], link2) + "</g>";
        svg.Append(f.Group("rotate", t => [Deg(Math.Atan2(f.Observations[t][1], f.Observations[t][0]))], link1));
        svg.Append("</g>");
    }
}

/// <summary>mountain_car.py render(): 600×400, x in [−1.2, 0.6], hill sin(3x)·0.45 + 0.55, car 40×20 px with 10 px clearance, flag at the goal.</summary>
internal sealed class MountainCarRenderer(bool discrete) : ClipRenderer
{
    private const double W = 600, H = 400;
    private const double Min = MountainCar.MinPosition, Max = MountainCar.MaxPosition;
    private const double Scale = W / (Max - Min);

    public override string EnvId => discrete ? "MountainCar-v0" : "MountainCarContinuous-v0";

    protected override (double Width, double Height) Size => (W, H);

    protected override double SecondsPerStep => 1.0 / 30; // metadata["render_fps"] = 30

    protected override void Draw(StringBuilder svg, Frames f)
    {
        double goal = discrete ? MountainCar.GoalPosition : MountainCarContinuous.GoalPosition;
        svg.Append(CultureInfo.InvariantCulture, $"<g transform=\"translate(0 {F(H)}) scale(1 -1)\">");
        var pts = new StringBuilder();
        for (int i = 0; i < 100; i++)
        {
            double x = Min + (Max - Min) * i / 99.0;
            pts.Append(CultureInfo.InvariantCulture, $"{F((x - Min) * Scale)},{F(MountainCar.Height(x) * Scale)} ");
        }
        svg.Append(CultureInfo.InvariantCulture, $"<polyline points=\"{pts.ToString().TrimEnd()}\" fill=\"none\" stroke=\"#000\" stroke-width=\"2\"/>");
        double fx = (goal - Min) * Scale, fy1 = MountainCar.Height(goal) * Scale, fy2 = fy1 + 50;
        svg.Append(CultureInfo.InvariantCulture, $"<line x1=\"{F(fx)}\" y1=\"{F(fy1)}\" x2=\"{F(fx)}\" y2=\"{F(fy2)}\" stroke=\"#000\" stroke-width=\"2\"/>");
        svg.Append(CultureInfo.InvariantCulture, $"<polygon points=\"{F(fx)},{F(fy2)} {F(fx)},{F(fy2 - 10)} {F(fx + 25)},{F(fy2 - 5)}\" fill=\"rgb(204,204,0)\"/>");
        string arrow = "<polygon points=\"26,14 40,22 26,30\" fill=\"#2563eb\"/><rect x=\"22\" y=\"19\" width=\"6\" height=\"6\" fill=\"#2563eb\"/>";
        string push = f.Actions is null ? ""
            : f.Group("scale", t => f.ActionAt(t) is { } a ? [Push(a), Math.Abs(Push(a))] : [0, 0], arrow, discrete: true);
        string body = "<rect x=\"-20\" y=\"10\" width=\"40\" height=\"20\" fill=\"#000\"/>"
            + "<circle cx=\"10\" cy=\"10\" r=\"8\" fill=\"rgb(128,128,128)\"/><circle cx=\"-10\" cy=\"10\" r=\"8\" fill=\"rgb(128,128,128)\"/>" + push;
        // The car sits on the curve, tilted to the slope angle atan(d/dx (0.45·sin 3x)) = atan(1.35·cos 3x).
        string tilted = f.Group("rotate", t => [Deg(Math.Atan(1.35 * Math.Cos(3 * f.Observations[t][0])))], body);
        svg.Append(f.Group("translate", t => [(f.Observations[t][0] - Min) * Scale, MountainCar.Height(f.Observations[t][0]) * Scale], tilted));
        svg.Append("</g>");
    }

    /// <summary>The push as a signed fraction of the maximum: (a − 1) for the discrete task, clip(a, −1, 1) for the continuous one.</summary>
    private double Push(float[] a) => discrete ? a[0] - 1 : Math.Clamp(a[0], -1.0, 1.0);
}

/// <summary>pendulum.py render(): 500×500, bound 2.2, red rod 1 m long and 0.2 m wide from the centre, torque arrow scaled by |u|/2.</summary>
internal sealed class PendulumRenderer : ClipRenderer
{
    private const double D = 500;
    private const double Scale = D / (2.2 * 2);

    public override string EnvId => "Pendulum-v1";

    protected override (double Width, double Height) Size => (D, D);

    protected override double SecondsPerStep => Pendulum.Dt;

    protected override void Draw(StringBuilder svg, Frames f)
    {
        double len = Pendulum.L * Scale, w = 0.2 * Scale;
        svg.Append(CultureInfo.InvariantCulture, $"<g transform=\"translate({F(D / 2)} {F(D / 2)}) scale(1 -1)\">");
        // theta = 0 is upright and counter-clockwise positive, so the rod is drawn along +y and rotated by theta.
        string rod = $"<rect x=\"{F(-w / 2)}\" y=\"0\" width=\"{F(w)}\" height=\"{F(len)}\" fill=\"rgb(204,77,77)\"/>"
            + $"<circle cx=\"0\" cy=\"0\" r=\"{F(w / 2)}\" fill=\"rgb(204,77,77)\"/><circle cx=\"0\" cy=\"{F(len)}\" r=\"{F(w / 2)}\" fill=\"rgb(204,77,77)\"/>";
        svg.Append(f.Group("rotate", t => [Deg(Math.Atan2(f.Observations[t][1], f.Observations[t][0]))], rod));
        if (f.Actions is not null)
            svg.Append(f.Group("scale", t => f.ActionAt(t) is { } a ? [Math.Clamp(a[0], -2.0, 2.0) / 2, Math.Abs(Math.Clamp(a[0], -2.0, 2.0)) / 2] : [0, 0],
                CurvedArrow(0.45 * Scale, "#111827", 6), discrete: true));
        svg.Append(CultureInfo.InvariantCulture, $"<circle cx=\"0\" cy=\"0\" r=\"{F(0.05 * Scale)}\" fill=\"#000\"/>");
        svg.Append("</g>");
    }
}
