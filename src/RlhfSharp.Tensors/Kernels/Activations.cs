// GELU (tanh form, as GPT-2) forward and backward kernels on spans. Constants from llm.c's gelu_forward:
// y = ½x(1 + tanh(√(2/π)(x + 0.044715x³))).
namespace RlhfSharp.Tensors.Kernels;

public static class Activations
{
    private const float Scale = 0.7978845608028654f; // √(2/π)
    private const float Cubic = 0.044715f;

    public static void GeluForward(ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++)
        {
            float v = x[i];
            y[i] = 0.5f * v * (1f + MathF.Tanh(Scale * (v + Cubic * v * v * v)));
        }
    }

    /// <summary>dx += g · gelu'(x).</summary>
    public static void GeluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> g, Span<float> dx)
    {
        for (int i = 0; i < x.Length; i++)
        {
            float v = x[i];
            float t = MathF.Tanh(Scale * (v + Cubic * v * v * v));
            float sech2 = 1f - t * t;
            float local = 0.5f * (1f + t) + 0.5f * v * sech2 * Scale * (1f + 3f * Cubic * v * v);
            dx[i] += g[i] * local;
        }
    }
}
