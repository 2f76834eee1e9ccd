// `rlhf sample`: continue prompts with a model folder's GPT (KV-cached, batched, seeded), K samples per prompt
// (Models' Continuations), or the best of N by a reward model (Alignment's BestOfN); this file parses and prints.
using System.CommandLine;
using System.Text.Json;
using RlhfSharp.Alignment;
using RlhfSharp.Alignment.Sampling;
using RlhfSharp.Models;
using RlhfSharp.Runs;
using RlhfSharp.Tensors;
using RlhfSharp.Text;

namespace RlhfSharp.Cli.Commands;

internal static class SampleCommand
{
    // Readable JSONL: quotes and non-ASCII text stay as they are (the file is data, never embedded in HTML).
    private static readonly JsonSerializerOptions QueryJson = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model folder (config.json + model.safetensors + tokenizer files).", Required = true };
        var prompt = new Option<string?>("--prompt") { Description = "One prompt to continue." };
        var prompts = new Option<string?>("--prompts") { Description = "File of prompts: JSONL with a \"prompt\" field per line, or plain text with one prompt per line." };
        var n = new Option<int>("--n") { Description = "Samples per prompt.", DefaultValueFactory = _ => 1 }.InRange(new(1));
        var defaults = new GenerationOptions();
        var maxNew = new Option<int?>("--max-new-tokens") { Description = "Tokens generated per sample at most (default: 64, or what the model's block size leaves after the longest prompt)." }.InRange(new(1));
        var temperature = new Option<float>("--temperature") { Description = "Softmax temperature.", DefaultValueFactory = _ => defaults.Temperature }.InRange(NumericRange.Positive);
        var topK = new Option<int>("--top-k") { Description = "Sample among the k most likely tokens (0 = all).", DefaultValueFactory = _ => defaults.TopK }.InRange(NumericRange.NonNegative);
        var topP = new Option<float>("--top-p") { Description = "Nucleus sampling mass (1 = off).", DefaultValueFactory = _ => defaults.TopP }.InRange(new(0, 1, MinExclusive: true));
        var greedy = new Option<bool>("--greedy") { Description = "Always take the most likely token." };
        var seed = new Option<ulong>("--seed") { Description = "Random seed.", DefaultValueFactory = _ => 1UL }.InRange(NumericRange.NonNegative);
        var batch = new Option<int>("--batch") { Description = "Sequences generated together.", DefaultValueFactory = _ => 16 }.InRange(new(1));
        var json = new Option<bool>("--json") { Description = "One JSON object per sample: prompt, completion, tokens, logprobs." };
        var queries = new Option<string?>("--queries") { Description = "Write one {\"prompt\",\"responses\":[...]} line per prompt (its --n samples) to this file, the form `rlhf label import` reads, instead of printing." };
        var bestOf = new Option<int?>("--best-of") { Description = "Draw N samples per prompt and print the one the --reward model scores highest." }.InRange(new(1));
        var rewardDir = new Option<string?>("--reward") { Description = "Reward model folder used by --best-of." };
        var weightsDtype = WeightsDtypeOption.Create();
        var kvDtype = new Option<KvDtype>("--kv-dtype") { Description = "How the KV cache holds keys and values: f32 or bf16 (half the bytes, attention in float32; logits near, not equal to, f32's).", DefaultValueFactory = _ => KvDtype.F32 };
        var command = new Command("sample", "Continue prompts with a trained model.");
        command.Options.Add(weightsDtype);
        command.Options.Add(kvDtype);
        foreach (var o in new Option[] { model, prompt, prompts, n, maxNew, temperature, topK, topP, greedy, seed, batch, json, queries }) command.Options.Add(o);
        command.Options.Add(bestOf);
        var allowNonFinite = InspectionOptions.AllowNonFinite();
        command.Options.Add(allowNonFinite);
        command.Options.Add(rewardDir);
        command.SetAction(parse =>
        {
            string dir = parse.GetValue(model)!;
            if ((parse.GetValue(prompt) is null) == (parse.GetValue(prompts) is null)) throw new ArgumentException("sample: give exactly one of --prompt TEXT or --prompts FILE.");
            int k = parse.GetValue(n), b = parse.GetValue(batch);
            if (k < 1) throw new ArgumentException($"--n must be at least 1 (got {k}).");
            if (b < 1) throw new ArgumentException($"--batch must be at least 1 (got {b}).");
            var (gpt, tokenizer) = ModelFolder.Load(dir, parse.GetValue(allowNonFinite));
            gpt.HoldFrozenWeightsAs(parse.GetValue(weightsDtype));
            // Model text shown on a terminal has its control characters made visible (TerminalText); piped output is as generated.
            Func<string, string> shown = Console.IsOutputRedirected ? s => s : TerminalText.Escape;
            var texts = ReadPrompts(parse.GetValue(prompt), parse.GetValue(prompts), tokenizer);
            // Without --max-new-tokens, generate what fits: a tiny model's block may be no longer than 64 tokens.
            int room = Continuations.Room(gpt, tokenizer, texts);
            var options = new GenerationOptions
            {
                MaxNewTokens = parse.GetValue(maxNew) ?? Math.Min(64, room),
                Temperature = parse.GetValue(temperature),
                TopK = parse.GetValue(topK),
                TopP = parse.GetValue(topP),
                Greedy = parse.GetValue(greedy),
                EosTokenId = gpt.Config.EosTokenId ?? tokenizer.EosId,
                PadTokenId = tokenizer.EosId ?? 0,
                KvDtype = parse.GetValue(kvDtype),
            };
            var rng = new Rng(parse.GetValue(seed));
            string? queriesFile = parse.GetValue(queries);
            if (queriesFile is not null && k < 2) throw new ArgumentException($"sample: --queries needs --n 2 or more (a query compares its responses); got --n {k}.");
            bool asJson = parse.GetValue(json);
            if (parse.GetValue(bestOf) is int bestN)
            {
                if (queriesFile is not null) throw new ArgumentException("sample: --queries and --best-of do not combine (--best-of keeps one response per prompt).");
                var reward = BestOfN.RewardModel(parse.GetValue(rewardDir) ?? throw new ArgumentException("sample: --best-of needs --reward RM_DIR."), tokenizer);
                foreach (var s in BestOfN.Sample(gpt, tokenizer, texts, bestN, reward, options, rng, Math.Max(b, bestN)))
                {
                    if (asJson) Console.Out.WriteLine(JsonSerializer.Serialize(new { prompt = s.Prompt, completion = s.Best, reward = s.BestScore, candidates = s.Candidates, rewards = s.Scores }, InspectionOptions.Json));
                    else
                    {
                        Console.Out.WriteLine(shown($"{s.Prompt}{s.Best}"));
                        Console.Out.WriteLine($"--- reward {AlignCommandSupport.Format(s.BestScore)} (best of {bestN})");
                    }
                }
                return 0;
            }
            var samples = Continuations.Sample(gpt, tokenizer, texts, k, options, rng, b);
            if (queriesFile is not null)
            {
                // One {"prompt","responses"} line per prompt, its K samples in order: the form `rlhf label import` reads.
                var completions = samples.Select(c => c.Completion).ToList();
                var lines = texts.Select((t, i) => JsonSerializer.Serialize(new { prompt = t, responses = completions.GetRange(i * k, k) }, QueryJson));
                AtomicFile.WriteAllText(queriesFile, string.Concat(lines.Select(l => l + "\n")));
                Console.Out.WriteLine($"Wrote {texts.Count} queries of {k} responses to {queriesFile}.");
                return 0;
            }
            foreach (var c in samples)
            {
                if (asJson) Console.Out.WriteLine(JsonSerializer.Serialize(new { prompt = c.Prompt, completion = c.Completion, tokens = c.Tokens, logprobs = c.LogProbs }, InspectionOptions.Json));
                else
                {
                    Console.Out.WriteLine(shown(c.Prompt + c.Completion));
                    Console.Out.WriteLine("---");
                }
            }
            return 0;
        });
        return command;
    }

    private static List<string> ReadPrompts(string? prompt, string? file, Text.ITokenizer tokenizer)
    {
        if (prompt is not null) return [prompt];
        return PromptData.Read(file!, Text.ChatTemplate.For(tokenizer));
    }
}
