// The mock-sentiment task's data (paragraphs, sentence-start prompts, held-out prompts disjoint from training, VADER gold of
// the continuation only), its missing-file errors, and a quick-sized demo run on a slice of Austen that writes a report.
using System.Text.Json;
using RlhfSharp.Alignment.Demo;
using RlhfSharp.Alignment.Tests.LanguageModeling;
using Xunit.Abstractions;

namespace RlhfSharp.Alignment.Tests;

public sealed class SentimentDemoTaskTests(ITestOutputHelper output)
{
    [Fact]
    public void SentencesBreakAfterTerminalPunctuationButNotAfterTitles()
    {
        var s = PlainTextCorpus.Sentences("Mr. Knightley came in. She smiled! \"Is it so?\" said he. \"Yes.\" Then Mrs. Weston left");
        Assert.Equal(["Mr. Knightley came in.", "She smiled!", "\"Is it so?\" said he.", "\"Yes.\"", "Then Mrs. Weston left"], s);
        // A full stop before a lower-case word ends nothing.
        Assert.Single(PlainTextCorpus.Sentences("It was about 3 p.m. when she came."));
    }

    [Fact]
    public void ParagraphsJoinWrappedLinesDropHeadingsAndItalicMarks()
    {
        using var dir = new TempDirectory();
        string file = dir.File("book.txt");
        File.WriteAllText(file, "CHAPTER I\n\n\nIt was a _truth_ universally\nacknowledged, that a man.\n\nShort one.\n\nA second paragraph\nof four words or more.\n");
        var paragraphs = PlainTextCorpus.ReadParagraphs(file);
        Assert.Equal(["It was a truth universally acknowledged, that a man.", "A second paragraph of four words or more."], paragraphs.Select(p => p.Text));
        Assert.Equal([4, 9], paragraphs.Select(p => p.Line));
    }

    [Fact]
    public void PromptsAreSentenceStartsAndHeldOutPromptsNeverTrainingOnes()
    {
        using var dir = new TempDirectory();
        string corpus = AustenSlice(dir, lines: 4000);
        var task = new SentimentDemoTask(corpus, Lexicon);
        var paragraphs = PlainTextCorpus.ReadParagraphs(corpus);
        int every = task.Options.HeldOutEvery;

        // Every prompt is the first k words (3 ≤ k ≤ 6) of a sentence that starts a paragraph or follows . ! ? or a closing quote or bracket.
        string text = string.Join("\n", paragraphs.Select(p => p.Text));
        foreach (var prompt in task.TrainingPromptPool.Concat(task.HeldOutPromptPool))
        {
            Assert.InRange(prompt.Split(' ').Length, task.Options.MinPromptWords, task.Options.MaxPromptWords);
            int at = IndexOfSentenceStart(text, prompt);
            Assert.True(at >= 0, $"prompt \"{prompt}\" is not the start of a sentence of the corpus");
        }
        Assert.True(task.TrainingPromptPool.Count > 500, $"{task.TrainingPromptPool.Count} training prompts");
        Assert.True(task.HeldOutPromptPool.Count > 20, $"{task.HeldOutPromptPool.Count} held-out prompts");
        Assert.Empty(task.HeldOutPromptPool.Intersect(task.TrainingPromptPool));

        // Held-out paragraphs stay out of pre-training: documents are exactly the other paragraphs, in order.
        var docs = task.PretrainDocuments(1, int.MaxValue);
        Assert.Equal(paragraphs.Where((_, i) => i % every != every - 1).Select(p => p.Text), docs);
        var heldOutParagraphs = paragraphs.Where((_, i) => i % every == every - 1).Select(p => p.Text).ToList();
        foreach (var prompt in task.HeldOutPromptPool)
            Assert.Contains(heldOutParagraphs, p => p.Contains(prompt, StringComparison.Ordinal));

        // Draws are seeded: same seed, same prompts; another seed, another order; more than the pool cycles through it.
        Assert.Equal(task.TrainingPrompts(5, 50), task.TrainingPrompts(5, 50));
        Assert.NotEqual(task.TrainingPrompts(5, 50), task.TrainingPrompts(6, 50));
        var many = task.HeldOutPrompts(3, task.HeldOutPromptPool.Count + 7);
        Assert.Equal(task.HeldOutPromptPool.Count + 7, many.Count);
        Assert.All(many, p => Assert.Contains(p, task.HeldOutPromptPool));
        Assert.Equal(task.HeldOutPromptPool.Order(StringComparer.Ordinal), many.Take(task.HeldOutPromptPool.Count).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void GoldIsVaderCompoundOfTheContinuationAlone()
    {
        using var dir = new TempDirectory();
        var task = new SentimentDemoTask(AustenSlice(dir, lines: 2000), Lexicon);
        // VADER's compound of a lone lexicon word is v/√(v²+15); "good" has mean valence 1.9 in vader_lexicon.txt (0.4404, the
        // figure vaderSentiment's own README prints for "good").
        double good = 1.9 / Math.Sqrt(1.9 * 1.9 + 15);
        Assert.Equal(good, task.Gold("It was all very bad and horrid, and", "good"), 6);
        Assert.Equal(good, task.Gold("She was happy and delighted", "good"), 6);
        Assert.Equal(0, task.Gold("What a wonderful, lovely day", "she said to him"));
        Assert.True(task.Gold("x", "a terrible, miserable evening") < -0.5);
        Assert.True(task.Gold("x", "a happy, delightful evening") > 0.5);
    }

    [Fact]
    public void MissingCorpusOrLexiconIsOneErrorNamingTheFile()
    {
        using var dir = new TempDirectory();
        string corpus = AustenSlice(dir, lines: 2000);
        string missing = dir.File("no-such-corpus");
        var e1 = Assert.Throws<FileNotFoundException>(() => new SentimentDemoTask(missing, Lexicon));
        Assert.Contains(missing, e1.Message);
        string noLexicon = dir.File("no-lexicon.txt");
        var e2 = Assert.Throws<FileNotFoundException>(() => new SentimentDemoTask(corpus, noLexicon));
        Assert.Contains(noLexicon, e2.Message);
        string empty = Path.Combine(dir.Path, "empty");
        Directory.CreateDirectory(empty);
        var e3 = Assert.Throws<FileNotFoundException>(() => new SentimentDemoTask(empty, Lexicon));
        Assert.Contains("no .txt files", e3.Message);
        string badLexicon = dir.File("bad.txt");
        File.WriteAllText(badLexicon, "good\t1.9\nbroken line without a tab\n");
        var e4 = Assert.Throws<InvalidDataException>(() => new SentimentDemoTask(corpus, badLexicon));
        Assert.Contains($"{badLexicon}:2", e4.Message);
    }

    [Fact]
    public void QuickSentimentDemoRunsEveryStageOnAnAustenSlice()
    {
        using var dir = new TempDirectory();
        var task = new SentimentDemoTask(AustenSlice(dir, lines: 3000), Lexicon);
        string run = Path.Combine(dir.Path, "run");
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var summary = new DemoPipeline(SentimentDemoTask.QuickConfig, task).Run(run, resume: false);
        output.WriteLine($"quick sentiment demo {watch.Elapsed.TotalSeconds:F0}s: {JsonSerializer.Serialize(summary)}");

        Assert.Equal(DemoPipeline.Stages, JsonSerializer.Deserialize<List<string>>(File.ReadAllText(Path.Combine(run, DemoPipeline.StagesFileName))));
        string html = File.ReadAllText(Path.Combine(run, DemoPipeline.ReportFileName));
        foreach (var id in new[] { "learning-curves", "reward-model", "proxy-vs-gold", "frontier", "win-rate", "samples" })
            Assert.Contains($"id=\"{id}\"", html);
        Assert.Contains("mock sentiment", html);
        // The baseline is named for what it is: the pre-trained model, never an SFT model this task does not train.
        Assert.Equal("pre-trained", summary.ReferenceName);
        Assert.Contains("best-of-N from pre-trained", html);
        Assert.Contains("KL to the pre-trained model", html);
        Assert.Contains("Win rate over pre-trained", html);
        Assert.DoesNotContain("SFT model", html);
        Assert.DoesNotContain("SFT samples", html);
        Assert.True(summary.Ppo.WinLow <= summary.Ppo.WinRate && summary.Ppo.WinRate <= summary.Ppo.WinHigh, $"{summary.Ppo}");
        Assert.InRange(summary.SftGold, -1, 1);

        // No SFT: the reference is the pre-trained model, byte for byte.
        Assert.Equal(File.ReadAllBytes(Path.Combine(run, "pretrain", "model.safetensors")), File.ReadAllBytes(Path.Combine(run, "sft", "model.safetensors")));
        // Labelled pairs use training prompts; the gold-labelled winner has the higher compound score unless the oracle erred.
        var pairs = File.ReadAllLines(Path.Combine(run, "labels", "preferences.jsonl")).Where(l => l.Length > 0)
            .Select(l => JsonSerializer.Deserialize<Dictionary<string, string>>(l)!).ToList();
        Assert.NotEmpty(pairs);
        Assert.All(pairs, p => Assert.Contains(p["prompt"], task.TrainingPromptPool));
        Assert.All(pairs, p => Assert.True(Math.Abs(task.Gold("", p["chosen"]) - task.Gold("", p["rejected"])) >= task.OracleTieThreshold, "ties are not labelled"));
        // Evaluation samples are held-out prompts.
        using var evals = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "eval", "evaluations.json")));
        foreach (var sample in evals.RootElement.GetProperty("ppo").GetProperty("Samples").EnumerateArray())
            Assert.Contains(sample.GetProperty("Prompt").GetString(), task.HeldOutPromptPool);

        // The folder remembers its task: resuming it as the story world is refused before anything is touched.
        var e = Assert.Throws<InvalidOperationException>(() => new DemoPipeline(DemoConfig.Quick).Run(run, resume: true));
        Assert.Contains("sentiment", e.Message);
    }

    private static string Lexicon => Repository.Data("sentiment", "vader_lexicon.txt");

    /// <summary>The first <paramref name="lines"/> lines of Persuasion, as a small corpus file.</summary>
    private static string AustenSlice(TempDirectory dir, int lines)
    {
        string path = dir.File("slice.txt");
        File.WriteAllLines(path, File.ReadLines(Repository.Data("austen", "persuasion.txt")).Take(lines));
        return path;
    }

    private static int IndexOfSentenceStart(string text, string prompt)
    {
        for (int at = text.IndexOf(prompt, StringComparison.Ordinal); at >= 0; at = text.IndexOf(prompt, at + 1, StringComparison.Ordinal))
        {
            if (at == 0 || text[at - 1] == '\n') return at;
            if (at >= 2 && text[at - 1] == ' ' && text[at - 2] is '.' or '!' or '?' or '"' or '\'' or ')') return at;
        }
        return -1;
    }
}
