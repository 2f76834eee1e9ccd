// `rlhf bench tokenizer`: GPT-2 encode throughput on a corpus, beside the same encoder driven by .NET's Regex
// for pre-tokenisation (the peer, measured in the same process).
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using RlhfSharp.Text;

namespace RlhfSharp.Cli.Commands;

internal static class BenchTokenizerCommand
{
    public static Command Create()
    {
        var corpus = new Option<string>("--corpus") { Description = "Corpus file or folder (the default: Jane Austen's six novels, shipped with rlhf in data/).", DefaultValueFactory = _ => "data/austen" };
        var tokenizerDir = new Option<string>("--tokenizer") { Description = "Folder with GPT-2's vocab.json + merges.txt.", DefaultValueFactory = _ => "data/gpt2" };
        var repeats = new Option<int>("--repeats") { Description = "Timed passes; the fastest is reported.", DefaultValueFactory = _ => 3 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object." };

        var command = new Command("tokenizer", "Encode throughput (MB/s) of the GPT-2 tokenizer on a corpus.");
        foreach (var o in new Option[] { corpus, tokenizerDir, repeats, json }) command.Options.Add(o);
        command.SetAction(parse =>
        {
            string corpusPath = DataPaths.Resolve(parse.GetValue(corpus)!);
            string text = DataPaths.ReadCorpus(corpusPath, "--corpus");
            var tokenizer = Gpt2Tokenizer.Load(DataPaths.Resolve(parse.GetValue(tokenizerDir)!));
            long bytes = Encoding.UTF8.GetByteCount(text);
            int passes = Math.Max(1, parse.GetValue(repeats));

            var ids = new List<int>(text.Length / 3);
            // One untimed pass compiles the code; "cold" then times a pass with an empty cache of encoded pieces.
            tokenizer.EncodeOrdinary(text, ids);
            tokenizer.ClearCache();
            double cold = Time(() => tokenizer.EncodeOrdinary(text, ids), ids);
            int tokens = ids.Count;
            double warm = Enumerable.Range(0, passes).Min(_ => Time(() => tokenizer.EncodeOrdinary(text, ids), ids));
            // CPU time of the same single-threaded work: steadier than wall time when the machine is shared.
            double warmCpu = Enumerable.Range(0, passes).Min(_ => CpuTime(() => tokenizer.EncodeOrdinary(text, ids), ids));
            double regex = Enumerable.Range(0, passes).Min(_ => Time(() => tokenizer.EncodeOrdinaryWithRegex(text, ids), ids));
            if (ids.Count != tokens) throw new InvalidOperationException($"The regex path gave {ids.Count} tokens, the scanner {tokens}.");

            double mb = bytes / 1e6;
            string name = Path.GetFileName(corpusPath.TrimEnd(Path.DirectorySeparatorChar));
            if (parse.GetValue(json))
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{{\"corpus\":\"{name}\",\"bytes\":{bytes},\"mb_per_s\":{mb / warm:F2},\"tokens\":{tokens},\"cpu_mb_per_s\":{mb / warmCpu:F2},\"cold_mb_per_s\":{mb / cold:F2},\"regex_mb_per_s\":{mb / regex:F2},\"speedup_vs_regex\":{regex / warm:F2}}}"));
            }
            else
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{name}: {bytes} bytes -> {tokens} tokens; {mb / warm:F2} MB/s (first pass {mb / cold:F2} MB/s); Regex pre-tokenizer {mb / regex:F2} MB/s ({regex / warm:F2}x slower)"));
            }
            return 0;
        });
        return command;
    }

    private static double CpuTime(Action encode, List<int> ids)
    {
        ids.Clear();
        var process = Process.GetCurrentProcess();
        var before = process.TotalProcessorTime;
        encode();
        process.Refresh();
        return Math.Max(1e-6, (process.TotalProcessorTime - before).TotalSeconds);
    }

    private static double Time(Action encode, List<int> ids)
    {
        ids.Clear();
        var sw = Stopwatch.StartNew();
        encode();
        return sw.Elapsed.TotalSeconds;
    }
}
