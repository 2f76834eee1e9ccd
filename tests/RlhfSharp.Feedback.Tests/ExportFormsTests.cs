// `rlhf label export` in TRL's other forms: unpaired (KTO) labels, conversational messages, implicit prompts, and the
// same rows through a Parquet file and back (written and read with Parquet.Net).
using System.Text.Json.Nodes;

namespace RlhfSharp.Feedback.Tests;

public sealed class ExportFormsTests
{
    private static readonly Query Q = new(1, QueryKind.Text, "The sky is", [new(" blue."), new(" green."), new(" red.")], "c", null, DateTimeOffset.UnixEpoch);

    private static string[] Lines(Answer a, ExportOptions o) => [.. Jsonl.Lines(Q, a, o).Select(x => x.ToJsonString())];

    [Fact]
    public void Unpaired_MarksThePreferredTrueAndTheOthersFalse_TiesGiveNothing()
    {
        Assert.Equal(
        [
            """{"prompt":"The sky is","completion":" blue.","label":false}""",
            """{"prompt":"The sky is","completion":" green.","label":true}""",
            """{"prompt":"The sky is","completion":" red.","label":false}""",
        ], Lines(Answer.Prefer(1), new ExportOptions(ExportFormat.Unpaired)));
        Assert.Empty(Lines(Answer.Tie(), new ExportOptions(ExportFormat.Unpaired)));
    }

    [Fact]
    public void ConversationalAndImplicitPrompt_RewriteTheStandardRows()
    {
        Assert.Equal("""{"prompt":[{"role":"user","content":"The sky is"}],"chosen":[{"role":"assistant","content":" blue."}],"rejected":[{"role":"assistant","content":" red."}]}""",
            Lines(Answer.Rank(0, 2, 1), new ExportOptions(Conversational: true))[0]);
        Assert.Equal("""{"chosen":"The sky is blue.","rejected":"The sky is red."}""", Lines(Answer.Rank(0, 2, 1), new ExportOptions(ImplicitPrompt: true))[0]);
        Assert.Equal("""{"chosen":[{"role":"user","content":"The sky is"},{"role":"assistant","content":" blue."}],"rejected":[{"role":"user","content":"The sky is"},{"role":"assistant","content":" red."}]}""",
            Lines(Answer.Rank(0, 2, 1), new ExportOptions(Conversational: true, ImplicitPrompt: true))[0]);
        Assert.Equal("""{"prompt":[{"role":"user","content":"The sky is"}],"responses":[[{"role":"assistant","content":" blue."}],[{"role":"assistant","content":" green."}],[{"role":"assistant","content":" red."}]],"best":2}""",
            Lines(Answer.Prefer(2), new ExportOptions(ExportFormat.Best, Conversational: true))[0]);
    }

    [Fact]
    public async Task ParquetRows_ReadBackAsTheSameObjects()
    {
        string dir = Directory.CreateTempSubdirectory("parquet-rows").FullName;
        try
        {
            var rows = new List<JsonObject>();
            rows.AddRange(Jsonl.Lines(Q, Answer.Prefer(2), new ExportOptions(ExportFormat.Best, Conversational: true)));
            rows.AddRange(Jsonl.Lines(Q, Answer.Prefer(0), new ExportOptions(ExportFormat.Best, Conversational: true)));
            string path = Path.Combine(dir, "x.parquet");
            await using (var s = File.Create(path)) await ParquetRows.WriteAsync(s, rows);
            var back = JsonlReader.Read(path, "test").ToList();
            Assert.Equal(2, back.Count);
            Assert.Equal(path + ": row 2", back[1].Where);
            for (int i = 0; i < rows.Count; i++)
                Assert.True(JsonNode.DeepEquals(rows[i], JsonNode.Parse(back[i].Object.GetRawText())), $"row {i}: {back[i].Object.GetRawText()}");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
