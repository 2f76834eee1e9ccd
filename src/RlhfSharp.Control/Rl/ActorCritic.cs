// The agent of CleanRL's ppo.py / ppo_continuous_action.py on the RlhfSharp.Tensors engine: an MLP actor (categorical logits,
// or a diagonal Gaussian mean with a state-independent log σ) and a separate MLP critic, both 64-64 tanh with orthogonal init.
// Evaluate records log π(a|s), H(π(·|s)), V(s) and, for PPO-penalty, the exact KL(π_old(·|s)‖π(·|s)) on the autograd tape;
// the trainers build their losses from them with RlhfSharp.Objectives and call loss.Backward().
// Shapes: B batch rows, S observation size, K discrete actions, D continuous action dimensions.
using RlhfSharp.Tensors;
using RlhfSharp.Tensors.Nn;

namespace RlhfSharp.Control.Rl;

/// <summary>
/// Actions sampled for a batch, with their log-probabilities under the current policy, the critic's values, and the actor's
/// output [B, K or D] (logits, or Gaussian means) that PPO-penalty keeps as π_old(·|s).
/// </summary>
public sealed record ActResult(float[] Actions, float[] LogProb, float[] Values, float[] ActorOutput);

/// <summary>π_old for the exact KL: the actor's output at rollout time [B, K or D] and, for a Gaussian, its log σ then [D].</summary>
public sealed record OldPolicy(float[] ActorOutput, float[]? LogStd);

/// <summary>
/// log π(a|s), H(π(·|s)) and V(s) [B] for a batch of stored (s, a), and KL(π_old(·|s)‖π(·|s)) [B] when π_old was given, all on
/// the autograd tape.
/// </summary>
public sealed record Evaluation(Tensor LogProb, Tensor Entropy, Tensor Values, Tensor? Kl = null);

public sealed class ActorCritic : Module
{
    private static readonly float HalfLog2Pi = (float)(0.5 * Math.Log(2 * Math.PI));

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
        Actor = RegisterModule("actor", new Mlp([observationSize, .. hidden, actorOut], Activation.Tanh, rng));
        Critic = RegisterModule("critic", new Mlp([observationSize, .. hidden, 1], Activation.Tanh, rng));
        // CleanRL's layer_init: orthogonal weights, gain √2 on hidden layers, 0.01 on the actor's output (a near-uniform first
        // policy) and 1 on the critic's; biases 0 (Engstrom et al. 2020, "Implementation Matters in Deep Policy Gradients").
        InitOrthogonal(Actor, rng, 0.01f);
        InitOrthogonal(Critic, rng, 1f);
        if (!IsDiscrete) LogStd = RegisterParameter("actor_logstd", Tensor.Zeros(1, actorOut)); // log σ starts at 0
        ActorParameters = new ParameterSet(NamedParameters().Where(p => !p.Key.StartsWith("critic.", StringComparison.Ordinal)));
        CriticParameters = new ParameterSet(NamedParameters().Where(p => p.Key.StartsWith("critic.", StringComparison.Ordinal)));
    }

    public int ObservationSize { get; }

    public Space ActionSpace { get; }

    public int[] Hidden { get; }

    public bool IsDiscrete { get; }

    /// <summary>Floats per action: 1 for a discrete index, D for a box.</summary>
    public int ActionSize { get; }

    public Mlp Actor { get; }

    public Mlp Critic { get; }

    /// <summary>log σ [1, D] (Gaussian only), a free parameter as CleanRL's actor_logstd.</summary>
    public Tensor? LogStd { get; }

    /// <summary>The policy's parameters (actor and log σ) in one flat buffer.</summary>
    public ParameterSet ActorParameters { get; }

    /// <summary>The critic's parameters in one flat buffer.</summary>
    public ParameterSet CriticParameters { get; }

    /// <summary>V(s) for a batch [B, S], without recording a graph.</summary>
    public float[] Values(ReadOnlySpan<float> obs, int batch)
    {
        using var _ = Autograd.NoGrad();
        return Critic.Forward(Input(obs, batch)).ToArray();
    }

    /// <summary>Samples a ~ π(·|s) (or the mode when deterministic) for a batch of observations, without recording a graph.</summary>
    public ActResult Act(ReadOnlySpan<float> obs, int batch, Rng rng, bool deterministic)
    {
        using var _ = Autograd.NoGrad();
        var x = Input(obs, batch);
        float[] outp = Actor.Forward(x).ToArray();
        float[] values = Critic.Forward(x).ToArray();
        var actions = new float[batch * ActionSize];
        if (IsDiscrete)
        {
            int k = ((DiscreteSpace)ActionSpace).N;
            var p = new float[k];
            for (int r = 0; r < batch; r++)
            {
                ReadOnlySpan<float> z = outp.AsSpan(r * k, k);
                float max = float.NegativeInfinity;
                foreach (float v in z) max = Math.Max(max, v);
                for (int j = 0; j < k; j++) p[j] = MathF.Exp(z[j] - max);
                int best = 0;
                for (int j = 1; j < k; j++) if (p[j] > p[best]) best = j;
                actions[r] = deterministic ? best : rng.Categorical(p);
            }
        }
        else
        {
            ReadOnlySpan<float> logStd = LogStd!.Span;
            for (int r = 0; r < batch; r++)
                for (int j = 0; j < ActionSize; j++)
                    actions[r * ActionSize + j] = outp[r * ActionSize + j] + (deterministic ? 0f : (float)(Math.Exp(logStd[j]) * rng.Normal()));
        }
        var (logp, _) = Distribution(Tensor.Wrap(outp, batch, outp.Length / batch), actions, batch);
        return new ActResult(actions, logp.ToArray(), values, outp);
    }

    /// <summary>
    /// log π(a|s), entropy and V(s) for stored pairs, and KL(π_old(·|s)‖π(·|s)) when <paramref name="old"/> is given, recorded on
    /// the tape for a loss's Backward.
    /// </summary>
    public Evaluation Evaluate(ReadOnlySpan<float> obs, ReadOnlySpan<float> actions, int batch, OldPolicy? old = null)
    {
        if (actions.Length != batch * ActionSize)
            throw new ArgumentException($"ActorCritic.Evaluate: {actions.Length} action values for {batch} rows × {ActionSize}.", nameof(actions));
        var x = Input(obs, batch);
        var outp = Actor.Forward(x);
        var (logp, entropy) = Distribution(outp, actions.ToArray(), batch);
        var values = Ops.Sum(Critic.Forward(x), 1); // [B, 1] → [B]
        var kl = old is null ? null : KlFromOld(outp, old, batch);
        return new Evaluation(logp, entropy, values, kl);
    }

    /// <summary>V(s) [B] for a batch of observations, recorded on the tape (a baseline's regression step).</summary>
    public Tensor EvaluateValues(ReadOnlySpan<float> obs, int batch) => Ops.Sum(Critic.Forward(Input(obs, batch)), 1);

    /// <summary>log π(a|s) [B] and H [B] from the actor's output [B, K or D].</summary>
    private (Tensor LogProb, Tensor Entropy) Distribution(Tensor outp, float[] actions, int batch)
    {
        if (IsDiscrete)
        {
            int k = ((DiscreteSpace)ActionSpace).N;
            var idx = new int[batch];
            for (int r = 0; r < batch; r++)
            {
                int a = (int)actions[r];
                if (a < 0 || a >= k || a != actions[r]) throw new ArgumentOutOfRangeException(nameof(actions), actions[r], $"ActorCritic: action {actions[r]} is not in Discrete({k}).");
                idx[r] = a;
            }
            return (Ops.TokenLogProbs(outp, idx), Ops.Entropy(outp));
        }
        int d = ActionSize;
        var logStd = LogStd!;
        // log N(a; μ, σ²) = Σ_d −(a − μ)²/(2σ²) − log σ − ½·log 2π;  H = Σ_d log σ + ½ + ½·log 2π.
        var diff = Tensor.Wrap(actions, batch, d) - outp;
        var invVar = Ops.Exp(logStd * -2f);
        var perDim = Ops.Square(diff) * invVar * -0.5f - logStd - HalfLog2Pi;
        var logp = Ops.Sum(perDim, 1);
        var entropy = Ops.Sum(Tensor.Zeros(batch, d) + logStd, 1) + (0.5f + HalfLog2Pi) * d;
        return (logp, entropy);
    }

    /// <summary>
    /// KL(π_old(·|s)‖π(·|s)) [B], exact: Σ_k p_old,k·(log p_old,k − log p_k) for logits [B, K]; for Gaussians [B, D],
    /// Σ_d log σ − log σ_old + (σ_old² + (μ_old − μ)²)/(2σ²) − ½.
    /// </summary>
    private Tensor KlFromOld(Tensor outp, OldPolicy old, int batch)
    {
        int width = outp.Shape[1];
        if (old.ActorOutput.Length != batch * width)
            throw new ArgumentException($"ActorCritic: π_old has {old.ActorOutput.Length} output values for {batch} rows × {width}.", nameof(old));
        if (IsDiscrete)
        {
            var logpOld = new float[batch * width];
            var pOld = new float[batch * width];
            for (int r = 0; r < batch; r++)
            {
                ReadOnlySpan<float> z = old.ActorOutput.AsSpan(r * width, width);
                double max = double.NegativeInfinity;
                foreach (float v in z) max = Math.Max(max, v);
                double sum = 0;
                foreach (float v in z) sum += Math.Exp(v - max);
                double logZ = max + Math.Log(sum);
                for (int k = 0; k < width; k++)
                {
                    logpOld[r * width + k] = (float)(z[k] - logZ);
                    pOld[r * width + k] = (float)Math.Exp(z[k] - logZ);
                }
            }
            return Ops.Sum(Tensor.Wrap(pOld, batch, width) * (Tensor.Wrap(logpOld, batch, width) - Ops.LogSoftmax(outp)), 1);
        }
        if (old.LogStd is not { } oldLogStd || oldLogStd.Length != width)
            throw new ArgumentException($"ActorCritic: a Gaussian π_old needs its {width} log σ values.", nameof(old));
        var oldVar = new float[width];
        var oldLogStdPlusHalf = new float[width];
        for (int j = 0; j < width; j++)
        {
            oldVar[j] = MathF.Exp(2 * oldLogStd[j]);
            oldLogStdPlusHalf[j] = oldLogStd[j] + 0.5f;
        }
        var logStd = LogStd!;
        var diff = Tensor.Wrap(old.ActorOutput, batch, width) - outp;
        var perDim = (Ops.Square(diff) + Tensor.Wrap(oldVar, 1, width)) * Ops.Exp(logStd * -2f) * 0.5f + logStd - Tensor.Wrap(oldLogStdPlusHalf, 1, width);
        return Ops.Sum(perDim, 1);
    }

    private Tensor Input(ReadOnlySpan<float> obs, int batch)
    {
        if (obs.Length != batch * ObservationSize)
            throw new ArgumentException($"ActorCritic: {obs.Length} observation values for {batch} rows × {ObservationSize}.", nameof(obs));
        return Tensor.FromArray(obs, batch, ObservationSize);
    }

    private static void InitOrthogonal(Mlp mlp, Rng rng, float outputGain)
    {
        for (int l = 0; l < mlp.Layers.Count; l++)
        {
            Init.Orthogonal(mlp.Layers[l].Weight, rng, l == mlp.Layers.Count - 1 ? outputGain : MathF.Sqrt(2));
            if (mlp.Layers[l].Bias is { } bias) bias.Span.Clear();
        }
    }
}

/// <summary>
/// Adam over the agent's parameter sets (the engine's AdamW with weight decay 0), with one global gradient-norm clip across
/// all of them (ParameterSet.ClipGradNorm over the sets), as torch.nn.utils.clip_grad_norm_(agent.parameters()) in CleanRL.
/// </summary>
public sealed class AgentOptimizer
{
    private readonly ParameterSet[] _sets;
    private readonly RlhfSharp.Tensors.Optim.AdamW[] _adams;

    /// <param name="sets">The parameter sets stepped together.</param>
    /// <param name="learningRate">Initial learning rate.</param>
    /// <param name="epsilon">CleanRL uses 1e-5 instead of PyTorch's 1e-8 (its implementation detail on Adam's ε).</param>
    public AgentOptimizer(IEnumerable<ParameterSet> sets, double learningRate, double epsilon = 1e-5)
    {
        LearningRate = learningRate;
        _sets = [.. sets];
        _adams = [.. _sets.Select(s => new RlhfSharp.Tensors.Optim.AdamW(s, new RlhfSharp.Tensors.Optim.AdamWConfig
        {
            LearningRate = (float)learningRate, Eps = (float)epsilon, WeightDecay = 0f,
        }))];
    }

    public double LearningRate { get; set; }

    /// <summary>The parameter sets stepped together.</summary>
    public IReadOnlyList<ParameterSet> Sets => _sets;

    /// <summary>The AdamW of each parameter set, in the order the sets were given (their moments and step counts go into checkpoints).</summary>
    public IReadOnlyList<RlhfSharp.Tensors.Optim.AdamW> Optimizers => _adams;

    public void ZeroGrad()
    {
        foreach (var s in _sets) s.ZeroGrad();
    }

    /// <summary>Scales every gradient so the norm over all sets is at most maxNorm; returns the norm before.</summary>
    public double ClipGradNorm(double maxNorm) => ParameterSet.ClipGradNorm(_sets, maxNorm);

    public void Step()
    {
        foreach (var adam in _adams) adam.Step((float)LearningRate);
    }
}
