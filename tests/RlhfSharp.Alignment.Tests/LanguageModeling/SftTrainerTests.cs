// SFT: prompt tokens carry no loss, both padding sides agree, bad JSONL names file:line and field, and fine-tuning on
// story-world demonstrations makes the model stop after one or two sentences far more often than the pre-trained one.
using RlhfSharp.Alignment.LanguageModeling;
using RlhfSharp.Models;
using RlhfSharp.Tensors;
using RlhfSharp.Text.StoryWorld;
using Xunit.Abstractions;

namespace RlhfSharp.Alignment.Tests.LanguageModeling;

public sealed class SftTrainerTests(ITestOutputHelper output)
{
    private static readonly SftExample[] Pair =
    [
        new("Tom was happy.", " He played with a red ball."),
        new("Once upon a time there was a cat.", " The cat was sad."),
    ];

    [Fact]
    public void GivenABatch_WhenAPromptPositionsTargetChanges_ThenLossAndGradientDoNotButACompletionTargetChangesBoth()
    {
        var tok = StoryLm.Tokenizer;
        var model = Gpt.Create(new GptConfig { VocabSize = tok.VocabSize, BlockSize = 32, NEmbd = 16, NLayer = 1, NHead = 2 }, new Rng(4));
        var rows = SftBatches.Encode(tok, Pair, 32, appendEos: true);
        var batch = SftBatches.Build(rows, SftPadding.Right);
        int T = batch.Input.Length;
        // Weight 1 exactly on positions whose next token is in the completion; the completion's last target is EOS.
        for (int b = 0; b < rows.Count; b++)
            for (int t = 0; t < T; t++)
                Assert.Equal(t + 1 < rows[b].Tokens.Length && t + 1 >= rows[b].PromptLength ? 1f : 0f, batch.Weights[b * T + t]);
        Assert.Equal(tok.EosId, batch.Targets[rows[0].Tokens.Length - 2]);

        var (loss, grad) = LossAndGrad(model, batch);
        var promptTargets = (int[])batch.Targets.Clone();
        promptTargets[0] = (promptTargets[0] + 7) % tok.VocabSize; // row 0, position 0 predicts a prompt token
        Assert.Equal(0f, batch.Weights[0]);
        var (loss2, grad2) = LossAndGrad(model, batch with { Targets = promptTargets });
        Assert.Equal(loss, loss2);
        Assert.True(grad.AsSpan().SequenceEqual(grad2));

        var completionTargets = (int[])batch.Targets.Clone();
        int c = rows[0].PromptLength; // predicts the completion's second token
        completionTargets[c] = (completionTargets[c] + 7) % tok.VocabSize;
        var (loss3, grad3) = LossAndGrad(model, batch with { Targets = completionTargets });
        Assert.NotEqual(loss, loss3);
        Assert.False(grad.AsSpan().SequenceEqual(grad3));
    }

    [Fact]
    public void GivenLeftAndRightPadding_WhenComputingTheLoss_ThenTheyAgree()
    {
        var tok = StoryLm.Tokenizer;
        var model = Gpt.Create(new GptConfig { VocabSize = tok.VocabSize, BlockSize = 32, NEmbd = 16, NLayer = 1, NHead = 2 }, new Rng(9));
        var rows = SftBatches.Encode(tok, Pair, 32, appendEos: true);
        Assert.NotEqual(rows[0].Tokens.Length, rows[1].Tokens.Length); // so one row really is padded
        var (right, _) = LossAndGrad(model, SftBatches.Build(rows, SftPadding.Right));
        var (left, _) = LossAndGrad(model, SftBatches.Build(rows, SftPadding.Left));
        Assert.Equal(right, left, 1e-5);
    }

    [Theory]
    [InlineData("{\"prompt\":\"a\",\"completion\":\"b\"}\n{\"prompt\":\"a\"\n", ":2", "not valid JSON")]
    [InlineData("{\"prompt\":\"a\",\"completion\":\"b\"}\n\n{\"prompt\":\"a\"}\n", ":3", "field \"completion\" is missing")]
    [InlineData("{\"prompt\":1,\"completion\":\"b\"}\n", ":1", "field \"prompt\" must be a string")]
    [InlineData("[\"a\",\"b\"]\n", ":1", "expected a JSON object")]
    [InlineData("{\"prompt\":\"a\",\"completion\":\"\"}\n", ":1", "field \"completion\" is empty")]
    public void GivenMalformedJsonl_WhenReading_ThenTheErrorNamesFileLineAndField(string text, string line, string why)
    {
        using var tmp = new TempDirectory();
        string path = tmp.File("demos.jsonl");
        File.WriteAllText(path, text);
        var ex = Assert.Throws<FormatException>(() => SftData.ReadJsonl(path));
        Assert.Contains(path + line + ":", ex.Message);
        Assert.Contains(why, ex.Message);
    }

    [Fact]
    public void GivenWrittenDemonstrations_WhenReadBack_ThenTheyRoundTrip()
    {
        using var tmp = new TempDirectory();
        var demos = SftData.StoryWorld(1, 5).Append(new SftExample("quote \" and ünïcode ✓", " ok\n")).ToList();
        SftData.WriteJsonl(tmp.File("d.jsonl"), demos);
        var back = SftData.ReadJsonl(tmp.File("d.jsonl"));
        Assert.Equal(demos.Select(d => (d.Prompt, d.Completion)), back.Select(d => (d.Prompt, d.Completion)));
        Assert.Equal(tmp.File("d.jsonl") + ":6", back[5].Source);
    }

    // SFT seeds 1, 2, 3 from the seed-1 pre-trained model: ended with EOS 19% → 69%, 71%, 77% (bar +30 points).
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void GivenAPretrainedStoryModel_WhenFineTunedOnDemonstrations_ThenCompletionsEndWithEosMoreOften(int seed)
    {
        var lm = StoryLm.Pretrained(1);
        var model = lm.Model.Clone();
        var demos = SftData.StoryWorld(2, 1200);
        var heldOutDemos = SftData.StoryWorld(99, 64);
        double lossBefore = SftTrainer.CompletionLoss(model, lm.Tokenizer, heldOutDemos);
        double endedBefore = EndedFraction(model);

        var config = new SftConfig
        {
            Training = new LmTrainingOptions { LearningRate = 1e-3f, WarmupSteps = 10, Steps = 200, BatchSize = 16, EvalInterval = 100, EvalBatches = 2, CheckpointInterval = 0, Seed = (ulong)seed, Threads = 2 },
        };
        var result = new SftTrainer(config).Train(model, lm.Tokenizer, demos);
        double lossAfter = SftTrainer.CompletionLoss(model, lm.Tokenizer, heldOutDemos);
        double endedAfter = EndedFraction(model);
        output.WriteLine($"seed {seed}: completion loss {lossBefore:F3} -> {lossAfter:F3}; ended with EOS {endedBefore:P0} -> {endedAfter:P0}; SFT {result.Elapsed.TotalSeconds:F1}s, pretrain {lm.Result.Elapsed.TotalSeconds:F1}s");
        Assert.True(lossAfter < lossBefore, $"completion loss {lossBefore:F3} -> {lossAfter:F3}");
        Assert.True(endedAfter >= endedBefore + 0.3, $"ended with EOS {endedBefore:P0} -> {endedAfter:P0} (seed {seed})");
    }

    // Fraction of sampled completions of held-out prompts that end with EOS right after sentence-ending punctuation.
    private static double EndedFraction(Gpt model)
    {
        var tok = StoryLm.Tokenizer;
        int eos = tok.EosId!.Value;
        var prompts = Stories.Prompts(21, 48).Select(p => tok.Encode(p)).ToList();
        var result = new GptGenerator(model).Generate(prompts, new GenerationOptions { MaxNewTokens = 32, EosTokenId = eos, Temperature = 0.8f }, new Rng(17));
        int ended = 0;
        for (int b = 0; b < result.Batch; b++)
        {
            var r = result.Response(b);
            if (r.Length >= 2 && r[^1] == eos && tok.Decode(r[..^1]).TrimEnd().EndsWith('.')) ended++;
        }
        return (double)ended / result.Batch;
    }

    private static (float Loss, float[] Grad) LossAndGrad(Gpt model, LmBatch batch)
    {
        model.ZeroGrad();
        var pass = model.Forward(batch.Input);
        var d = new float[batch.Input.Batch * batch.Input.Length * model.Config.VocabSize];
        float loss = Gpt.CrossEntropy(pass, batch.Targets, batch.Weights, d);
        model.Backward(pass, d);
        return (loss, (float[])model.Gradients.Clone());
    }
}
