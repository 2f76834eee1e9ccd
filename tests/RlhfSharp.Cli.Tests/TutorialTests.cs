// docs/tutorial.md run as written: every line of its ```bash blocks, in order, in an empty temporary folder, so the
// tutorial cannot drift from the `rlhf` it teaches. `rlhf ...` runs in-process; `rlhf ... &` (a server) runs as a child
// process of the built rlhf.dll until `kill %1`; `curl` lines become the same HTTP request made from the test.
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Xunit.Abstractions;

namespace RlhfSharp.Cli.Tests;

/// <summary>One command of the tutorial and the line of docs/tutorial.md it is on.</summary>
internal sealed record TutorialCommand(int Line, string Text);

/// <summary>Reads the commands out of the tutorial's Markdown and splits them into words as a POSIX shell would.</summary>
internal static class TutorialScript
{
    /// <summary>The non-blank, non-comment lines of every ```bash block, in order.</summary>
    public static List<TutorialCommand> Commands(string markdown)
    {
        var commands = new List<TutorialCommand>();
        string? fence = null;
        var lines = markdown.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i].TrimEnd('\r');
            if (line.StartsWith("```", StringComparison.Ordinal))
            {
                fence = fence is null ? line[3..].Trim() : null;
                continue;
            }
            if (fence != "bash") continue;
            if (line.TrimEnd().EndsWith('\\')) throw new FormatException($"docs/tutorial.md:{i + 1}: one command per line (no \\ continuation lines).");
            if (Words(line).Count > 0) commands.Add(new TutorialCommand(i + 1, line.Trim()));
        }
        return commands;
    }

    /// <summary>
    /// The words of a command line: '…' is literal, "…" keeps \" \\ \$ escapes, a backslash outside quotes escapes the
    /// next character, and an unquoted # at the start of a word begins a comment. No variables or globs.
    /// </summary>
    public static List<string> Words(string line)
    {
        var words = new List<string>();
        var word = new StringBuilder();
        bool inWord = false;
        for (int i = 0; i < line.Length; i++)
        {
            char c = line[i];
            if (char.IsWhiteSpace(c))
            {
                if (inWord) words.Add(word.ToString());
                word.Clear();
                inWord = false;
                continue;
            }
            if (c == '#' && !inWord) break;
            inWord = true;
            if (c == '\'')
            {
                int end = line.IndexOf('\'', i + 1);
                if (end < 0) throw new FormatException($"unclosed ' in: {line}");
                word.Append(line, i + 1, end - i - 1);
                i = end;
            }
            else if (c == '"')
            {
                for (i++; ; i++)
                {
                    if (i >= line.Length) throw new FormatException($"unclosed \" in: {line}");
                    if (line[i] == '"') break;
                    if (line[i] == '\\' && i + 1 < line.Length && line[i + 1] is '"' or '\\' or '$') i++;
                    word.Append(line[i]);
                }
            }
            else if (c == '\\' && i + 1 < line.Length) word.Append(line[++i]);
            else word.Append(c);
        }
        if (inWord) words.Add(word.ToString());
        return words;
    }
}

[Collection(ConsoleCollection.Name)]
public sealed partial class TutorialTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "rlhf-tutorial-" + Guid.NewGuid().ToString("N"));
    private readonly List<(Process Process, StringBuilder Log)> _jobs = [];

    public void Dispose()
    {
        foreach (var (process, _) in _jobs) Stop(process);
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public void Given_the_words_of_a_tutorial_line_Then_quotes_escapes_and_comments_split_as_in_bash()
    {
        Assert.Equal(["rlhf", "sample", "--prompt", "Tom was a happy dog.", "--n", "2"],
            TutorialScript.Words("rlhf sample --prompt \"Tom was a happy dog.\" --n 2   # two samples"));
        Assert.Equal(["curl", "-d", "{\"prompt\": \"a # b\"}", "x"], TutorialScript.Words("curl -d '{\"prompt\": \"a # b\"}' x"));
        Assert.Equal(["a\"b", "c d", "e#f"], TutorialScript.Words("\"a\\\"b\" c\\ d e#f"));
        Assert.Empty(TutorialScript.Words("   # only a comment"));
        Assert.Throws<FormatException>(() => TutorialScript.Words("rlhf sample --prompt 'unclosed"));
    }

    [Fact]
    public async Task Given_the_tutorial_When_every_command_runs_in_order_Then_each_succeeds_and_writes_what_it_names()
    {
        string tutorial = Path.Combine(Repository.Root, "docs", "tutorial.md");
        var commands = TutorialScript.Commands(File.ReadAllText(tutorial));
        Assert.True(commands.Count >= 10, $"{tutorial} has only {commands.Count} commands in ```bash blocks.");
        var ports = FreePorts(commands);
        Directory.CreateDirectory(_dir);
        var clock = Stopwatch.StartNew();
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        string previous = Directory.GetCurrentDirectory();
        Directory.SetCurrentDirectory(_dir);
        try
        {
            foreach (var command in commands)
            {
                string text = ports.Aggregate(command.Text, (t, p) => PortReference().Replace(t, m => m.Groups["port"].Value == p.Key ? m.Groups["before"].Value + p.Value : m.Value));
                var words = TutorialScript.Words(text).ToArray();
                var started = Stopwatch.StartNew();
                switch (words)
                {
                    case ["rlhf", .. var args, "&"]:
                        await StartAsync(command, args);
                        break;
                    case ["rlhf", .. var args]:
                        Run(command, args);
                        break;
                    case ["curl", .. var args]:
                        await CurlAsync(command, args);
                        break;
                    case ["kill", "%1"]:
                        Assert.True(_jobs.Count > 0, $"docs/tutorial.md:{command.Line}: `kill %1` with no server running.");
                        Stop(_jobs[0].Process);
                        _jobs.RemoveAt(0);
                        break;
                    default:
                        Assert.Fail($"docs/tutorial.md:{command.Line}: this test runs `rlhf ...`, `rlhf ... &`, `curl ...` and `kill %1` lines; got `{command.Text}`.");
                        break;
                }
                output.WriteLine(FormattableString.Invariant($"{started.Elapsed.TotalSeconds,6:F1} s  line {command.Line}: {command.Text}"));
            }
            Assert.True(_jobs.Count == 0, $"the tutorial leaves {_jobs.Count} server(s) running: end each with `kill %1`.");
        }
        finally
        {
            Directory.SetCurrentDirectory(previous);
        }
        output.WriteLine(FormattableString.Invariant(
            $"{commands.Count} commands in {clock.Elapsed.TotalSeconds:F1} s; test process CPU {(Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds:F1} s (servers not counted)."));
    }

    /// <summary>Runs one command in-process; it must exit 0 and leave every file or folder its --out / --queries names.</summary>
    private void Run(TutorialCommand command, string[] args)
    {
        var run = RlhfRunner.Run(args);
        // A line the tutorial shows failing ends in "# fails: WORDS": it must exit non-zero with WORDS in its error.
        if (Regex.Match(command.Text, "# fails: (?<why>.+)$") is { Success: true } fails)
        {
            string why = fails.Groups["why"].Value.Trim();
            Assert.True(run.Exit != 0, $"docs/tutorial.md:{command.Line}: `{command.Text}` should fail but exited 0.");
            Assert.True(run.ErrorLines.Any(l => l.Contains(why, StringComparison.Ordinal)), $"docs/tutorial.md:{command.Line}: the error does not say \"{why}\": {string.Join(" | ", run.ErrorLines.TakeLast(5))}");
            return;
        }
        Assert.True(run.Exit == 0, $"docs/tutorial.md:{command.Line}: `{command.Text}` exited {run.Exit}: {string.Join(" | ", run.ErrorLines.TakeLast(5))}");
        for (int i = 0; i + 1 < args.Length; i++)
        {
            if (args[i] is not ("--out" or "--queries") || args[i + 1] == "-") continue;
            string path = Path.Combine(_dir, args[i + 1]);
            Assert.True(Path.Exists(path), $"docs/tutorial.md:{command.Line}: `{command.Text}` succeeded but wrote no {args[i + 1]}.");
            if (File.Exists(path)) Assert.True(new FileInfo(path).Length > 0, $"docs/tutorial.md:{command.Line}: {args[i + 1]} is empty.");
        }
        // A cheap look at what the main steps made: a summary a script could read.
        switch (args)
        {
            case ["eval", ..]:
                var result = JsonNode.Parse(run.Out)!;
                double rate = (double)result["win_rate"]!["rate"]!;
                Assert.InRange(rate, 0, 1);
                Assert.Equal((int)result["prompts"]!, (int)result["win_rate"]!["decided"]! + (int)result["win_rate"]!["skipped"]!);
                break;
            case ["label", "export", ..]:
                Assert.Contains(run.ErrorLines, l => Regex.IsMatch(l, "^exported [1-9][0-9]* lines$"));
                break;
            case ["label", "oracle" or "judge", ..]:
                Assert.Matches("submitted [1-9][0-9]* judgments", run.Out);
                break;
            case ["pretrain" or "sft", ..]:
                Assert.Contains("\"cancelled\":false", run.Out, StringComparison.Ordinal);
                break;
        }
    }

    /// <summary>Starts a server the way `rlhf ... &` does and waits for the line with its address.</summary>
    private async Task StartAsync(TutorialCommand command, string[] args)
    {
        string host = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet";
        var info = new ProcessStartInfo(host) { WorkingDirectory = _dir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "rlhf.dll"));
        foreach (var a in args) info.ArgumentList.Add(a);
        var log = new StringBuilder();
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (log) log.AppendLine(e.Data);
            if (e.Data.Contains("http://127.0.0.1:", StringComparison.Ordinal)) ready.TrySetResult();
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null) lock (log) log.AppendLine(e.Data);
        };
        process.Exited += (_, _) => ready.TrySetException(new InvalidOperationException("the server exited"));
        Assert.True(process.Start(), $"docs/tutorial.md:{command.Line}: could not start {host}.");
        _jobs.Add((process, log));
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var first = await Task.WhenAny(ready.Task, Task.Delay(TimeSpan.FromMinutes(2)));
        Assert.True(first == ready.Task && ready.Task.IsCompletedSuccessfully,
            $"docs/tutorial.md:{command.Line}: `{command.Text}` printed no address: {log}");
    }

    /// <summary>The request a `curl` line makes: -s, -H 'Name: value', -d BODY (POST), and the URL.</summary>
    private static async Task CurlAsync(TutorialCommand command, string[] args)
    {
        string? url = null, body = null;
        var headers = new List<(string Name, string Value)>();
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "-s":
                    break;
                case "-H" when i + 1 < args.Length && args[i + 1].IndexOf(':', StringComparison.Ordinal) > 0:
                    string h = args[++i];
                    int colon = h.IndexOf(':', StringComparison.Ordinal);
                    headers.Add((h[..colon].Trim(), h[(colon + 1)..].Trim()));
                    break;
                case "-d" when i + 1 < args.Length:
                    body = args[++i];
                    break;
                case var a when a.StartsWith("http://", StringComparison.Ordinal):
                    url = a;
                    break;
                default:
                    Assert.Fail($"docs/tutorial.md:{command.Line}: curl option {args[i]} is not one this test makes (-s, -H, -d, URL).");
                    break;
            }
        }
        Assert.NotNull(url);
        using var http = new HttpClient { Timeout = TimeSpan.FromMinutes(2) };
        using var request = new HttpRequestMessage(body is null ? HttpMethod.Get : HttpMethod.Post, url);
        string contentType = headers.FirstOrDefault(h => h.Name.Equals("Content-Type", StringComparison.OrdinalIgnoreCase)).Value ?? "application/x-www-form-urlencoded";
        if (body is not null) request.Content = new StringContent(body, Encoding.UTF8, contentType);
        foreach (var (name, value) in headers.Where(h => !h.Name.Equals("Content-Type", StringComparison.OrdinalIgnoreCase)))
            request.Headers.TryAddWithoutValidation(name, value);
        using var response = await http.SendAsync(request);
        string text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"docs/tutorial.md:{command.Line}: {url} answered {(int)response.StatusCode}: {text}");
        Assert.False(string.IsNullOrWhiteSpace(text), $"docs/tutorial.md:{command.Line}: {url} answered with an empty body.");
    }

    /// <summary>Each port the tutorial names (`--port N`) mapped to a port that is free here, so parallel runs never collide.</summary>
    private static Dictionary<string, string> FreePorts(IEnumerable<TutorialCommand> commands)
    {
        var map = new Dictionary<string, string>();
        foreach (var c in commands)
        {
            foreach (Match m in Regex.Matches(c.Text, @"--port (\d+)"))
            {
                if (map.ContainsKey(m.Groups[1].Value)) continue;
                using var probe = new TcpListener(IPAddress.Loopback, 0);
                probe.Start();
                map[m.Groups[1].Value] = ((IPEndPoint)probe.LocalEndpoint).Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
        }
        return map;
    }

    private static void Stop(Process process)
    {
        try
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
            process.WaitForExit(10_000);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
        process.Dispose();
    }

    /// <summary>A port as the tutorial writes it: after `--port ` or after the colon of an address.</summary>
    [GeneratedRegex(@"(?<before>--port |:)(?<port>\d+)(?!\d)")]
    private static partial Regex PortReference();
}
