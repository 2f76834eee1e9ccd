// The reward-model trainer: data forms, a step's effect on parameters, normalisation, and learning the story world's
// gold preferences from the oracle labeller as well as the oracle agrees with itself.
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Feedback;
using RlhfSharp.Feedback.Labelers;
using RlhfSharp.Feedback.Stores;
using RlhfSharp.Models;
using RlhfSharp.Runs;
using RlhfSharp.Tensors;
using RlhfSharp.Text;
using RlhfSharp.Text.StoryWorld;
using Xunit.Abstractions;

namespace RlhfSharp.Alignment.Tests;

public sealed class RewardTrainerTests(ITestOutputHelper output)
{
    private static readonly ITokenizer Chars = CharTokenizer.FromCorpus("abcdefghijklmnopqrstuvwxyz .,!?");

    [Fact]
    public void JsonlFormsParseAndBadLinesNameFileLineAndField()
    {
        using var tmp = new TempDirectory();
        string dir = tmp.Path;
        string path = Path.Combine(dir, "prefs.jsonl");
        File.WriteAllLines(path,
        [
            """{"prompt":"a","chosen":"b","rejected":"c","margin":0.5}""",
            """{"prompt":"a","chosen":"b","rejected":"c","tie":true}""",
            "",
            """{"prompt":"a","responses":["x","y","z"],"ranking":[2,0,1]}""",
            """{"prompt":"a","responses":["x","y","z","w"],"best":3}""",
        ]);
        var ex = PreferenceData.ReadJsonl(path);
        Assert.Equal([PreferenceKind.Pair, PreferenceKind.Pair, PreferenceKind.Ranking, PreferenceKind.Best], ex.Select(e => e.Kind));
        Assert.Equal(0.5f, ex[0].Margin);
        Assert.True(ex[1].Tie);
        Assert.Empty(ex[1].OrderedPairs());
        Assert.Equal([(2, 0), (2, 1), (0, 1)], ex[2].OrderedPairs());
        Assert.Equal(3, ex[3].OrderedPairs().Count());

        File.WriteAllLines(path, ["""{"prompt":"a","chosen":"b","rejected":"c"}""", """{"prompt":"a","responses":["x","y"],"ranking":[0,0]}"""]);
        var err = Assert.Throws<FormatException>(() => PreferenceData.ReadJsonl(path));
        Assert.Contains("prefs.jsonl:2", err.Message);
        Assert.Contains("ranking", err.Message);
        File.WriteAllLines(path, ["""{"prompt":"a","chosen":3,"rejected":"c"}"""]);
        err = Assert.Throws<FormatException>(() => PreferenceData.ReadJsonl(path));
        Assert.Contains(":1", err.Message);
        Assert.Contains("\"chosen\"", err.Message);
    }

    [Fact]
    public async Task StoreJudgmentsBecomePairsRankingsBestAndTies()
    {
        using var tmp = new TempDirectory();
        string path = Path.Combine(tmp.Path, "prefs.db");
        await using (var store = await SqlitePreferenceStore.OpenAsync(path))
        {
            var ids = await store.AddQueriesAsync(
            [
                new NewQuery(QueryKind.Text, "p", [new Candidate("a"), new Candidate("b")]),
                new NewQuery(QueryKind.Text, "p", [new Candidate("a"), new Candidate("b"), new Candidate("c")]),
                new NewQuery(QueryKind.Text, "p", [new Candidate("a"), new Candidate("b"), new Candidate("c")]),
                new NewQuery(QueryKind.Text, "p", [new Candidate("a"), new Candidate("b")]),
            ]);
            var (labeler, _) = await store.AddLabelerAsync("l", LabelerRole.Labeler);
            Answer[] answers = [Answer.Prefer(1), Answer.Rank(2, 1, 0), Answer.Prefer(2), Answer.Tie()];
            for (int i = 0; i < 4; i++)
            {
                var a = await store.NextAssignmentAsync(labeler.Id);
                await store.SubmitAsync(a!.Id, labeler.Id, answers[ids.ToList().IndexOf(a.Query.Id)], TimeSpan.FromSeconds(1));
            }
        }
        var ex = await PreferenceData.LoadAsync(path);
        Assert.Equal(4, ex.Count);
        var pair = ex.Single(e => e.Kind == PreferenceKind.Pair && !e.Tie);
        Assert.Equal(["b", "a"], pair.Responses);
        Assert.Single(ex, e => e.Tie);
        Assert.Equal([2, 1, 0], ex.Single(e => e.Kind == PreferenceKind.Ranking).Ranking!);
        Assert.Equal(2, ex.Single(e => e.Kind == PreferenceKind.Best).Best);
    }

    [Fact]
    public void OneStepChangesEveryTrainableParameterAndLeavesTheSftModelAlone()
    {
        // Given a tiny random SFT model and a batch with every form (pair, tie, ranking, best-of-3),
        var sft = TinyStoryModel.Random(Chars.VocabSize, 5);
        var before = (float[])sft.Parameters.Clone();
        PreferenceExample[] data =
        [
            new("ab", ["cd", "ef"], PreferenceKind.Pair, Margin: 0.1f),
            new("ab", ["gh", "ij"], PreferenceKind.Pair, Tie: true),
            new("a", ["b", "cc", "ddd"], PreferenceKind.Ranking, Ranking: [1, 2, 0]),
            new("a", ["e", "ff", "ggg"], PreferenceKind.Best, Best: 2),
        ];
        var rm = new RewardModel(sft.WithHeads(GptHeads.Reward, new Rng(1)), Chars);
        var start = (float[])rm.Model.Parameters.Clone();
        var opt = new Tensors.Optim.AdamW(rm.Model.ParameterSet, new Tensors.Optim.AdamWConfig { LearningRate = 1e-3f, WeightDecay = 0 });
        rm.Model.ZeroGrad();
        var stats = RewardTrainer.LossAndGradient(rm, data, backward: true);
        opt.Step();
        // when one optimiser step runs, every parameter tensor of the reward model moves,
        foreach (var p in rm.Model.ParameterList)
        {
            bool changed = false;
            for (int i = 0; i < p.Length; i++) changed |= rm.Model.Parameters[p.Offset + i] != start[p.Offset + i];
            Assert.True(changed, $"{p.Name} did not change");
        }
        // and the SFT model it came from (the frozen reference) does not.
        Assert.Equal(before, sft.Parameters);
        Assert.True(stats.Loss > 0);
    }

    [Fact]
    public void SlicesDividedByTheWholeBatch_AddUpToTheWholeBatchsLossGradientAndPairCounts()
    {
        // Given a batch with every form cut into slices of 1 and 3 examples (data parallelism's slices),
        var rm = new RewardModel(TinyStoryModel.Random(Chars.VocabSize, 6, GptHeads.Reward), Chars);
        PreferenceExample[] data =
        [
            new("ab", ["cd", "ef"], PreferenceKind.Pair, Margin: 0.1f),
            new("ab", ["gh", "ij"], PreferenceKind.Pair, Tie: true),
            new("a", ["b", "cc", "ddd"], PreferenceKind.Ranking, Ranking: [1, 2, 0]),
            new("a", ["e", "ff", "ggg"], PreferenceKind.Best, Best: 2),
        ];
        rm.Model.ZeroGrad();
        var whole = RewardTrainer.LossAndGradient(rm, data, backward: true);
        var g = (float[])rm.Model.Gradients.Clone();
        rm.Model.ZeroGrad();
        var first = RewardTrainer.LossAndGradient(rm, data[..1], backward: true, batchSize: 4);
        var g0 = (float[])rm.Model.Gradients.Clone();
        rm.Model.ZeroGrad();
        var rest = RewardTrainer.LossAndGradient(rm, data[1..], backward: true, batchSize: 4);
        // the slices' losses and gradients add up to the whole batch's (to float rounding: one pass against two),
        Assert.Equal(whole.Loss, first.Loss + rest.Loss, 5);
        for (int i = 0; i < g.Length; i++) Assert.True(Math.Abs(g0[i] + rm.Model.Gradients[i] - g[i]) <= 1e-5 + 1e-4 * Math.Abs(g[i]), $"gradient {i}");
        // and their ordered-pair counts exactly (the tie has none).
        Assert.Equal(whole.Pairs, first.Pairs + rest.Pairs);
        Assert.Equal(whole.Correct, first.Correct + rest.Correct);
        Assert.Equal(1 + 3 + 2, whole.Pairs);
    }

    [Fact]
    public void BatchLossEqualsTheObjectivesLossesOnTheHeadsRewards()
    {
        var rm = new RewardModel(TinyStoryModel.Random(Chars.VocabSize, 6, GptHeads.Reward), Chars);
        PreferenceExample[] data =
        [
            new("ab", ["cd", "ef"], PreferenceKind.Pair),
            new("a", ["b", "cc", "ddd"], PreferenceKind.Ranking, Ranking: [1, 2, 0]),
        ];
        var loss = RewardTrainer.LossAndGradient(rm, data, backward: false).Loss;
        double Raw(string p, string r) => rm.RawScores([TokenRows.Encode(Chars, p, r, 32).Tokens])[0];
        double LogSig(double x) => -Math.Log(1 + Math.Exp(-x));
        double pair = -LogSig(Raw("ab", "cd") - Raw("ab", "ef"));
        double b = Raw("a", "b"), c = Raw("a", "cc"), d = Raw("a", "ddd");
        double rank = -(LogSig(c - d) + LogSig(c - b) + LogSig(d - b)) / 3;
        Assert.Equal((pair + rank) / 2, loss, 4);
    }

    [Fact]
    public void NormalisationMapsReferenceScoresToMeanZeroStdOne()
    {
        float[] raw = [1f, 2f, 3f, 6f];
        var n = RewardTrainer.FitNormalization(raw, normalizeStd: true);
        var mapped = raw.Select(x => n.Apply(x)).ToArray();
        Assert.Equal(0, mapped.Average(), 9);
        Assert.Equal(1, Math.Sqrt(mapped.Sum(x => x * x) / 3), 9);
        Assert.Equal(-3, RewardTrainer.FitNormalization(raw, normalizeStd: false).Bias, 9);
    }

    // Seeds 1, 2, 3: held-out accuracy 0.685, 0.710, 0.755 (bar 0.615: self-agreement 0.665 − 0.05; Bayes ceiling 0.751),
    // reference mean −0.015, 0.021, −0.203; about 6 CPU seconds each. With 3 epochs seeds 1-5 gave 0.690, 0.660, 0.695, 0.640
    // and 0.650; with 64 normalisation samples and 32 fresh ones, seed 1's reference mean was 0.709 (score sd 1.6).
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void LearnsTheOraclesPreferencesAsWellAsTheOracleAgreesWithItself(int seed)
    {
        var s = TinyStoryModel.Get();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        // Given 800 story openings, each with two continuations from the story world (its own and another story's, so
        // moods differ), labelled by the oracle over the gold reward at temperature 0.1,
        var demos = Stories.Demonstrations(21, 1600);
        var prompts = demos.Take(800).Select(d => d.Prompt).ToList();
        var rng = new Rng(4);
        var gen = new GptGenerator(s.Model);
        var oracle = new OracleLabeler((p, c) => Stories.GoldReward(c.Content, p), new OracleOptions(Temperature: 0.1, Seed: 9));
        var examples = new List<PreferenceExample>();
        double selfAgreement = 0, ceiling = 0;
        for (int i = 0; i < prompts.Count; i++)
        {
            string a = demos[i].Completion, b = demos[800 + i].Completion;
            double ga = Stories.GoldReward(a, prompts[i]), gb = Stories.GoldReward(b, prompts[i]);
            // The oracle's chance of preferring a, and of agreeing with itself on a second look: p² + (1 − p)².
            double p = 1 / (1 + Math.Exp(-(ga - gb) / 0.1));
            selfAgreement += p * p + (1 - p) * (1 - p);
            ceiling += Math.Max(p, 1 - p);
            int pick = oracle.Choose([ga, gb]).Preferred!.Value;
            examples.Add(new PreferenceExample(prompts[i], pick == 0 ? [a, b] : [b, a], PreferenceKind.Pair));
        }
        selfAgreement /= prompts.Count;
        using var tmp = new TempDirectory();
        string runDir = Path.Combine(tmp.Path, "rm");
        using var run = RunDirectory.Open(runDir, resume: false);
        // when a reward model is trained from the SFT model on 75% of them,
        var trainer = new RewardTrainer(new RewardTrainerConfig { Epochs = 5, BatchSize = 16, LearningRate = 1e-3f, HeldOutFraction = 0.25, NormalizationSamples = 256, Seed = (ulong)seed });
        var result2 = trainer.Train(s.Model, s.Tokenizer, examples, run: run);
        var eval = result2.HeldOut!;
        output.WriteLine($"seed {seed}: oracle self-agreement {selfAgreement:F3}, Bayes ceiling {ceiling / prompts.Count:F3}, held-out accuracy {eval.Accuracy:F3} on {eval.Pairs} pairs, loss {eval.Loss:F3}, ECE {eval.ExpectedCalibrationError:F3}, {watch.Elapsed.TotalSeconds:F0}s");
        // then its held-out accuracy against the oracle's labels is within 5 points of the oracle's self-agreement,
        Assert.True(eval.Accuracy >= selfAgreement - 0.05, $"held-out accuracy {eval.Accuracy:F3} vs oracle self-agreement {selfAgreement:F3} (seed {seed})");
        // the reference model's samples score mean ≈ 0 after normalisation, and metrics and the saved model are there.
        var refRows = prompts.Take(128).Select(p => s.Tokenizer.Encode(p)).ToList();
        var samples = gen.Generate(refRows, new GenerationOptions { MaxNewTokens = 32, EosTokenId = s.Tokenizer.EosId }, new Rng(77));
        var scores = result2.Ensemble.First.ScoreTokens(Enumerable.Range(0, samples.Batch).Select(b => (int[])[.. samples.Prompt(b), .. samples.Response(b)]).ToList());
        double sd = Math.Sqrt(scores.Sum(x => (x - scores.Average()) * (x - scores.Average())) / (scores.Length - 1));
        output.WriteLine($"reference mean after normalisation {scores.Average():F3}, sd {sd:F3}, bias {result2.Ensemble.First.Normalization.Bias:F3}");
        Assert.InRange(scores.Average(), -0.5, 0.5);
        Assert.Contains(MetricsWriter.ReadAll(Path.Combine(runDir, RunDirectory.MetricsFileName)), r => r.Values.ContainsKey("eval/accuracy"));
        string saved = Path.Combine(runDir, "model");
        result2.Ensemble.Save(saved);
        var loaded = RewardEnsemble.Load(saved);
        Assert.Equal(result2.Ensemble.Score(prompts[0], " The dog smiled.").Mean, loaded.Score(prompts[0], " The dog smiled.").Mean, 5);

    }
}
