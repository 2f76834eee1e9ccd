// `rlhf` as a user installs it: the CLI is packed as a .NET tool into a temporary folder feed, installed into a temporary
// tool path from that feed alone, and run as `rlhf --version` and `rlhf demo --quick`, each a separate process.
using System.Diagnostics;
using System.IO.Compression;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Nodes;
using RlhfSharp.Cli.Commands;
using Xunit.Abstractions;

namespace RlhfSharp.Cli.Tests;

/// <summary>Tests that start `dotnet` and the installed tool: alone, so their processes do not compete with other tests.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ToolInstallCollection
{
    public const string Name = "tool install";
}

[Collection(ToolInstallCollection.Name)]
[Trait("Category", "ToolInstall")]
public sealed class ToolInstallTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "rlhf-tool-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public void Given_the_packed_cli_When_installed_into_a_tool_path_from_a_folder_feed_Then_rlhf_prints_its_version_and_runs_the_quick_demo()
    {
        var rlhfAssembly = typeof(DemoCommand).Assembly;
        string version = rlhfAssembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion;
        Assert.DoesNotContain('+', version); // Directory.Build.props keeps the commit out of it
        string configuration = typeof(ToolInstallTests).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()!.Configuration;
        string root = Repository.Root;
        string feed = Path.Combine(_dir, "feed"), tools = Path.Combine(_dir, "tools"), demo = Path.Combine(_dir, "demo");
        Directory.CreateDirectory(_dir);

        // 1. Pack what this test run already built (--no-build, --no-restore): the suite's bin/ and obj/ under src/ are not
        //    rebuilt while other tests use them. The publish folder and the nuspec go to the temporary folder.
        Run("dotnet", ["pack", Path.Combine(root, "src", "RlhfSharp.Cli", "RlhfSharp.Cli.csproj"), "-c", configuration, "--no-build", "--no-restore",
            "-o", feed, "-p:PublishDir=" + Path.Combine(_dir, "publish") + "/", "-p:NuspecOutputPath=" + Path.Combine(_dir, "nuspec") + "/", "-nodeReuse:false"]);
        string package = Path.Combine(feed, $"RlhfSharp.Cli.{version}.nupkg");
        Assert.True(File.Exists(package), $"dotnet pack wrote no {Path.GetFileName(package)} in the feed: {string.Join(", ", Directory.GetFiles(feed).Select(Path.GetFileName))}");
        AssertPackageHoldsThePublishFolder(package, Path.Combine(_dir, "publish"));

        // 2. Install from the temporary feed only: a nuget.config that clears every other source, so nothing is asked of a registry.
        string config = Path.Combine(_dir, "nuget.config");
        File.WriteAllText(config, $"""
            <?xml version="1.0" encoding="utf-8"?>
            <configuration>
              <packageSources>
                <clear />
                <add key="rlhf-test-feed" value="{feed}" />
              </packageSources>
            </configuration>
            """);
        Run("dotnet", ["tool", "install", "RlhfSharp.Cli", "--version", version, "--tool-path", tools, "--configfile", config]);
        string rlhf = Path.Combine(tools, OperatingSystem.IsWindows() ? "rlhf.exe" : "rlhf");
        Assert.True(File.Exists(rlhf), $"dotnet tool install made no {rlhf}");

        // 3. The installed command, as a user runs it.
        var (_, printed, _) = Run(rlhf, ["--version"]);
        Assert.Equal(version, printed.Trim());

        var (_, summaryLine, _) = Run(rlhf, ["demo", "--quick", "--out", demo]);
        var summary = JsonNode.Parse(summaryLine.Trim().Split('\n')[^1])!.AsObject();
        double win = (double)summary["win_rate_ppo"]!;
        Assert.InRange(win, 0, 1);
        string report = (string)summary["report"]!;
        Assert.Equal(Path.GetFullPath(Path.Combine(demo, "report.html")), Path.GetFullPath(report));
        Assert.Contains("<svg", File.ReadAllText(report), StringComparison.Ordinal);
        // stages.json lists the finished stages in order: the whole pipeline ran, ending with the report.
        var stages = JsonSerializer.Deserialize<List<string>>(File.ReadAllText(Path.Combine(demo, "stages.json")))!;
        Assert.Equal("pretrain", stages[0]);
        Assert.Equal("report", stages[^1]);
    }

    /// <summary>
    /// The tool package carries every file of the publish folder (data files copied there included), the README and the
    /// licence expression from Directory.Build.props.
    /// </summary>
    private static void AssertPackageHoldsThePublishFolder(string package, string publish)
    {
        using var zip = ZipFile.OpenRead(package);
        var entries = zip.Entries.Select(e => e.FullName).ToHashSet(StringComparer.Ordinal);
        // The native launcher (apphost) is the one published file a tool package leaves out: `dotnet tool install` makes its own.
        var published = Directory.GetFiles(publish, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(publish, f).Replace('\\', '/'))
            .Where(f => f is not ("rlhf" or "rlhf.exe"))
            .Select(f => "tools/net10.0/any/" + f).ToList();
        Assert.Contains("tools/net10.0/any/rlhf.dll", published);
        var missing = published.Where(f => !entries.Contains(f)).ToList();
        Assert.True(missing.Count == 0, $"the package lacks {missing.Count} published files: {string.Join(", ", missing.Take(5))}");
        Assert.Contains("README.md", entries);
        using var nuspec = new StreamReader(zip.GetEntry("RlhfSharp.Cli.nuspec")!.Open());
        string metadata = nuspec.ReadToEnd();
        Assert.Contains("<license type=\"expression\">MIT</license>", metadata, StringComparison.Ordinal);
        Assert.Contains("<packageType name=\"DotnetTool\" />", metadata, StringComparison.Ordinal);
    }

    /// <summary>Runs a process to its end (at most ten minutes), asserts exit code 0, and logs how long it took.</summary>
    private (int Exit, string Out, string Err) Run(string file, string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = _dir };
        foreach (var a in args) start.ArgumentList.Add(a);
        // `dotnet test` leaves MSBuild's own variables in the environment; a child `dotnet pack` must find its SDK afresh.
        foreach (var key in start.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase)).ToList())
            start.Environment.Remove(key);
        start.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        start.Environment["DOTNET_NOLOGO"] = "1";
        start.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        // The tool's launcher finds the runtime through DOTNET_ROOT: the one running this test (…/shared/Microsoft.NETCore.App/10.x/).
        start.Environment["DOTNET_ROOT"] = Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", ".."));
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(10)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{Path.GetFileName(file)} {string.Join(' ', args)} did not finish in 10 minutes.");
        }
        process.WaitForExit();
        string outText = stdout.Result, errText = stderr.Result;
        output.WriteLine($"{Path.GetFileName(file)} {string.Join(' ', args)}: exit {process.ExitCode} in {clock.Elapsed.TotalSeconds:F1} s");
        Assert.True(process.ExitCode == 0, $"{Path.GetFileName(file)} {string.Join(' ', args)} exited {process.ExitCode}:\n{outText}\n{errText}");
        return (process.ExitCode, outText, errText);
    }
}
