// Prompts for PPO, evaluation and sampling: {"prompt"} JSONL or one prompt per line of text, errors naming file:line,
// and the evaluation judge chosen by name or URL.
using RlhfSharp.Alignment.Evaluation;
using RlhfSharp.Feedback.Labelers;

namespace RlhfSharp.Alignment.Tests;

public sealed class PromptDataTests
{
    [Fact]
    public void Given_jsonl_and_text_files_When_read_Then_blank_lines_are_skipped_and_text_lines_kept_as_written()
    {
        using var tmp = new TempDirectory();
        File.WriteAllLines(tmp.File("p.jsonl"), ["""{"prompt":"Tom","id":1}""", "", """{"prompt":" a b"}"""]);
        File.WriteAllLines(tmp.File("p.txt"), ["Tom was", "   ", " spaced "]);

        Assert.Equal(["Tom", " a b"], PromptData.Read(tmp.File("p.jsonl")));
        Assert.Equal(["Tom was", " spaced "], PromptData.Read(tmp.File("p.txt")));
    }

    [Fact]
    public void Given_a_line_without_a_prompt_or_an_empty_file_When_read_Then_the_error_names_the_file_and_line()
    {
        using var tmp = new TempDirectory();
        File.WriteAllLines(tmp.File("p.jsonl"), ["""{"prompt":"Tom"}""", """{"text":"Sue"}"""]);
        File.WriteAllText(tmp.File("empty.txt"), "\n  \n");

        var missing = Assert.Throws<FormatException>(() => PromptData.Read(tmp.File("p.jsonl")));
        var empty = Assert.Throws<FormatException>(() => PromptData.Read(tmp.File("empty.txt")));

        Assert.Equal($"{tmp.File("p.jsonl")}:2: a prompt file needs a \"prompt\" column; the accepted forms are {DatasetForms.Prompt}.", missing.Message);
        Assert.StartsWith($"{tmp.File("empty.txt")}: no prompts", empty.Message);
        Assert.Throws<FileNotFoundException>(() => PromptData.Read(tmp.File("none.jsonl")));
    }

    [Fact]
    public void Given_a_judge_name_or_url_When_created_Then_it_is_the_gold_judge_the_oracle_or_an_ai_judge()
    {
        var gold = EvaluationJudges.GoldScorer(vaderLexicon: null);

        Assert.IsType<GoldJudge>(EvaluationJudges.Create("gold", gold, 1, "m", null));
        Assert.IsType<OracleLabeler>(EvaluationJudges.Create("oracle", gold, 1, "m", null));
        Assert.IsType<AiJudge>(EvaluationJudges.Create("http://127.0.0.1:1/v1", gold, 1, "m", null));
        Assert.Contains("\"ftp://x\"", Assert.Throws<ArgumentException>(() => EvaluationJudges.Create("ftp://x", gold, 1, "m", null)).Message);
    }
}
