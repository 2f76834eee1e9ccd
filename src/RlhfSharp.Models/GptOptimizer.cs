// AdamW over the GPT's flat parameter buffer (Loshchilov & Hutter 2019: bias-corrected Adam moments, decoupled weight
// decay applied only to matrices and embeddings as nanoGPT's configure_optimizers does) and global-norm gradient clipping.
namespace RlhfSharp.Models;

/// <summary>Hyper-parameters of <see cref="GptAdamW"/>.</summary>
public sealed record GptAdamWConfig
{
    /// <summary>Step size (the schedule may overwrite it per step).</summary>
    public float LearningRate { get; init; } = 3e-4f;

    /// <summary>Decay of the first-moment average.</summary>
    public float Beta1 { get; init; } = 0.9f;

    /// <summary>Decay of the second-moment average (nanoGPT and llm.c use 0.95 for GPT training).</summary>
    public float Beta2 { get; init; } = 0.95f;

    /// <summary>Added to the root of the second moment to avoid division by zero.</summary>
    public float Epsilon { get; init; } = 1e-8f;

    /// <summary>Decoupled weight decay for 2-D parameters (nanoGPT: 0.1); 1-D parameters are never decayed.</summary>
    public float WeightDecay { get; init; } = 0.1f;
}

public sealed class GptAdamW
{
    private readonly Gpt _model;
    private readonly float[] _m, _v;
    private readonly bool[] _decay;

    public GptAdamW(Gpt model, GptAdamWConfig config)
    {
        _model = model;
        Config = config;
        _m = new float[model.Parameters.Length];
        _v = new float[model.Parameters.Length];
        _decay = new bool[model.Parameters.Length];
        foreach (var p in model.ParameterList)
            if (p.Decay) _decay.AsSpan(p.Offset, p.Length).Fill(true);
    }

    public GptAdamWConfig Config { get; }

    /// <summary>Steps taken so far (used for bias correction).</summary>
    public int StepCount { get; private set; }

    /// <summary>One update of every parameter from the model's gradients, at <paramref name="learningRate"/> (default: the config's).</summary>
    public void Step(float? learningRate = null)
    {
        StepCount++;
        float lr = learningRate ?? Config.LearningRate;
        float b1 = Config.Beta1, b2 = Config.Beta2, eps = Config.Epsilon, wd = Config.WeightDecay;
        float c1 = 1f / (1f - MathF.Pow(b1, StepCount));
        float c2 = 1f / (1f - MathF.Pow(b2, StepCount));
        var p = _model.Parameters;
        var g = _model.Gradients;
        GptKernels.ForRows(p.Length / 4096 + 1, (start, end) =>
        {
            int lo = start * 4096, hi = Math.Min(p.Length, end * 4096);
            for (int i = lo; i < hi; i++)
            {
                float m = _m[i] = b1 * _m[i] + (1 - b1) * g[i];
                float v = _v[i] = b2 * _v[i] + (1 - b2) * g[i] * g[i];
                float update = m * c1 / (MathF.Sqrt(v * c2) + eps);
                if (_decay[i]) update += wd * p[i];
                p[i] -= lr * update;
            }
        });
    }

    /// <summary>Scales gradients so their global L2 norm is at most <paramref name="maxNorm"/>; returns the norm before clipping.</summary>
    public static float ClipGradientNorm(Gpt model, float maxNorm)
    {
        double sum = 0;
        foreach (float x in model.Gradients) sum += (double)x * x;
        float norm = (float)Math.Sqrt(sum);
        if (norm > maxNorm && norm > 0)
            System.Numerics.Tensors.TensorPrimitives.Multiply(model.Gradients, maxNorm / norm, model.Gradients);
        return norm;
    }
}
