// Pre-training: the loss falls, a resumed run is bit-identical to a straight one, cancellation leaves a loadable checkpoint.
using RlhfSharp.Alignment.LanguageModeling;
using RlhfSharp.Models;
using RlhfSharp.Runs;
using RlhfSharp.Text;
using Xunit.Abstractions;

namespace RlhfSharp.Alignment.Tests.LanguageModeling;

public sealed class PretrainTrainerTests(ITestOutputHelper output)
{
    // Seeds 1, 2, 3: held-out loss 1.335, 1.280, 1.320 (bar: half of uniform, 3.119); about 6 CPU seconds each.
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void GivenStoryWorldText_WhenPretraining_ThenHeldOutLossFallsFarBelowUniform(int seed)
    {
        var lm = StoryLm.Pretrained(seed);
        double uniform = Math.Log(lm.Tokenizer.VocabSize);
        output.WriteLine($"seed {seed}: held-out loss {lm.InitialHeldOutLoss:F3} -> {lm.Result.HeldOutLoss:F3} (uniform {uniform:F3}), {lm.Result.TokensPerSecond:F0} tokens/s, {lm.Result.Elapsed.TotalSeconds:F1}s");
        Assert.InRange(lm.InitialHeldOutLoss, uniform - 0.5, uniform + 0.5); // a fresh GPT-2 init is close to uniform
        Assert.True(lm.Result.HeldOutLoss < 0.5 * uniform, $"held-out loss {lm.Result.HeldOutLoss:F3} is not below half of uniform {uniform:F3} (seed {seed})");
        Assert.Equal(300, lm.Result.Steps);
        Assert.False(lm.Result.Cancelled);
    }

    [Fact]
    public void GivenACheckpointAtStepN_WhenResumedForNMoreSteps_ThenParametersEqualA2NStepRunBitForBit()
    {
        const int N = 6;
        var tokens = StoryLm.StoryTokens(200);
        var config = StoryLm.Config(steps: 2 * N, dropout: 0.1f) with { };
        config = config with { Training = config.Training with { EvalInterval = 4, CheckpointInterval = 4, WarmupSteps = 3 } };
        using var tmp = new TempDirectory();

        // Straight: 2N steps in one call.
        var straightTrainer = new PretrainTrainer(config);
        var straight = straightTrainer.CreateModel(StoryLm.Tokenizer);
        using (var run = RunDirectory.Open(tmp.File("straight"), resume: false))
            straightTrainer.Train(straight, StoryLm.Tokenizer, tokens, run);

        // Interrupted: cancelled after N steps (a checkpoint is written then), then resumed into a fresh model.
        using var cts = new CancellationTokenSource();
        var first = new PretrainTrainer(config);
        LmTrainResult stopped;
        using (var run = RunDirectory.Open(tmp.File("resumed"), resume: false))
            stopped = first.Train(first.CreateModel(StoryLm.Tokenizer), StoryLm.Tokenizer, tokens, run,
                new SyncProgress(p => { if (p.Step == N) cts.Cancel(); }), cts.Token);
        Assert.True(stopped.Cancelled);
        Assert.Equal(N, stopped.Steps);

        var second = new PretrainTrainer(config);
        var fresh = second.CreateModel(StoryLm.Tokenizer);
        Assert.False(fresh.Parameters.AsSpan().SequenceEqual(straight.Parameters)); // the comparison below can fail
        LmTrainResult resumed;
        using (var run = RunDirectory.Open(tmp.File("resumed"), resume: true))
        {
            Assert.Equal(N, run.LatestCheckpoint()!.Step);
            resumed = second.Train(fresh, StoryLm.Tokenizer, tokens, run);
        }
        Assert.Equal(2 * N, resumed.Steps);
        Assert.True(fresh.Parameters.AsSpan().SequenceEqual(straight.Parameters), "resumed parameters differ from the straight run's");

        // metrics.jsonl holds each step once; the last checkpoint is a model folder every later stage can load.
        var steps = MetricsWriter.ReadAll(tmp.File("resumed/metrics.jsonl")).Select(r => r.Step).ToList();
        Assert.Equal(Enumerable.Range(1, 2 * N).Select(i => (long)i), steps);
        string last = Path.Combine(tmp.Path, "resumed", RunDirectory.CheckpointsFolderName, $"step-{2 * N:D8}");
        Assert.True(Gpt.Load(last).Parameters.AsSpan().SequenceEqual(straight.Parameters));
        Assert.Equal(StoryLm.Tokenizer.Encode(" Tom was happy."), TokenizerFiles.Load(last).Encode(" Tom was happy."));
        Assert.True(File.Exists(Path.Combine(tmp.Path, "resumed", "config.json")));
        Assert.Contains("Held-out perplexity", File.ReadAllText(Path.Combine(tmp.Path, "resumed", "report.html")));
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(tmp.Path, "resumed"), "events.out.tfevents.*"));
    }

    [Fact]
    public void GivenTooLittleText_WhenPretraining_ThenTheErrorSaysWhatIsShort()
    {
        var trainer = new PretrainTrainer(StoryLm.Config(steps: 2));
        var model = trainer.CreateModel(StoryLm.Tokenizer);
        var ex = Assert.Throws<ArgumentException>(() => trainer.Train(model, StoryLm.Tokenizer, StoryLm.Tokenizer.Encode("Tom was happy.")));
        Assert.Contains("block size 64", ex.Message);
    }
}

/// <summary>IProgress that runs its callback on the reporting thread (Progress&lt;T&gt; would post it elsewhere).</summary>
internal sealed class SyncProgress(Action<AlignmentProgress> report) : IProgress<AlignmentProgress>
{
    public void Report(AlignmentProgress value) => report(value);
}
