// Constitutional AI's constitution file and programmatic checks: a bad principle is one error naming FILE:LINE and the
// field; each story-world check (StoryChecks) passes a well-formed positive continuation and names what a broken one violates.
using RlhfSharp.Alignment.Constitutional;
using RlhfSharp.Text.StoryWorld;

namespace RlhfSharp.Alignment.Tests;

public sealed class ConstitutionTests
{
    private const string Good = """{"name":"ending","critique_request":"Identify specific ways in which the response does not end.","revision_request":"Please rewrite it to end.","check":"proper-ending"}""";

    [Fact]
    public void Given_a_constitution_with_comments_checks_and_a_critic_principle_When_read_Then_every_field_is_kept()
    {
        using var tmp = new TempDirectory();
        File.WriteAllLines(tmp.File("c.jsonl"), [
            "// story rules", Good, "",
            """{"name":"short","critique_request":"Is it too short?","revision_request":"Make it longer.","check":"min-length","min_words":7}""",
            """{"name":"harmful","critique_request":"Identify harm.","revision_request":"Remove harm.","comparison":"Which is less harmful?"}""",
        ]);

        var c = Constitution.Read(tmp.File("c.jsonl"));

        Assert.Equal(["ending", "short", "harmful"], c.Principles.Select(p => p.Name));
        Assert.Equal(["ending", "short"], c.Checked.Select(p => p.Name));
        Assert.Equal(7, c.Principles[1].MinWords);
        Assert.Null(c.Principles[2].Check);
        Assert.Equal("Which is less harmful?", c.Principles[2].Comparison);
        Assert.Equal("Which response better follows the principle \"ending\"?", c.Principles[0].Comparison);
        // The shipped constitution reads, and every principle in it is checked (the rounds are measured with it).
        var shipped = Constitution.Read(Path.Combine(RlhfSharp.TestSupport.Repository.Root, "data", "constitutions", "story-world.jsonl"));
        Assert.Equal(shipped.Principles.Count, shipped.Checked.Count());
        Assert.Equal(3, Constitution.Read(Path.Combine(RlhfSharp.TestSupport.Repository.Root, "data", "constitutions", "harmlessness.jsonl")).Principles.Count);
    }

    [Theory]
    [InlineData("""{"name":"x","critique_request":"a","revision_request":"b","critque":"typo"}""", "unknown field \"critque\"")]
    [InlineData("""{"name":"x","revision_request":"b"}""", "field \"critique_request\"")]
    [InlineData("""{"name":"x","critique_request":" ","revision_request":"b"}""", "field \"critique_request\" is empty")]
    [InlineData("""{"name":"x","critique_request":"a","revision_request":"b","check":"no-spam"}""", "field \"check\": \"no-spam\" is not a check")]
    [InlineData("""{"name":"x","critique_request":"a","revision_request":"b","min_words":3}""", "field \"min_words\" only applies")]
    [InlineData("""{"name":"x","critique_request":"a","revision_request":"b","check":"min-length","min_words":0}""", "field \"min_words\" must be 1 or more")]
    [InlineData("""{"name":"ending","critique_request":"a","revision_request":"b"}""", "field \"name\": \"ending\" is already the name of the principle on line 1")]
    [InlineData("""{"name":"x",""", "not valid JSON")]
    [InlineData("""["name"]""", "a principle must be a JSON object")]
    public void Given_a_bad_second_line_When_read_Then_one_error_names_the_file_line_and_field(string line, string expected)
    {
        using var tmp = new TempDirectory();
        string path = tmp.File("c.jsonl");
        File.WriteAllLines(path, [Good, line]);

        var error = Assert.Throws<FormatException>(() => Constitution.Read(path));

        Assert.StartsWith($"{path}:2: ", error.Message, StringComparison.Ordinal);
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void Given_a_story_continuation_When_each_check_is_applied_Then_a_good_one_passes_and_each_broken_one_names_its_violation()
    {
        // Given a demonstration whose continuation is grammatical and positive (the story world's own text),
        var demo = Stories.Demonstrations(5, 200).First(d => GoldScorer.Score(d.Completion, d.Prompt) is { MeanSentiment: > 0, UncreditedFraction: 0, RepeatFraction: 0 }
            && d.Completion.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length >= StoryChecks.DefaultMinWords);
        var sad = Stories.Demonstrations(5, 200).First(d => GoldScorer.Score(d.Completion, d.Prompt) is { MeanSentiment: < 0, UncreditedFraction: 0 });
        string V(string check, string completion, string? prompt = null, int minWords = StoryChecks.DefaultMinWords) =>
            StoryChecks.Violation(check, completion, prompt ?? demo.Prompt, minWords) ?? "ok";

        // it passes every check,
        foreach (var check in StoryChecks.Names) Assert.Equal("ok", V(check, demo.Completion));
        // and each way of breaking it is caught by the check for that rule (and the gold scorer penalises it too).
        string fragment = demo.Completion + " The dog";
        Assert.StartsWith("the response ends in an unfinished sentence", V("proper-ending", fragment), StringComparison.Ordinal);
        Assert.StartsWith("unfinished sentence", V("grammatical", fragment), StringComparison.Ordinal);
        Assert.Equal("ok", V("proper-ending", demo.Completion + " Blorp zax."));
        Assert.StartsWith("ungrammatical sentence \"blorp zax .\"", V("grammatical", demo.Completion + " Blorp zax."), StringComparison.Ordinal);
        string repeat = demo.Completion + " " + demo.Prompt;
        Assert.StartsWith("repeated sentence", V("no-repeats", repeat), StringComparison.Ordinal);
        Assert.Equal("ok", V("no-repeats", repeat, prompt: "Once."));
        Assert.Equal("the sentiment word \"happy\" is used more than twice", V("no-spam-words", " Tom was happy, happy and happy."));
        Assert.Equal("ok", V("no-spam-words", " Tom was happy and happy."));
        Assert.StartsWith("the credited sentences' sentiment is negative", V("positive", sad.Completion, sad.Prompt), StringComparison.Ordinal);
        Assert.StartsWith("the credited sentences' sentiment is not positive (0", V("positive", " Blorp zax."), StringComparison.Ordinal);
        Assert.Equal("the response has 2 words, fewer than 5", V("min-length", " Tom ran."));
        Assert.Equal("ok", V("min-length", " Tom ran.", minWords: 2));
        Assert.Equal("the response is empty", V("proper-ending", "  "));
        Assert.Contains("the checks are proper-ending", Assert.Throws<ArgumentException>(() => StoryChecks.Violation("rude", "x")).Message, StringComparison.Ordinal);
        foreach (var broken in new[] { fragment, repeat, " Tom was happy, happy and happy." })
            Assert.True(GoldScorer.Score(broken, demo.Prompt).Reward < GoldScorer.Score(demo.Completion, demo.Prompt).Reward, broken);
    }
}
