// `rlhf score`'s computation: tokens exactly as the folder's tokenizer makes them, log-probs equal to the reference's.
using RlhfSharp.Text;

namespace RlhfSharp.Models.Tests;

public sealed class ScoringTests
{
    [Fact]
    public void Score_UsesTheTokenizerAsIs_AndMatchesTheReferenceLogSoftmax()
    {
        using var dir = new TempDirectory();
        var config = new GptConfig { VocabSize = 50257, BlockSize = 16, NEmbd = 16, NLayer = 1, NHead = 2, EosTokenId = 50256 };
        var gpt = Gpt.FromTensors(config, RandomWeights.For(config, 51));
        gpt.Save(dir.Path, Repository.Data("gpt2"));
        var loaded = Gpt.Load(dir.Path);
        var tokenizer = TokenizerFiles.Load(dir.Path);

        var scores = GptScoring.Score(loaded, tokenizer, "Hello world");

        Assert.Equal([15496, 995], scores.Tokens);
        var logits = new ReferenceGpt(config, gpt.ToTensors()).Logits(scores.Tokens);
        Assert.Single(scores.LogProbs);
        Assert.Equal(ReferenceGpt.LogSoftmax(logits[0])[995], scores.LogProbs[0], 1e-4);
    }

    [Fact]
    public void TooLongText_IsRefusedWithBothLengths()
    {
        var config = RandomWeights.TinyConfig();
        var gpt = Gpt.FromTensors(config, RandomWeights.For(config, 1));
        var ex = Assert.Throws<ArgumentException>(() => GptScoring.Score(gpt, new int[9]));
        Assert.Contains("9 tokens", ex.Message);
        Assert.Contains("block size 8", ex.Message);
    }
}

public sealed class BatchedScoringTests
{
    [Fact]
    public void TokenLogProbs_OfALeftPaddedBatch_EqualEachRowScoredAlone()
    {
        var config = RandomWeights.TinyConfig();
        var gpt = Gpt.FromTensors(config, RandomWeights.For(config, 61));
        int[][] rows = [[1, 2, 3], [4, 5, 6, 7, 8, 9]];
        var input = GptInput.LeftPadded(rows, padToken: 0);
        int T = input.Length;

        var batched = GptScoring.TokenLogProbs(gpt, input);

        for (int b = 0; b < rows.Length; b++)
        {
            var alone = GptScoring.Score(gpt, rows[b]).LogProbs;
            int pad = T - rows[b].Length;
            for (int t = 0; t < T - 1; t++)
            {
                double expected = t >= pad ? alone[t - pad] : 0;
                Assert.Equal(expected, batched[b * (T - 1) + t], 1e-4);
            }
        }
    }

    [Fact]
    public void HeadLogits_OnOneRowAtATime_HaveTheBitsOfTheWholeBatchsLogits()
    {
        // The chunked head (issue 21): per-row GEMMs give the bits of the (B·T, V) product, so scoring need not hold it.
        var config = RandomWeights.TinyConfig(vocab: 37, block: 9, embd: 16, layers: 1, heads: 2);
        var gpt = Gpt.FromTensors(config, RandomWeights.For(config, 71));
        var rng = new RlhfSharp.Tensors.Rng(3);
        var tokens = Enumerable.Range(0, 3 * 9).Select(_ => rng.NextInt(37)).ToArray();
        var pass = gpt.Forward(new GptInput(3, 9, tokens));
        var chunk = new float[9 * 37];
        for (int b = 0; b < 3; b++)
        {
            GptScoring.HeadLogits(gpt, pass.LnF.AsSpan(b * 9 * 16, 9 * 16), 9, chunk);
            Assert.Equal(pass.Logits!.AsSpan(b * 9 * 37, 9 * 37).ToArray(), chunk);
        }
    }
}
