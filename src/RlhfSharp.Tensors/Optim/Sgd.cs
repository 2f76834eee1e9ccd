// Stochastic gradient descent with momentum, as torch.optim.SGD: b ← μ·b + (g + wd·p); p ← p − lr·b
// (Nesterov: p ← p − lr·(g + wd·p + μ·b)). One pass per slot over a ParameterSet's flat buffers.
using RlhfSharp.Tensors.Nn;

namespace RlhfSharp.Tensors.Optim;

/// <summary>SGD settings.</summary>
public sealed record SgdConfig
{
    /// <summary>Step size; a schedule may override it per step through <see cref="Sgd.Step(float)"/>.</summary>
    public float LearningRate { get; init; } = 1e-2f;

    /// <summary>Momentum μ (0 = plain SGD).</summary>
    public float Momentum { get; init; }

    /// <summary>L2 penalty added to the gradient (coupled, unlike AdamW's decay).</summary>
    public float WeightDecay { get; init; }

    /// <summary>Use Nesterov momentum.</summary>
    public bool Nesterov { get; init; }
}

public sealed class Sgd
{
    private readonly ParameterSet _parameters;
    private bool _started;

    public Sgd(ParameterSet parameters, SgdConfig config)
    {
        _parameters = parameters;
        Config = config;
        MomentumBuffer = new float[parameters.Values.Length];
    }

    public SgdConfig Config { get; }

    /// <summary>The momentum buffer b, aligned with ParameterSet.Values (checkpoint it to resume).</summary>
    public float[] MomentumBuffer { get; }

    public void Step() => Step(Config.LearningRate);

    public void Step(float learningRate)
    {
        var c = Config;
        var p = _parameters.Values;
        var g = _parameters.Grads;
        var b = MomentumBuffer;
        foreach (var slot in _parameters.Slots)
        {
            for (int i = slot.Offset; i < slot.Offset + slot.Length; i++)
            {
                float d = g[i] + c.WeightDecay * p[i];
                if (c.Momentum != 0f)
                {
                    b[i] = _started ? c.Momentum * b[i] + d : d; // torch starts the buffer at the first gradient
                    d = c.Nesterov ? d + c.Momentum * b[i] : b[i];
                }
                p[i] -= learningRate * d;
            }
        }
        _started = true;
    }
}
