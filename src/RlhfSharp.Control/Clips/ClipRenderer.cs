// SVG drawings of environment states and animated clips of trajectory segments, for people to compare (Christiano et al. 2017).
// Clips are pure SVG: moving parts are nested groups whose transforms are animated with SMIL <animateTransform> (no scripts),
// so a browser plays them in an <img> or inline and a static renderer shows the first frame.
using System.Globalization;
using System.Text;

namespace RlhfSharp.Control.Clips;

/// <summary>Draws one environment's states from its observations (so recorded trajectories can be drawn without the simulator).</summary>
public abstract class ClipRenderer
{
    public abstract string EnvId { get; }

    /// <summary>Canvas size in SVG user units (pixels).</summary>
    protected abstract (double Width, double Height) Size { get; }

    /// <summary>Seconds of simulated time per step; a clip plays in real time at speed 1.</summary>
    protected abstract double SecondsPerStep { get; }

    /// <summary>The scene: static parts plus moving groups made with <see cref="Frames.Group"/>.</summary>
    protected abstract void Draw(StringBuilder svg, Frames frames);

    /// <summary>One state as a static SVG; the action (optional) is drawn as an arrow where the task has one.</summary>
    public string RenderState(float[] observation, float[]? action = null, string? caption = null) =>
        Render(new Frames([observation], action is null ? null : [action], frame: 0, duration: 0), caption, progress: null);

    /// <summary>A segment as one looping animated SVG; speed 0.5 plays at half real time.</summary>
    public string RenderAnimated(Trajectory segment, double speed = 1.0, string? caption = null)
    {
        Check(segment);
        if (!(speed > 0)) throw new ArgumentOutOfRangeException(nameof(speed), speed, "RenderAnimated: speed must be > 0.");
        double duration = Math.Max(segment.Length, 1) * SecondsPerStep / speed;
        return Render(new Frames(segment.Observations, segment.Actions, frame: null, duration), caption, duration);
    }

    /// <summary>The same segment as one static SVG per step (the frames form, for a flip-book or a filmstrip).</summary>
    public IReadOnlyList<string> RenderFrames(Trajectory segment, string? caption = null)
    {
        Check(segment);
        var list = new List<string>(segment.Length);
        for (int t = 0; t < segment.Length; t++)
            list.Add(Render(new Frames(segment.Observations, segment.Actions, frame: t, duration: 0), caption, progress: (t + 1.0) / segment.Length));
        return list;
    }

    private void Check(Trajectory segment)
    {
        if (segment.EnvId != EnvId)
            throw new ArgumentException($"Clip renderer for {EnvId} was given a trajectory of {segment.EnvId}.", nameof(segment));
        if (segment.Length == 0) throw new ArgumentException($"{EnvId} clip: the segment is empty.", nameof(segment));
    }

    /// <param name="progress">Fraction of the clip shown so far (frames form), or null for a lone state without a progress bar.</param>
    private string Render(Frames frames, string? caption, double duration = 0, double? progress = 1.0)
    {
        var (w, h) = Size;
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{F(w)}\" height=\"{F(h + 24)}\" viewBox=\"0 0 {F(w)} {F(h + 24)}\">");
        sb.Append(CultureInfo.InvariantCulture, $"<title>{Escape(caption ?? EnvId)}</title>");
        sb.Append(CultureInfo.InvariantCulture, $"<rect x=\"0\" y=\"0\" width=\"{F(w)}\" height=\"{F(h + 24)}\" fill=\"#ffffff\"/>");
        Draw(sb, frames);
        // Progress bar along the bottom: shows where in the clip playback is and that it loops.
        if (frames.Frame is null || progress is not null)
            sb.Append(CultureInfo.InvariantCulture, $"<rect x=\"0\" y=\"{F(h + 18)}\" width=\"{F(w)}\" height=\"6\" fill=\"#e5e7eb\"/>");
        if (frames.Frame is null)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<rect x=\"0\" y=\"{F(h + 18)}\" width=\"{F(w)}\" height=\"6\" fill=\"#6366f1\" transform=\"scale(0 1)\">");
            sb.Append(CultureInfo.InvariantCulture, $"<animateTransform attributeName=\"transform\" type=\"scale\" values=\"0 1;1 1\" dur=\"{F(duration)}s\" repeatCount=\"indefinite\"/></rect>");
        }
        else if (progress is double p)
        {
            sb.Append(CultureInfo.InvariantCulture, $"<rect x=\"0\" y=\"{F(h + 18)}\" width=\"{F(w * p)}\" height=\"6\" fill=\"#6366f1\"/>");
        }
        sb.Append(CultureInfo.InvariantCulture, $"<text x=\"6\" y=\"{F(h + 13)}\" font-family=\"sans-serif\" font-size=\"12\" fill=\"#374151\">{Escape(caption ?? EnvId)}</text>");
        sb.Append("</svg>");
        return sb.ToString();
    }

    /// <summary>Invariant-culture number with at most three decimals: compact and locale-proof.</summary>
    protected internal static string F(double v) => Math.Round(v, 3).ToString("0.###", CultureInfo.InvariantCulture);

    protected static double Deg(double radians) => radians * 180.0 / Math.PI;

    private static string Escape(string s) => s.Replace("&", "&amp;", StringComparison.Ordinal).Replace("<", "&lt;", StringComparison.Ordinal).Replace(">", "&gt;", StringComparison.Ordinal);

    /// <summary>The observations (and actions) being drawn, and whether one frame is shown or all are animated.</summary>
    protected sealed class Frames
    {
        internal Frames(float[][] observations, float[][]? actions, int? frame, double duration)
        {
            Observations = observations;
            Actions = actions;
            Frame = frame;
            Duration = duration;
        }

        public float[][] Observations { get; }

        public float[][]? Actions { get; }

        /// <summary>The frame to draw statically, or null to animate over all of them.</summary>
        public int? Frame { get; }

        public double Duration { get; }

        public int Count => Observations.Length;

        /// <summary>
        /// A group whose transform ("translate", "rotate" or "scale") takes per-frame values: the given frame's, or all of them
        /// animated. Rotations are unwrapped so interpolation never spins the long way round; discrete steps suit on/off arrows.
        /// </summary>
        public string Group(string type, Func<int, double[]> valuesAt, string content, bool discrete = false)
        {
            var sb = new StringBuilder();
            if (Frame is int k)
            {
                sb.Append(CultureInfo.InvariantCulture, $"<g transform=\"{type}({Join(valuesAt(k), " ")})\">{content}</g>");
                return sb.ToString();
            }
            var vals = new double[Count][];
            for (int t = 0; t < Count; t++) vals[t] = valuesAt(t);
            if (type == "rotate")
                for (int t = 1; t < Count; t++)
                {
                    double d = vals[t][0] - vals[t - 1][0];
                    vals[t][0] -= 360 * Math.Round(d / 360);
                }
            sb.Append(CultureInfo.InvariantCulture, $"<g transform=\"{type}({Join(vals[0], " ")})\">");
            if (Count > 1)
            {
                sb.Append(CultureInfo.InvariantCulture, $"<animateTransform attributeName=\"transform\" type=\"{type}\" dur=\"{F(Duration)}s\" repeatCount=\"indefinite\" calcMode=\"{(discrete ? "discrete" : "linear")}\" values=\"");
                for (int t = 0; t < Count; t++)
                {
                    if (t > 0) sb.Append(';');
                    sb.Append(Join(vals[t], " "));
                }
                sb.Append("\"/>");
            }
            sb.Append(content).Append("</g>");
            return sb.ToString();
        }

        /// <summary>The action of frame t, or null when actions were not given.</summary>
        public float[]? ActionAt(int t) => Actions is null || t >= Actions.Length ? null : Actions[t];

        private static string Join(double[] v, string sep) => string.Join(sep, v.Select(F));
    }

    /// <summary>A curved arrow of radius r around the local origin, counter-clockwise in a y-up frame (flip it with a negative x scale).</summary>
    protected static string CurvedArrow(double r, string color, double width)
    {
        // Arc from −60° to 200°, arrowhead at the end pointing along the direction of travel.
        double a0 = -60 * Math.PI / 180, a1 = 200 * Math.PI / 180;
        double x0 = r * Math.Cos(a0), y0 = r * Math.Sin(a0), x1 = r * Math.Cos(a1), y1 = r * Math.Sin(a1);
        double tx = -Math.Sin(a1), ty = Math.Cos(a1); // tangent (ccw)
        double nx = Math.Cos(a1), ny = Math.Sin(a1);
        double hl = width * 3;
        string head = $"{F(x1 + tx * hl)},{F(y1 + ty * hl)} {F(x1 + nx * hl)},{F(y1 + ny * hl)} {F(x1 - nx * hl)},{F(y1 - ny * hl)}";
        return $"<path d=\"M{F(x0)},{F(y0)} A{F(r)},{F(r)} 0 1 1 {F(x1)},{F(y1)}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"{F(width)}\"/>"
            + $"<polygon points=\"{head}\" fill=\"{color}\"/>";
    }
}

/// <summary>The renderer for each environment id.</summary>
public static class ClipRenderers
{
    private static readonly Dictionary<string, ClipRenderer> ById = new List<ClipRenderer>
    {
        new CartPoleRenderer(), new AcrobotRenderer(), new MountainCarRenderer(discrete: true), new MountainCarRenderer(discrete: false), new PendulumRenderer(),
    }.ToDictionary(r => r.EnvId, StringComparer.Ordinal);

    /// <summary>Environment ids that can be drawn.</summary>
    public static IReadOnlyList<string> RenderableEnvs { get; } = [.. ById.Keys];

    public static ClipRenderer For(string envId) =>
        ById.TryGetValue(envId, out var r) ? r
            : throw new ArgumentException($"No clip renderer for '{envId}'. Renderable environments: {string.Join(", ", RenderableEnvs)}.");
}
