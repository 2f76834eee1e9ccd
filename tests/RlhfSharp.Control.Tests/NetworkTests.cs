// The actor-critic on the tensor engine: the parameter gradients autograd gives a loss built from the tensors Evaluate
// records (log π, entropy, V and the exact KL to π_old; categorical and Gaussian) against central differences, that KL
// against its closed form, CleanRL's orthogonal init, and policy folders saved and loaded.
using RlhfSharp.Control;
using RlhfSharp.Control.Rl;
using RlhfSharp.Tensors;
using RlhfSharp.Tensors.Nn;

namespace RlhfSharp.Control.Tests;

public sealed class NetworkTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ActorCriticGradients_ThroughEvaluatesTensors_MatchFiniteDifferences(bool discrete)
    {
        Space space = discrete ? new DiscreteSpace(3) : new BoxSpace([-2f, -2f], [2f, 2f]);
        var rng = new Rng(5);
        var ac = new ActorCritic(3, space, [5, 4], rng);
        // Larger output gains than the 0.01 init so the check exercises non-uniform policies.
        Init.Orthogonal(ac.Actor.Layers[^1].Weight, rng, 1f);
        if (!discrete) { ac.LogStd!.Span[0] = 0.3f; ac.LogStd.Span[1] = -0.2f; }
        int b = 4;
        float[] obs = [.. Enumerable.Range(0, b * 3).Select(_ => (float)rng.Normal())];
        float[] acts = discrete ? [0, 2, 1, 2] : [.. Enumerable.Range(0, b * 2).Select(_ => (float)rng.Normal())];
        float[] cL = [0.7f, -1.2f, 0.4f, 0.9f], cH = [0.3f, 0.5f, -0.8f, 0.2f], cV = [1.1f, -0.6f, 0.25f, -0.9f], cK = [0.6f, 1.3f, -0.4f, 0.8f];
        // PPO-penalty's exact KL to a π_old that differs from the current policy (so its gradient is not zero).
        int width = discrete ? 3 : 2;
        var old = new OldPolicy([.. Enumerable.Range(0, b * width).Select(_ => (float)rng.Normal())], discrete ? null : [0.1f, -0.4f]);
        double Loss()
        {
            using var _ = Autograd.NoGrad();
            var e = ac.Evaluate(obs, acts, b, old);
            double s = 0;
            for (int i = 0; i < b; i++) s += cL[i] * e.LogProb.Span[i] + cH[i] * e.Entropy.Span[i] + cV[i] * e.Values.Span[i] + cK[i] * e.Kl!.Span[i];
            return s;
        }
        ac.ActorParameters.ZeroGrad();
        ac.CriticParameters.ZeroGrad();
        // L = Σ cₗ·log π + c_H·H + c_V·V + c_K·KL on the tape, as a trainer's loss would be built from the same tensors.
        var ev = ac.Evaluate(obs, acts, b, old);
        static Tensor W(float[] c) => Tensor.FromArray(c, c.Length);
        var loss = Ops.Sum(ev.LogProb * W(cL)) + Ops.Sum(ev.Entropy * W(cH)) + Ops.Sum(ev.Values * W(cV)) + Ops.Sum(ev.Kl! * W(cK));
        loss.Backward();
        foreach (var (p, g) in new[] { (ac.ActorParameters.Values, ac.ActorParameters.Grads), (ac.CriticParameters.Values, ac.CriticParameters.Grads) })
        {
            for (int k = 0; k < p.Length; k += Math.Max(1, p.Length / 25))
            {
                float keep = p[k];
                const float h = 1e-2f;
                p[k] = keep + h; double up = Loss();
                p[k] = keep - h; double down = Loss();
                p[k] = keep;
                double numeric = (up - down) / (2 * h);
                Assert.True(Math.Abs(numeric - g[k]) <= 2e-3 + 2e-2 * Math.Abs(numeric), $"param {k} of {p.Length}: analytic {g[k]}, numeric {numeric}");
            }
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Kl_IsZeroAgainstItself_AndMatchesTheClosedFormAgainstAnotherPolicy(bool discrete)
    {
        Space space = discrete ? new DiscreteSpace(3) : new BoxSpace([-2f, -2f], [2f, 2f]);
        var rng = new Rng(8);
        var ac = new ActorCritic(3, space, [5, 4], rng);
        Init.Orthogonal(ac.Actor.Layers[^1].Weight, rng, 1f);
        if (!discrete) { ac.LogStd!.Span[0] = 0.3f; ac.LogStd.Span[1] = -0.2f; }
        int b = 4, width = discrete ? 3 : 2;
        float[] obs = [.. Enumerable.Range(0, b * 3).Select(_ => (float)rng.Normal())];
        var act = ac.Act(obs, b, rng, deterministic: false);
        var self = ac.Evaluate(obs, act.Actions, b, new OldPolicy(act.ActorOutput, ac.LogStd?.ToArray()));
        Assert.All(self.Kl!.ToArray(), k => Assert.Equal(0, k, 6));

        float[] oldOut = [.. Enumerable.Range(0, b * width).Select(_ => (float)rng.Normal())];
        float[] oldLogStd = [0.1f, -0.4f];
        var e = ac.Evaluate(obs, act.Actions, b, new OldPolicy(oldOut, discrete ? null : oldLogStd));
        for (int r = 0; r < b; r++)
        {
            double expected = 0;
            double[] now = [.. act.ActorOutput.Skip(r * width).Take(width).Select(v => (double)v)];
            double[] then = [.. oldOut.Skip(r * width).Take(width).Select(v => (double)v)];
            if (discrete)
            {
                // Σ_k p_old,k·(log p_old,k − log p_k) with log p = z − log Σ exp z.
                double zOld = Math.Log(then.Sum(Math.Exp)), zNow = Math.Log(now.Sum(Math.Exp));
                for (int k = 0; k < width; k++) expected += Math.Exp(then[k] - zOld) * ((then[k] - zOld) - (now[k] - zNow));
            }
            else
            {
                // Σ_d log σ − log σ_old + (σ_old² + (μ_old − μ)²)/(2σ²) − ½.
                for (int d = 0; d < width; d++)
                {
                    double logSigma = ac.LogStd!.Span[d], oldSigma2 = Math.Exp(2 * oldLogStd[d]);
                    expected += logSigma - oldLogStd[d] + (oldSigma2 + Math.Pow(then[d] - now[d], 2)) / (2 * Math.Exp(2 * logSigma)) - 0.5;
                }
            }
            Assert.Equal(expected, e.Kl!.Span[r], 4);
            Assert.True(e.Kl.Span[r] > 0);
        }
    }

    [Fact]
    public void Init_IsCleanRlOrthogonal_GainRoot2Hidden_001ActorOutput_1CriticOutput_ZeroBias()
    {
        var ac = new ActorCritic(4, new DiscreteSpace(2), [64, 64], new Rng(1));
        static void AssertOrthogonal(Tensor w, double gain)
        {
            int rows = w.Shape[0], cols = w.Shape[1], n = Math.Min(rows, cols), m = Math.Max(rows, cols);
            var s = w.Span;
            // The shorter side is orthonormal times the gain: WᵀW = g²·I when rows ≥ cols, else WWᵀ = g²·I.
            for (int a = 0; a < n; a++)
                for (int c = 0; c < n; c++)
                {
                    double dot = 0;
                    for (int k = 0; k < m; k++) dot += rows >= cols ? s[k * cols + a] * s[k * cols + c] : s[a * cols + k] * s[c * cols + k];
                    Assert.Equal(a == c ? gain * gain : 0.0, dot, 4);
                }
        }
        AssertOrthogonal(ac.Actor.Layers[0].Weight, Math.Sqrt(2));
        AssertOrthogonal(ac.Actor.Layers[1].Weight, Math.Sqrt(2));
        AssertOrthogonal(ac.Actor.Layers[2].Weight, 0.01);
        AssertOrthogonal(ac.Critic.Layers[2].Weight, 1.0);
        Assert.All(ac.Actor.Layers.Concat(ac.Critic.Layers), l => Assert.All(l.Bias!.ToArray(), b => Assert.Equal(0f, b)));
        // Near-uniform first policy: with output gain 0.01 both CartPole actions start close to ½.
        var act = ac.Act(new float[] { 0.01f, -0.02f, 0.03f, 0.01f }, 1, new Rng(2), deterministic: false);
        Assert.InRange(Math.Exp(act.LogProb[0]), 0.49, 0.51);
    }

    [Fact]
    public void PolicyFolder_RoundTrips_AndIsRefusedForAnotherEnvNamingBothShapes()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"policy-{Guid.NewGuid():N}");
        try
        {
            var ac = new ActorCritic(3, new BoxSpace([-2f], [2f]), [8, 8], new Rng(2));
            Init.Orthogonal(ac.Actor.Layers[^1].Weight, new Rng(3), 1f);
            ac.LogStd!.Span[0] = -0.5f;
            var norm = new NormalizationState(new RunningStats([0.1, 0.2, 0.3], [1.5, 2, 0.5], 10), 10);
            var policy = new ControlPolicy("Pendulum-v1", "ppo", ac, norm);
            policy.Save(dir);
            Assert.True(File.Exists(Path.Combine(dir, "config.json")));
            var back = ControlPolicy.Load(dir);
            Assert.Equal("Pendulum-v1", back.EnvId);
            Assert.Equal(ac.ActorParameters.Values, back.Agent.ActorParameters.Values);
            Assert.Equal(ac.CriticParameters.Values, back.Agent.CriticParameters.Values);
            Assert.Equal(-0.5f, back.Agent.LogStd!.Span[0]);
            Assert.Equal(policy.EvaluateMeanReturn(2, 7), back.EvaluateMeanReturn(2, 7));
            Assert.Equal(policy.Prepare([1f, 0f, 2f]), back.Prepare([1f, 0f, 2f]));

            var ex = Assert.Throws<ArgumentException>(() => ControlPolicy.Load(dir, expectedEnvId: "CartPole-v1"));
            Assert.Contains("Pendulum-v1", ex.Message);
            Assert.Contains("(3,)", ex.Message);
            Assert.Contains("CartPole-v1", ex.Message);
            Assert.Contains("(4,)", ex.Message);
        }
        finally { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
    }
}
