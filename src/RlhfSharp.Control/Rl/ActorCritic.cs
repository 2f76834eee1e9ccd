// The agent of CleanRL's ppo.py / ppo_continuous_action.py: an MLP actor (categorical logits, or a diagonal Gaussian mean with
// a state-independent log σ) and a separate MLP critic, both 64-64 tanh with orthogonal init. Training goes through the
// per-sample gradients ∂L/∂(log π, H, V) that ControlObjectives returns; this class maps them to the network outputs.
// Shapes: B batch rows, S observation size, K discrete actions, D continuous action dimensions.
using RlhfSharp.Tensors;

namespace RlhfSharp.Control.Rl;

/// <summary>Actions sampled for a batch, with their log-probabilities under the current policy and the critic's values.</summary>
public sealed record ActResult(float[] Actions, float[] LogProb, float[] Values);

/// <summary>log π(a|s), H(π(·|s)) and V(s) for a batch of stored (s, a).</summary>
public sealed record Evaluation(float[] LogProb, float[] Entropy, float[] Values);

public sealed class ActorCritic
{
    private static readonly double HalfLog2Pi = 0.5 * Math.Log(2 * Math.PI);
    private float[] _actorOut = [];
    private float[] _actions = [];
    private float[] _probs = [];
    private float[] _entropy = [];
    private int _batch;

    /// <param name="observationSize">S.</param>
    /// <param name="actionSpace">Discrete(K) → categorical actor with K logits; Box(D) → Gaussian actor with D means.</param>
    /// <param name="hidden">Hidden widths shared by actor and critic (CleanRL: 64, 64).</param>
    public ActorCritic(int observationSize, Space actionSpace, int[] hidden, Rng rng)
    {
        ObservationSize = observationSize;
        ActionSpace = actionSpace;
        Hidden = (int[])hidden.Clone();
        IsDiscrete = actionSpace is DiscreteSpace;
        ActionSize = actionSpace.FlatSize;
        int actorOut = actionSpace is DiscreteSpace d ? d.N : actionSpace.FlatSize;
        Actor = new Mlp([observationSize, .. hidden, actorOut]);
        Critic = new Mlp([observationSize, .. hidden, 1]);
        // CleanRL: actor output gain 0.01 (near-uniform first policy), critic output gain 1; log σ starts at 0.
        Actor.InitOrthogonal(rng, 0.01);
        Critic.InitOrthogonal(rng, 1.0);
        LogStd = new float[IsDiscrete ? 0 : actorOut];
        LogStdGradient = new float[LogStd.Length];
    }

    public int ObservationSize { get; }

    public Space ActionSpace { get; }

    public int[] Hidden { get; }

    public bool IsDiscrete { get; }

    /// <summary>Floats per action: 1 for a discrete index, D for a box.</summary>
    public int ActionSize { get; }

    public Mlp Actor { get; }

    public Mlp Critic { get; }

    /// <summary>log σ per action dimension (Gaussian only), a free parameter as CleanRL's actor_logstd.</summary>
    public float[] LogStd { get; }

    public float[] LogStdGradient { get; }

    /// <summary>Every trainable buffer with its gradient, for the optimiser and the global-norm clip.</summary>
    public IEnumerable<(float[] Parameters, float[] Gradients)> ParameterGroups()
    {
        yield return (Actor.Parameters, Actor.Gradients);
        yield return (Critic.Parameters, Critic.Gradients);
        if (LogStd.Length > 0) yield return (LogStd, LogStdGradient);
    }

    /// <summary>The policy's buffers only (actor and log σ), for a separate optimiser.</summary>
    public IEnumerable<(float[] Parameters, float[] Gradients)> ActorGroups() => ParameterGroups().Where(g => g.Parameters != Critic.Parameters);

    /// <summary>The critic's buffers only.</summary>
    public IEnumerable<(float[] Parameters, float[] Gradients)> CriticGroups() => [(Critic.Parameters, Critic.Gradients)];

    /// <summary>V(s) for a batch [B, S].</summary>
    public float[] Values(ReadOnlySpan<float> obs, int batch) => Critic.Forward(obs, batch);

    /// <summary>Samples a ~ π(·|s) (or the mode when deterministic) for a batch of observations.</summary>
    public ActResult Act(ReadOnlySpan<float> obs, int batch, Rng rng, bool deterministic)
    {
        float[] outp = Actor.Forward(obs, batch);
        float[] values = Critic.Forward(obs, batch);
        var actions = new float[batch * ActionSize];
        if (IsDiscrete)
        {
            int k = ((DiscreteSpace)ActionSpace).N;
            var p = new float[k];
            for (int r = 0; r < batch; r++)
            {
                Softmax(outp.AsSpan(r * k, k), p);
                int a = deterministic ? ArgMax(p) : rng.Categorical(p);
                actions[r] = a;
            }
        }
        else
        {
            int d = ActionSize;
            for (int r = 0; r < batch; r++)
                for (int j = 0; j < d; j++)
                    actions[r * d + j] = outp[r * d + j] + (deterministic ? 0f : (float)(Math.Exp(LogStd[j]) * rng.Normal()));
        }
        var logp = LogProbAndEntropy(outp, actions, batch, out _, out _);
        return new ActResult(actions, logp, values);
    }

    /// <summary>log π(a|s), entropy and V(s) for stored pairs; remembers what Backward needs.</summary>
    public Evaluation Evaluate(ReadOnlySpan<float> obs, ReadOnlySpan<float> actions, int batch)
    {
        if (actions.Length != batch * ActionSize)
            throw new ArgumentException($"ActorCritic.Evaluate: {actions.Length} action values for {batch} rows × {ActionSize}.", nameof(actions));
        _batch = batch;
        _actorOut = Actor.Forward(obs, batch);
        _actions = actions.ToArray();
        float[] logp = LogProbAndEntropy(_actorOut, _actions, batch, out _probs, out _entropy);
        float[] values = Critic.Forward(obs, batch);
        return new Evaluation(logp, _entropy, values);
    }

    /// <summary>Accumulates parameter gradients from ∂L/∂(log π, H, V) per sample of the last Evaluate.</summary>
    public void Backward(LossGradients g)
    {
        if (g.LogProb.Length != _batch || g.Entropy.Length != _batch || g.Value.Length != _batch)
            throw new ArgumentException($"ActorCritic.Backward: gradients for {g.LogProb.Length} samples; the last Evaluate had {_batch}.");
        var dOut = new float[_actorOut.Length];
        if (IsDiscrete)
        {
            int k = ((DiscreteSpace)ActionSpace).N;
            for (int r = 0; r < _batch; r++)
            {
                int a = (int)_actions[r];
                double h = _entropy[r];
                for (int j = 0; j < k; j++)
                {
                    double p = _probs[r * k + j];
                    // ∂log p_a/∂z_j = 1[j=a] − p_j;  ∂H/∂z_j = −p_j·(log p_j + H).
                    double dLogp = (j == a ? 1 : 0) - p;
                    double dH = p > 0 ? -p * (Math.Log(p) + h) : 0;
                    dOut[r * k + j] = (float)(g.LogProb[r] * dLogp + g.Entropy[r] * dH);
                }
            }
        }
        else
        {
            int d = ActionSize;
            for (int r = 0; r < _batch; r++)
                for (int j = 0; j < d; j++)
                {
                    double inv = Math.Exp(-2.0 * LogStd[j]);
                    double diff = _actions[r * d + j] - _actorOut[r * d + j];
                    // ∂log π/∂μ = (a − μ)/σ²;  ∂log π/∂log σ = (a − μ)²/σ² − 1;  ∂H/∂log σ = 1.
                    dOut[r * d + j] = (float)(g.LogProb[r] * diff * inv);
                    LogStdGradient[j] += (float)(g.LogProb[r] * (diff * diff * inv - 1) + g.Entropy[r]);
                }
        }
        Actor.Backward(dOut);
        Critic.Backward(g.Value);
    }

    private float[] LogProbAndEntropy(float[] outp, float[] actions, int batch, out float[] probs, out float[] entropy)
    {
        var logp = new float[batch];
        entropy = new float[batch];
        if (IsDiscrete)
        {
            int k = ((DiscreteSpace)ActionSpace).N;
            probs = new float[batch * k];
            for (int r = 0; r < batch; r++)
            {
                ReadOnlySpan<float> z = outp.AsSpan(r * k, k);
                double max = double.NegativeInfinity;
                foreach (float v in z) max = Math.Max(max, v);
                double sum = 0;
                foreach (float v in z) sum += Math.Exp(v - max);
                double logZ = max + Math.Log(sum);
                double h = 0;
                for (int j = 0; j < k; j++)
                {
                    double lp = z[j] - logZ, p = Math.Exp(lp);
                    probs[r * k + j] = (float)p;
                    h -= p * lp;
                }
                int a = (int)actions[r];
                if (a < 0 || a >= k) throw new ArgumentOutOfRangeException(nameof(actions), a, $"ActorCritic: action {a} outside Discrete({k}).");
                logp[r] = (float)(z[a] - logZ);
                entropy[r] = (float)h;
            }
        }
        else
        {
            probs = [];
            int d = ActionSize;
            double hSum = 0;
            for (int j = 0; j < d; j++) hSum += 0.5 + HalfLog2Pi + LogStd[j];
            for (int r = 0; r < batch; r++)
            {
                double lp = 0;
                for (int j = 0; j < d; j++)
                {
                    double diff = actions[r * d + j] - outp[r * d + j];
                    lp += -diff * diff * Math.Exp(-2.0 * LogStd[j]) / 2 - LogStd[j] - HalfLog2Pi;
                }
                logp[r] = (float)lp;
                entropy[r] = (float)hSum;
            }
        }
        return logp;
    }

    private static void Softmax(ReadOnlySpan<float> z, Span<float> p)
    {
        float max = float.NegativeInfinity;
        foreach (float v in z) max = Math.Max(max, v);
        double sum = 0;
        for (int j = 0; j < z.Length; j++) { p[j] = MathF.Exp(z[j] - max); sum += p[j]; }
        for (int j = 0; j < z.Length; j++) p[j] = (float)(p[j] / sum);
    }

    private static int ArgMax(ReadOnlySpan<float> p)
    {
        int best = 0;
        for (int j = 1; j < p.Length; j++) if (p[j] > p[best]) best = j;
        return best;
    }
}
