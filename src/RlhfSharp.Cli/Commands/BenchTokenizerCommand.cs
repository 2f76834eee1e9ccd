// `rlhf bench tokenizer`: GPT-2 encode throughput on a corpus, beside the same encoder driven by .NET's Regex
// for pre-tokenisation (the peer, measured in the same process by RlhfSharp.Bench's TokenizerBench).
using System.CommandLine;
using RlhfSharp.Runs;
using System.Globalization;
using RlhfSharp.Bench;
using RlhfSharp.Text;

namespace RlhfSharp.Cli.Commands;

internal static class BenchTokenizerCommand
{
    public static Command Create()
    {
        var corpus = new Option<string>("--corpus") { Description = "Corpus file or folder (the default: Jane Austen's six novels, shipped with rlhf in data/).", DefaultValueFactory = _ => "data/austen" };
        var tokenizerDir = new Option<string>("--tokenizer") { Description = "Folder with GPT-2's vocab.json + merges.txt.", DefaultValueFactory = _ => "data/gpt2" };
        var repeats = new Option<int>("--repeats") { Description = "Timed passes; the fastest is reported.", DefaultValueFactory = _ => 3 }.InRange(new(1));
        var json = new Option<bool>("--json") { Description = "Print one JSON object." };

        var command = new Command("tokenizer", "Encode throughput (MB/s) of the GPT-2 tokenizer on a corpus.");
        foreach (var o in new Option[] { corpus, tokenizerDir, repeats, json }) command.Options.Add(o);
        command.SetAction(parse =>
        {
            string corpusPath = DataPaths.Resolve(parse.GetValue(corpus)!);
            string text = DataPaths.ReadCorpus(corpusPath, "--corpus");
            var tokenizer = Gpt2Tokenizer.Load(DataPaths.Resolve(parse.GetValue(tokenizerDir)!));
            var result = TokenizerBench.Measure(tokenizer, text, Math.Max(1, parse.GetValue(repeats)));
            string name = Path.GetFileName(corpusPath.TrimEnd(Path.DirectorySeparatorChar));
            if (parse.GetValue(json)) Console.WriteLine(result.ToJson(name));
            else
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{name}: {result.Bytes} bytes -> {result.Tokens} tokens; {result.MbPerSecond:F2} MB/s (first pass {result.ColdMbPerSecond:F2} MB/s); Regex pre-tokenizer {result.RegexMbPerSecond:F2} MB/s ({result.SpeedupVsRegex:F2}x slower)"));
            }
            return 0;
        });
        return command;
    }
}
