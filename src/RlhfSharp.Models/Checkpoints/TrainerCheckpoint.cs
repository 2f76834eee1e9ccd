// What every trainer's checkpoint holds besides its models, in one format for both wings (language-model and control
// trainers): the AdamW moments of each optimiser in optimizer.safetensors ("NAME.m", "NAME.v"), and the loop's own state
// (step, optimiser step counts, RNG states, data position, environment states) as rlhf_trainer_state.json (a name of our
// own: Hugging Face's trainer_state.json has another schema; run folders written under that old name still resume). Written inside
// RunDirectory.SaveCheckpoint's temporary folder, so a checkpoint is either complete or absent; read back with errors
// that name the file and the tensor or field.
using System.Text.Json;
using RlhfSharp.Tensors.Optim;

namespace RlhfSharp.Models.Checkpoints;

public static class TrainerCheckpoint
{
    private static readonly JsonSerializerOptions Json = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    public const string OptimizerFileName = "optimizer.safetensors";
    public const string StateFileName = "rlhf_trainer_state.json";

    /// <summary>The name checkpoints used before (Hugging Face's, with our schema); still read so existing run folders resume.</summary>
    public const string LegacyStateFileName = "trainer_state.json";

    /// <summary>Writes the first and second moments of each named optimiser to DIR/optimizer.safetensors.</summary>
    public static void WriteOptimizers(string dir, params IReadOnlyList<(string Name, AdamW Optimizer)> optimizers)
    {
        var tensors = new Dictionary<string, StoredTensor>();
        foreach (var (name, opt) in optimizers)
        {
            tensors[name + ".m"] = new([opt.FirstMoment.Length], opt.FirstMoment);
            tensors[name + ".v"] = new([opt.SecondMoment.Length], opt.SecondMoment);
        }
        Safetensors.Write(Path.Combine(dir, OptimizerFileName), tensors);
    }

    /// <summary>Reads the moments written by <see cref="WriteOptimizers"/> back into the optimisers (step counts live in the state).</summary>
    public static void ReadOptimizers(string dir, params IReadOnlyList<(string Name, AdamW Optimizer)> optimizers)
    {
        string file = Path.Combine(dir, OptimizerFileName);
        var moments = Safetensors.Read(file).Tensors;
        foreach (var (name, opt) in optimizers)
            foreach (var (key, target) in new[] { (name + ".m", opt.FirstMoment), (name + ".v", opt.SecondMoment) })
            {
                if (!moments.TryGetValue(key, out var t) || t.Values.Length != target.Length)
                    throw new FormatException($"{file}: tensor '{key}' is missing or does not hold {target.Length} values.");
                t.Values.CopyTo(target, 0);
            }
    }

    /// <summary>Writes the loop's state record to DIR/rlhf_trainer_state.json.</summary>
    public static void WriteState<T>(string dir, T state) =>
        File.WriteAllText(Path.Combine(dir, StateFileName), JsonSerializer.Serialize(state, Json) + "\n");

    /// <summary>Reads the loop's state record; a missing or malformed file gives an error naming it.</summary>
    public static T ReadState<T>(string dir)
    {
        string file = Path.Combine(dir, StateFileName);
        if (!File.Exists(file) && File.Exists(Path.Combine(dir, LegacyStateFileName))) file = Path.Combine(dir, LegacyStateFileName);
        if (!File.Exists(file)) throw new FileNotFoundException($"{file}: the checkpoint has no trainer state.", file);
        try
        {
            return JsonSerializer.Deserialize<T>(File.ReadAllText(file), Json) ?? throw new FormatException($"{file}: empty trainer state.");
        }
        catch (JsonException ex)
        {
            throw new FormatException($"{file}: not a trainer state ({ex.Message}).", ex);
        }
    }
}
