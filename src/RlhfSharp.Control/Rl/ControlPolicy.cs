// A trained control agent as a folder: config.json (env, algorithm, spaces, widths, observation statistics) and
// model.safetensors with CleanRL's parameter names (actor.0.weight, ..., critic.4.bias, actor_logstd), plus its evaluation.
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using RlhfSharp.Models.Checkpoints;
using RlhfSharp.Tensors;

namespace RlhfSharp.Control.Rl;

/// <summary>An actor-critic bound to the environment it was trained on, with the observation normalisation it saw.</summary>
public sealed class ControlPolicy(string envId, string algorithm, ActorCritic agent, NormalizationState? normalization)
{
    public string EnvId { get; } = envId;

    public string Algorithm { get; } = algorithm;

    public ActorCritic Agent { get; } = agent;

    public NormalizationState? Normalization { get; } = normalization;

    /// <summary>Observations as the networks expect them (normalised with the frozen training statistics when there are any).</summary>
    public float[] Prepare(float[] rawObs)
    {
        if (Normalization?.Observation is not { } stats) return rawObs;
        var n = new ObservationNormalizer(stats.Mean.Length, Normalization.Clip) { Training = false };
        n.Stats.Load(stats);
        return n.Apply(rawObs);
    }

    /// <summary>The action for one raw observation: the mode when deterministic, else a sample; clipped to a Box's bounds.</summary>
    public float[] Act(float[] rawObs, Rng rng, bool deterministic)
    {
        var r = Agent.Act(Prepare(rawObs), 1, rng, deterministic);
        return Agent.ActionSpace is BoxSpace box ? PpoTrainer.ClipToBox(r.Actions, box) : r.Actions;
    }

    /// <summary>Runs whole episodes with fresh seeds (seed, seed+1, ...) and returns them as trajectories.</summary>
    public List<Trajectory> Rollouts(int episodes, ulong seed, bool deterministic)
    {
        if (episodes < 1) throw new ArgumentOutOfRangeException(nameof(episodes), episodes, "Need at least one episode.");
        var env = EnvRegistry.Make(EnvId);
        var rng = new Rng(seed ^ 0x5EED5EEDUL);
        var list = new List<Trajectory>();
        for (int e = 0; e < episodes; e++)
        {
            float[] obs = env.Reset(seed + (ulong)e);
            var os = new List<float[]>(); var acts = new List<float[]>(); var rs = new List<double>();
            StepResult r;
            do
            {
                float[] a = Act(obs, rng, deterministic);
                r = env.Step(a);
                os.Add(obs); acts.Add(a); rs.Add(r.Reward);
                obs = r.Observation;
            } while (!r.Done);
            list.Add(new Trajectory(EnvId, [.. os], [.. acts], [.. rs], r.Terminated, r.Truncated));
        }
        return list;
    }

    /// <summary>Mean undiscounted return over episodes with fresh seeds.</summary>
    public double EvaluateMeanReturn(int episodes, ulong seed, bool deterministic = true) =>
        Rollouts(episodes, seed, deterministic).Average(t => t.Return);

    /// <summary>Writes config.json and model.safetensors into dir (each to a temporary name, then renamed).</summary>
    public void Save(string dir)
    {
        Directory.CreateDirectory(dir);
        // Names as the module tree gives them: actor.layers.0.weight [64, S], ..., critic.layers.2.bias [1], actor_logstd [1, D].
        var tensors = Agent.StateDict().ToDictionary(p => p.Key, p => new StoredTensor(p.Value.Shape.ToArray(), p.Value.ToArray()), StringComparer.Ordinal);
        Safetensors.Write(Path.Combine(dir, "model.safetensors"), tensors); // written to a temporary name, then renamed

        var space = Agent.ActionSpace switch
        {
            DiscreteSpace d => new JsonObject { ["type"] = "discrete", ["n"] = d.N },
            BoxSpace b => new JsonObject { ["type"] = "box", ["low"] = new JsonArray([.. b.Low.ToArray().Select(v => JsonValue.Create(v))]), ["high"] = new JsonArray([.. b.High.ToArray().Select(v => JsonValue.Create(v))]) },
            _ => throw new InvalidOperationException("Unknown action space."),
        };
        var config = new JsonObject
        {
            ["env"] = EnvId,
            ["algo"] = Algorithm,
            ["observation_shape"] = new JsonArray(Agent.ObservationSize),
            ["action_space"] = space,
            ["hidden"] = new JsonArray([.. Agent.Hidden.Select(h => JsonValue.Create(h))]),
            ["normalization"] = Normalization is null ? null : JsonSerializer.SerializeToNode(Normalization),
        };
        AtomicWrite(Path.Combine(dir, "config.json"), p => File.WriteAllText(p, config.ToJsonString(new JsonSerializerOptions { WriteIndented = true })));
    }

    /// <summary>
    /// Loads a policy folder. With expectedEnvId, a policy trained on another environment is refused, naming both
    /// environments and their observation shapes.
    /// </summary>
    public static ControlPolicy Load(string dir, string? expectedEnvId = null)
    {
        string cfgPath = Path.Combine(dir, "config.json"), modelPath = Path.Combine(dir, "model.safetensors");
        if (!File.Exists(cfgPath)) throw new FileNotFoundException($"Policy folder '{dir}' has no config.json.", cfgPath);
        JsonNode cfg;
        try { cfg = JsonNode.Parse(File.ReadAllText(cfgPath)) ?? throw new FormatException($"{cfgPath}: empty."); }
        catch (JsonException ex) { throw new FormatException($"{cfgPath}: not valid JSON: {ex.Message}", ex); }
        string envId = cfg["env"]?.GetValue<string>() ?? throw new FormatException($"{cfgPath}: missing \"env\".");
        string algo = cfg["algo"]?.GetValue<string>() ?? "unknown";
        int[] obsShape = cfg["observation_shape"]?.AsArray().Select(v => v!.GetValue<int>()).ToArray() ?? throw new FormatException($"{cfgPath}: missing \"observation_shape\".");
        int[] hidden = cfg["hidden"]?.AsArray().Select(v => v!.GetValue<int>()).ToArray() ?? throw new FormatException($"{cfgPath}: missing \"hidden\".");
        var env = EnvRegistry.Make(envId);
        string Shape(int[] shape) => "(" + string.Join(", ", shape) + (shape.Length == 1 ? ",)" : ")");
        if (expectedEnvId is not null && expectedEnvId != envId)
        {
            var expected = EnvRegistry.Make(expectedEnvId);
            throw new ArgumentException(
                $"Policy '{dir}' was trained on {envId} with observation shape {Shape(obsShape)}; {expectedEnvId} has observation shape {Shape(expected.ObservationSpace.Shape)}.");
        }
        if (obsShape.Length != 1 || obsShape[0] != env.ObservationSpace.FlatSize)
            throw new FormatException($"{cfgPath}: observation_shape {Shape(obsShape)} does not match {envId}'s {Shape(env.ObservationSpace.Shape)}.");
        NormalizationState? norm = cfg["normalization"] is JsonNode nn ? nn.Deserialize<NormalizationState>() : null;

        var agent = new ActorCritic(obsShape[0], env.ActionSpace, hidden, new Rng(0));
        if (!File.Exists(modelPath)) throw new FileNotFoundException($"Policy folder '{dir}' has no model.safetensors.", modelPath);
        var tensors = Safetensors.Read(modelPath).Tensors;
        GptCheckpoint.RequireFinite(modelPath, tensors); // a diverged policy is refused naming the tensor
        foreach (var (name, target) in agent.StateDict()) Copy(tensors, modelPath, name, target.Shape.ToArray(), target.Span);
        return new ControlPolicy(envId, algo, agent, norm);
    }

    private static void Copy(IReadOnlyDictionary<string, StoredTensor> tensors, string path, string name, int[] shape, Span<float> dest)
    {
        if (!tensors.TryGetValue(name, out var t)) throw new FormatException($"{path}: tensor '{name}' is missing.");
        if (!t.Shape.SequenceEqual(shape))
            throw new FormatException($"{path}: tensor '{name}' has shape [{string.Join(", ", t.Shape)}]; expected [{string.Join(", ", shape)}].");
        t.Values.CopyTo(dest);
    }

    private static void AtomicWrite(string path, Action<string> write)
    {
        string tmp = path + ".tmp-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        write(tmp);
        File.Move(tmp, path, overwrite: true);
    }
}
