// The one divergence check every trainer calls (issue 17): a loss, gradient norm or parameter that is NaN or ±Infinity
// stops the run with one line naming the step and the quantity ("step 3: loss is NaN (learning_rate 1E+06 too high?)").
// The trainers call it before they log, checkpoint or write a model, so a diverged run keeps its last good checkpoint and
// writes no NaN model. It only reads values: the bits of a healthy run do not change. Loading uses FirstNonFinite to
// refuse a weight file holding NaN or Infinity, naming the tensor.
using System.Globalization;
using System.Numerics.Tensors;
using RlhfSharp.Tensors.Nn;

namespace RlhfSharp.Tensors;

/// <summary>A training run has produced a value that is not finite; the message names the step and the quantity.</summary>
public sealed class NonFiniteException(string message) : ArithmeticException(message);

public static class NumericGuard
{
    /// <summary>" (learning_rate 1E+06 too high?)": the usual cause, for the message.</summary>
    public static string LearningRateHint(double learningRate) =>
        $" (learning_rate {learningRate.ToString("G3", CultureInfo.InvariantCulture)} too high?)";

    /// <summary>Throws <see cref="NonFiniteException"/> "step N: QUANTITY is NaN HINT" when <paramref name="value"/> is not finite.</summary>
    public static void Check(long step, string quantity, double value, string hint = "") => Check($"step {step}", quantity, value, hint);

    /// <summary>As <see cref="Check(long, string, double, string)"/> where a phase, not a step, says when ("reward-predictor training").</summary>
    public static void Check(string when, string quantity, double value, string hint = "")
    {
        if (!double.IsFinite(value)) throw new NonFiniteException($"{when}: {quantity} is {Show(value)}{hint}; training stopped, the last checkpoint is kept.");
    }

    /// <summary>Throws when any parameter of <paramref name="parameters"/> is not finite, naming the first such tensor.</summary>
    public static void CheckParameters(long step, ParameterSet parameters, string hint = "", string? owner = null) =>
        CheckParameters($"step {step}", parameters, hint, owner);

    /// <summary>As <see cref="CheckParameters(long, ParameterSet, string, string?)"/> with a phase for when.</summary>
    public static void CheckParameters(string when, ParameterSet parameters, string hint = "", string? owner = null)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        if (TensorPrimitives.IsFiniteAll<float>(parameters.Values)) return;
        int index = FirstNonFinite(parameters.Values);
        var slot = parameters.Slots.FirstOrDefault(s => index >= s.Offset && index < s.Offset + s.Length);
        string name = slot is null ? $"parameter {index}" : $"parameter '{slot.Name}'";
        throw new NonFiniteException($"{when}: {name}{(owner is null ? "" : " of the " + owner)} is {Show(parameters.Values[index])}{hint}; training stopped, the last checkpoint is kept.");
    }

    /// <summary>The index of the first value that is NaN or ±Infinity, or -1 when all are finite.</summary>
    public static int FirstNonFinite(ReadOnlySpan<float> values)
    {
        if (TensorPrimitives.IsFiniteAll(values)) return -1;
        for (int i = 0; i < values.Length; i++)
            if (!float.IsFinite(values[i])) return i;
        return -1;
    }

    /// <summary>"NaN", "Infinity" or "-Infinity".</summary>
    public static string Show(double value) => double.IsNaN(value) ? "NaN" : value > 0 ? "Infinity" : "-Infinity";
}
