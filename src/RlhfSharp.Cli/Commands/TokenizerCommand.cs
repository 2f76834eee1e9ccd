// `rlhf tokenizer train`: learn a byte-level BPE (or character) vocabulary from a corpus and save it.
using System.CommandLine;
using RlhfSharp.Runs;
using RlhfSharp.Text;
using Spectre.Console;

namespace RlhfSharp.Cli.Commands;

internal static class TokenizerCommand
{
    public static Command Create()
    {
        var command = new Command("tokenizer", "Train and inspect tokenizers.");
        command.Subcommands.Add(CreateTrain());
        return command;
    }

    private static Command CreateTrain()
    {
        var corpus = new Option<string>("--corpus") { Description = "Text file, or a folder whose *.txt files are read in name order.", Required = true };
        var vocabSize = new Option<int>("--vocab-size") { Description = BpeTrainerOptions.Describe(nameof(BpeTrainerOptions.VocabSize)), DefaultValueFactory = _ => new BpeTrainerOptions().VocabSize }.InRange(new(1));
        var output = new Option<string>("--out") { Description = "Folder to write vocab.json + merges.txt (or char_tokenizer.json) into.", Required = true };
        var minFrequency = new Option<int>("--min-frequency") { Description = BpeTrainerOptions.Describe(nameof(BpeTrainerOptions.MinPairFrequency)), DefaultValueFactory = _ => new BpeTrainerOptions().MinPairFrequency }.InRange(new(1));
        var kind = new Option<string>("--kind") { Description = "bpe (byte-level BPE, GPT-2 format) or char (one token per character).", DefaultValueFactory = _ => "bpe" };
        kind.AcceptOnlyFromAmong("bpe", "char");

        var command = new Command("train", "Learn a tokenizer from a corpus and save it.");
        foreach (var o in new Option[] { corpus, vocabSize, output, minFrequency, kind }) command.Options.Add(o);
        command.SetAction(parse =>
        {
            string corpusPath = DataPaths.Resolve(parse.GetValue(corpus)!);
            string outDir = parse.GetValue(output)!;
            string text = DataPaths.ReadCorpus(corpusPath, "--corpus");
            var started = System.Diagnostics.Stopwatch.StartNew();
            ITokenizer tokenizer;
            if (parse.GetValue(kind) == "char")
            {
                tokenizer = CharTokenizer.FromCorpus(text);
            }
            else
            {
                var options = new BpeTrainerOptions { VocabSize = parse.GetValue(vocabSize), MinPairFrequency = parse.GetValue(minFrequency) };
                Gpt2Tokenizer? trained = null;
                AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
                    .Start(ctx =>
                    {
                        var task = ctx.AddTask($"merges for {options.VocabSize} tokens", maxValue: Math.Max(1, options.VocabSize - 257));
                        trained = BpeTrainer.Train(text, options, (done, _) => task.Value = done);
                        task.Value = task.MaxValue;
                    });
                tokenizer = trained!;
            }
            tokenizer.Save(outDir);
            int tokens = tokenizer.Encode(text, allowSpecial: true).Length;
            Console.WriteLine(FormattableString.Invariant(
                $"Saved a {tokenizer.VocabSize}-token vocabulary to {outDir} in {started.Elapsed.TotalSeconds:F1} s; the corpus ({text.Length} chars) is {tokens} tokens."));
            return 0;
        });
        return command;
    }
}
