// `rlhf sample --best-of N --reward RM_DIR`: N samples per prompt, the reward model keeps the best (Sampling.BestOfN).
using System.Text.Json;
using RlhfSharp.Alignment.Ppo;
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Alignment.Sampling;
using RlhfSharp.Models;
using RlhfSharp.Tensors;
using RlhfSharp.Text;

namespace RlhfSharp.Cli.Commands;

internal static class BestOfNSampling
{
    /// <summary>Prints, per prompt, the best of <paramref name="n"/> continuations and its reward (JSON lines with <paramref name="json"/>).</summary>
    public static int Run(Gpt gpt, ITokenizer tokenizer, IReadOnlyList<string> prompts, int n, string rewardDir, GenerationOptions options, Rng rng, int batch, bool json)
    {
        var ensemble = RewardEnsemble.Load(rewardDir);
        if (ensemble.First.Tokenizer.VocabSize != tokenizer.VocabSize)
            throw new ArgumentException($"--reward: its tokenizer has {ensemble.First.Tokenizer.VocabSize} ids, the model's {tokenizer.VocabSize}.");
        var samples = BestOfN.Sample(gpt, tokenizer, prompts, n, new RewardModelReward(ensemble), options, rng, Math.Max(batch, n));
        foreach (var s in samples)
        {
            if (json) Console.Out.WriteLine(JsonSerializer.Serialize(new { prompt = s.Prompt, completion = s.Best, reward = s.BestScore, candidates = s.Candidates, rewards = s.Scores }));
            else
            {
                Console.Out.WriteLine($"{s.Prompt}{s.Best}");
                Console.Out.WriteLine($"--- reward {AlignCommandSupport.Format(s.BestScore)} (best of {n})");
            }
        }
        return 0;
    }
}
