// The one JSONL reader: line numbers count blank lines, lines outlive the iteration, and each column helper's error
// names the file, the line and the field.
namespace RlhfSharp.Feedback.Tests;

public sealed class JsonlReaderTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Write(params string[] lines)
    {
        var path = _dir.File("data.jsonl");
        File.WriteAllLines(path, lines);
        return path;
    }

    [Fact]
    public void Given_blank_lines_When_read_Then_they_are_skipped_but_counted_and_each_line_keeps_its_object()
    {
        var path = Write("""{"prompt":"a","n":1}""", "", "   ", """{"prompt":"b","n":2,"tags":["x","y"],"on":true,"w":0.5}""");

        var lines = JsonlReader.Read(path, "test data").ToList(); // kept past the iteration: each object is its own copy

        Assert.Equal([1, 4], lines.Select(l => l.Number));
        Assert.Equal(["a", "b"], lines.Select(l => l.String("prompt")));
        Assert.Equal(2, lines[1].Int("n"));
        Assert.Equal(["x", "y"], lines[1].StringArray("tags", minCount: 2));
        Assert.True(lines[1].OptionalBool("on"));
        Assert.Equal(0.5, lines[1].OptionalNumber("w"));
        Assert.Null(lines[0].OptionalNumber("w"));
        Assert.Null(lines[0].OptionalString("missing"));
        Assert.Equal($"{path}:4", lines[1].Where);
    }

    [Theory]
    [InlineData("""{"prompt":3}""", "String", "field \"prompt\" must be a string; got 3.")]
    [InlineData("""{"other":"x"}""", "String", "field \"prompt\" is missing.")]
    [InlineData("""{"prompt":null}""", "String", "field \"prompt\" is missing.")]
    [InlineData("""{"prompt":["a"]}""", "StringArray", "field \"prompt\" needs at least 2 entries; got 1.")]
    [InlineData("""{"prompt":["a",7]}""", "StringArray", "field \"prompt[1]\" must be a string; got 7.")]
    [InlineData("""{"prompt":"ab"}""", "StringArray", "field \"prompt\" must be an array of strings; got \"ab\".")]
    [InlineData("""{"prompt":1.5}""", "Int", "field \"prompt\" must be an integer; got 1.5.")]
    [InlineData("""{"prompt":[0,"1"]}""", "IntArray", "field \"prompt[1]\" must be an integer; got \"1\".")]
    [InlineData("""{"prompt":"1"}""", "OptionalNumber", "field \"prompt\" must be a number; got \"1\".")]
    [InlineData("""{"prompt":1}""", "OptionalBool", "field \"prompt\" must be true or false; got 1.")]
    public void Given_a_field_of_the_wrong_kind_When_a_helper_reads_it_Then_the_error_names_file_line_and_field(string json, string helper, string expected)
    {
        var path = Write("""{"prompt":"fine"}""", json);
        var line = JsonlReader.Read(path, "test data").Last();
        Action read = helper switch
        {
            "String" => () => line.String("prompt"),
            "StringArray" => () => line.StringArray("prompt", minCount: 2),
            "Int" => () => line.Int("prompt"),
            "IntArray" => () => line.IntArray("prompt"),
            "OptionalNumber" => () => line.OptionalNumber("prompt"),
            _ => () => line.OptionalBool("prompt"),
        };

        var ex = Assert.Throws<FormatException>(read);

        Assert.Equal($"{path}:2: {expected}", ex.Message);
    }

    [Theory]
    [InlineData("""{"prompt":""", "not valid JSON")]
    [InlineData("""["a"]""", "expected a JSON object per line, got Array.")]
    public void Given_a_line_that_is_not_an_object_When_read_Then_the_error_names_file_and_line(string bad, string expected)
    {
        var path = Write("""{"prompt":"fine"}""", "", bad);

        var ex = Assert.Throws<FormatException>(() => JsonlReader.Read(path, "test data").ToList());

        Assert.StartsWith($"{path}:3: ", ex.Message);
        Assert.Contains(expected, ex.Message);
    }

    [Fact]
    public void Given_a_missing_file_When_read_Then_the_error_names_its_role_and_path()
    {
        var ex = Assert.Throws<FileNotFoundException>(() => JsonlReader.Read(_dir.File("none.jsonl"), "preference file"));
        Assert.Equal($"preference file {_dir.File("none.jsonl")} does not exist.", ex.Message);
    }
}
