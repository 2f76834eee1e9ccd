// `rlhf judge train` end to end, over real HTTP: a tiny story-world GPT is fine-tuned into a judge on oracle-labelled
// comparisons (the story world's gold scorer ranks each pair), served by `rlhf serve` in a child process on a free port,
// and asked by `rlhf label judge` exactly as any OpenAI-compatible endpoint would be: every answer must be understood
// (no skips). Before judge train, AiJudge understood none of our models' answers. Small on purpose (a randomly initialised
// two-layer model, 40 steps): the format is what is tested here; agreement with gold is measured in docs/alignment.md.
using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using RlhfSharp.Models;
using RlhfSharp.Tensors;
using RlhfSharp.Text.StoryWorld;
using Xunit.Abstractions;

namespace RlhfSharp.Cli.Tests;

[Collection(ConsoleCollection.Name)]
public sealed partial class JudgeTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "rlhf-judge-" + Guid.NewGuid().ToString("N")[..8]);

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    [Fact]
    public async Task Given_a_judge_trained_on_oracle_comparisons_When_served_and_asked_by_label_judge_Then_every_answer_is_understood()
    {
        var clock = Stopwatch.StartNew();
        Directory.CreateDirectory(_dir);
        // Given a tiny story model (the story world's tokenizer, block 64: the judge's question needs the context extended).
        string model = Path.Combine(_dir, "model");
        var tok = Stories.TrainTokenizer(512);
        Gpt.Create(new GptConfig { VocabSize = tok.VocabSize, BlockSize = 64, NEmbd = 32, NLayer = 2, NHead = 2, EosTokenId = tok.EosId }, new Rng(1)).Save(model);
        tok.Save(model);
        output.WriteLine($"{clock.Elapsed.TotalSeconds:F1} s: tokenizer and model");
        // and comparisons labelled by the oracle: two demonstrations' completions for one prompt, the gold-better one chosen.
        var demos = Stories.Demonstrations(3, 40);
        var pairs = new StringBuilder();
        var queries = new StringBuilder();
        for (int i = 0; i + 1 < demos.Count; i += 2)
        {
            string prompt = demos[i].Prompt, a = demos[i].Completion, b = demos[i + 1].Completion;
            bool aWins = Stories.GoldReward(a, prompt) >= Stories.GoldReward(b, prompt);
            var line = new JsonObject { ["prompt"] = prompt, ["chosen"] = aWins ? a : b, ["rejected"] = aWins ? b : a };
            if (i < 32) pairs.AppendLine(line.ToJsonString());
            else queries.AppendLine(new JsonObject { ["prompt"] = prompt, ["responses"] = new JsonArray(a, b) }.ToJsonString());
        }
        string data = Path.Combine(_dir, "pairs.jsonl"), queryFile = Path.Combine(_dir, "queries.jsonl"), db = Path.Combine(_dir, "prefs.db");
        File.WriteAllText(data, pairs.ToString());
        File.WriteAllText(queryFile, queries.ToString());

        // When it is trained as a judge,
        string judge = Path.Combine(_dir, "judge");
        var train = RlhfRunner.Run("judge", "train", "--model", model, "--data", data, "--out", judge, "--run", Path.Combine(_dir, "run"),
            "--steps", "40", "--batch-size", "8", "--lr", "1e-2", "--held-out-pairs", "4", "--eval-interval", "40");
        output.WriteLine($"{clock.Elapsed.TotalSeconds:F1} s: judge trained\n{train.Out}");
        Assert.True(train.Exit == 0, $"judge train: exit {train.Exit}: {string.Join(" | ", train.ErrorLines)}");
        var summary = JudgeLine().Match(train.Out);
        Assert.True(summary.Success, $"judge train printed no held-out line: {train.Out}");
        Assert.True(int.Parse(summary.Groups["context"].Value) > 64, "the judge's question fits no 64-token context, yet the context did not grow");
        Assert.Equal(0, int.Parse(summary.Groups["unparsed"].Value));

        // served by `rlhf serve`, and asked by `rlhf label judge` over HTTP,
        Assert.Equal(0, RlhfRunner.Run("label", "import", queryFile, "--db", db).Exit);
        using var server = await ServeAsync(judge);
        output.WriteLine($"{clock.Elapsed.TotalSeconds:F1} s: serving at {server.BaseUrl}");
        var label = RlhfRunner.Run("label", "judge", "--db", db, "--base-url", server.BaseUrl, "--model", "rlhfsharp", "--count", "4");
        output.WriteLine(label.Out + string.Join("\n", label.ErrorLines));

        // Then every query gets a label and none is a skip ("judge answer not understood").
        Assert.True(label.Exit == 0, $"label judge: exit {label.Exit}: {string.Join(" | ", label.ErrorLines)}");
        Assert.Contains("submitted 4 judgments (4 labels, 0 skips)", label.Out, StringComparison.Ordinal);
        output.WriteLine($"{clock.Elapsed.TotalSeconds:F1} s in all");
    }

    [GeneratedRegex(@"judge: context (?<context>\d+) tokens.*not understood (?<unparsed>\d+)")]
    private static partial Regex JudgeLine();

    /// <summary>`rlhf serve --model DIR --port 0` as a child process, with the API root it printed; disposing kills it.</summary>
    private static async Task<Server> ServeAsync(string modelDir)
    {
        string host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";
        var info = new ProcessStartInfo(host) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "rlhf.dll"), "serve", "--model", modelDir, "--port", "0" }) info.ArgumentList.Add(a);
        var log = new StringBuilder();
        var ready = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (log) log.AppendLine(e.Data);
            if (Address().Match(e.Data) is { Success: true } m) ready.TrySetResult(m.Value);
        };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.AppendLine(e.Data); };
        process.Exited += (_, _) => ready.TrySetException(new InvalidOperationException($"rlhf serve exited: {log}"));
        Assert.True(process.Start(), $"could not start {host}");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var server = new Server(process);
        var first = await Task.WhenAny(ready.Task, Task.Delay(TimeSpan.FromMinutes(2)));
        if (first != ready.Task || !ready.Task.IsCompletedSuccessfully)
        {
            server.Dispose();
            Assert.Fail($"rlhf serve printed no address: {log}");
        }
        server.BaseUrl = ready.Task.Result;
        return server;
    }

    [GeneratedRegex(@"http://127\.0\.0\.1:\d+/v1")]
    private static partial Regex Address();

    private sealed class Server(Process process) : IDisposable
    {
        public string BaseUrl { get; set; } = "";

        public void Dispose()
        {
            try { if (!process.HasExited) process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            process.WaitForExit(10_000);
            process.Dispose();
        }
    }
}
