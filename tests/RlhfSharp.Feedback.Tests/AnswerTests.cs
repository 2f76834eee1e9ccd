namespace RlhfSharp.Feedback.Tests;

public sealed class AnswerTests
{
    [Fact]
    public void WellFormedAnswersPassValidation()
    {
        Answer.Prefer(1).Validate(2);
        Answer.Rank(2, 0, 1).Validate(3);
        Answer.Tie().Validate(2);
        Answer.Skip("can't tell").Validate(2);
    }

    [Fact]
    public void MalformedAnswersNameTheField()
    {
        Assert.Contains("answer.preferred", Assert.Throws<ArgumentException>(() => Answer.Prefer(2).Validate(2)).Message);
        Assert.Contains("answer.ranking", Assert.Throws<ArgumentException>(() => Answer.Rank(0, 0, 1).Validate(3)).Message);
        Assert.Contains("answer.ranking", Assert.Throws<ArgumentException>(() => Answer.Rank(0, 1).Validate(3)).Message);
        Assert.Contains("answer.skip_reason", Assert.Throws<ArgumentException>(() => Answer.Skip(" ").Validate(2)).Message);
    }
}
