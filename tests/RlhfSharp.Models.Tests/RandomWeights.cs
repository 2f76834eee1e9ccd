// Random GPT-2-shaped tensors for tests: every tensor, including LayerNorm gains and biases, gets noise so no term hides.
using RlhfSharp.Models.Checkpoints;
using RlhfSharp.Tensors;

namespace RlhfSharp.Models.Tests;

internal static class RandomWeights
{
    public static GptConfig TinyConfig(int vocab = 11, int block = 8, int embd = 8, int layers = 2, int heads = 2) =>
        new() { VocabSize = vocab, BlockSize = block, NEmbd = embd, NLayer = layers, NHead = heads };

    public static Dictionary<string, StoredTensor> For(GptConfig config, ulong seed, bool withHeads = false)
    {
        var rng = new Rng(seed);
        var result = new Dictionary<string, StoredTensor>(StringComparer.Ordinal);
        var names = GptCheckpoint.TrunkTensors(config).ToList();
        if (withHeads) names.AddRange(GptCheckpoint.HeadTensors(config));
        foreach (var (name, shape) in names)
        {
            var values = new float[(int)StoredTensor.ElementCount(shape)];
            bool gain = name.EndsWith("ln_1.weight", StringComparison.Ordinal) || name.EndsWith("ln_2.weight", StringComparison.Ordinal) || name == "ln_f.weight";
            for (int i = 0; i < values.Length; i++)
                values[i] = (float)(gain ? 1 + 0.1 * rng.Normal() : 0.3 * rng.Normal());
            result[name] = new StoredTensor(shape, values);
        }
        return result;
    }

    /// <summary>Next-token targets of one sequence: target t is token t + 1, weight 1; the last position has weight 0.</summary>
    public static (int[] Targets, float[] Weights) NextTokenTargets(int[] tokens)
    {
        var targets = new int[tokens.Length];
        var weights = new float[tokens.Length];
        for (int t = 0; t + 1 < tokens.Length; t++)
        {
            targets[t] = tokens[t + 1];
            weights[t] = 1;
        }
        return (targets, weights);
    }
}
