// The story world's verifiable task: counting and arithmetic over story facts, with exact answers, for RL from verifiable
// rewards (GRPO on math in DeepSeekMath; TRL's accuracy_reward). Four families, in the story world's names and objects:
//   gain:   "Mia has 3 apples. Tom gives Mia 2 apples. How many apples does Mia have?"            → 3 + 2 = 5
//   loss:   "Mia has 7 coins. Mia gives Tom 4 coins. How many coins does Mia have?"                → 7 - 4 = 3
//   count:  "Mia has 2 kites and 6 hats. How many things does Mia have?"                           → 2 + 6 = 8
//   chain:  "Mia has 4 pies. Tom gives Mia 3 pies. Then Mia loses 2 pies. How many pies does Mia have?" → 4 + 3 = 7, 7 - 2 = 5
// A worked answer (the SFT target) shows the sum and ends "The answer is N."; the verifier reads the last "answer is N"
// and compares N with the truth exactly (no answer: wrong). Numbers are 1–9 by default (answers 0–18); a smaller range
// makes the task easier.
// The split is by problem text: a text is held out when its FNV-1a hash is 0 mod 4, whatever seed generated it, so no
// held-out problem can appear among the training problems (or the SFT set) of any seed.
using System.Globalization;
using System.Text.RegularExpressions;

namespace RlhfSharp.Text.StoryWorld;

/// <summary>One problem: its text (the prompt), the exact answer, and a worked answer (which starts with a space).</summary>
public sealed record ArithmeticProblem(string Prompt, int Answer, string WorkedAnswer);

public static partial class ArithmeticProblems
{
    private const ulong Stream = 0xA217_4E71_C0DE_5EEDUL;

    // Objects with a regular plural (-s); the story world's other objects ("box", "umbrella") would need their own rules.
    private static readonly string[] Objects = ["apple", "book", "cake", "kite", "ball", "flower", "coin", "shell", "pie", "hat", "toy", "drum", "letter", "boat", "key", "lamp", "map"];

    /// <summary>Whether a problem text belongs to the held-out split (a pure function of the text).</summary>
    public static bool IsHeldOut(string prompt)
    {
        ulong h = 14695981039346656037UL; // FNV-1a 64
        foreach (char c in prompt)
        {
            h ^= c;
            h *= 1099511628211UL;
        }
        return h % 4 == 0;
    }

    /// <summary>The largest number a problem states (answers are 0..2·MaxNumber).</summary>
    public const int DefaultMaxNumber = 9;

    /// <summary>n distinct training problems (never held-out texts), deterministic in the seed; numbers 1..maxNumber.</summary>
    public static IReadOnlyList<ArithmeticProblem> Train(ulong seed, int n, int maxNumber = DefaultMaxNumber) => Draw(seed, n, heldOut: false, maxNumber);

    /// <summary>n distinct held-out problems, deterministic in the seed; numbers 1..maxNumber.</summary>
    public static IReadOnlyList<ArithmeticProblem> HeldOut(ulong seed, int n, int maxNumber = DefaultMaxNumber) => Draw(seed ^ 0x5EED_0F_4E1DUL, n, heldOut: true, maxNumber);

    /// <summary>Reward of a completion: 1 when its final answer equals the truth, else 0 (TRL's accuracy_reward convention).</summary>
    public static double Verify(string completion, int answer) => ExtractAnswer(completion) == answer ? 1 : 0;

    /// <summary>The number after the last "answer is" in the text, or null when there is none.</summary>
    public static int? ExtractAnswer(string completion)
    {
        var matches = AnswerPattern().Matches(completion);
        if (matches.Count == 0) return null;
        return int.TryParse(matches[^1].Groups[1].Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int v) ? v : null;
    }

    [GeneratedRegex(@"answer is (-?\d{1,6})")]
    private static partial Regex AnswerPattern();

    private static IReadOnlyList<ArithmeticProblem> Draw(ulong seed, int n, bool heldOut, int maxNumber)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        if (maxNumber < 2 || maxNumber > 99) throw new ArgumentOutOfRangeException(nameof(maxNumber), maxNumber, "arithmetic problems: the largest number must lie in 2..99.");
        var rng = new StoryRng(seed ^ Stream);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var result = new List<ArithmeticProblem>(n);
        for (int attempt = 0; result.Count < n; attempt++)
        {
            if (attempt > 200 * (n + 10)) throw new InvalidOperationException($"arithmetic problems: could not draw {n} distinct {(heldOut ? "held-out" : "training")} problems.");
            var p = One(rng, maxNumber);
            if (IsHeldOut(p.Prompt) == heldOut && seen.Add(p.Prompt)) result.Add(p);
        }
        return result;
    }

    private static ArithmeticProblem One(StoryRng rng, int maxNumber)
    {
        string hero = Lexicon.Names[rng.NextInt(Lexicon.Names.Length)].Text;
        string other;
        do other = Lexicon.Names[rng.NextInt(Lexicon.Names.Length)].Text; while (other == hero);
        string obj = Objects[rng.NextInt(Objects.Length)];
        int a = 1 + rng.NextInt(maxNumber), b = 1 + rng.NextInt(maxNumber);
        switch (rng.NextInt(4))
        {
            case 0:
                return new($"{hero} has {Count(a, obj)}. {other} gives {hero} {Count(b, obj)}. How many {obj}s does {hero} have?", a + b,
                    $" {hero} had {a} and got {b} more, so {a} + {b} = {a + b}. The answer is {a + b}.");
            case 1:
                if (b > a) (a, b) = (b, a);
                return new($"{hero} has {Count(a, obj)}. {hero} gives {other} {Count(b, obj)}. How many {obj}s does {hero} have?", a - b,
                    $" {hero} had {a} and gave away {b}, so {a} - {b} = {a - b}. The answer is {a - b}.");
            case 2:
            {
                string second;
                do second = Objects[rng.NextInt(Objects.Length)]; while (second == obj);
                return new($"{hero} has {Count(a, obj)} and {Count(b, second)}. How many things does {hero} have?", a + b,
                    $" {hero} has {a} and {b}, so {a} + {b} = {a + b}. The answer is {a + b}.");
            }
            default:
            {
                int c = 1 + rng.NextInt(Math.Min(a + b, maxNumber));
                int s = a + b;
                return new($"{hero} has {Count(a, obj)}. {other} gives {hero} {Count(b, obj)}. Then {hero} loses {Count(c, obj)}. How many {obj}s does {hero} have?", s - c,
                    $" {a} + {b} = {s}, then {s} - {c} = {s - c}. The answer is {s - c}.");
            }
        }
    }

    private static string Count(int n, string obj) => n == 1 ? $"1 {obj}" : $"{n} {obj}s";
}
