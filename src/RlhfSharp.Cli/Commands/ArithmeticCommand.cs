// `rlhf arithmetic`: the story world's verifiable task. `write` puts its SFT set (worked answers), training problems and
// held-out problems into JSONL files (TRL's column names plus "answer"); `eval` measures pass@k of a policy on held-out
// problems (Chen et al. 2021's unbiased estimator) and prints one JSON object.
using System.CommandLine;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using RlhfSharp.Alignment.Evaluation;
using RlhfSharp.Feedback;
using RlhfSharp.Models;
using RlhfSharp.Runs;
using RlhfSharp.Text.StoryWorld;

namespace RlhfSharp.Cli.Commands;

internal static class ArithmeticCommand
{
    private static readonly JsonSerializerOptions Json = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static Command Create()
    {
        var command = new Command("arithmetic", "The verifiable arithmetic task over story facts: write its data, or measure pass@k.");
        command.Subcommands.Add(Write());
        command.Subcommands.Add(Eval());
        return command;
    }

    private static Command Write()
    {
        var seed = new Option<ulong>("--seed") { Description = "Seed of the generator (same seed, same files).", DefaultValueFactory = _ => 1 }.InRange(NumericRange.NonNegative);
        var sft = new Option<int>("--sft") { Description = "Lines of sft.jsonl ({\"prompt\",\"completion\"} with worked answers).", DefaultValueFactory = _ => 3000 }.InRange(NumericRange.NonNegative);
        var train = new Option<int>("--train") { Description = "Lines of train.jsonl ({\"prompt\",\"answer\"}): RL prompts.", DefaultValueFactory = _ => 2000 }.InRange(NumericRange.NonNegative);
        var held = new Option<int>("--held-out") { Description = "Lines of heldout.jsonl ({\"prompt\",\"answer\"}), disjoint from both by construction.", DefaultValueFactory = _ => 200 }.InRange(NumericRange.NonNegative);
        var output = new Option<string>("--out") { Description = "Folder to write sft.jsonl, train.jsonl and heldout.jsonl into.", Required = true };
        var command = new Command("write", "Write the arithmetic task's SFT set, training problems and held-out problems.");
        foreach (var o in new Option[] { seed, sft, train, held, output }) command.Options.Add(o);
        command.SetAction(p =>
        {
            string dir = p.GetValue(output)!;
            ulong s = p.GetValue(seed);
            Directory.CreateDirectory(dir);
            var utf8 = new UTF8Encoding(false);
            // The SFT set and the RL prompts come from different seeds of the training split; the held-out split is its own.
            File.WriteAllLines(Path.Combine(dir, "sft.jsonl"),
                ArithmeticProblems.Train(s, p.GetValue(sft)).Select(x => JsonSerializer.Serialize(new { prompt = x.Prompt, completion = x.WorkedAnswer }, Json)), utf8);
            File.WriteAllLines(Path.Combine(dir, "train.jsonl"),
                ArithmeticProblems.Train(s + 1, p.GetValue(train)).Select(x => JsonSerializer.Serialize(new { prompt = x.Prompt, answer = x.Answer }, Json)), utf8);
            File.WriteAllLines(Path.Combine(dir, "heldout.jsonl"),
                ArithmeticProblems.HeldOut(s, p.GetValue(held)).Select(x => JsonSerializer.Serialize(new { prompt = x.Prompt, answer = x.Answer }, Json)), utf8);
            Console.WriteLine($"Wrote sft.jsonl, train.jsonl and heldout.jsonl to {dir} (seed {s}).");
            return 0;
        });
        return command;
    }

    private static Command Eval()
    {
        var policy = new Option<string>("--policy") { Description = "Model folder to evaluate.", Required = true };
        var problems = new Option<string?>("--problems") { Description = "{\"prompt\",\"answer\"} JSONL (default: the built-in held-out problems)." };
        var count = new Option<int>("--count") { Description = "Built-in held-out problems when no --problems is given.", DefaultValueFactory = _ => 200 }.InRange(new(1));
        var samples = new Option<int>("--samples") { Description = "n: samples per problem.", DefaultValueFactory = _ => 8 }.InRange(new(1));
        var ks = new Option<int[]>("--k") { Description = "k values of pass@k (each ≤ n).", DefaultValueFactory = _ => [1, 4], AllowMultipleArgumentsPerToken = true }.InRange(new(1));
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Tokens generated per completion at most.", DefaultValueFactory = _ => 32 }.InRange(new(1));
        var temperature = new Option<float>("--temperature") { Description = "Sampling temperature.", DefaultValueFactory = _ => 1f }.InRange(NumericRange.Positive);
        var seed = new Option<ulong>("--seed") { Description = "Seed of the built-in problems and of sampling.", DefaultValueFactory = _ => 1 }.InRange(NumericRange.NonNegative);
        var output = new Option<string?>("--out") { Description = "Also write the JSON to this file (atomically)." };
        var command = new Command("eval", "pass@k of a policy on held-out arithmetic problems (unbiased estimator of Chen et al. 2021).");
        foreach (var o in new Option[] { policy, problems, count, samples, ks, maxNew, temperature, seed, output }) command.Options.Add(o);
        command.SetAction(p =>
        {
            var list = p.GetValue(problems) is string f
                ? JsonlReader.Read(f, "problem file").Select(line => (Prompt: line.String("prompt"), Answer: line.Int("answer"))).ToList()
                : ArithmeticProblems.HeldOut(p.GetValue(seed), p.GetValue(count)).Select(x => (x.Prompt, x.Answer)).ToList();
            var (model, tokenizer) = ModelFolder.Load(p.GetValue(policy)!);
            var result = PassAtK.Evaluate(model, tokenizer, [.. list.Select(x => x.Prompt)], (i, c) => ArithmeticProblems.Verify(c, list[i].Answer),
                p.GetValue(samples), p.GetValue(ks)!, p.GetValue(maxNew), p.GetValue(temperature), p.GetValue(seed));
            var json = JsonSerializer.Serialize(new
            {
                problems = result.Problems,
                samples = result.Samples,
                pass_at = result.PassAt.ToDictionary(kv => $"pass@{kv.Key}", kv => Math.Round(kv.Value, 4)),
                correct_fraction = Math.Round(result.CorrectFraction, 4),
            }, new JsonSerializerOptions { WriteIndented = true });
            if (p.GetValue(output) is string outFile) AtomicFile.WriteAllText(outFile, json + "\n");
            Console.Out.WriteLine(json);
            return 0;
        });
        return command;
    }
}
