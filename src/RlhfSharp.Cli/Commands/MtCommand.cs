// `rlhf mt`: the toy machine-translation task of RL on a metric (story-world English into Storish, Translation's
// synthetic language). `data` writes its files: corpus.txt (monolingual sentences of both languages, for `pretrain` to
// learn the tokenizer and the languages), train.jsonl ({"prompt","completion"} pairs for `sft`, the MLE step),
// prompts.jsonl and heldout.jsonl ({"prompt","reference"} for `ppo --reward-metric` and for `mt eval`; held-out sentences
// appear in neither of the others). `eval` prints held-out BLEU and chrF of greedy translations as one JSON object.
using System.CommandLine;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using RlhfSharp.Alignment;
using RlhfSharp.Alignment.Evaluation;
using RlhfSharp.Models;
using RlhfSharp.Runs;
using RlhfSharp.Text;
using RlhfSharp.Text.StoryWorld;

namespace RlhfSharp.Cli.Commands;

internal static class MtCommand
{
    private static readonly JsonSerializerOptions Json = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static Command Create()
    {
        var command = new Command("mt", "The toy translation task (story-world English into Storish): write its data, or score a model's held-out translations.");
        command.Subcommands.Add(Data());
        command.Subcommands.Add(Eval());
        return command;
    }

    private static Command Data()
    {
        var seed = new Option<ulong>("--seed") { Description = "Seed of the sentences (same seed, same files).", DefaultValueFactory = _ => 1 }.InRange(NumericRange.NonNegative);
        var pairs = new Option<int>("--pairs") { Description = "Lines of train.jsonl ({\"prompt\",\"completion\"}): the MLE pairs.", DefaultValueFactory = _ => 2000 }.InRange(new(1));
        var rlPrompts = new Option<int>("--prompts") { Description = "Lines of prompts.jsonl ({\"prompt\",\"reference\"}): RL prompts.", DefaultValueFactory = _ => 1000 }.InRange(new(1));
        var held = new Option<int>("--held-out") { Description = "Lines of heldout.jsonl ({\"prompt\",\"reference\"}), sentences found in neither train.jsonl nor prompts.jsonl.", DefaultValueFactory = _ => 200 }.InRange(new(1));
        var corpus = new Option<int>("--corpus") { Description = "Sentence pairs in corpus.txt (each sentence once in English, once in Storish, on its own line).", DefaultValueFactory = _ => 4000 }.InRange(new(1));
        var output = new Option<string>("--out") { Description = "Folder to write corpus.txt, train.jsonl, prompts.jsonl and heldout.jsonl into.", Required = true };
        var command = new Command("data", "Write the translation task's corpus, MLE pairs, RL prompts and held-out prompts (with references).");
        foreach (var o in new Option[] { seed, pairs, rlPrompts, held, corpus, output }) command.Options.Add(o);
        command.SetAction(p =>
        {
            string dir = p.GetValue(output)!;
            ulong s = p.GetValue(seed);
            Directory.CreateDirectory(dir);
            var utf8 = new UTF8Encoding(false);
            // Each file from its own seed; the held-out sentences are drawn until enough are new to both others.
            var train = Translation.Pairs(s, p.GetValue(pairs));
            var rl = Translation.Pairs(s ^ 0x1111_0000UL, p.GetValue(rlPrompts));
            var seen = new HashSet<string>(train.Select(x => x.English).Concat(rl.Select(x => x.English)), StringComparer.Ordinal);
            int want = p.GetValue(held);
            var heldOut = new List<TranslationPair>(want);
            for (int draw = 2 * want; heldOut.Count < want; draw *= 2)
            {
                if (draw > 64 * want + 100_000) throw new InvalidOperationException($"mt data: fewer than {want} held-out sentences differ from the training and RL ones; ask for fewer.");
                heldOut = [.. Translation.Pairs(s ^ 0x2222_0000UL, draw).Where(x => !seen.Contains(x.English)).DistinctBy(x => x.English).Take(want)];
            }
            string Line(TranslationPair x, bool completion) => completion
                ? JsonSerializer.Serialize(new { prompt = Translation.Prompt(x.English), completion = x.Storish }, Json)
                : JsonSerializer.Serialize(new { prompt = Translation.Prompt(x.English), reference = x.Storish }, Json);
            File.WriteAllLines(Path.Combine(dir, "corpus.txt"), Translation.Pairs(s ^ 0x3333_0000UL, p.GetValue(corpus)).SelectMany(x => new[] { x.English, x.Storish }), utf8);
            File.WriteAllLines(Path.Combine(dir, "train.jsonl"), train.Select(x => Line(x, true)), utf8);
            File.WriteAllLines(Path.Combine(dir, "prompts.jsonl"), rl.Select(x => Line(x, false)), utf8);
            File.WriteAllLines(Path.Combine(dir, "heldout.jsonl"), heldOut.Select(x => Line(x, false)), utf8);
            Console.WriteLine($"Wrote corpus.txt, train.jsonl, prompts.jsonl and heldout.jsonl to {dir} (seed {s}).");
            return 0;
        });
        return command;
    }

    private static Command Eval()
    {
        var model = new Option<string>("--model") { Description = "Model folder to evaluate.", Required = true };
        var data = new Option<string>("--data") { Description = "{\"prompt\",\"reference\"} JSONL (e.g. heldout.jsonl from `rlhf mt data`); the first reference of a row is scored.", Required = true };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Tokens generated per translation at most.", DefaultValueFactory = _ => 48 }.InRange(new(1));
        var show = new Option<int>("--show") { Description = "Translations printed with their references in the JSON.", DefaultValueFactory = _ => 3 }.InRange(NumericRange.NonNegative);
        var output = new Option<string?>("--out") { Description = "Also write the JSON to this file (atomically)." };
        var command = new Command("eval", "Held-out BLEU and chrF (corpus and mean sentence scores, sacreBLEU's definitions) of a model's greedy translations.");
        foreach (var o in new Option[] { model, data, maxNew, show, output }) command.Options.Add(o);
        command.SetAction(p =>
        {
            var (gpt, tokenizer) = ModelFolder.Load(p.GetValue(model)!);
            var rows = PromptData.ReadWithReferences(p.GetValue(data)!, ChatTemplate.For(tokenizer));
            var references = rows.Select(r => r.References[0]).ToList();
            var scores = TranslationEvaluation.Evaluate(gpt, tokenizer, [.. rows.Select(r => r.Prompt)], references, p.GetValue(maxNew));
            var json = JsonSerializer.Serialize(new
            {
                sentences = scores.Sentences,
                corpus_bleu = Math.Round(scores.CorpusBleu, 2),
                corpus_chrf = Math.Round(scores.CorpusChrf, 2),
                sentence_bleu = Math.Round(scores.SentenceBleu, 2),
                sentence_chrf = Math.Round(scores.SentenceChrf, 2),
                exact_match = Math.Round(scores.ExactMatch, 4),
                examples = rows.Take(p.GetValue(show)).Select((r, i) => new { prompt = r.Prompt, hypothesis = scores.Hypotheses[i], reference = references[i] }),
            }, new JsonSerializerOptions(Json) { WriteIndented = true });
            if (p.GetValue(output) is string outFile) AtomicFile.WriteAllText(outFile, json + "\n");
            Console.Out.WriteLine(json);
            return 0;
        });
        return command;
    }
}
