// AdamW (Loshchilov & Hutter 2019): Adam with bias correction and weight decay decoupled from the gradient,
// applied as in torch.optim.AdamW: p ← p − lr·wd·p, then p ← p − lr·m̂/(√v̂ + ε).
// One parallel pass over the flat buffers of a ParameterSet, cut into fixed pieces that never cross a slot.
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
        var pieces = new List<(int Slot, int Offset, int Length)>();
        for (int s = 0; s < parameters.Slots.Count; s++)
        {
            var slot = parameters.Slots[s];
            for (int start = 0; start < slot.Length; start += PieceLength)
                pieces.Add((s, slot.Offset + start, Math.Min(PieceLength, slot.Length - start)));
        }
        _pieces = [.. pieces];
        // A small model (a control policy) updates in microseconds: splitting it would cost more than it saves.
        _piecesPerThread = parameters.Count < 2 * PieceLength ? int.MaxValue : 1;
    }

    /// <summary>
    /// Floats per piece of the update. Slots are disjoint and each element's update is independent, so the pieces run in
    /// any order on any thread with the same bits; one parallel loop over all of them replaces a loop per slot, which on a
    /// loaded machine paid a thread hand-off for each of a GPT's ~150 slots.
    /// </summary>
    private const int PieceLength = 1 << 16;

    private readonly (int Slot, int Offset, int Length)[] _pieces;
    private readonly int _piecesPerThread;

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
        ParallelChunks.For(_pieces.Length, (first, last) =>
        {
            for (int i = first; i < last; i++)
            {
                var (s, o, n) = _pieces[i];
                float wd = _decays[s] ? c.WeightDecay : 0f;
                OptimizerKernels.AdamW(_parameters.Values.AsSpan(o, n), _parameters.Grads.AsSpan(o, n),
                    FirstMoment.AsSpan(o, n), SecondMoment.AsSpan(o, n),
                    learningRate, c.Beta1, c.Beta2, c.Eps, wd, bc1, bc2);
            }
        }, minPerChunk: _piecesPerThread);
    }
}
