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

public sealed class GrpoTrainerTests(ITestOutputHelper output)
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

    [Fact]
    public void RaisesHeldOutPassAt1OnTheArithmeticTask()
    {
        var s = TinyArithmeticModel.Get();
        output.WriteLine($"SFT built in {s.BuildTime.TotalSeconds:F1}s, final loss {s.FinalLoss:F3}");
        var train = ArithmeticProblems.Train(2, 500, TinyArithmeticModel.MaxNumber);
        var answers = train.ToDictionary(p => p.Prompt, p => p.Answer);
        var held = ArithmeticProblems.HeldOut(3, 64, TinyArithmeticModel.MaxNumber);
        var verifier = new FunctionReward((prompt, completion) => ArithmeticProblems.Verify(completion, answers[prompt]));
        float temp = float.Parse(Environment.GetEnvironmentVariable("GRPO_T") ?? "1", System.Globalization.CultureInfo.InvariantCulture);
        PassAtKResult Eval(Gpt m) => PassAtK.Evaluate(m, s.Tokenizer, [.. held.Select(p => p.Prompt)], (i, c) => ArithmeticProblems.Verify(c, held[i].Answer),
            samples: 8, ks: [1, 4], maxNewTokens: 32, temperature: temp, seed: 77);
        var trainSome = train.Take(64).ToList();
        double EvalTrain(Gpt m) => PassAtK.Evaluate(m, s.Tokenizer, [.. trainSome.Select(p => p.Prompt)], (i, c) => ArithmeticProblems.Verify(c, trainSome[i].Answer),
            samples: 8, ks: [1], maxNewTokens: 32, temperature: temp, seed: 78).PassAt[1];
        output.WriteLine($"SFT train-prompt pass@1 {EvalTrain(s.Model):F3}");
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var sft = Eval(s.Model);
        output.WriteLine($"SFT held-out pass@1 {sft.PassAt[1]:F3} pass@4 {sft.PassAt[4]:F3} ({watch.Elapsed.TotalSeconds:F1}s)");
        var cold = PassAtK.Evaluate(s.Model, s.Tokenizer, [.. held.Select(p => p.Prompt)], (i, c) => ArithmeticProblems.Verify(c, held[i].Answer), samples: 8, ks: [1], maxNewTokens: 32, temperature: 0.3f, seed: 77);
        output.WriteLine($"SFT held-out pass@1 at T=0.3: {cold.PassAt[1]:F3}");
        var demo = PolicyRollouts.Sample(new GptGenerator(s.Model), s.Tokenizer, s.Tokenizer.EosId!.Value, [.. held.Take(6).Select(p => p.Prompt)], 32, 1f, new RlhfSharp.Tensors.Rng(1));
        for (int i = 0; i < 6; i++) output.WriteLine($"  {held[i].Prompt} => {demo.Responses[i]} [{held[i].Answer}]");
        int steps = int.Parse(Environment.GetEnvironmentVariable("GRPO_STEPS") ?? "30");
        float lr = float.Parse(Environment.GetEnvironmentVariable("GRPO_LR") ?? "1e-4", System.Globalization.CultureInfo.InvariantCulture);
        string Env(string k, string d) => Environment.GetEnvironmentVariable(k) ?? d;
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        int batch = int.Parse(Env("GRPO_BATCH", "64")), mini = int.Parse(Env("GRPO_MINI", "32"));
        double beta = double.Parse(Env("GRPO_BETA", "0.04"), inv);
        var loss = Enum.Parse<GrpoLossType>(Env("GRPO_LOSS", "Grpo"));
        foreach (int seed in Env("GRPO_SEEDS", "1,2,3").Split(',').Select(int.Parse))
        {
            watch.Restart();
            var config = new GrpoConfig { Steps = steps, BatchSize = batch, NumGenerations = 8, MiniBatchSize = mini, MaxNewTokens = 32, LearningRate = lr, Seed = (ulong)seed, Beta = beta, LossType = loss, NumIterations = int.Parse(Env("GRPO_MU", "1")), Temperature = temp };
            var result = new GrpoTrainer(config).Train(s.Model, s.Tokenizer, [.. train.Select(p => p.Prompt)], verifier);
            foreach (var m in result.History.Where((_, i) => i % 10 == 0 || i == result.History.Count - 1))
                output.WriteLine($"  reward {m[MetricKeys.GrpoReward]:F3} zero-std {m[MetricKeys.GrpoZeroStdFraction]:F2} kl {m.GetValueOrDefault(MetricKeys.GrpoKl):F3} len {m[MetricKeys.MeanLength]:F1} step {m["time/step_s"]:F2}s");
            var after = Eval(result.Policy);
            var demo2 = PolicyRollouts.Sample(new GptGenerator(result.Policy), s.Tokenizer, s.Tokenizer.EosId!.Value, [.. held.Take(10).Select(p => p.Prompt)], 32, temp, new RlhfSharp.Tensors.Rng(1));
            for (int i = 0; i < 10; i++) output.WriteLine($"  after: {held[i].Prompt} => {demo2.Responses[i]} [{held[i].Answer}]");
            output.WriteLine($"seed {seed}: GRPO held-out pass@1 {after.PassAt[1]:F3} pass@4 {after.PassAt[4]:F3}, train-prompt pass@1 {EvalTrain(result.Policy):F3} ({watch.Elapsed.TotalSeconds:F1}s)");
        }
    }
}
