// Anomaly mode names the op that first produced NaN or infinity, forward or backward. It is process-wide,
// so these tests run alone (in the collection that owns process-wide settings).
namespace RlhfSharp.Tensors.Tests;

[Collection(ProcessWideSettings.Name)]
public sealed class AnomalyModeTests
{
    [Fact]
    public void AnomalyModeNamesTheFirstOpThatProducedNaN()
    {
        var x = Tensor.FromArray([-1f, 4f], 2);
        x.RequiresGrad = true;
        using (Autograd.DetectAnomaly())
        {
            var e = Assert.Throws<InvalidOperationException>(() => Ops.Exp(Ops.Sqrt(x)));
            Assert.Contains("'sqrt'", e.Message);
        }
        var quiet = Ops.Sqrt(x); // outside the scope NaN passes silently, as in float arithmetic
        Assert.True(float.IsNaN(quiet.Span[0]));
    }

    [Fact]
    public void AnomalyModeCatchesNonFiniteGradientsInBackward()
    {
        var x = Tensor.FromArray([0f, 1f], 2);
        x.RequiresGrad = true;
        using (Autograd.DetectAnomaly())
        {
            var y = Ops.Sum(Ops.Sqrt(x)); // forward finite (√0 = 0), backward 1/(2√0) = ∞
            var e = Assert.Throws<InvalidOperationException>(() => y.Backward());
            Assert.Contains("backward of op 'sqrt'", e.Message);
        }
    }
}
