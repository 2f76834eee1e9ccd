// The verifiable arithmetic task: deterministic problems whose stated answers are right, a train/held-out split with no
// shared text, a verifier that reads the final answer exactly; and the unbiased pass@k estimator against hand values.
using System.Text.RegularExpressions;
using RlhfSharp.Alignment.Evaluation;
using RlhfSharp.Text.StoryWorld;

namespace RlhfSharp.Alignment.Tests;

public sealed class VerifiableTaskTests
{
    [Fact]
    public void ProblemsAreDeterministic_Distinct_AndTheirWorkedAnswersAreRight()
    {
        var a = ArithmeticProblems.Train(4, 300);
        Assert.Equal(a, ArithmeticProblems.Train(4, 300));
        Assert.NotEqual(a, ArithmeticProblems.Train(5, 300));
        Assert.Equal(300, a.Select(p => p.Prompt).Distinct().Count());
        foreach (var p in a)
        {
            // The worked answer ends with the verifiable sentence, and every "x ± y = z" in it is true arithmetic.
            Assert.EndsWith($"The answer is {p.Answer}.", p.WorkedAnswer);
            Assert.Equal(1, ArithmeticProblems.Verify(p.WorkedAnswer, p.Answer));
            foreach (Match m in Regex.Matches(p.WorkedAnswer, @"(\d+) ([+-]) (\d+) = (\d+)"))
            {
                int x = int.Parse(m.Groups[1].Value), y = int.Parse(m.Groups[3].Value), z = int.Parse(m.Groups[4].Value);
                Assert.Equal(m.Groups[2].Value == "+" ? x + y : x - y, z);
            }
            Assert.InRange(p.Answer, 0, 18);
        }
        // All four families occur.
        Assert.Contains(a, p => p.Prompt.Contains("things"));
        Assert.Contains(a, p => p.Prompt.Contains("Then"));
        Assert.Contains(a, p => p.WorkedAnswer.Contains("gave away"));
        Assert.Contains(a, p => p.WorkedAnswer.Contains("got"));
    }

    [Fact]
    public void TrainAndHeldOutShareNoProblemText()
    {
        var train = ArithmeticProblems.Train(1, 3000).Concat(ArithmeticProblems.Train(2, 3000)).Select(p => p.Prompt).ToHashSet();
        var held = ArithmeticProblems.HeldOut(1, 500).Concat(ArithmeticProblems.HeldOut(3, 500)).Select(p => p.Prompt).ToList();
        Assert.All(held, p => Assert.True(ArithmeticProblems.IsHeldOut(p)));
        Assert.DoesNotContain(held, train.Contains);
        Assert.All(train, p => Assert.False(ArithmeticProblems.IsHeldOut(p)));
    }

    [Theory]
    [InlineData(" 3 + 2 = 5. The answer is 5.", 5, 1)]
    [InlineData(" The answer is 4. No, the answer is 5.", 5, 1)] // the last stated answer counts
    [InlineData(" The answer is 5. No, the answer is 4.", 5, 0)]
    [InlineData(" 3 + 2 = 5.", 5, 0)]                            // no final answer: wrong
    [InlineData(" The answer is 15.", 5, 0)]                      // exact match, not a prefix
    [InlineData(" The answer is -1.", -1, 1)]
    public void VerifierReadsTheLastStatedAnswerExactly(string completion, int answer, double expected) =>
        Assert.Equal(expected, ArithmeticProblems.Verify(completion, answer));

    [Fact]
    public void PassAtK_EqualsHandValues()
    {
        // n = 5 samples, c = 2 correct. pass@1 = c/n = 0.4.
        // pass@2 = 1 − C(3,2)/C(5,2) = 1 − 3/10 = 0.7.  pass@3 = 1 − C(3,3)/C(5,3) = 1 − 1/10 = 0.9.
        // pass@4: n − c = 3 < 4, so every draw of 4 holds a correct one: 1.
        Assert.Equal(0.4, PassAtK.Estimate(5, 2, 1), 12);
        Assert.Equal(0.7, PassAtK.Estimate(5, 2, 2), 12);
        Assert.Equal(0.9, PassAtK.Estimate(5, 2, 3), 12);
        Assert.Equal(1.0, PassAtK.Estimate(5, 2, 4), 12);
        Assert.Equal(0.0, PassAtK.Estimate(8, 0, 4), 12);
        Assert.Throws<ArgumentException>(() => PassAtK.Estimate(4, 2, 5));
    }
}
