// `rlhf story-world`: writes the built-in story world to files (pre-training text, SFT demonstrations and RL
// prompts as JSONL with TRL's column names), so any stage can also be run on it from files.
using System.CommandLine;
using RlhfSharp.Runs;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using RlhfSharp.Text.StoryWorld;

namespace RlhfSharp.Cli.Commands;

internal static class StoryWorldCommand
{
    public static Command Create()
    {
        var seed = new Option<ulong>("--seed") { Description = "Seed of the generator (same seed, same files).", DefaultValueFactory = _ => 0 }.InRange(NumericRange.NonNegative);
        var stories = new Option<int>("--stories") { Description = "Stories in corpus.txt (one per line).", DefaultValueFactory = _ => 20_000 }.InRange(NumericRange.NonNegative);
        var demonstrations = new Option<int>("--demonstrations") { Description = "Lines of demos.jsonl ({\"prompt\",\"completion\"}).", DefaultValueFactory = _ => 5_000 }.InRange(NumericRange.NonNegative);
        var prompts = new Option<int>("--prompts") { Description = "Lines of prompts.jsonl ({\"prompt\"}), held out from the demonstrations.", DefaultValueFactory = _ => 1_000 }.InRange(NumericRange.NonNegative);
        var output = new Option<string>("--out") { Description = "Folder to write corpus.txt, demos.jsonl and prompts.jsonl into.", Required = true };

        var command = new Command("story-world", "Write the built-in story world (corpus, demonstrations, prompts) to files.");
        foreach (var o in new Option[] { seed, stories, demonstrations, prompts, output }) command.Options.Add(o);
        command.SetAction(parse =>
        {
            string dir = parse.GetValue(output)!;
            ulong s = parse.GetValue(seed);
            foreach (var (option, value) in new[] { ("--stories", parse.GetValue(stories)), ("--demonstrations", parse.GetValue(demonstrations)), ("--prompts", parse.GetValue(prompts)) })
            {
                if (value < 0) throw new ArgumentOutOfRangeException(option, value, $"{option} must be 0 or more, got {value}.");
            }
            Directory.CreateDirectory(dir);
            var utf8 = new UTF8Encoding(false);
            var json = new JsonSerializerOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
            File.WriteAllText(Path.Combine(dir, "corpus.txt"), Stories.Corpus(s, parse.GetValue(stories)), utf8);
            File.WriteAllLines(Path.Combine(dir, "demos.jsonl"),
                Stories.Demonstrations(s, parse.GetValue(demonstrations)).Select(d => JsonSerializer.Serialize(new { prompt = d.Prompt, completion = d.Completion }, json)), utf8);
            File.WriteAllLines(Path.Combine(dir, "prompts.jsonl"),
                Stories.Prompts(s, parse.GetValue(prompts)).Select(p => JsonSerializer.Serialize(new { prompt = p }, json)), utf8);
            Console.WriteLine($"Wrote corpus.txt, demos.jsonl and prompts.jsonl to {dir} (seed {s}).");
            return 0;
        });
        return command;
    }
}
