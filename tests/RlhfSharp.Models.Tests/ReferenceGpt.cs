// Test-only GPT-2 forward in double precision with plain loops, read straight from checkpoint tensors (HF names,
// Conv1D [in, out] weights). It is the yardstick the engine GPT must match; nothing here is fast or clever.
// Shapes: T tokens, C channels, NH heads of HS = C / NH, V vocabulary.
using RlhfSharp.Models.Checkpoints;

namespace RlhfSharp.Models.Tests;

internal sealed class ReferenceGpt(GptConfig config, IReadOnlyDictionary<string, StoredTensor> weights)
{
    private float[] W(string name) => weights[name].Values;

    /// <summary>Final hidden states after ln_f, [T][C], for one unpadded sequence.</summary>
    public double[][] Hidden(IReadOnlyList<int> tokens)
    {
        int T = tokens.Count, C = config.NEmbd, NH = config.NHead, HS = C / NH;
        if (T > config.BlockSize) throw new ArgumentException($"{T} tokens exceed block size {config.BlockSize}.");
        var wte = W("wte.weight");
        var wpe = W("wpe.weight");
        var x = new double[T][];
        for (int t = 0; t < T; t++)
        {
            x[t] = new double[C];
            for (int c = 0; c < C; c++) x[t][c] = (double)wte[tokens[t] * C + c] + wpe[t * C + c];
        }
        for (int l = 0; l < config.NLayer; l++)
        {
            string p = $"h.{l}.";
            // Attention branch: x += c_proj(attn(ln_1(x))).
            var h = x.Select(row => LayerNorm(row, W(p + "ln_1.weight"), W(p + "ln_1.bias"))).ToArray();
            var qkv = h.Select(row => Linear(row, W(p + "attn.c_attn.weight"), W(p + "attn.c_attn.bias"), 3 * C)).ToArray();
            var y = new double[T][];
            for (int t = 0; t < T; t++)
            {
                y[t] = new double[C];
                for (int head = 0; head < NH; head++)
                {
                    var scores = new double[t + 1];
                    double max = double.NegativeInfinity;
                    for (int s = 0; s <= t; s++)
                    {
                        double dot = 0;
                        for (int d = 0; d < HS; d++) dot += qkv[t][head * HS + d] * qkv[s][C + head * HS + d];
                        scores[s] = dot / Math.Sqrt(HS);
                        max = Math.Max(max, scores[s]);
                    }
                    double sum = 0;
                    for (int s = 0; s <= t; s++) sum += scores[s] = Math.Exp(scores[s] - max);
                    for (int s = 0; s <= t; s++)
                        for (int d = 0; d < HS; d++)
                            y[t][head * HS + d] += scores[s] / sum * qkv[s][2 * C + head * HS + d];
                }
            }
            for (int t = 0; t < T; t++)
            {
                var proj = Linear(y[t], W(p + "attn.c_proj.weight"), W(p + "attn.c_proj.bias"), C);
                for (int c = 0; c < C; c++) x[t][c] += proj[c];
            }
            // MLP branch: x += c_proj(gelu(c_fc(ln_2(x)))).
            for (int t = 0; t < T; t++)
            {
                var h2 = LayerNorm(x[t], W(p + "ln_2.weight"), W(p + "ln_2.bias"));
                var fc = Linear(h2, W(p + "mlp.c_fc.weight"), W(p + "mlp.c_fc.bias"), 4 * C).Select(Gelu).ToArray();
                var proj = Linear(fc, W(p + "mlp.c_proj.weight"), W(p + "mlp.c_proj.bias"), C);
                for (int c = 0; c < C; c++) x[t][c] += proj[c];
            }
        }
        return x.Select(row => LayerNorm(row, W("ln_f.weight"), W("ln_f.bias"))).ToArray();
    }

    /// <summary>Logits [T][V] through the tied head (hidden · wteᵀ).</summary>
    public double[][] Logits(IReadOnlyList<int> tokens)
    {
        int C = config.NEmbd, V = config.VocabSize;
        var wte = W("wte.weight");
        return Hidden(tokens).Select(h =>
        {
            var row = new double[V];
            for (int v = 0; v < V; v++)
                for (int c = 0; c < C; c++) row[v] += h[c] * wte[v * C + c];
            return row;
        }).ToArray();
    }

    /// <summary>Value head per token: v_head.summary.weight · h + bias.</summary>
    public double[] Values(IReadOnlyList<int> tokens)
    {
        var w = W(GptCheckpoint.ValueHeadWeight);
        double b = W(GptCheckpoint.ValueHeadBias)[0];
        return Hidden(tokens).Select(h => b + h.Select((v, c) => v * w[c]).Sum()).ToArray();
    }

    /// <summary>Reward: score.weight · h at the last token.</summary>
    public double Reward(IReadOnlyList<int> tokens)
    {
        var w = W(GptCheckpoint.RewardHeadWeight);
        var h = Hidden(tokens)[^1];
        return h.Select((v, c) => v * w[c]).Sum();
    }

    /// <summary>Mean next-token cross-entropy of tokens[1..] given tokens[..^1].</summary>
    public double Loss(IReadOnlyList<int> tokens)
    {
        var logits = Logits(tokens);
        double total = 0;
        for (int t = 0; t + 1 < tokens.Count; t++) total += -LogSoftmax(logits[t])[tokens[t + 1]];
        return total / (tokens.Count - 1);
    }

    public static double[] LogSoftmax(double[] row)
    {
        double max = row.Max();
        double lse = max + Math.Log(row.Sum(v => Math.Exp(v - max)));
        return row.Select(v => v - lse).ToArray();
    }

    private double[] LayerNorm(double[] x, float[] gain, float[] bias)
    {
        double mean = x.Average();
        double variance = x.Select(v => (v - mean) * (v - mean)).Average();
        double inv = 1 / Math.Sqrt(variance + config.LayerNormEpsilon);
        return x.Select((v, c) => (v - mean) * inv * gain[c] + bias[c]).ToArray();
    }

    /// <summary>Conv1D: y[o] = b[o] + Σ_i x[i]·W[i, o] with W stored [in, out].</summary>
    private static double[] Linear(double[] x, float[] weight, float[] bias, int outputs)
    {
        var y = new double[outputs];
        for (int o = 0; o < outputs; o++) y[o] = bias[o];
        for (int i = 0; i < x.Length; i++)
            for (int o = 0; o < outputs; o++) y[o] += x[i] * weight[i * outputs + o];
        return y;
    }

    /// <summary>GPT-2's tanh approximation of GELU (Hendrycks & Gimpel 2016; HF "gelu_new").</summary>
    public static double Gelu(double x) => 0.5 * x * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
}
