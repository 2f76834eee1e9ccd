// AdamW (Loshchilov & Hutter 2019): Adam with bias correction and weight decay decoupled from the gradient,
// applied as in torch.optim.AdamW: p ← p − lr·wd·p, then p ← p − lr·m̂/(√v̂ + ε).
// One pass per parameter slot over the flat buffers of a ParameterSet.
using RlhfSharp.Tensors.Kernels;
using RlhfSharp.Tensors.Nn;

namespace RlhfSharp.Tensors.Optim;

/// <summary>AdamW settings (defaults are torch.optim.AdamW's).</summary>
public sealed record AdamWConfig
{
    /// <summary>Step size; a schedule may override it per step through <see cref="AdamW.Step(float)"/>.</summary>
    public float LearningRate { get; init; } = 1e-3f;

    /// <summary>Decay rate of the first-moment (mean gradient) estimate.</summary>
    public float Beta1 { get; init; } = 0.9f;

    /// <summary>Decay rate of the second-moment (squared gradient) estimate.</summary>
    public float Beta2 { get; init; } = 0.999f;

    /// <summary>Added to √v̂ to avoid division by zero (CleanRL's PPO uses 1e-5).</summary>
    public float Eps { get; init; } = 1e-8f;

    /// <summary>Decoupled weight decay coefficient, applied only to slots that decay.</summary>
    public float WeightDecay { get; init; } = 0.01f;
}

public sealed class AdamW
{
    private readonly ParameterSet _parameters;
    private readonly bool[] _decays;

    /// <param name="decays">Which slots get weight decay; by default those of rank ≥ 2 (matrices, embeddings),
    /// not biases or norm gains (as nanoGPT's configure_optimizers).</param>
    public AdamW(ParameterSet parameters, AdamWConfig config, Func<ParameterSlot, bool>? decays = null)
    {
        _parameters = parameters;
        Config = config;
        decays ??= s => s.Value.Rank >= 2;
        _decays = parameters.Slots.Select(decays).ToArray();
        FirstMoment = new float[parameters.Values.Length];
        SecondMoment = new float[parameters.Values.Length];
    }

    public AdamWConfig Config { get; }

    /// <summary>Steps taken so far (t in the bias correction); restore it with the moments to resume.</summary>
    public int StepCount { get; set; }

    /// <summary>m, aligned with ParameterSet.Values (checkpoint it to resume).</summary>
    public float[] FirstMoment { get; }

    /// <summary>v, aligned with ParameterSet.Values (checkpoint it to resume).</summary>
    public float[] SecondMoment { get; }

    /// <summary>Whether each slot (in ParameterSet.Slots order) receives weight decay.</summary>
    public IReadOnlyList<bool> Decays => _decays;

    /// <summary>One update with the configured learning rate.</summary>
    public void Step() => Step(Config.LearningRate);

    /// <summary>One update with learning rate <paramref name="learningRate"/> (e.g. from a schedule).</summary>
    public void Step(float learningRate)
    {
        StepCount++;
        var c = Config;
        float bc1 = 1f - MathF.Pow(c.Beta1, StepCount);
        float bc2 = 1f - MathF.Pow(c.Beta2, StepCount);
        for (int s = 0; s < _decays.Length; s++)
        {
            var slot = _parameters.Slots[s];
            int o = slot.Offset, n = slot.Length;
            float wd = _decays[s] ? c.WeightDecay : 0f;
            // Each element's update is independent, so fixed chunks over threads give the same bits as one pass.
            ParallelChunks.For(n, (start, end) =>
            {
                int len = end - start;
                OptimizerKernels.AdamW(_parameters.Values.AsSpan(o + start, len), _parameters.Grads.AsSpan(o + start, len),
                    FirstMoment.AsSpan(o + start, len), SecondMoment.AsSpan(o + start, len),
                    learningRate, c.Beta1, c.Beta2, c.Eps, wd, bc1, bc2);
            }, minPerChunk: 1 << 16);
        }
    }
}
