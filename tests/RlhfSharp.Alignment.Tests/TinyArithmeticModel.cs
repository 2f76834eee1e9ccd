// A tiny GPT supervised on the story world's arithmetic problems (prompt ++ worked answer ++ EOS): the SFT model the GRPO
// learning test starts from. Short enough training that it answers some held-out problems right and many wrong.
using System.Diagnostics;
using RlhfSharp.Models;
using RlhfSharp.Tensors;
using RlhfSharp.Tensors.Optim;
using RlhfSharp.Text;
using RlhfSharp.Text.StoryWorld;

namespace RlhfSharp.Alignment.Tests;

internal sealed record TinyArithmetic(Gpt Model, ITokenizer Tokenizer, TimeSpan BuildTime, float FinalLoss);

internal static class TinyArithmeticModel
{
    /// <summary>Training steps of the shared model: held-out pass@1 about 0.39 at T = 1 (0.62 at T = 0.3), so there is room.</summary>
    public const int SharedSteps = 1000;

    private static readonly Lazy<TinyArithmetic> Shared = new(() => Build(SharedSteps, seed: 5), LazyThreadSafetyMode.ExecutionAndPublication);

    public static TinyArithmetic Get() => Shared.Value;

    public static TinyArithmetic Build(int steps, int seed)
    {
        var watch = Stopwatch.StartNew();
        var problems = ArithmeticProblems.Train(1, 3000);
        var tokenizer = BpeTrainer.Train(string.Concat(problems.Take(1500).Select(p => p.Prompt + p.WorkedAnswer + "\n")), new BpeTrainerOptions { VocabSize = 400 });
        var config = new GptConfig { VocabSize = tokenizer.VocabSize, BlockSize = 96, NEmbd = 48, NLayer = 2, NHead = 2, EosTokenId = tokenizer.EosId };
        var rng = new Rng((ulong)seed);
        var gpt = Gpt.Create(config, rng);
        var rows = problems.Select(p => TokenRows.Encode(tokenizer, p.Prompt, p.WorkedAnswer, config.BlockSize).Tokens).ToList();
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
        return new TinyArithmetic(gpt, tokenizer, watch.Elapsed, loss);
    }
}
