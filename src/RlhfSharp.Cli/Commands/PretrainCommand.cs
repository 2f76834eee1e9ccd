// `rlhf pretrain`: train a GPT from scratch on a corpus (or the built-in story world) and write a complete model folder
// (config.json + model.safetensors + tokenizer files) that `rlhf sample`, `rlhf sft` and every later stage load.
using System.CommandLine;
using RlhfSharp.Alignment.LanguageModeling;
using RlhfSharp.Models;
using RlhfSharp.Runs;
using RlhfSharp.Text;

namespace RlhfSharp.Cli.Commands;

internal static class PretrainCommand
{
    public static Command Create()
    {
        var corpus = new Option<string?>("--corpus") { Description = "Text file, or a folder whose *.txt files are read in name order (default: generated story-world stories)." };
        var stories = new Option<int>("--stories") { Description = "Stories generated when no --corpus is given.", DefaultValueFactory = _ => 4000 }.InRange(new(1));
        var tokenizer = new Option<string[]>("--tokenizer")
        {
            Description = "gpt2 DIR (vocab.json + merges.txt), bpe (learned on the corpus, --vocab-size), char, or DIR (any saved tokenizer).",
            Arity = new ArgumentArity(1, 2),
            AllowMultipleArgumentsPerToken = true,
            DefaultValueFactory = _ => ["bpe"],
        };
        var vocabSize = new Option<int?>("--vocab-size") { Description = "BPE vocabulary size (default 4096 for a corpus, 1024 for the story world)." }.InRange(new(1));
        var output = new Option<string>("--out") { Description = "Model folder to write when training finishes.", Required = true };
        var shared = new LmTrainingOptionSet();
        var command = new Command("pretrain", "Pre-train a GPT on a corpus (or the story world) with AdamW, warm-up + cosine, clipping, checkpoints and --resume.");
        var dtype = AlignCommandSupport.DtypeOption();
        foreach (var o in new Option[] { corpus, stories, tokenizer, vocabSize, output, dtype }) command.Options.Add(o);
        shared.AddTo(command);
        var settings = new ConfigOptions<PretrainConfig>(command);
        command.SetAction(p =>
        {
            string outDir = p.GetValue(output)!;
            string runDir = shared.RunFolder(p, "pretrain", outDir);
            bool resume = p.GetValue(shared.Resume);
            string? corpusPath = p.GetValue(corpus) is { } c ? DataPaths.Resolve(c) : null;
            var documents = corpusPath is null ? PretrainTrainer.StoryWorldDocuments(1, p.GetValue(stories)) : ReadDocuments(corpusPath);
            using var run = ClusterRuns.Open(p, runDir, resume);

            // A resumed run replays its recorded command line with its recorded settings (RunContract), so this is the same record.
            var config = LmTrainingOptionSet.Build(settings, p, c => c.Training, (c, t) => c with { Training = t });
            if (!GptConfig.Sizes.Contains(config.ModelSize))
                throw new ArgumentException($"--model-size {config.ModelSize}: expected one of {string.Join(", ", GptConfig.Sizes)}.");
            // The tokenizer learned at the start is in every checkpoint (a run stopped before its first one starts over).
            ITokenizer tok = resume && run.LatestCheckpoint() is { } latest ? TokenizerFiles.Load(latest.Path)
                : MakeTokenizer(p.GetValue(tokenizer)!, documents, p.GetValue(vocabSize) ?? (corpusPath is null ? 1024 : 4096));
            var trainer = new PretrainTrainer(config);
            var model = trainer.CreateModel(tok);
            var tokens = PretrainTrainer.Tokenize(tok, documents);
            if (RlhfSharp.Distributed.Cluster.World.IsRoot) Console.Error.WriteLine(FormattableString.Invariant(
                $"{tokens.Length:N0} tokens ({tok.VocabSize} in the vocabulary); {config.ModelSize}: {model.ParameterSet.Count:N0} parameters, block {model.Config.BlockSize}; run folder {run.Path}"));
            var result = LmCommandSupport.WithProgress("pretrain", config.Training.Steps, (progress, ct) => trainer.Train(model, tok, tokens, run, progress, ct));
            // Under mpirun rank 0 alone writes the outputs and the summary line (every rank holds the same weights).
            if (!RlhfSharp.Distributed.Cluster.World.IsRoot) return result.Cancelled ? 130 : 0;
            if (!result.Cancelled)
            {
                model.Save(outDir, dtype: p.GetValue(dtype));
                tok.Save(outDir);
                RunContract.Finish(run, result.Steps, outDir);
            }
            return LmCommandSupport.Report("pretrain", result, outDir, run.Path);
        });
        return command;
    }

    /// <summary>A folder's *.txt files (name order) are separate documents, each followed by EOS in the stream; a file is one document.</summary>
    private static IReadOnlyList<string> ReadDocuments(string path)
    {
        if (!Directory.Exists(path)) return [DataPaths.ReadCorpus(path, "--corpus")];
        var files = Directory.GetFiles(path, "*.txt").Order(StringComparer.Ordinal).ToList();
        if (files.Count == 0) throw new FileNotFoundException($"--corpus {path}: the folder holds no .txt files.");
        return files.Select(Utf8TextFile.ReadAllText).ToList();
    }

    private static ITokenizer MakeTokenizer(string[] spec, IReadOnlyList<string> documents, int vocabSize)
    {
        switch (spec)
        {
            case ["gpt2", var dir]:
                return Gpt2Tokenizer.Load(DataPaths.Resolve(dir));
            case ["bpe"]:
                return BpeTrainer.Train(documents, new BpeTrainerOptions { VocabSize = vocabSize });
            case ["char"]:
                return CharTokenizer.FromCorpus(string.Concat(documents));
            case [var dir] when Directory.Exists(dir):
                return TokenizerFiles.Load(dir);
            default:
                throw new ArgumentException($"--tokenizer {string.Join(' ', spec)}: expected 'gpt2 DIR', 'bpe', 'char' or an existing tokenizer folder.");
        }
    }
}
