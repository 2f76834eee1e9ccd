// PPO's options that change what is optimised: PPO-ptx pulls the policy toward the pre-training text, the missing-EOS
// penalty lowers the RLHF reward of responses that never end, a cut response can be scored with the EOS the reward model
// was trained on, and a reward-model ensemble reports a spread.
using RlhfSharp.Alignment.Ppo;
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Alignment.Sampling;
using RlhfSharp.Models;
using RlhfSharp.Tensors;
using RlhfSharp.Text;
using Xunit.Abstractions;

namespace RlhfSharp.Alignment.Tests;

public sealed class PpoOptionsTests(ITestOutputHelper output)
{
    private static readonly ITokenizer Chars = CharTokenizer.FromCorpus("abcdefghijklmnopqrstuvwxyz .,!?");
    private static readonly string[] Prompts = ["the cat", "a dog"];

    private static Gpt Sft(ulong seed)
    {
        var g = TinyStoryModel.Random(Chars.VocabSize, seed);
        return Gpt.FromTensors(g.Config with { EosTokenId = Chars.EosId }, g.ToTensors());
    }

    private static double Nll(Gpt model, int[] row)
    {
        var input = TokenRows.RightPadded([row]);
        var pass = model.Forward(input);
        var targets = new int[row.Length];
        var weights = new float[row.Length];
        for (int t = 0; t + 1 < row.Length; t++) { targets[t] = row[t + 1]; weights[t] = 1; }
        return Gpt.CrossEntropy(pass, targets, weights, new float[row.Length * model.Config.VocabSize]);
    }

    // PPO seeds 1, 2, 3: NLL of the text 3.288, 3.294, 3.288 with ptx vs 3.457, 3.445, 3.461 without (bar 0.05 lower).
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void PtxTermLowersThePretrainingLossComparedWithPlainPpo(int seed)
    {
        var sft = Sft(12);
        int[] doc = Chars.Encode("the quick brown fox jumps.");
        var config = new PpoConfig { Steps = 3, BatchSize = 4, MiniBatchSize = 4, Epochs = 1, MaxNewTokens = 4, LearningRate = 3e-3f, Seed = (ulong)seed };
        var reward = new FunctionReward((_, _) => 0);
        var plain = new PpoTrainer(config).Train(sft, Chars, Prompts, reward);
        var ptx = new PpoTrainer(config with { PtxCoef = 1f, PtxBatchSize = 2 }).Train(sft, Chars, Prompts, reward, options: new PpoTrainer.Options(PretrainRows: [doc]));
        output.WriteLine($"seed {seed}: NLL of the pre-training text, ptx {Nll(ptx.Policy, doc):F3}, plain {Nll(plain.Policy, doc):F3}");
        Assert.True(ptx.History[0].ContainsKey("loss/ptx_avg"));
        Assert.True(Nll(ptx.Policy, doc) < Nll(plain.Policy, doc) - 0.05, $"ptx {Nll(ptx.Policy, doc):F3} vs plain {Nll(plain.Policy, doc):F3} (seed {seed})");
        Assert.Throws<ArgumentException>(() => new PpoTrainer(config with { PtxCoef = 1f }).Train(sft, Chars, Prompts, reward));
    }

    [Theory]
    [InlineData(PolicyAlgorithm.Ppo)]
    [InlineData(PolicyAlgorithm.Rloo)]
    public void GivenALearningRateThatDiverges_WhenTraining_ThenTheRunStopsNamingTheStep(PolicyAlgorithm algorithm)
    {
        // Issue 17: PPO and RLOO go through NumericGuard; a rate of 1e30 breaks the first step's update.
        var config = new PpoConfig { Algorithm = algorithm, Steps = 3, BatchSize = 4, MiniBatchSize = 4, Epochs = 2, MaxNewTokens = 4, RlooSamples = 2, LearningRate = 1e30f, Seed = 1 };
        var reward = new FunctionReward((_, response) => response.Length % 3);
        var ex = Assert.Throws<NonFiniteException>(() => new PpoTrainer(config).Train(Sft(5), Chars, Prompts, reward));
        output.WriteLine(ex.Message);
        Assert.Matches(@"^step \d+: .+ is (NaN|Infinity|-Infinity) \(learning_rate 1E\+30 too high\?\)", ex.Message);
    }

    [Fact]
    public void MissingEosPenaltyIsSubtractedFromResponsesThatNeverEnd()
    {
        // Responses of 3 tokens from a random model almost never hit EOS (1 id of 32).
        var config = new PpoConfig { Steps = 1, BatchSize = 8, MiniBatchSize = 8, Epochs = 1, MaxNewTokens = 3, InitialKlCoef = 0, TargetKl = null, Seed = 3 };
        var reward = new FunctionReward((_, _) => 1);
        var withPenalty = new PpoTrainer(config with { MissingEosPenalty = 2 }).Train(Sft(4), Chars, Prompts, reward).History[0];
        var without = new PpoTrainer(config).Train(Sft(4), Chars, Prompts, reward).History[0];
        double unfinished = without["completions/clipped_ratio"];
        Assert.Equal(1.0, without["objective/rlhf_reward"], 6);
        Assert.Equal(1.0 - 2 * unfinished, withPenalty["objective/rlhf_reward"], 6);
        Assert.Equal(1.0, withPenalty["objective/scores"], 6); // the logged score is the reward's own
    }

    [Fact]
    public void ValueModelStartsAsTheNormalisedRewardModel()
    {
        // Given a reward model with a gain and a bias, the value model built from it predicts, at a row's last token,
        // exactly the normalised reward of that row (Ziegler et al.: the value function starts from the reward model).
        var rm = new RewardModel(TinyStoryModel.Random(Chars.VocabSize, 14, GptHeads.Reward), Chars, new RewardNormalization(1.7, -0.3));
        var value = PpoTrainer.ValueFromRewardModel(rm, new Rng(1));
        int[] row = Chars.Encode("the cat sat.");
        var v = value.Forward(TokenRows.RightPadded([row]), new GptForwardOptions { Logits = false }).Values!;
        Assert.Equal(rm.ScoreTokens([row])[0], v[row.Length - 1], 4);
        Assert.Equal(1.7 * rm.RawScores([row])[0] - 0.3, v[row.Length - 1], 4);
    }

    [Fact]
    public void EndingCutResponsesScoresThemAsTheRewardModelWasTrained()
    {
        // Given a reward model (trained rows always end in EOS) and rollout rows as PPO builds them: one cut at the length
        // limit (no EOS), one that ended. With endCutResponses the cut row scores exactly as RewardModel.Score's training
        // layout (prompt ++ response ++ EOS); the ended row is scored as it is; without it the cut row is read elsewhere.
        var rm = new RewardModel(TinyStoryModel.Random(Chars.VocabSize, 15, GptHeads.Reward), Chars);
        var ensemble = new RewardEnsemble([rm]);
        int eos = Chars.EosId!.Value;
        int[] cut = [.. Chars.Encode("the cat"), .. Chars.Encode(" sat on")];
        int[] ended = [.. Chars.Encode("a dog"), .. Chars.Encode(" ran."), eos];
        string[] prompts = ["the cat", "a dog"], responses = [" sat on", " ran."];

        var scored = new RewardModelReward(ensemble, endCutResponses: true).Score(prompts, responses, [cut, ended]);
        var plain = new RewardModelReward(ensemble).Score(prompts, responses, [cut, ended]);

        Assert.Equal(rm.Score("the cat", " sat on"), scored[0], 5);
        Assert.Equal(rm.Score("a dog", " ran."), scored[1], 5);
        Assert.Equal(plain[1], scored[1], 6);
        Assert.Equal(rm.ScoreTokens([cut])[0], plain[0], 6);
        Assert.NotEqual(scored[0], plain[0], 3);
    }

    [Fact]
    public void EnsembleMembersTrainOnBootstrapResamplesAndDisagree()
    {
        var sft = Sft(6);
        var data = Enumerable.Range(0, 24).Select(i => new PreferenceExample("ab", [new string('a', 1 + i % 5), new string('z', 1 + i % 3)], PreferenceKind.Pair)).ToList();
        var result = new RewardTrainer(new RewardTrainerConfig { Members = 3, BatchSize = 8, LearningRate = 3e-3f, HeldOutFraction = 0, NormalizationSamples = 8, NormalizationMaxNewTokens = 4, Seed = 2 })
            .Train(sft, Chars, data);
        Assert.Equal(3, result.Ensemble.Members.Count);
        var (mean, std) = result.Ensemble.Score("ab", "aaa");
        var each = result.Ensemble.Members.Select(m => m.Score("ab", "aaa")).ToArray();
        Assert.Equal(each.Average(), mean, 4);
        Assert.True(std > 0, "members agree exactly: they did not see different resamples");
        double sd = Math.Sqrt(each.Sum(x => (x - each.Average()) * (x - each.Average())) / 2);
        Assert.Equal(sd, std, 4);
    }
}
