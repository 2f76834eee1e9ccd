// NumericGuard (issue 17): the one divergence check of every trainer names the step, the quantity and the tensor.
using RlhfSharp.Tensors.Nn;

namespace RlhfSharp.Tensors.Tests;

public sealed class NumericGuardTests
{
    [Fact]
    public void Check_PassesFiniteValues_AndNamesStepAndQuantityOtherwise()
    {
        NumericGuard.Check(3, "loss", 1e300);
        var ex = Assert.Throws<NonFiniteException>(() => NumericGuard.Check(3, "loss", double.NaN, NumericGuard.LearningRateHint(1e6)));
        Assert.Equal("step 3: loss is NaN (learning_rate 1E+06 too high?); training stopped, the last checkpoint is kept.", ex.Message);
        Assert.Contains("gradient norm is -Infinity", Assert.Throws<NonFiniteException>(() => NumericGuard.Check(9, "gradient norm", double.NegativeInfinity)).Message);
    }

    [Fact]
    public void CheckParameters_NamesTheFirstTensorHoldingANonFiniteValue()
    {
        var set = new ParameterSet([
            KeyValuePair.Create("a.weight", Tensor.FromArray(new float[5], 5)),
            KeyValuePair.Create("b.weight", Tensor.FromArray(new float[7], 7)),
        ]);
        NumericGuard.CheckParameters(1, set);
        int at = set["b.weight"].Offset + 6; // slots start on 16-float boundaries
        set.Values[at] = float.PositiveInfinity;
        var ex = Assert.Throws<NonFiniteException>(() => NumericGuard.CheckParameters(2, set, owner: "policy"));
        Assert.StartsWith("step 2: parameter 'b.weight' of the policy is Infinity", ex.Message);
        Assert.Equal(at, NumericGuard.FirstNonFinite(set.Values));
        Assert.Equal(-1, NumericGuard.FirstNonFinite(new float[100]));
    }
}
