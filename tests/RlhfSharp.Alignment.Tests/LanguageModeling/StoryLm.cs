// A tiny story-world language model pre-trained once per seed and test run with PretrainTrainer, shared by the SFT and
// pre-training tests (BPE tokenizer learned on generated stories, 2 layers, width 64).
using System.Collections.Concurrent;
using RlhfSharp.Alignment.LanguageModeling;
using RlhfSharp.Models;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment.Tests.LanguageModeling;

internal sealed record PretrainedStoryLm(Gpt Model, ITokenizer Tokenizer, double InitialHeldOutLoss, LmTrainResult Result);

internal static class StoryLm
{
    private static readonly Lazy<ITokenizer> SharedTokenizer = new(
        () => BpeTrainer.Train(PretrainTrainer.StoryWorldDocuments(3, 1000), new BpeTrainerOptions { VocabSize = 512 }), LazyThreadSafetyMode.ExecutionAndPublication);

    private static readonly ConcurrentDictionary<int, Lazy<PretrainedStoryLm>> Shared = new();

    public static ITokenizer Tokenizer => SharedTokenizer.Value;

    /// <summary>The model pre-trained for 300 steps with <paramref name="seed"/>, built by whichever test asks first.</summary>
    public static PretrainedStoryLm Pretrained(int seed) =>
        Shared.GetOrAdd(seed, s => new Lazy<PretrainedStoryLm>(() => Build(s), LazyThreadSafetyMode.ExecutionAndPublication)).Value;

    /// <summary>Tiny pre-training settings: block 64, batch 16.</summary>
    public static PretrainConfig Config(int steps, float dropout = 0f, int seed = 5) => new()
    {
        ModelSize = "tiny",
        Dropout = dropout,
        Training = new LmTrainingOptions
        {
            LearningRate = 3e-3f, WarmupSteps = Math.Min(20, steps / 2), Steps = steps, BatchSize = 16,
            EvalInterval = Math.Max(1, steps / 4), EvalBatches = 4, HeldOutFraction = 0.1, CheckpointInterval = 0, Seed = (ulong)seed, Threads = 2,
        },
    };

    public static int[] StoryTokens(int stories) => PretrainTrainer.Tokenize(Tokenizer, PretrainTrainer.StoryWorldDocuments(11, stories));

    private static PretrainedStoryLm Build(int seed)
    {
        var trainer = new PretrainTrainer(Config(steps: 300, seed: seed));
        var model = trainer.CreateModel(Tokenizer);
        var tokens = StoryTokens(1500);
        var probe = new TokenStreamSource(tokens, model.Config.BlockSize, model.Config.VocabSize, trainer.Config.Training);
        double initial = LmTrainingLoop.Evaluate(model, probe.HeldOut);
        var result = trainer.Train(model, Tokenizer, tokens);
        return new PretrainedStoryLm(model, Tokenizer, initial, result);
    }
}
