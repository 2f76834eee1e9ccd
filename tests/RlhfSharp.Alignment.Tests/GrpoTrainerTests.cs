// GRPO for language models: a step moves every trainable parameter and leaves the reference frozen (GRPO, Dr. GRPO and
// DAPO settings), resume continues bit-identically, and on the story world's arithmetic task GRPO with the verifier's
// reward raises held-out pass@1 over the SFT model.
using RlhfSharp.Alignment.Evaluation;
using RlhfSharp.Alignment.Grpo;
using RlhfSharp.Alignment.Ppo;
using RlhfSharp.Models;
using RlhfSharp.Objectives;
using RlhfSharp.Runs;
using RlhfSharp.Text;
using RlhfSharp.Text.StoryWorld;
using Xunit.Abstractions;

namespace RlhfSharp.Alignment.Tests;

public sealed class GrpoTrainerTests
{
    private static readonly ITokenizer Chars = CharTokenizer.FromCorpus("abcdefghijklmnopqrstuvwxyz .,!?");
    private static readonly string[] Prompts = ["the cat", "a dog", "one day", "we saw"];
    private static readonly FunctionReward LikesA = new((_, r) => r.Count(c => c == 'a') / 4.0);

    private static Gpt TinySft() => TinyStoryModel.Random(Chars.VocabSize, 3) is var g ? Gpt.FromTensors(g.Config with { EosTokenId = Chars.EosId }, g.ToTensors()) : null!;

    private static GrpoConfig Small(int steps = 1) => new()
    {
        Steps = steps, BatchSize = 8, NumGenerations = 4, MiniBatchSize = 4, MaxNewTokens = 6, LearningRate = 1e-3f, Seed = 5,
    };

    public static TheoryData<string> Variants => ["grpo", "dr_grpo", "dapo"];

    private static GrpoConfig Variant(GrpoConfig c, string variant) => variant switch
    {
        "dr_grpo" => c with { LossType = GrpoLossType.DrGrpo, ScaleRewards = false },
        "dapo" => c with { LossType = GrpoLossType.Dapo, EpsilonHigh = GrpoLoss.DapoEpsilonHigh, DynamicSampling = true, OverlongBuffer = 2, MaskTruncatedCompletions = false, Beta = 0 },
        _ => c,
    };

    [Theory]
    [MemberData(nameof(Variants))]
    public void OneStepChangesEveryTrainableParameterAndNoFrozenOne(string variant)
    {
        var sft = TinySft();
        var before = (float[])sft.Parameters.Clone();
        var result = new GrpoTrainer(Variant(Small(), variant)).Train(sft, Chars, Prompts, LikesA);
        Assert.Equal(before, sft.Parameters); // the reference (the SFT model) is frozen
        foreach (var p in result.Policy.ParameterList)
        {
            bool changed = false;
            for (int i = 0; i < p.Length; i++) changed |= result.Policy.Parameters[p.Offset + i] != before[p.Offset + i];
            Assert.True(changed, $"{variant}: {p.Name} did not change");
        }
        var m = result.History[0];
        Assert.InRange(m[MetricKeys.GrpoZeroStdFraction], 0, 1);
        Assert.Equal(variant != "dapo", m.ContainsKey(MetricKeys.GrpoKl));
    }

    [Fact]
    public void ResumeContinuesBitIdentically()
    {
        var sft = TinySft();
        // DAPO's dynamic sampling included, so the re-laid-out batches and extra rounds are covered too.
        var config = Variant(Small(steps: 4), "dapo") with { CheckpointInterval = 2, Beta = 0.04 };
        using var tmp = new TempDirectory();
        GrpoResult straight, resumed;
        using (var run = RunDirectory.Open(Path.Combine(tmp.Path, "a"), resume: false))
            straight = new GrpoTrainer(config).Train(sft, Chars, Prompts, LikesA, new GrpoTrainer.Options(Run: run));
        using (var run = RunDirectory.Open(Path.Combine(tmp.Path, "b"), resume: false))
            new GrpoTrainer(config with { Steps = 2 }).Train(sft, Chars, Prompts, LikesA, new GrpoTrainer.Options(Run: run));
        using (var run = RunDirectory.Open(Path.Combine(tmp.Path, "b"), resume: true))
            resumed = new GrpoTrainer(config).Train(sft, Chars, Prompts, LikesA, new GrpoTrainer.Options(Run: run));
        Assert.Equal(straight.Policy.Parameters, resumed.Policy.Parameters);
        Assert.Equal(straight.History[^1][MetricKeys.TrainLoss], resumed.History[^1][MetricKeys.TrainLoss]);
        Assert.Equal([1L, 2L, 3L, 4L], MetricsWriter.ReadAll(Path.Combine(tmp.Path, "b", RunDirectory.MetricsFileName)).Select(m => m.Step));
    }
}

/// <summary>
/// GRPO with the verifier's reward on the arithmetic task raises held-out pass@1 over the SFT model, by more than the spread
/// of three seeds. A learning test (Category=Learning): about 25 s for the SFT model and 60–85 s per seed on 2 cores.
/// </summary>
[Trait("Category", "Learning")]
public sealed class GrpoLearningTests(ITestOutputHelper output)
{
    // Measured (256 held-out problems × 8 samples at T = 1; the run is bit-reproducible): SFT 0.383; GRPO 0.407, 0.405,
    // 0.403 on seeds 1–3 (+0.024, +0.022, +0.021; seed spread 0.004). On 128 problems: 0.387 → 0.420, 0.427, 0.438.
    // Settings that did not transfer: lr ≥ 5e-4 (held-out fell to 0.22–0.30 on 64 problems as the policy learned
    // per-problem guesses), lr 2e-4 for 40 steps (flat), and lr 2e-4 for 400 steps over 2,000 prompts (0.371, 0.388, 0.401).
    // Cheaper candidates tried 2026-12-03 (256 × 8 at T = 1, seeds 1–3, SFT 0.383; none keeps the claim): this config
    // stopped early, 0.354/0.389/0.362 at step 100, 0.387/0.356/0.380 at 150, 0.388/0.385/0.371 at 200 (the gain comes
    // between 200 and 300); lr 3e-4 0.369/0.348/0.344 at 150 (below SFT); lr 2e-4 0.380/0.381/0.372 at 200; β = 0
    // 0.389/0.367/0.366 at 200; 4 prompts × 8 (batch 32) 0.374/0.385/0.369 at 300; MaxNewTokens 24 (the longest worked
    // answer is 22 tokens + EOS) SFT 0.382 → 0.405/0.400/0.416, smallest gain 0.018 < twice the spread 0.032. Both
    // evaluations together take ~3 s, so a smaller held-out set saves nothing (and 128 × 4 is noisy: SFT 0.355 or 0.406
    // by sampling stream alone); the 900 training steps (~0.2 s each) are the cost.
    private static GrpoConfig Config(int seed) => new()
    {
        Steps = 300, BatchSize = 64, NumGenerations = 8, MiniBatchSize = 64, MaxNewTokens = 32, LearningRate = 1.5e-4f, Beta = GrpoLoss.DeepSeekMathBeta,
        Seed = (ulong)seed,
    };

    [Fact]
    public void Grpo_RaisesHeldOutPassAt1OverSft_BeyondTheSeedSpread()
    {
        var s = TinyArithmeticModel.Get();
        var train = ArithmeticProblems.Train(2, 500);
        var answers = train.ToDictionary(p => p.Prompt, p => p.Answer);
        var held = ArithmeticProblems.HeldOut(3, 256);
        var verifier = new FunctionReward((prompt, completion) => ArithmeticProblems.Verify(completion, answers[prompt]));
        double PassAt1(Gpt m) => PassAtK.Evaluate(m, s.Tokenizer, [.. held.Select(p => p.Prompt)], (i, c) => ArithmeticProblems.Verify(c, held[i].Answer),
            samples: 8, ks: [1], maxNewTokens: 32, temperature: 1f, seed: 77).PassAt[1];
        double sft = PassAt1(s.Model);
        output.WriteLine($"SFT ({TinyArithmeticModel.SharedSteps} steps, {s.BuildTime.TotalSeconds:F0}s): held-out pass@1 {sft:F3}");
        var grpo = new List<double>();
        foreach (int seed in new[] { 1, 2, 3 })
        {
            var watch = System.Diagnostics.Stopwatch.StartNew();
            var result = new GrpoTrainer(Config(seed)).Train(s.Model, s.Tokenizer, [.. train.Select(p => p.Prompt)], verifier);
            grpo.Add(PassAt1(result.Policy));
            output.WriteLine($"seed {seed}: GRPO held-out pass@1 {grpo[^1]:F3} (+{grpo[^1] - sft:F3}), last KL {result.History[^1][MetricKeys.GrpoKl]:F3}, {watch.Elapsed.TotalSeconds:F0}s");
        }
        double spread = grpo.Max() - grpo.Min();
        Assert.All(grpo, g => Assert.True(g > sft + 0.015, $"GRPO pass@1 {g:F3} vs SFT {sft:F3}"));
        Assert.True(grpo.Min() - sft > 2 * spread, $"smallest gain {grpo.Min() - sft:F3} vs twice the seed spread {2 * spread:F3}");
    }
}
