// A pairwise judge of our own (RLAIF with a trained judge; Bai et al. 2022 §4, Lee et al. 2023): a language model is
// fine-tuned to answer exactly the question our AI judge (Feedback/Labelers/AiJudge.cs) sends to any OpenAI-compatible
// endpoint, so `rlhf serve` can stand behind `rlhf label judge` and `rlhf eval --judge URL` like any other model.
// The objective is SFT's (SftTrainer.cs), on the verdict token only:
//     L(θ) = −(1/|C|) Σ_{(x,a)} Σ_{t ∈ a ∪ {EOS}} log π_θ(a_t | x, a_<t),
//     x = chat(system: instructions, user: AiJudge.UserMessage(prompt, [y_1, y_2])), a = "1" when y_1 is the preferred one, else "2".
// Implementation details, numbered as in the code:
//   1. comparisons with a preference (ties carry none) become pairs (chosen, rejected); a K-wise ranking or best-of-K gives
//      every ordered pair it implies;
//   2. the pairs are shuffled with the seed and the first HeldOutPairs are held out (never trained on) for agreement
//      and position bias;
//   3. position debiasing: every training pair appears in both orders, (chosen, rejected) → "1" and (rejected, chosen) →
//      "2", so always naming one position cannot lower the loss;
//   4. the chat template renders the question with the generation prompt and the answer as the assistant turn (TRL's
//      prompt/completion rule), the same rendering `rlhf serve` applies to /v1/chat/completions;
//   5. the context must hold the longest question plus AiJudge.MaxAnswerTokens: a model with a shorter one gets its
//      position table extended (Models/ContextExtension.cs) before training;
//   6. after training, the held-out pairs are asked in both orders with greedy decoding (JudgeEvaluator.cs).
using RlhfSharp.Alignment.LanguageModeling;
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Feedback.Labelers;
using RlhfSharp.Models;
using RlhfSharp.Runs;
using RlhfSharp.Tensors;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment.Judging;

/// <summary>One labelled comparison for a judge: <paramref name="Chosen"/> is better than <paramref name="Rejected"/>.</summary>
public sealed record JudgePair(string Prompt, string Chosen, string Rejected);

/// <summary>How a judge is trained.</summary>
public sealed record JudgeConfig
{
    [ConfigOption("Comparisons held out (not trained on) to measure agreement and position bias after training.", Min = 0)]
    public int HeldOutPairs { get; init; } = 100;

    [ConfigOption("The judge's context in tokens; 0 = the longest question plus the answer budget (the position table grows when the model's is shorter).", Min = 0)]
    public int BlockSize { get; init; }

    /// <summary>The fine-tuning itself (SFT on the verdicts; the judge's defaults: more steps at a higher rate than `rlhf sft`).</summary>
    public SftConfig Sft { get; init; } = new() { Training = new() { LearningRate = 1e-3f, WarmupSteps = 20, Steps = 300, EvalInterval = 50, CheckpointInterval = 100 } };
}

/// <summary>What <see cref="JudgeTrainer.Train"/> returns: the fine-tuning's result, the judge, and its held-out measurement.</summary>
public sealed record JudgeTrainResult(LmTrainResult Training, Gpt Judge, int TrainPairs, int BlockSize, JudgeAgreement? HeldOut);

public sealed class JudgeTrainer(JudgeConfig config)
{
    public JudgeConfig Config { get; } = config;

    /// <summary>1. Labelled comparisons as judge pairs: every (winner, loser) a label implies; ties give none.</summary>
    public static List<JudgePair> Pairs(IEnumerable<PreferenceExample> examples) =>
        [.. examples.SelectMany(e => e.OrderedPairs().Select(p => new JudgePair(e.Prompt, e.Responses[p.Winner], e.Responses[p.Loser])))];

    /// <summary>The conversation that asks for one verdict on <paramref name="first"/> then <paramref name="second"/>, as AiJudge sends it.</summary>
    public static ChatMessage[] Question(string prompt, string first, string second, string instructions = AiJudge.DefaultInstructions) =>
        [new("system", instructions), new("user", AiJudge.UserMessage(prompt, [first, second]))];

    /// <summary>3, 4. Both orders of every pair as templated SFT examples whose completion is the verdict "1" or "2".</summary>
    public static List<SftExample> Examples(IReadOnlyList<JudgePair> pairs, ChatTemplate template, string instructions = AiJudge.DefaultInstructions)
    {
        var examples = new List<SftExample>(2 * pairs.Count);
        for (int i = 0; i < pairs.Count; i++)
        {
            var p = pairs[i];
            foreach (var (first, second, answer) in new[] { (p.Chosen, p.Rejected, "1"), (p.Rejected, p.Chosen, "2") })
            {
                var (prompt, completion) = template.RenderPromptCompletion(Question(p.Prompt, first, second, instructions), [new ChatMessage("assistant", answer)]);
                examples.Add(new SftExample(prompt, completion, $"judge pair {i} ({(answer == "1" ? "chosen first" : "rejected first")})", Templated: true));
            }
        }
        return examples;
    }

    /// <summary>5. Tokens the longest question of <paramref name="pairs"/> takes, rendered with the generation prompt.</summary>
    public static int LongestQuestion(IReadOnlyList<JudgePair> pairs, ITokenizer tokenizer, ChatTemplate template, string instructions = AiJudge.DefaultInstructions) =>
        pairs.Count == 0 ? 0 : pairs.Max(p => Math.Max(
            tokenizer.Encode(template.Render(Question(p.Prompt, p.Chosen, p.Rejected, instructions), addGenerationPrompt: true), allowSpecial: true).Length,
            tokenizer.Encode(template.Render(Question(p.Prompt, p.Rejected, p.Chosen, instructions), addGenerationPrompt: true), allowSpecial: true).Length));

    /// <summary>
    /// Fine-tunes <paramref name="model"/> (an SFT or pre-trained model) into a judge of <paramref name="comparisons"/>;
    /// the returned <see cref="JudgeTrainResult.Judge"/> is the model to save and serve (a new one when its context grew).
    /// With <paramref name="gold"/> the held-out pairs are measured against gold rather than their labels (JudgeEvaluator).
    /// </summary>
    public JudgeTrainResult Train(Gpt model, ITokenizer tokenizer, IReadOnlyList<PreferenceExample> comparisons, RunDirectory? run = null,
        IProgress<AlignmentProgress>? progress = null, CancellationToken ct = default, Func<string, string, double>? gold = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        var pairs = Pairs(comparisons);
        // 2. held-out pairs first, from a seeded shuffle.
        new Rng(Config.Sft.Training.Seed).Shuffle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(pairs));
        int heldOut = Math.Min(Config.HeldOutPairs, pairs.Count);
        var held = pairs.GetRange(0, heldOut);
        var train = pairs.GetRange(heldOut, pairs.Count - heldOut);
        if (train.Count < 1)
            throw new ArgumentException($"judge: {pairs.Count} comparisons with a preference (ties carry none) leave none to train on after holding out {heldOut}; lower --held-out-pairs or give more comparisons.");
        tokenizer.ChatTemplate ??= ChatTemplate.For(tokenizer);
        var template = tokenizer.ChatTemplate;
        // 5. the context: the longest question and the answer budget AiJudge asks for.
        int needed = LongestQuestion(pairs, tokenizer, template) + AiJudge.MaxAnswerTokens;
        int block = Config.BlockSize > 0 ? Config.BlockSize : (needed + 15) / 16 * 16;
        if (block < needed)
            throw new ArgumentException($"judge: --block-size {Config.BlockSize} is too short; the longest question takes {needed - AiJudge.MaxAnswerTokens} tokens and the answer {AiJudge.MaxAnswerTokens} more ({needed} in all).");
        var judge = ContextExtension.Extend(model, Math.Max(block, model.Config.BlockSize));
        var result = new SftTrainer(Config.Sft).Train(judge, tokenizer, Examples(train, template), run, progress, ct);
        judge = result.Model ?? judge;
        // The run's "trainer" section is the judge's whole config (SftTrainer wrote its own part there), so --config accepts it back.
        if (run is not null && !run.Resumed) run.WriteConfig(Config);
        // 6. the held-out measurement.
        var agreement = heldOut > 0 && !result.Cancelled ? JudgeEvaluator.Evaluate(judge, tokenizer, held, gold) : null;
        return new JudgeTrainResult(result, judge, train.Count, judge.Config.BlockSize, agreement);
    }
}
