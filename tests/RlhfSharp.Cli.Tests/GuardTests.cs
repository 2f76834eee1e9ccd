// Issue 17 end to end through `rlhf`: a diverging run stops naming the step and writes no model; weights holding NaN are
// refused naming the tensor (and load with --allow-non-finite); a --config value that is not finite is refused naming the
// file and setting; bytes that are not UTF-8 in every user text file are refused naming file, line and byte offset; an
// empty merges.txt is refused; hostile query text reaches the labeller's terminal escaped; resume falls back past a
// damaged checkpoint and removes a killed save's staging folder.
using System.Text;
using System.Text.RegularExpressions;
using RlhfSharp.Cli.Commands;
using RlhfSharp.Feedback;
using RlhfSharp.Golden;
using RlhfSharp.Models;
using RlhfSharp.Models.Checkpoints;
using Xunit.Abstractions;

namespace RlhfSharp.Cli.Tests;

[Collection(ConsoleCollection.Name)]
public sealed class GuardTests(CheckpointFolders folders, ITestOutputHelper output) : IClassFixture<CheckpointFolders>
{
    private string Dir(string name) => Path.Combine(folders.Root, name);

    private void AssertOneLineError(RlhfRun run, params string[] mentions)
    {
        output.WriteLine(string.Join("\n", run.ErrorLines));
        Assert.True(run.Exit == 1, $"exit code {run.Exit}; stderr: {string.Join(" | ", run.ErrorLines)}");
        Assert.True(run.ErrorLines.Count == 1, $"expected one line on stderr, got {run.ErrorLines.Count}:\n{string.Join("\n", run.ErrorLines)}");
        foreach (var m in mentions) Assert.Contains(m, run.ErrorLines[0], StringComparison.Ordinal);
    }

    private static string[] Pretrain(string outDir, string run, params string[] extra) =>
        ["pretrain", "--stories", "300", "--vocab-size", "512", "--steps", "6", "--batch-size", "8", "--eval-interval", "3",
            "--checkpoint-interval", "2", "--seed", "3", "--out", outDir, "--run", run, .. extra];

    [Fact]
    public void Given_a_learning_rate_of_1e6_When_pretraining_Then_the_run_stops_naming_the_step_and_writes_no_model()
    {
        string outDir = Dir("diverged"), runDir = Dir("runs-diverged");
        var run = RlhfRunner.Run(Pretrain(outDir, runDir, "--lr", "1e6"));
        output.WriteLine(string.Join("\n", run.ErrorLines));
        Assert.Equal(1, run.Exit);
        // The lines before are the run's own notes (data, parameters, run folder); the error is one line, the last.
        Assert.Single(run.ErrorLines, l => l.StartsWith("rlhf: error:", StringComparison.Ordinal));
        Assert.Matches(new Regex(@"^rlhf: error: step \d+: (loss|held-out loss|gradient norm|parameter '[^']+') is (NaN|Infinity|-Infinity) \(learning_rate .+ too high\?\)"), run.ErrorLines[^1]);
        Assert.False(Directory.Exists(outDir), "a diverged run writes nothing to --out");
        // The last checkpoint is a good one: it validates and its weights load (loading refuses non-finite weights).
        var checkpoints = Directory.GetDirectories(Path.Combine(runDir, "checkpoints"));
        Assert.NotEmpty(checkpoints);
        foreach (string c in checkpoints) Gpt.Load(c);
        Assert.DoesNotContain("NaN", File.ReadAllText(Path.Combine(runDir, "metrics.jsonl")), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("reward")]
    [InlineData("dpo")]
    [InlineData("rl")]
    public void Given_a_learning_rate_of_1e30_When_training_Then_every_trainer_stops_naming_the_step(string trainer)
    {
        string prefs = Dir("prefs.jsonl"), outDir = Dir($"{trainer}-diverged"), runDir = Dir($"runs-{trainer}-diverged");
        if (!File.Exists(prefs)) GoldenJobs.WritePreferences(prefs);
        string[] args = trainer switch
        {
            "reward" => ["reward", "train", "--model", folders.Model, "--data", prefs, "--batch-size", "4", "--normalization-samples", "0", "--out", outDir, "--run", runDir],
            "dpo" => ["dpo", "--model", folders.Model, "--data", prefs, "--batch-size", "4", "--out", outDir, "--run", runDir],
            _ => ["rl", "--env", "CartPole-v1", "--steps", "4096", "--run", runDir],
        };
        var run = RlhfRunner.Run([.. args, "--lr", "1e30"]);
        output.WriteLine(string.Join("\n", run.ErrorLines));
        Assert.Equal(1, run.Exit);
        Assert.Single(run.ErrorLines, l => l.StartsWith("rlhf: error:", StringComparison.Ordinal));
        Assert.Matches(new Regex(@"^rlhf: error: step \d+: .+ is (NaN|Infinity|-Infinity) \(learning_rate .+ too high\?\); training stopped"), run.ErrorLines[^1]);
        Assert.False(Directory.Exists(outDir), "a diverged run writes no model");
        Assert.False(Directory.Exists(Path.Combine(runDir, "policy")), "a diverged control run writes no policy");
    }

    [Fact]
    public void Given_a_result_without_a_loss_When_the_summary_is_printed_Then_JSON_null_not_an_exception()
    {
        var old = Console.Out;
        using var captured = new StringWriter();
        Console.SetOut(captured);
        try
        {
            var result = new RlhfSharp.Alignment.LanguageModeling.LmTrainResult(0, double.NaN, double.PositiveInfinity, 0, Cancelled: false, TimeSpan.Zero);
            Assert.Equal(0, LmCommandSupport.Report("pretrain", result, Dir("no-loss"), Dir("runs-no-loss")));
        }
        finally
        {
            Console.SetOut(old);
        }
        Assert.Contains("\"train_loss\":null,\"heldout_loss\":null,\"heldout_perplexity\":null", captured.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Given_a_config_file_with_an_infinite_learning_rate_When_pretraining_Then_one_line_names_file_and_setting()
    {
        string config = folders.File_("inf.json", "{\"training\": {\"learning_rate\": \"Infinity\"}}");
        AssertOneLineError(RlhfRunner.Run("pretrain", "--config", config, "--out", Dir("inf")), config, "training.learning_rate = Infinity", "> 0");
        Assert.False(Directory.Exists(Dir("inf")));
    }

    private string NaNModel()
    {
        string dir = Dir("nan-model");
        if (Directory.Exists(dir)) return dir;
        Directory.CreateDirectory(dir);
        foreach (var f in Directory.GetFiles(folders.Model)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        string weights = Path.Combine(dir, "model.safetensors");
        var content = Safetensors.Read(weights);
        var tensors = content.Tensors.ToDictionary(kv => kv.Key, kv => kv.Value);
        string name = tensors.Keys.First(k => k.EndsWith("mlp.c_fc.weight", StringComparison.Ordinal));
        tensors[name].Values[5] = float.NaN;
        Safetensors.Write(weights, tensors, content.Metadata);
        return dir;
    }

    [Fact]
    public void Given_weights_holding_NaN_When_scoring_Then_refused_naming_the_tensor_unless_allowed()
    {
        string dir = NaNModel();
        AssertOneLineError(RlhfRunner.Run("score", "--model", dir, "--text", "the cat sat"), "model.safetensors", "mlp.c_fc.weight", "NaN");
        AssertOneLineError(RlhfRunner.Run("sample", "--model", dir, "--prompt", "the cat"), "mlp.c_fc.weight", "NaN");
        // For inspection: the model loads, and NaN log-probabilities print (also as JSON) instead of throwing.
        var allowed = RlhfRunner.Run("score", "--model", dir, "--text", "the cat sat", "--allow-non-finite", "--json");
        Assert.Equal(0, allowed.Exit);
        Assert.Contains("NaN", allowed.Out, StringComparison.Ordinal);
    }

    [Fact]
    public void Given_a_model_holding_NaN_When_saved_Then_refused_so_no_NaN_model_is_written()
    {
        var gpt = Gpt.Load(NaNModel(), allowNonFinite: true);
        string to = Dir("nan-saved");
        var ex = Assert.Throws<FormatException>(() => gpt.Save(to));
        Assert.Contains("mlp.c_fc.weight", ex.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(to, "model.safetensors")));
    }

    /// <summary>A file whose line 2 holds the byte 0xE9 (Latin-1 'é'): returns its path and the byte's offset in the file.</summary>
    private (string Path, int Offset) Latin1File(string name, string line1, string line2Before, string line2After)
    {
        var bytes = new List<byte>();
        bytes.AddRange(Encoding.UTF8.GetBytes(line1 + "\n" + line2Before));
        int offset = bytes.Count;
        bytes.Add(0xE9);
        bytes.AddRange(Encoding.UTF8.GetBytes(line2After + "\n"));
        string path = Dir(name);
        File.WriteAllBytes(path, [.. bytes]);
        return (path, offset);
    }

    public static TheoryData<string> Readers => ["reward", "dpo", "label-import", "sample-jsonl", "sample-text", "sft"];

    [Theory]
    [MemberData(nameof(Readers))]
    public void Given_bytes_that_are_not_UTF8_When_a_command_reads_the_file_Then_one_line_names_file_line_and_offset(string reader)
    {
        const string Pair = "{\"prompt\":\"the cat\",\"chosen\":\" sat\",\"rejected\":\" ran\"}";
        var (file, offset) = reader switch
        {
            "reward" or "dpo" => Latin1File(reader + ".jsonl", Pair, "{\"prompt\":\"caf", "\",\"chosen\":\" a\",\"rejected\":\" b\"}"),
            "label-import" => Latin1File("queries.jsonl", "{\"prompt\":\"p\",\"responses\":[\"a\",\"b\"]}", "{\"prompt\":\"caf", "\",\"responses\":[\"a\",\"b\"]}"),
            "sample-jsonl" => Latin1File("prompts.jsonl", "{\"prompt\":\"the cat\"}", "{\"prompt\":\"caf", "\"}"),
            "sft" => Latin1File("demos.jsonl", "{\"prompt\":\"a\",\"completion\":\" b\"}", "{\"prompt\":\"caf", "\",\"completion\":\" b\"}"),
            _ => Latin1File("prompts.txt", "the cat", "the caf", " sat"),
        };
        string[] args = reader switch
        {
            "reward" => ["reward", "train", "--model", folders.Model, "--data", file, "--out", Dir("rm-utf8"), "--run", Dir("runs-rm-utf8")],
            "dpo" => ["dpo", "--model", folders.Model, "--data", file, "--out", Dir("dpo-utf8"), "--run", Dir("runs-dpo-utf8")],
            "label-import" => ["label", "import", file, "--db", Dir("utf8.db")],
            "sft" => ["sft", "--model", folders.Model, "--data", file, "--out", Dir("sft-utf8"), "--run", Dir("runs-sft-utf8")],
            _ => ["sample", "--model", folders.Model, "--prompts", file],
        };
        AssertOneLineError(RlhfRunner.Run(args), $"{file}:2:", "invalid UTF-8", $"byte {offset} of the file", "0xE9");
    }

    [Fact]
    public void Given_an_empty_merges_file_When_loading_the_tokenizer_Then_refused_naming_the_file()
    {
        string dir = Dir("empty-merges");
        Directory.CreateDirectory(dir);
        foreach (var f in Directory.GetFiles(folders.Model)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)), overwrite: true);
        File.WriteAllText(Path.Combine(dir, "merges.txt"), "");
        AssertOneLineError(RlhfRunner.Run("score", "--model", dir, "--text", "the cat"), Path.Combine(dir, "merges.txt"), "line 1: no merges");
        // A merges file cut short is refused too, naming the first vocabulary token no merge makes.
        var lines = File.ReadAllLines(Path.Combine(folders.Model, "merges.txt"));
        File.WriteAllLines(Path.Combine(dir, "merges.txt"), lines[..^3]);
        AssertOneLineError(RlhfRunner.Run("score", "--model", dir, "--text", "the cat"), Path.Combine(dir, "vocab.json"), "is made by no merge");
    }

    [Fact]
    public void Given_hostile_query_text_When_shown_in_the_label_cli_Then_control_characters_are_escaped()
    {
        var query = new Query(7, QueryKind.Text, "clear\u001b[2Jtitle\u001b]0;pwned\u0007",
            [new Candidate("left\r\u001b[Kright"), new Candidate("fine\u009b31m")], "default", null, DateTimeOffset.UnixEpoch);
        using var writer = new StringWriter();
        var console = Spectre.Console.AnsiConsole.Create(new Spectre.Console.AnsiConsoleSettings
        {
            Ansi = Spectre.Console.AnsiSupport.No,
            ColorSystem = Spectre.Console.ColorSystemSupport.NoColors,
            Out = new Spectre.Console.AnsiConsoleOutput(writer),
        });
        LabelCommand.Show(query, 0, console);
        string shown = writer.ToString();
        output.WriteLine(shown);
        Assert.DoesNotContain('\u001b', shown);
        Assert.DoesNotContain('\u0007', shown);
        Assert.DoesNotContain('\r', shown);
        Assert.DoesNotContain('\u009b', shown);
        foreach (string visible in new[] { @"\x1b[2J", @"\x1b]0;pwned\x07", @"left\r\x1b[Kright", @"\x9b31m" })
            Assert.Contains(visible, shown, StringComparison.Ordinal);
    }

    [Fact]
    public void Given_an_error_that_quotes_hostile_input_When_printed_Then_its_escape_sequences_are_shown_not_obeyed()
    {
        string dir = Dir("hostile-merges");
        Directory.CreateDirectory(dir);
        foreach (var f in Directory.GetFiles(folders.Model)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)), overwrite: true);
        File.WriteAllText(Path.Combine(dir, "merges.txt"), "#version: 0.2\nt h e\u001b[2J\u001b]0;pwned\u0007\n");
        var run = RlhfRunner.Run("score", "--model", dir, "--text", "the cat");
        AssertOneLineError(run, "merges.txt line 2", @"\x1b[2J\x1b]0;pwned\x07");
        Assert.DoesNotContain('\u001b', run.ErrorLines[0]);
    }

    [Fact]
    public void Given_a_damaged_newest_checkpoint_and_a_staging_leftover_When_resumed_Then_it_falls_back_and_finishes_with_the_same_bits()
    {
        // An uninterrupted run gives the bits to reach.
        string straightOut = Dir("straight"), straightRun = Dir("runs-straight");
        Assert.Equal(0, RlhfRunner.Run(Pretrain(straightOut, straightRun)).Exit);

        // The same run, as if killed after its last checkpoint (no output, not finished), whose newest checkpoint was then
        // damaged, with a staging folder a kill during a later save left behind.
        string outDir = Dir("fallback"), runDir = Dir("runs-fallback");
        Assert.Equal(0, RlhfRunner.Run(Pretrain(outDir, runDir)).Exit);
        Directory.Delete(outDir, recursive: true);
        File.Delete(Path.Combine(runDir, "status.json"));
        string newest = Path.Combine(runDir, "checkpoints", "step-00000006");
        using (var f = new FileStream(Path.Combine(newest, "model.safetensors"), FileMode.Open)) f.SetLength(f.Length / 2);
        string staging = Path.Combine(runDir, "checkpoints", ".step-00000008.tmp-0123456789abcdef0123456789abcdef");
        Directory.CreateDirectory(staging);
        File.WriteAllText(Path.Combine(staging, "model.safetensors"), "half");

        var resumed = RlhfRunner.Run("pretrain", "--resume", "--run", runDir);
        output.WriteLine(string.Join("\n", resumed.ErrorLines));
        Assert.Equal(0, resumed.Exit);
        string warning = Assert.Single(resumed.ErrorLines, l => l.StartsWith("rlhf: warning:", StringComparison.Ordinal));
        Assert.Contains("step-00000006", warning, StringComparison.Ordinal);
        Assert.Contains("model.safetensors", warning, StringComparison.Ordinal);
        Assert.False(Directory.Exists(staging), "the staging folder of a killed save is removed");
        Assert.Equal(GoldenJobs.HashFile(Path.Combine(straightOut, "model.safetensors")), GoldenJobs.HashFile(Path.Combine(outDir, "model.safetensors")));
    }
}
