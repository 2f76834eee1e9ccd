// Every op's backward against central differences on fresh random inputs, including broadcasting and a
// node used twice. One theory row per case so a failure names the op.
namespace RlhfSharp.Tensors.Tests;

public sealed class OpGradientTests
{
    private sealed record Case(Func<Rng, Tensor[]> Inputs, Func<Tensor[], Tensor> F);

    private static readonly int[] Ids = [3, 1, 3, 0, 4, 1];
    private static readonly int[] Targets = [2, 0, -100, 4, 1, 3];
    private static readonly float[] RowWeights = [1f, 0.5f, 1f, 0f, 2f, 1f];

    private static readonly Dictionary<string, Case> Cases = new()
    {
        ["add"] = new(r => [R(r, 3, 4), R(r, 3, 4)], x => x[0] + x[1]),
        ["add_bias_broadcast"] = new(r => [R(r, 2, 3, 4), R(r, 4)], x => x[0] + x[1]),
        ["add_trailing_2d_broadcast"] = new(r => [R(r, 2, 3, 4), R(r, 1, 3, 4)], x => x[0] + x[1]),
        ["add_scalar_tensor_broadcast"] = new(r => [R(r, 3, 4), R(r, 1)], x => x[0] + x[1]),
        ["sub"] = new(r => [R(r, 3, 4), R(r, 3, 4)], x => x[0] - x[1]),
        ["sub_small_left"] = new(r => [R(r, 4), R(r, 3, 4)], x => x[0] - x[1]),
        ["mul"] = new(r => [R(r, 3, 4), R(r, 3, 4)], x => x[0] * x[1]),
        ["mul_broadcast"] = new(r => [R(r, 5, 4), R(r, 4)], x => x[0] * x[1]),
        ["mul_scalar_broadcast_left"] = new(r => [R(r), R(r, 5, 4)], x => x[0] * x[1]),
        ["div"] = new(r => [R(r, 3, 4), Pos(r, 3, 4)], x => x[0] / x[1]),
        ["div_broadcast_left"] = new(r => [R(r, 4), Pos(r, 2, 4)], x => x[0] / x[1]),
        ["div_broadcast_right"] = new(r => [R(r, 2, 4), Pos(r, 4)], x => x[0] / x[1]),
        ["float_ops"] = new(r => [R(r, 6)], x => (2f - x[0]) * 3f + 1f / (x[0] * x[0] + 1f) - x[0] / 2f),
        ["neg"] = new(r => [R(r, 5)], x => -x[0]),
        ["exp"] = new(r => [R(r, 5)], x => Ops.Exp(x[0])),
        ["log"] = new(r => [Pos(r, 5)], x => Ops.Log(x[0])),
        ["sqrt"] = new(r => [Pos(r, 5)], x => Ops.Sqrt(x[0])),
        ["square"] = new(r => [R(r, 5)], x => Ops.Square(x[0])),
        ["tanh"] = new(r => [R(r, 5)], x => Ops.Tanh(x[0])),
        ["sigmoid"] = new(r => [R(r, 5)], x => Ops.Sigmoid(x[0])),
        ["log_sigmoid"] = new(r => [Scaled(r, 4f, 8)], x => Ops.LogSigmoid(x[0])),
        ["relu"] = new(r => [Kinkless(r, 8)], x => Ops.Relu(x[0])),
        ["gelu"] = new(r => [Scaled(r, 2f, 8)], x => Ops.Gelu(x[0])),
        ["silu"] = new(r => [Scaled(r, 2f, 8)], x => Ops.Silu(x[0])),
        ["clamp"] = new(r => [Jitter(r, [-1.3f, -0.5f, -0.2f, 0.3f, 0.6f, 1.4f, 2f, -2.2f])], x => Ops.Clamp(x[0], -1f, 1f)),
        ["minimum"] = new(r => [R(r, 8), R(r, 8)], x => Ops.Minimum(x[0], x[1])),
        ["maximum"] = new(r => [R(r, 8), R(r, 8)], x => Ops.Maximum(x[0], x[1])),
        ["where"] = new(r => [R(r, 2, 3), R(r, 2, 3)], x => Ops.Where(Tensor.FromArray([1, 0, 0, 1, 1, 0], 2, 3), x[0], x[1])),
        ["sum_all"] = new(r => [R(r, 3, 4)], x => Ops.Sum(x[0])),
        ["mean_all"] = new(r => [R(r, 3, 4)], x => Ops.Mean(x[0])),
        ["sum_axis0"] = new(r => [R(r, 2, 3, 4)], x => Ops.Sum(x[0], 0)),
        ["sum_axis1_keep"] = new(r => [R(r, 2, 3, 4)], x => Ops.Sum(x[0], 1, keepDim: true)),
        ["mean_axis_last"] = new(r => [R(r, 2, 3, 4)], x => Ops.Mean(x[0], -1)),
        ["masked_mean"] = new(r => [R(r, 2, 4)], x => Ops.MaskedMean(x[0], Tensor.FromArray([1, 1, 0, 1, 0, 0, 1, 1], 2, 4))),
        ["max_axis"] = new(r => [R(r, 3, 5)], x => Ops.Max(x[0], 1)),
        ["max_axis0"] = new(r => [R(r, 3, 5)], x => Ops.Max(x[0], 0, keepDim: true)),
        ["matmul_nn"] = new(r => [R(r, 3, 4), R(r, 4, 5)], x => Ops.MatMul(x[0], x[1])),
        ["matmul_nt"] = new(r => [R(r, 3, 4), R(r, 5, 4)], x => Ops.MatMul(x[0], x[1], transB: true)),
        ["matmul_tn"] = new(r => [R(r, 4, 3), R(r, 4, 5)], x => Ops.MatMul(x[0], x[1], transA: true)),
        ["matmul_batched"] = new(r => [R(r, 2, 3, 4), R(r, 2, 4, 2)], x => Ops.MatMul(x[0], x[1])),
        ["matmul_batched_nt"] = new(r => [R(r, 2, 3, 4), R(r, 2, 5, 4)], x => Ops.MatMul(x[0], x[1], transB: true)),
        ["matmul_batched_shared_b"] = new(r => [R(r, 2, 3, 4), R(r, 4, 2)], x => Ops.MatMul(x[0], x[1])),
        ["matmul_batched_shared_b_nt"] = new(r => [R(r, 2, 3, 4), R(r, 5, 4)], x => Ops.MatMul(x[0], x[1], transB: true)),
        ["matmul_batched_shared_a_tn"] = new(r => [R(r, 4, 3), R(r, 2, 4, 2)], x => Ops.MatMul(x[0], x[1], transA: true)),
        ["linear"] = new(r => [R(r, 2, 3, 4), R(r, 5, 4), R(r, 5)], x => Ops.Linear(x[0], x[1], x[2])),
        ["linear_no_bias"] = new(r => [R(r, 3, 4), R(r, 2, 4)], x => Ops.Linear(x[0], x[1])),
        ["embedding_repeated_ids"] = new(r => [R(r, 5, 3)], x => Ops.Embedding(x[0], Ids, 2, 3)),
        ["concat_axis0"] = new(r => [R(r, 2, 3), R(r, 1, 3)], x => Ops.Concat([x[0], x[1]], 0)),
        ["concat_axis1"] = new(r => [R(r, 2, 3), R(r, 2, 2)], x => Ops.Concat([x[0], x[1], x[0]], 1)),
        ["narrow"] = new(r => [R(r, 2, 5, 3)], x => Ops.Narrow(x[0], 1, 1, 3)),
        ["permute_0213"] = new(r => [R(r, 2, 3, 2, 4)], x => Ops.Permute(x[0], 0, 2, 1, 3)),
        ["permute_all"] = new(r => [R(r, 2, 3, 4)], x => Ops.Permute(x[0], 2, 0, 1)),
        ["transpose_last"] = new(r => [R(r, 2, 3, 4)], x => Ops.Transpose(x[0], -2, -1)),
        ["reshape"] = new(r => [R(r, 2, 6)], x => Ops.Tanh(x[0].Reshape(3, -1)) * x[0].Reshape(3, 4)),
        ["layer_norm"] = new(r => [R(r, 3, 6), Shift(r, 6, 1f), R(r, 6)], x => Ops.LayerNorm(x[0], x[1], x[2])),
        ["rms_norm"] = new(r => [R(r, 3, 6), Shift(r, 6, 1f)], x => Ops.RmsNorm(x[0], x[1])),
        ["dropout_fixed_seed"] = new(r => [R(r, 4, 5)], x => Ops.Dropout(x[0], 0.3f, new Rng(9))),
        ["softmax"] = new(r => [R(r, 3, 5)], x => Ops.Softmax(x[0])),
        ["log_softmax"] = new(r => [R(r, 3, 5)], x => Ops.LogSoftmax(x[0])),
        ["cross_entropy_ignore_weights"] = new(r => [R(r, 2, 3, 5)], x => Ops.CrossEntropy(x[0], Targets, -100, RowWeights)),
        ["cross_entropy_plain"] = new(r => [R(r, 4, 5)], x => Ops.CrossEntropy(x[0], [1, 0, 4, 2])),
        ["token_log_probs"] = new(r => [R(r, 2, 3, 5)], x => Ops.TokenLogProbs(x[0], [1, 4, 0, 2, 2, 3])),
        ["gather"] = new(r => [R(r, 3, 4)], x => Ops.Gather(x[0], [3, 0, 3])),
        ["entropy"] = new(r => [R(r, 3, 5)], x => Ops.Entropy(x[0])),
        ["ppo_clip_recipe"] = new(r => [R(r, 2, 3, 5)], x =>
        {
            var logp = Ops.TokenLogProbs(x[0], [1, 4, 0, 2, 2, 3]);
            var oldLogp = Tensor.FromArray([-1.2f, -2.5f, -1.9f, -0.7f, -1.1f, -3f], 2, 3);
            var adv = Tensor.FromArray([0.5f, -1f, 2f, 0.3f, -0.4f, 1f], 2, 3);
            var mask = Tensor.FromArray([1f, 1f, 0f, 1f, 1f, 1f], 2, 3);
            var ratio = Ops.Exp(logp - oldLogp);
            var pg = -Ops.MaskedMean(Ops.Minimum(ratio * adv, Ops.Clamp(ratio, 0.8f, 1.2f) * adv), mask);
            return pg - 0.01f * Ops.MaskedMean(Ops.Entropy(x[0]), mask);
        }),
        ["bradley_terry_recipe"] = new(r => [R(r, 4), R(r, 4)], x => -Ops.Mean(Ops.LogSigmoid(x[0] - x[1]))),
        ["node_used_twice"] = new(r => [R(r, 4)], x =>
        {
            var t = Ops.Tanh(x[0]);
            return t * t + Ops.Exp(t) + x[0] * x[0];
        }),
        ["shared_subgraph_two_paths"] = new(r => [R(r, 2, 3), R(r, 3)], x =>
        {
            var h = x[0] + x[1];
            var a = Ops.Sum(Ops.Sigmoid(h), 1);
            var b = Ops.Mean(h * h, 1);
            return a * b + Ops.Sum(x[1] * x[1]);
        }),
    };

    public static TheoryData<string> CaseNames() => new(Cases.Keys);

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void BackwardMatchesCentralDifferences(string name)
    {
        var c = Cases[name];
        ulong seed = 17;
        foreach (char ch in name) seed = seed * 31 + ch; // stable across processes, unlike string.GetHashCode
        var rng = new Rng(seed);
        GradCheck.Check(c.F, c.Inputs(rng));
    }

    private static Tensor R(Rng r, params int[] shape) => Tensor.Randn(r, 1f, shape);

    private static Tensor Scaled(Rng r, float std, params int[] shape) => Tensor.Randn(r, std, shape);

    private static Tensor Pos(Rng r, params int[] shape) => Tensor.Rand(r, 0.5f, 2f, shape);

    private static Tensor Shift(Rng r, int n, float shift) => Tensor.Randn(r, 0.3f, n) + Tensor.Full(shift, n);

    // Fixed values moved by up to ±0.1, each staying ≥ 0.1 away from the clamp bounds ±1.
    private static Tensor Jitter(Rng r, float[] values) => Tensor.FromArray(values, values.Length) + Tensor.Rand(r, -0.1f, 0.1f, values.Length);

    // Values at least 0.1 from 0 so a ±2h probe (h = 0.01) never crosses the kink of relu or clamp.
    private static Tensor Kinkless(Rng r, params int[] shape) => GradCheck.AwayFromZero(r, 0.1f, 1.5f, shape);
}
