// A tiny GPT that has learned the story world's demonstrations (prompt ++ completion ++ EOS), shared by the learning
// tests: the SFT model they start from. Built once per test run (a BPE tokenizer trained on the story corpus and a
// short next-token training with the fused GPT path), in well under a minute on 2 cores.
using System.Diagnostics;
using RlhfSharp.Alignment.Sampling;
using RlhfSharp.Models;
using RlhfSharp.Tensors;
using RlhfSharp.Tensors.Optim;
using RlhfSharp.Text;
using RlhfSharp.Text.StoryWorld;

namespace RlhfSharp.Alignment.Tests;

internal sealed record TinyStory(Gpt Model, ITokenizer Tokenizer, IReadOnlyList<Demonstration> Demonstrations, TimeSpan BuildTime, float FinalLoss);

internal static class TinyStoryModel
{
    /// <summary>Seed of the shared model's initialisation and batches.</summary>
    public const int SharedSeed = 11;

    /// <summary>Training steps of the shared model.</summary>
    public const int SharedSteps = 600;

    private static readonly Lazy<TinyStory> Shared = new(() => Build(SharedSteps, SharedSeed), LazyThreadSafetyMode.ExecutionAndPublication);

    public static TinyStory Get() => Shared.Value;

    /// <summary>A fresh random GPT of the same tiny shape (unit tests that need no learning).</summary>
    public static Gpt Random(int vocab, ulong seed, GptHeads heads = GptHeads.None) =>
        Gpt.Create(new GptConfig { VocabSize = vocab, BlockSize = 32, NEmbd = 16, NLayer = 1, NHead = 2 }, new Rng(seed), heads);

    public static TinyStory Build(int steps, int seed)
    {
        var watch = Stopwatch.StartNew();
        var demos = Stories.Demonstrations(7, 2000);
        var tokenizer = BpeTrainer.Train(Stories.Corpus(3, 1500), new BpeTrainerOptions { VocabSize = 1024 });
        var config = new GptConfig { VocabSize = tokenizer.VocabSize, BlockSize = 96, NEmbd = 48, NLayer = 2, NHead = 2, EosTokenId = tokenizer.EosId };
        var rng = new Rng((ulong)seed);
        var gpt = Gpt.Create(config, rng);
        var rows = demos.Select(d => TokenRows.Encode(tokenizer, d.Prompt, d.Completion, config.BlockSize).Tokens).ToList();
        var opt = new AdamW(gpt.ParameterSet, new AdamWConfig { LearningRate = 3e-3f, WeightDecay = 0f });
        const int B = 16;
        float loss = 0;
        for (int step = 0; step < steps; step++)
        {
            var batch = Enumerable.Range(0, B).Select(_ => rows[rng.NextInt(rows.Count)]).ToList();
            var input = TokenRows.RightPadded(batch);
            int T = input.Length;
            var targets = new int[B * T];
            var weights = new float[B * T];
            for (int b = 0; b < B; b++)
                for (int t = 0; t + 1 < batch[b].Length; t++)
                {
                    targets[b * T + t] = batch[b][t + 1];
                    weights[b * T + t] = 1;
                }
            gpt.ZeroGrad();
            var pass = gpt.Forward(input);
            var dLogits = new float[B * T * config.VocabSize];
            loss = Gpt.CrossEntropy(pass, targets, weights, dLogits);
            gpt.Backward(pass, dLogits);
            gpt.ParameterSet.ClipGradNorm(1.0);
            opt.Step(3e-3f * (1f - 0.9f * step / steps));
        }
        return new TinyStory(gpt, tokenizer, demos, watch.Elapsed, loss);
    }
}
