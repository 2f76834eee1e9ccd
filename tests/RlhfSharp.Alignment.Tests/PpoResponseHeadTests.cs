// Under LoRA, PPO runs the LM head only at the positions that predict response tokens (PolicyRollouts.ResponseLogProbsOnTape,
// and ResponseLogProbs when scoring). That is a speed change only: log π, the entropy and the adapter's gradient must
// equal the full head's bit for bit, at shapes on both sides of the GEMM's plan thresholds (≤ 16 rows: the skinny tile;
// ≤ 256 rows: operands swapped), with a float32 or a BF16 base, at temperature 1 and not.
using RlhfSharp.Alignment.Ppo;
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Models;
using RlhfSharp.Tensors;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment.Tests;

public sealed class PpoResponseHeadTests
{
    private static (Gpt Policy, GptInput Input) Setup(int B, int Tp, int R, bool bf16)
    {
        var config = new GptConfig { VocabSize = 300, BlockSize = 64, NEmbd = 32, NLayer = 2, NHead = 2 };
        var sft = Gpt.Create(config, new Rng(5));
        if (bf16) sft.NarrowFrozenWeightsToBf16();
        var adapter = LoraAdapter.Create(sft, new LoraConfig { R = 4, LoraDropout = 0f, TargetModules = "c_attn,c_fc" }, new Rng(6));
        // B starts at 0 (the adapter would change nothing): give every adapter weight a value so the adapter matters.
        var rng = new Rng(7);
        var values = adapter.ParameterSet.Values;
        for (int i = 0; i < values.Length; i++) values[i] = (float)(rng.Normal() * 0.05);
        var policy = sft.WithAdapter(adapter);

        // Left-padded prompts of different lengths, right-padded responses of different lengths.
        int L = Tp + R;
        var tokens = new int[B * L];
        var mask = new byte[B * L];
        for (int b = 0; b < B; b++)
        {
            int prompt = Tp - b % 3, response = R - b % 4;
            for (int t = Tp - prompt; t < Tp + response; t++)
            {
                tokens[b * L + t] = 1 + rng.NextInt(config.VocabSize - 1);
                mask[b * L + t] = 1;
            }
        }
        return (policy, new GptInput(B, L, tokens, mask));
    }

    // A loss through log π and the entropy, backpropagated into the adapter; returns the adapter's gradient.
    private static float[] AdapterGradient(Gpt policy, TapedLogProbs taped, int Tp, int R, float temperature)
    {
        policy.ZeroGrad();
        int b = taped.LogProbs.Shape[0];
        var weights = new float[b * R];
        for (int i = 0; i < weights.Length; i++) weights[i] = (i % 5) - 2f;
        var loss = Ops.Add(Ops.Sum(Ops.Mul(taped.LogProbs, Tensor.FromArray(weights, b, R))), Ops.MulScalar(Ops.Sum(taped.ResponseEntropy(Tp, R, detach: false)), 0.1f));
        loss.Backward();
        PolicyRollouts.Backward(policy, taped, temperature);
        return (float[])policy.TrainableParameters.Grads.Clone();
    }

    [Theory]
    [InlineData(2, 5, 7, false, 1f)]     // 14 head rows (skinny tile) against 24
    [InlineData(6, 9, 7, false, 0.7f)]   // 42 against 96
    [InlineData(6, 20, 28, false, 1f)]   // 168 rows (swapped operands) against 288 (not swapped)
    [InlineData(6, 9, 7, true, 0.7f)]    // a BF16 base
    public void ResponseOnlyHead_MatchesTheFullHead_BitForBit(int B, int Tp, int R, bool bf16, float temperature)
    {
        var (policy, input) = Setup(B, Tp, R, bf16);

        var full = PolicyRollouts.LogProbsOnTape(policy, input, Tp, R, temperature);
        var fullLogp = full.LogProbs.ToArray();
        var fullEntropy = full.ResponseEntropy(Tp, R, detach: true).ToArray();
        var fullGrad = AdapterGradient(policy, full, Tp, R, temperature);

        var part = PolicyRollouts.ResponseLogProbsOnTape(policy, input, Tp, R, temperature);
        Assert.Equal(new[] { B, R, policy.Config.VocabSize }, part.Logits.Shape.ToArray());
        Assert.Equal(fullLogp, part.LogProbs.ToArray());
        Assert.Equal(fullEntropy, part.ResponseEntropy(Tp, R, detach: true).ToArray());
        var partGrad = AdapterGradient(policy, part, Tp, R, temperature);
        Assert.Contains(partGrad, g => g != 0);
        Assert.Equal(fullGrad, partGrad);

        // Its buffers reused by the next minibatch: the same results again.
        var again = PolicyRollouts.ResponseLogProbsOnTape(policy, input, Tp, R, temperature, part);
        Assert.Same(part.Hidden, again.Hidden);
        Assert.Equal(fullLogp, again.LogProbs.ToArray());
        Assert.Equal(fullGrad, AdapterGradient(policy, again, Tp, R, temperature));

        // Scoring (no tape) at the response positions: the same log π on real tokens, 0 on padding.
        var scored = PolicyRollouts.ResponseLogProbs(policy, input, Tp, R, temperature);
        for (int b = 0; b < B; b++)
            for (int t = 0; t < R; t++)
                Assert.Equal(input.IsReal(b, Tp + t) ? fullLogp[b * R + t] : 0f, scored[b * R + t]);
    }

    [Fact]
    public void ResponseOnlyHead_RefusesAModelThatTrainsWte()
    {
        var (policy, input) = Setup(2, 5, 7, false);
        var plain = policy.Merged();
        var error = Assert.Throws<ArgumentException>(() => PolicyRollouts.ResponseLogProbsOnTape(plain, input, 5, 7, 1f));
        Assert.Contains("LoRA", error.Message);
    }

    [Fact]
    public void LoraPpo_WithAProfile_TrainsTheSameBits_AndTimesEachPhase()
    {
        var chars = CharTokenizer.FromCorpus("abcdefghijklmnopqrstuvwxyz .,!?");
        var config = new PpoConfig
        {
            Steps = 1, BatchSize = 4, MiniBatchSize = 2, Epochs = 1, MaxNewTokens = 4, LearningRate = 1e-2f, CheckpointInterval = 0,
            Lora = new LoraConfig { R = 4, LoraDropout = 0f, TargetModules = "c_attn,c_fc" },
        };
        float[] Run(PpoProfile? profile)
        {
            var g = TinyStoryModel.Random(chars.VocabSize, 12);
            var sft = Gpt.FromTensors(g.Config with { EosTokenId = chars.EosId }, g.ToTensors());
            var rm = new RewardEnsemble([new RewardModel(TinyStoryModel.Random(chars.VocabSize, 13, GptHeads.Reward), chars)]);
            var result = new PpoTrainer(config).Train(sft, chars, ["the cat", "a dog"], new RewardModelReward(rm), rm, new PpoTrainer.Options(Profile: profile));
            return [.. result.Policy.TrainableParameters.Values, .. result.Value!.TrainableParameters.Values];
        }

        var profile = new PpoProfile();
        Assert.Equal(Run(null), Run(profile));
        var steps = profile.Steps.Phases.Select(p => p.Phase).ToList();
        foreach (string phase in new[] { "score/policy", "score/reference", "score/value", "score/reward", "train/policy_forward", "train/policy_backward", "train/value_forward", "train/value_backward" })
            Assert.Contains(phase, steps);
        Assert.Equal(2, profile.Steps.Phases.Single(p => p.Phase == "train/policy_forward").Calls);   // two minibatches, one epoch
        Assert.Contains(profile.Policy.Phases, p => p.Phase == "bwd/matmul_qkv");
        Assert.Contains(profile.Value.Phases, p => p.Phase == "fwd/matmul_fc");
    }
}
