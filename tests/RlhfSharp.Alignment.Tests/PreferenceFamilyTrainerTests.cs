// The DPO family as trainers (dpo --loss-type ipo|simpo|orpo, KTO on unpaired data, online DPO) and the LM PPO additions
// (entropy bonus through the logits, REINFORCE with a learned baseline): each step moves every trainable parameter and no
// frozen one; a few hand-checkable first-step values; resume where the trainer keeps its own RNG.
using RlhfSharp.Alignment.Dpo;
using RlhfSharp.Alignment.Ppo;
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Models;
using RlhfSharp.Runs;
using RlhfSharp.Tensors;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment.Tests;

public sealed class PreferenceFamilyTrainerTests
{
    private static readonly ITokenizer Chars = CharTokenizer.FromCorpus("abcdefghijklmnopqrstuvwxyz .,!?");
    private static readonly string[] Prompts = ["the cat", "a dog", "one day", "we saw"];
    private static readonly FunctionReward LikesA = new((_, r) => r.Count(c => c == 'a') / 4.0);

    private static Gpt TinySft() => TinyStoryModel.Random(Chars.VocabSize, 3) is var g ? Gpt.FromTensors(g.Config with { EosTokenId = Chars.EosId }, g.ToTensors()) : null!;

    private static void AssertEveryTensorMoved(Gpt model, float[] start, string what)
    {
        foreach (var p in model.ParameterList)
        {
            bool changed = false;
            for (int i = 0; i < p.Length; i++) changed |= model.Parameters[p.Offset + i] != start[p.Offset + i];
            Assert.True(changed, $"{what}: {p.Name} did not change");
        }
    }

    private static readonly PreferenceExample[] Pairs =
    [
        new("ab", ["cd", "ef"], PreferenceKind.Pair),
        new("a", ["bb", "cc", "dd"], PreferenceKind.Ranking, Ranking: [1, 2, 0]),
    ];

    [Theory]
    [InlineData(DpoLossType.Ipo)]
    [InlineData(DpoLossType.Simpo)]
    [InlineData(DpoLossType.Orpo)]
    public void DpoLossTypes_MoveEveryPolicyParameter_AndStartWhereTheirEquationsSay(DpoLossType type)
    {
        var sft = TinyStoryModel.Random(Chars.VocabSize, 8);
        var before = (float[])sft.Parameters.Clone();
        var result = new DpoTrainer(new DpoConfig { LossType = type, Beta = 0.5f, BatchSize = 8, LearningRate = 1e-3f, HeldOutFraction = 0 }).Train(sft, Chars, Pairs);
        Assert.Equal(before, sft.Parameters);
        AssertEveryTensorMoved(result.Policy, before, type.ToString());
        double first = result.History[0]["train/loss"];
        // IPO at π = π_ref: h = 0 for every pair, so the loss is (0 − 1/(2β))² = 1 with β = ½.
        if (type == DpoLossType.Ipo) Assert.Equal(1.0, first, 5);
        // SimPO and ORPO are reference-free: their first loss depends on the model, but is positive.
        else Assert.True(first > 0);
    }

    [Theory]
    [InlineData(DpoLossType.Sigmoid)]
    [InlineData(DpoLossType.Orpo)]
    public void DpoLossTypes_InThreeGradShards_FollowTheWholeBatch_WithinFloatRounding(DpoLossType type)
    {
        // Given 4 ordered pairs a batch cut into slices of 1, 1 and 2 (data parallelism's path: each slice's loss a share
        // of the whole batch's, ORPO's NLL over the whole batch's chosen tokens), two epochs so step 2 follows step 1's update,
        var sft = TinyStoryModel.Random(Chars.VocabSize, 8);
        var config = new DpoConfig { LossType = type, Beta = 0.5f, BatchSize = 8, Epochs = 2, LearningRate = 1e-3f, HeldOutFraction = 0 };
        var whole = new DpoTrainer(config).Train(sft, Chars, Pairs);
        var sharded = new DpoTrainer(config with { GradShards = 3 }).Train(sft, Chars, Pairs);
        // the loss, the implicit-reward figures and the gradient norm of every step agree to float rounding (a wrong
        // divisor would be off by a factor), and so do the trained weights.
        Assert.Equal(2, sharded.History.Count);
        for (int step = 0; step < 2; step++)
            foreach (var (key, value) in whole.History[step])
                if (key != "train/learning_rate") Assert.True(Math.Abs(sharded.History[step][key] - value) <= 1e-5 + 1e-4 * Math.Abs(value), $"step {step + 1} {key}: {sharded.History[step][key]} against {value}");
        for (int i = 0; i < whole.Policy.Parameters.Length; i++)
            Assert.True(Math.Abs(sharded.Policy.Parameters[i] - whole.Policy.Parameters[i]) <= 1e-4, $"parameter {i}");
    }

    [Fact]
    public void Kto_MovesEveryPolicyParameter_AndStartsAtTheSigmoidOfZero()
    {
        var sft = TinySft();
        var before = (float[])sft.Parameters.Clone();
        Dpo.UnpairedExample[] data = [new("ab", "cd", true), new("ab", "ef", false), new("a", "bb", true), new("a", "cc", false)];
        var result = new KtoTrainer(new KtoConfig { BatchSize = 4, LearningRate = 1e-3f, HeldOutFraction = 0 }).Train(sft, Chars, data);
        Assert.Equal(before, sft.Parameters);
        AssertEveryTensorMoved(result.Policy, before, "kto");
        // At π = π_ref every log-ratio and z are 0: each example's loss is 1 − σ(0) = ½.
        Assert.Equal(0.5, result.History[0]["train/loss"], 5);
        Assert.Equal(0, result.History[0]["train/kl"]);
    }

    [Fact]
    public void OnlineDpo_MovesEveryPolicyParameter_AndResumesBitIdentically()
    {
        var sft = TinySft();
        var before = (float[])sft.Parameters.Clone();
        var config = new OnlineDpoConfig { Steps = 4, BatchSize = 4, MaxNewTokens = 6, LearningRate = 1e-3f, CheckpointInterval = 2, Seed = 5 };
        var one = new OnlineDpoTrainer(config with { Steps = 1 }).Train(sft, Chars, Prompts, LikesA);
        Assert.Equal(before, sft.Parameters);
        AssertEveryTensorMoved(one.Policy, before, "online-dpo");
        Assert.Equal(Math.Log(2), one.History[0]["train/loss"], 5); // π = π_ref on the first step: h = 0

        using var tmp = new TempDirectory();
        PpoResult straight, resumed;
        using (var run = RunDirectory.Open(Path.Combine(tmp.Path, "a"), resume: false))
            straight = new OnlineDpoTrainer(config).Train(sft, Chars, Prompts, LikesA, new OnlineDpoTrainer.Options(Run: run));
        using (var run = RunDirectory.Open(Path.Combine(tmp.Path, "b"), resume: false))
            new OnlineDpoTrainer(config with { Steps = 2 }).Train(sft, Chars, Prompts, LikesA, new OnlineDpoTrainer.Options(Run: run));
        using (var run = RunDirectory.Open(Path.Combine(tmp.Path, "b"), resume: true))
            resumed = new OnlineDpoTrainer(config).Train(sft, Chars, Prompts, LikesA, new OnlineDpoTrainer.Options(Run: run));
        Assert.Equal(straight.Policy.Parameters, resumed.Policy.Parameters);
    }

    [Fact]
    public void Reinforce_MovesEveryPolicyAndValueParameter()
    {
        var sft = TinySft();
        var before = (float[])sft.Parameters.Clone();
        var config = new PpoConfig { Algorithm = PolicyAlgorithm.Reinforce, Steps = 1, BatchSize = 8, MiniBatchSize = 4, MaxNewTokens = 6, LearningRate = 1e-3f, Seed = 5 };
        var result = new PpoTrainer(config).Train(sft, Chars, Prompts, LikesA);
        Assert.Equal(before, sft.Parameters);
        AssertEveryTensorMoved(result.Policy, before, "reinforce policy");
        Assert.NotNull(result.Value);
        var valueStart = sft.WithHeads(GptHeads.Value, new Rng(0));
        foreach (var p in result.Value!.ParameterList.Where(p => !p.Name.StartsWith("v_head", StringComparison.Ordinal)))
        {
            var x = result.Value.Param(p.Name);
            var y = valueStart.Param(p.Name);
            bool moved = false;
            for (int i = 0; i < x.Length; i++) moved |= x[i] != y[i];
            Assert.True(moved, $"value {p.Name} did not change");
        }
    }

    [Theory]
    [InlineData(PolicyAlgorithm.Ppo)]
    [InlineData(PolicyAlgorithm.Reinforce)]
    public void InThreeGradShards_WithTheSameSamples_FollowsTheSinglePass_WithinFloatRounding(PolicyAlgorithm algorithm)
    {
        // Given near-greedy sampling (temperature 0.001), so the slices' own random streams draw the responses the single
        // pass draws; the 8 rollouts and the one minibatch of 8 cut 2 + 3 + 3 (uneven in rows and in real tokens), each
        // slice's loss weighted by its share of the minibatch's real tokens (data parallelism's path). One update: a
        // second would start from ratios exp(Δ/0.001), where float rounding flips clipping decisions.
        var sft = TinySft();
        var config = new PpoConfig
        {
            Algorithm = algorithm, Steps = 1, BatchSize = 8, MiniBatchSize = 8, Epochs = 1, MaxNewTokens = 6, Temperature = 1e-3f, LearningRate = 1e-3f, Seed = 5,
        };
        var whole = new PpoTrainer(config).Train(sft, Chars, Prompts, LikesA);
        var sharded = new PpoTrainer(config with { GradShards = 3 }).Train(sft, Chars, Prompts, LikesA);
        // the responses are the same, and every logged figure (losses, KL, entropy, value diagnostics) and every weight
        // agrees to float rounding; slices summed without their token shares would tilt the gradient toward the short ones.
        Assert.Equal(whole.History[0]["objective/scores"], sharded.History[0]["objective/scores"]);
        foreach (var (key, value) in whole.History[0])
            if (!key.StartsWith("time/", StringComparison.Ordinal) && !key.StartsWith("perf/", StringComparison.Ordinal))
                Assert.True(Math.Abs(sharded.History[0][key] - value) <= 1e-4 + 1e-3 * Math.Abs(value), $"{key}: {sharded.History[0][key]} against {value}");
        for (int i = 0; i < whole.Policy.Parameters.Length; i++)
            Assert.True(Math.Abs(sharded.Policy.Parameters[i] - whole.Policy.Parameters[i]) <= 1e-4, $"policy parameter {i}");
        for (int i = 0; i < whole.Value!.Parameters.Length; i++)
            Assert.True(Math.Abs(sharded.Value!.Parameters[i] - whole.Value.Parameters[i]) <= 1e-4, $"value parameter {i}");
    }

    [Theory]
    [InlineData(Objectives.GrpoLossType.Grpo)]
    [InlineData(Objectives.GrpoLossType.Dapo)]
    public void Grpo_InThreeGradShards_WithTheSameSamples_FollowsTheSinglePass_WithinFloatRounding(Objectives.GrpoLossType lossType)
    {
        // As PPO's test above: near-greedy sampling so the slices' streams draw the single pass's completions (2 groups
        // of 4, cut 2 + 3 + 3 for sampling and scoring), one update of all 8 rows with the loss's aggregation weights cut
        // with them (β > 0, so the reference log-probs are sliced too).
        var sft = TinySft();
        var config = new Grpo.GrpoConfig
        {
            Steps = 1, BatchSize = 8, NumGenerations = 4, MiniBatchSize = 8, NumIterations = 1, MaxNewTokens = 6, Temperature = 1e-3f, LearningRate = 1e-3f,
            Beta = 0.04, LossType = lossType, Seed = 5,
        };
        var whole = new Grpo.GrpoTrainer(config).Train(sft, Chars, Prompts, LikesA);
        var sharded = new Grpo.GrpoTrainer(config with { GradShards = 3 }).Train(sft, Chars, Prompts, LikesA);
        Assert.Equal(whole.History[0]["train/reward"], sharded.History[0]["train/reward"]);
        foreach (var (key, value) in whole.History[0])
            if (!key.StartsWith("time/", StringComparison.Ordinal) && !key.StartsWith("perf/", StringComparison.Ordinal))
                Assert.True(Math.Abs(sharded.History[0][key] - value) <= 1e-4 + 1e-3 * Math.Abs(value), $"{key}: {sharded.History[0][key]} against {value}");
        for (int i = 0; i < whole.Policy.Parameters.Length; i++)
            Assert.True(Math.Abs(sharded.Policy.Parameters[i] - whole.Policy.Parameters[i]) <= 1e-4, $"policy parameter {i}");
    }

    [Fact]
    public void EntropyBonus_ChangesTheUpdate_AndZeroKeepsTheOldBits()
    {
        var sft = TinySft();
        var config = new PpoConfig { Steps = 1, BatchSize = 8, MiniBatchSize = 8, Epochs = 1, MaxNewTokens = 6, LearningRate = 1e-3f, Seed = 5 };
        var plain = new PpoTrainer(config).Train(sft, Chars, Prompts, LikesA);
        var explicitZero = new PpoTrainer(config with { EntropyCoef = 0 }).Train(sft, Chars, Prompts, LikesA);
        var bonus = new PpoTrainer(config with { EntropyCoef = 0.5f }).Train(sft, Chars, Prompts, LikesA);
        Assert.Equal(plain.Policy.Parameters, explicitZero.Policy.Parameters);
        // The bonus goes through the logits on the tape, so it changes the policy's update (not only the log).
        Assert.NotEqual(plain.Policy.Parameters, bonus.Policy.Parameters);
        // Same rollout (the update comes after sampling), same entropy estimate of the rollout's first minibatch.
        Assert.Equal(plain.History[0]["policy/entropy_avg"], bonus.History[0]["policy/entropy_avg"], 4);
        // And with a large coefficient the policy's entropy on the next sample rises relative to plain PPO.
        var high = new PpoTrainer(config with { Steps = 6, EntropyCoef = 5f }).Train(sft, Chars, Prompts, LikesA);
        var none = new PpoTrainer(config with { Steps = 6 }).Train(sft, Chars, Prompts, LikesA);
        Assert.True(high.History[^1]["policy/entropy_avg"] > none.History[^1]["policy/entropy_avg"],
            $"entropy with the bonus {high.History[^1]["policy/entropy_avg"]:F3} vs without {none.History[^1]["policy/entropy_avg"]:F3}");
    }
}
