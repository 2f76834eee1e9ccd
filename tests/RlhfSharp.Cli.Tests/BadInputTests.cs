// Bad input to `rlhf`: each case must end with exit code 1 and exactly one line on standard error that names the file,
// line, field or option at fault (docs/design.md's rules), never a stack trace or a screen of help.
using System.Text.Json.Nodes;
using RlhfSharp.Models;
using RlhfSharp.Tensors;
using RlhfSharp.Text;
using Xunit.Abstractions;

namespace RlhfSharp.Cli.Tests;

/// <summary>A tiny GPT checkpoint with its tokenizer, and two broken copies of it, in a temporary folder.</summary>
public sealed class CheckpointFolders : IDisposable
{
    public CheckpointFolders()
    {
        Directory.CreateDirectory(Root);
        var tok = BpeTrainer.Train("the cat sat on the mat. the dog ate the hat. a bird sang. ", new BpeTrainerOptions { VocabSize = 280 });
        var config = new GptConfig { VocabSize = tok.VocabSize, BlockSize = 32, NEmbd = 16, NLayer = 1, NHead = 2, EosTokenId = tok.EosId };
        Gpt.Create(config, new Rng(1)).Save(Model);
        tok.Save(Model);

        // The same weights under a config.json that says n_embd is 32: the shapes in model.safetensors disagree.
        CopyFolder(Model, WrongShape);
        string other = Path.Combine(Root, "other");
        Gpt.Create(config with { NEmbd = 32 }, new Rng(2)).Save(other);
        File.Copy(Path.Combine(other, "config.json"), Path.Combine(WrongShape, "config.json"), overwrite: true);

        // A config.json of another architecture.
        CopyFolder(Model, WrongArchitecture);
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(Model, "config.json")))!.AsObject();
        json["model_type"] = "llama";
        File.WriteAllText(Path.Combine(WrongArchitecture, "config.json"), json.ToJsonString());
    }

    public string Root { get; } = Path.Combine(Path.GetTempPath(), "rlhf-cli-" + Guid.NewGuid().ToString("N"));
    public string Model => Path.Combine(Root, "model");
    public string WrongShape => Path.Combine(Root, "wrong-shape");
    public string WrongArchitecture => Path.Combine(Root, "wrong-arch");

    /// <summary>Writes <paramref name="text"/> to a new file in the temporary folder and returns its path.</summary>
    public string File_(string name, string text)
    {
        string path = Path.Combine(Root, name);
        File.WriteAllText(path, text);
        return path;
    }

    private static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
    }

    public void Dispose() => Directory.Delete(Root, recursive: true);
}

[Collection(ConsoleCollection.Name)]
public sealed class BadInputTests(CheckpointFolders folders, ITestOutputHelper output) : IClassFixture<CheckpointFolders>
{
    /// <summary>Exit code 1 and one line on standard error that contains each of <paramref name="mentions"/>.</summary>
    private void AssertOneLineError(RlhfRun run, params string[] mentions)
    {
        output.WriteLine(string.Join("\n", run.ErrorLines));
        Assert.True(run.Exit == 1, $"exit code {run.Exit}; stderr: {string.Join(" | ", run.ErrorLines)}");
        Assert.True(run.ErrorLines.Count == 1, $"expected one line on stderr, got {run.ErrorLines.Count}:\n{string.Join("\n", run.ErrorLines)}");
        foreach (var m in mentions) Assert.Contains(m, run.ErrorLines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", run.ErrorLines[0], StringComparison.Ordinal);
    }

    [Fact]
    public void Given_an_unknown_option_When_run_Then_one_line_names_it_and_no_help_screen()
    {
        var run = RlhfRunner.Run("pretrain", "--bogus", "--out", Path.Combine(folders.Root, "x"));
        AssertOneLineError(run, "--bogus", "rlhf pretrain --help");
        Assert.True(run.Out.Trim().Length == 0, $"stdout should be empty, got: {run.Out}");
    }

    [Fact]
    public void Given_a_run_stopped_while_people_labelled_When_resumed_without_human_Then_refused_naming_the_store()
    {
        string run = Path.Combine(folders.Root, "human-run");
        Directory.CreateDirectory(run);
        File.WriteAllText(Path.Combine(run, "stages.json"), "[\"pretrain\",\"sft\"]");
        File.WriteAllBytes(Path.Combine(run, "feedback.db"), [1, 2, 3]);
        AssertOneLineError(RlhfRunner.Run("demo", "--resume", "--out", run), "--human", "feedback.db");
        Assert.Equal([1, 2, 3], File.ReadAllBytes(Path.Combine(run, "feedback.db")));
        Assert.Equal("[\"pretrain\",\"sft\"]", File.ReadAllText(Path.Combine(run, "stages.json")));
    }

    [Fact]
    public void Given_a_bad_option_value_When_run_Then_one_line_names_the_option() =>
        AssertOneLineError(RlhfRunner.Run("prefrl", "--labels", "many"), "--labels", "many");

    [Fact]
    public void Given_a_missing_corpus_When_pretraining_Then_one_line_names_the_option_and_path() =>
        AssertOneLineError(RlhfRunner.Run("pretrain", "--corpus", "/nope/corpus.txt", "--out", Path.Combine(folders.Root, "pt")), "--corpus", "/nope/corpus.txt");

    [Fact]
    public void Given_a_malformed_jsonl_line_When_fine_tuning_Then_one_line_names_file_and_line()
    {
        string data = folders.File_("demos.jsonl", "{\"prompt\":\"a\",\"completion\":\" cat\"}\n{\"prompt\":\"b\",\"completion\":\n");
        string outDir = Path.Combine(folders.Root, "sft");
        AssertOneLineError(RlhfRunner.Run("sft", "--model", folders.Model, "--data", data, "--out", outDir), $"{data}:2");
        Assert.False(Directory.Exists(outDir), "nothing is written when the data is refused");
    }

    [Fact]
    public void Given_an_unreachable_judge_When_evaluating_Then_one_line_names_the_url()
    {
        string prompts = folders.File_("prompts.txt", "the cat\nthe dog\n");
        AssertOneLineError(RlhfRunner.Run("eval", "--policy", folders.Model, "--baseline", folders.Model, "--prompts", prompts,
            "--judge", "http://127.0.0.1:1/v1", "--max-new-tokens", "4"), "AI judge at http://127.0.0.1:1/v1", "no AI judge answers");
    }

    [Fact]
    public void Given_two_selectors_When_running_rft_Then_one_line_names_the_choices() =>
        AssertOneLineError(RlhfRunner.Run("rft", "--policy", folders.Model, "--gold", "--verifier", "arithmetic", "--out", Path.Combine(folders.Root, "rft2")),
            "--reward RM, --judge URL, --verifier arithmetic or --gold", "got 2");

    [Fact]
    public void Given_a_checkpoint_whose_config_and_weights_disagree_When_sampling_Then_one_line_names_the_folder() =>
        AssertOneLineError(RlhfRunner.Run("sample", "--model", folders.WrongShape, "--prompt", "the cat"), "wrong-shape");

    [Fact]
    public void Given_a_checkpoint_of_another_architecture_When_sampling_Then_one_line_names_the_field() =>
        AssertOneLineError(RlhfRunner.Run("sample", "--model", folders.WrongArchitecture, "--prompt", "the cat"), "model_type", "llama");

    [Fact]
    public void Given_a_label_budget_below_the_pre_rl_share_When_running_prefrl_Then_one_line_gives_both_numbers() =>
        AssertOneLineError(RlhfRunner.Run("prefrl", "--env", "CartPole-v1", "--labels", "5", "--pre-rl-labels", "10", "--out", Path.Combine(folders.Root, "pr")), "5", "10");

    [Fact]
    public void Given_a_zero_label_budget_When_running_prefrl_Then_one_line_names_the_budget() =>
        AssertOneLineError(RlhfRunner.Run("prefrl", "--env", "CartPole-v1", "--labels", "0", "--out", Path.Combine(folders.Root, "pr0")), "--labels", ">= 1", "(got '0')");

    [Fact]
    public void Given_an_unknown_environment_When_running_prefrl_with_people_Then_one_line_lists_the_known_ones() =>
        AssertOneLineError(RlhfRunner.Run("prefrl", "--env", "Pong-v5", "--labeler", "app", "--out", Path.Combine(folders.Root, "pong")), "Pong-v5", "CartPole-v1");

    [Fact]
    public void Given_an_unknown_environment_When_running_rl_Then_one_line_lists_the_known_ones_and_no_run_folder_is_made()
    {
        string run = Path.Combine(folders.Root, "rl-pong");
        AssertOneLineError(RlhfRunner.Run("rl", "--env", "Pong-v5", "--out", run), "Pong-v5", "CartPole-v1");
        Assert.False(Directory.Exists(run));
    }

    [Fact]
    public void Given_a_ppo_setting_with_reinforce_When_running_rl_Then_one_line_names_it() =>
        AssertOneLineError(RlhfRunner.Run("rl", "--algo", "reinforce", "--clip-coef", "0.1", "--run", Path.Combine(folders.Root, "rl-clip")), "--clip-coef", "--algo reinforce");

    [Fact]
    public void Given_a_finished_rl_run_When_started_again_into_its_folder_Then_one_line_refuses_it()
    {
        string run = Path.Combine(folders.Root, "rl-again");
        var first = RlhfRunner.Run("rl", "--steps", "256", "--run", run);
        Assert.True(first.Exit == 0, string.Join("\n", first.ErrorLines));
        long lines = File.ReadLines(Path.Combine(run, "metrics.jsonl")).Count();
        AssertOneLineError(RlhfRunner.Run("rl", "--steps", "256", "--run", run), run, "already holds a run");
        Assert.Equal(lines, File.ReadLines(Path.Combine(run, "metrics.jsonl")).Count());
    }

    [Fact]
    public void Given_human_only_options_without_human_When_running_the_demo_Then_one_line_says_so() =>
        AssertOneLineError(RlhfRunner.Run("demo", "--judgments", "20", "--out", Path.Combine(folders.Root, "demo")), "--judgments", "--human");

    [Fact]
    public void Given_too_few_judgments_When_running_the_demo_with_people_Then_one_line_names_the_option() =>
        AssertOneLineError(RlhfRunner.Run("demo", "--human", "--judgments", "3", "--out", Path.Combine(folders.Root, "demo3")), "--judgments 3");

    [Fact]
    public void Given_a_good_checkpoint_When_sampling_Then_exit_code_0_and_no_error()
    {
        // The control case: the broken copies above fail because of what was broken, not because of the fixture.
        var run = RlhfRunner.Run("sample", "--model", folders.Model, "--prompt", "the cat", "--max-new-tokens", "4");
        Assert.Equal(0, run.Exit);
        Assert.Empty(run.ErrorLines);
        Assert.NotEmpty(run.Out.Trim());
    }
}
