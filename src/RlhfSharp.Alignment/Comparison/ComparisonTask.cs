// The three tasks `rlhf compare` measures methods on, behind one face: training prompts, fixed held-out prompts, and the
// task's own scorer, which is both every method's reward (or the judge that labels its preference pairs) and the gold the
// evaluation reports. story: the story world's gold scorer; sentiment: VADER's compound score of a continuation of an
// Austen sentence (Ziegler et al. 2019's mock-sentiment task); arithmetic: the verifier of the story world's arithmetic
// problems (1 for the exact answer, else 0), whose held-out figure is pass@1.
using RlhfSharp.Alignment.Demo;
using RlhfSharp.Text.StoryWorld;

namespace RlhfSharp.Alignment.Comparison;

public sealed class ComparisonTask
{
    /// <summary>The task names `rlhf compare --tasks` accepts.</summary>
    public static IReadOnlyList<string> Names { get; } = ["story", "sentiment", "arithmetic"];

    // The held-out prompts are one fixed draw per task, whatever the seed, so every method and seed is judged on the same ones.
    private const ulong HeldOutSeed = 0x4E1D_0C7UL;

    private readonly Func<string, string, double> _score;

    private ComparisonTask(string name, bool verifiable, IReadOnlyList<string> training, IReadOnlyList<string> heldOut, Func<string, string, double> score)
    {
        Name = name;
        Verifiable = verifiable;
        TrainingPrompts = training;
        HeldOutPrompts = heldOut;
        _score = score;
    }

    public string Name { get; }

    /// <summary>True when the scorer is a verifier (0 or 1): the gold figure is then pass@1.</summary>
    public bool Verifiable { get; }

    /// <summary>Prompts every method trains on (and offline methods sample their pairs from).</summary>
    public IReadOnlyList<string> TrainingPrompts { get; }

    /// <summary>Prompts every policy is evaluated on; none is a training prompt by the task's construction.</summary>
    public IReadOnlyList<string> HeldOutPrompts { get; }

    /// <summary>The task's score of <paramref name="response"/> to <paramref name="prompt"/>: gold reward, or 1/0 from the verifier.</summary>
    public double Score(string prompt, string response) => _score(prompt, response);

    /// <summary>What the report calls the gold figure.</summary>
    public string GoldName => Verifiable ? "pass@1" : "gold";

    public static ComparisonTask Story(int trainPrompts, int heldOutPrompts) =>
        new("story", false, Stories.Prompts(1, trainPrompts), Stories.Prompts(HeldOutSeed, heldOutPrompts), (p, r) => Stories.GoldReward(r, p));

    public static ComparisonTask Sentiment(SentimentDemoTask task, int trainPrompts, int heldOutPrompts) =>
        new("sentiment", false, task.TrainingPrompts(1, trainPrompts), task.HeldOutPrompts(HeldOutSeed, heldOutPrompts), task.Gold);

    /// <summary>Training problems from the RL stream (seed 2, as `rlhf arithmetic write --seed 1` writes train.jsonl); held-out problems by text hash.</summary>
    public static ComparisonTask Arithmetic(int trainPrompts, int heldOutPrompts)
    {
        var train = ArithmeticProblems.Train(2, trainPrompts);
        var held = ArithmeticProblems.HeldOut(HeldOutSeed, heldOutPrompts);
        var answers = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var p in train.Concat(held)) answers[p.Prompt] = p.Answer;
        return new("arithmetic", true, [.. train.Select(p => p.Prompt).Distinct()], [.. held.Select(p => p.Prompt).Distinct()],
            (prompt, response) => answers.TryGetValue(prompt, out int a) ? ArithmeticProblems.Verify(response, a)
                : throw new ArgumentException($"arithmetic task: no answer is known for the prompt \"{prompt}\"."));
    }
}
