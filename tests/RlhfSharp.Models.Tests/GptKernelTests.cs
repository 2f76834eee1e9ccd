// The vectorised GELU (computed as x·σ(2u)) against the plain tanh formula and its derivative, on every length 0..300.
namespace RlhfSharp.Models.Tests;

public sealed class GptKernelTests
{
    private static double GeluGrad(double x)
    {
        const double s = 0.7978845608028654;
        double u = s * (x + 0.044715 * x * x * x);
        double th = Math.Tanh(u);
        return 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * s * (1 + 3 * 0.044715 * x * x);
    }

    [Fact]
    public void Gelu_ForwardAndBackward_MatchTheTanhFormula_AtEveryLength()
    {
        var rng = new Tensors.Rng(3);
        for (int n = 0; n <= 300; n++)
        {
            var x = Enumerable.Range(0, n).Select(i => (float)(rng.Normal() * (i % 7 == 0 ? 12 : 2))).ToArray();
            var y = new float[n];
            var dout = Enumerable.Range(0, n).Select(_ => (float)rng.Normal()).ToArray();
            var dx = Enumerable.Repeat(0.25f, n).ToArray();

            GptKernels.GeluForward(y, x, n);
            GptKernels.GeluBackward(dx, x, dout, n);

            for (int i = 0; i < n; i++)
            {
                Assert.Equal(ReferenceGpt.Gelu(x[i]), y[i], 1e-5 * Math.Max(1, Math.Abs(x[i])));
                Assert.Equal(0.25 + GeluGrad(x[i]) * dout[i], dx[i], 1e-5 * Math.Max(1, Math.Abs(dout[i])));
            }
        }
    }

    [Fact]
    public void Gelu_SaturatesWithoutNaN()
    {
        float[] x = [-100f, -30f, 30f, 100f, 0f];
        var y = new float[5];
        var dx = new float[5];
        GptKernels.GeluForward(y, x, 5);
        GptKernels.GeluBackward(dx, x, [1, 1, 1, 1, 1], 5);
        Assert.Equal([0f, 0f, 30f, 100f, 0f], y.Select(v => v == 0 ? 0f : v));
        Assert.Equal([0f, 0f, 1f, 1f, 0.5f], dx.Select(v => MathF.Round(v, 5) == 0 ? 0f : MathF.Round(v, 5)));
    }
}
