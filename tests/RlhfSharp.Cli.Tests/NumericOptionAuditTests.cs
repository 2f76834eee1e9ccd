// One error voice (issue 17): every numeric option of every `rlhf` command and subcommand, found by walking the command
// tree (so an option added tomorrow is audited too), is given bad values — NaN, Infinity, 1e309 and text always; -1 and 0
// where its declared range excludes them — and each run must exit 1 with exactly one line on stderr that names the option
// and carries none of .NET's wording ("System.", "Parameter '", "Nullable`1", "Specified argument"). Runs in-process.
using System.CommandLine;
using RlhfSharp.Cli.Commands;
using RlhfSharp.Runs;
using Xunit.Abstractions;

namespace RlhfSharp.Cli.Tests;

[Collection(ConsoleCollection.Name)]
public sealed class NumericOptionAuditTests(ITestOutputHelper output)
{
    private static readonly string[] DotNetWording = ["System.", "Parameter '", "Nullable`1", "Specified argument", "   at ", "Exception"];

    /// <summary>(command path, option) for every numeric option under `rlhf`.</summary>
    private static List<(string[] Path, Option Option)> NumericOptions(Command root)
    {
        var found = new List<(string[], Option)>();
        void Walk(Command command, string[] path)
        {
            foreach (var option in command.Options)
                if (Commands.NumericOptions.NumberType(option.ValueType) is not null) found.Add((path, option));
            foreach (var sub in command.Subcommands) Walk(sub, [.. path, sub.Name]);
        }
        Walk(root, []);
        return found;
    }

    [Fact]
    public void Given_the_command_tree_Then_every_numeric_option_declares_its_range()
    {
        var options = NumericOptions(RlhfCommand.Create());
        Assert.True(options.Count > 100, $"only {options.Count} numeric options found: the walk is broken");
        var undeclared = options.Where(o => Commands.NumericOptions.RangeOf(o.Option) is null)
            .Select(o => $"rlhf {string.Join(' ', o.Path)} {o.Option.Name}").ToList();
        Assert.True(undeclared.Count == 0,
            "numeric options without a declared range ([ConfigOption(Min = ...)] or .InRange(...)):\n" + string.Join("\n", undeclared));
    }

    [Fact]
    public void Given_bad_numeric_values_When_run_Then_one_line_names_the_option_in_house_wording()
    {
        var options = NumericOptions(RlhfCommand.Create());
        var failures = new List<string>();
        int runs = 0;
        var commands = new HashSet<string>();
        foreach (var (path, option) in options)
        {
            var range = Commands.NumericOptions.RangeOf(option) ?? NumericRange.Any;
            var values = new List<string> { "NaN", "Infinity", "1e309", "text" };
            if (!range.Contains(-1)) values.Add("-1");
            if (!range.Contains(0)) values.Add("0");
            foreach (string value in values)
            {
                string[] args = [.. path, option.Name, value];
                string shown = "rlhf " + string.Join(' ', args);
                // Parse first: a value the parser accepted would start the command (a benchmark, a training run).
                if (RlhfCommand.Create().Parse(args).Errors.Count == 0)
                {
                    failures.Add($"{shown}: accepted");
                    continue;
                }
                var run = RlhfRunner.Run(args);
                runs++;
                commands.Add(string.Join(' ', path));
                string line = run.ErrorLines.Count > 0 ? run.ErrorLines[0] : "";
                if (run.Exit != 1) failures.Add($"{shown}: exit code {run.Exit}");
                else if (run.ErrorLines.Count != 1) failures.Add($"{shown}: {run.ErrorLines.Count} lines on stderr: {string.Join(" | ", run.ErrorLines)}");
                else if (!line.Contains(option.Name, StringComparison.Ordinal)) failures.Add($"{shown}: the line does not name {option.Name}: {line}");
                else if (DotNetWording.FirstOrDefault(w => line.Contains(w, StringComparison.Ordinal)) is { } leak) failures.Add($"{shown}: .NET wording '{leak}': {line}");
            }
        }
        output.WriteLine($"audit: {commands.Count} commands, {options.Count} numeric options, {runs} bad-value runs");
        Assert.True(failures.Count == 0, $"{failures.Count} of {runs} runs failed:\n{string.Join("\n", failures.Take(60))}");
    }

    [Theory]
    [InlineData("sft", "--batch-size", "0", "--batch-size must be a whole number >= 1")]
    [InlineData("pretrain", "--stories", "-1", "--stories must be a whole number >= 1")]
    [InlineData("story-world", "--stories", "-1", "--stories must be a whole number >= 0")]
    [InlineData("sft", "--seed", "-1", "--seed must be a whole number >= 0")]
    [InlineData("pretrain", "--lr", "Infinity", "--lr must be a finite number > 0")]
    [InlineData("pretrain", "--lr", "1e309", "--lr must be a finite number > 0")]
    [InlineData("ppo", "--gamma", "1.5", "--gamma must be a finite number in [0, 1]")]
    public void Given_the_values_of_issue_17_When_run_Then_house_wording(string command, string option, string value, string expected)
    {
        var run = RlhfRunner.Run(command, option, value);
        output.WriteLine(string.Join("\n", run.ErrorLines));
        Assert.Equal(1, run.Exit);
        string line = Assert.Single(run.ErrorLines);
        Assert.Contains(expected, line, StringComparison.Ordinal);
        Assert.Contains($"(got '{value}')", line, StringComparison.Ordinal);
    }
}
