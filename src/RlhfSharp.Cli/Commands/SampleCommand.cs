// `rlhf sample`: continue prompts with a model folder's GPT (KV-cached, batched, seeded), K samples per prompt.
using System.CommandLine;
using System.Text.Json;
using RlhfSharp.Alignment;
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
        var n = new Option<int>("--n") { Description = "Samples per prompt.", DefaultValueFactory = _ => 1 };
        var defaults = new GenerationOptions();
        var maxNew = new Option<int?>("--max-new-tokens") { Description = "Tokens generated per sample at most (default: 64, or what the model's block size leaves after the longest prompt)." };
        var temperature = new Option<float>("--temperature") { Description = "Softmax temperature.", DefaultValueFactory = _ => defaults.Temperature };
        var topK = new Option<int>("--top-k") { Description = "Sample among the k most likely tokens (0 = all).", DefaultValueFactory = _ => defaults.TopK };
        var topP = new Option<float>("--top-p") { Description = "Nucleus sampling mass (1 = off).", DefaultValueFactory = _ => defaults.TopP };
        var greedy = new Option<bool>("--greedy") { Description = "Always take the most likely token." };
        var seed = new Option<ulong>("--seed") { Description = "Random seed.", DefaultValueFactory = _ => 1UL };
        var batch = new Option<int>("--batch") { Description = "Sequences generated together.", DefaultValueFactory = _ => 16 };
        var json = new Option<bool>("--json") { Description = "One JSON object per sample: prompt, completion, tokens, logprobs." };
        var queries = new Option<string?>("--queries") { Description = "Write one {\"prompt\",\"responses\":[...]} line per prompt (its --n samples) to this file, the form `rlhf label import` reads, instead of printing." };
        var bestOf = new Option<int?>("--best-of") { Description = "Draw N samples per prompt and print the one the --reward model scores highest." };
        var rewardDir = new Option<string?>("--reward") { Description = "Reward model folder used by --best-of." };
        var command = new Command("sample", "Continue prompts with a trained model.");
        foreach (var o in new Option[] { model, prompt, prompts, n, maxNew, temperature, topK, topP, greedy, seed, batch, json, queries }) command.Options.Add(o);
        command.Options.Add(bestOf);
        command.Options.Add(rewardDir);
        command.SetAction(parse =>
        {
            string dir = parse.GetValue(model)!;
            var texts = ReadPrompts(parse.GetValue(prompt), parse.GetValue(prompts));
            int k = parse.GetValue(n), b = parse.GetValue(batch);
            if (k < 1) throw new ArgumentException($"--n must be at least 1 (got {k}).");
            if (b < 1) throw new ArgumentException($"--batch must be at least 1 (got {b}).");
            var gpt = Gpt.Load(dir);
            var tokenizer = TokenizerFiles.Load(dir);
            if (tokenizer.VocabSize > gpt.Config.VocabSize)
                throw new ArgumentException($"{dir}: tokenizer has {tokenizer.VocabSize} tokens but the model's vocab_size is {gpt.Config.VocabSize}.");
            // Without --max-new-tokens, generate what fits: a tiny model's block may be no longer than 64 tokens.
            int longestPrompt = texts.Max(t => Encode(tokenizer, t).Length);
            int room = gpt.Config.BlockSize - longestPrompt;
            if (room < 1)
                throw new ArgumentException($"sample: the longest prompt has {longestPrompt} tokens, which leaves no room in the model's block size {gpt.Config.BlockSize}.");
            var options = new GenerationOptions
            {
                MaxNewTokens = parse.GetValue(maxNew) ?? Math.Min(64, room),
                Temperature = parse.GetValue(temperature),
                TopK = parse.GetValue(topK),
                TopP = parse.GetValue(topP),
                Greedy = parse.GetValue(greedy),
                EosTokenId = gpt.Config.EosTokenId ?? tokenizer.EosId,
                PadTokenId = tokenizer.EosId ?? 0,
            };
            var rng = new Rng(parse.GetValue(seed));
            string? queriesFile = parse.GetValue(queries);
            if (queriesFile is not null && k < 2) throw new ArgumentException($"sample: --queries needs --n 2 or more (a query compares its responses); got --n {k}.");
            if (parse.GetValue(bestOf) is int bestN)
            {
                if (queriesFile is not null) throw new ArgumentException("sample: --queries and --best-of do not combine (--best-of keeps one response per prompt).");
                return BestOfNSampling.Run(gpt, tokenizer, texts, bestN, parse.GetValue(rewardDir) ?? throw new ArgumentException("sample: --best-of needs --reward RM_DIR."), options, rng, b, parse.GetValue(json));
            }
            var generator = new GptGenerator(gpt);
            // Each prompt repeated K times, generated in batches.
            var jobs = texts.SelectMany(t => Enumerable.Repeat(t, k)).ToList();
            var completions = new List<string>(jobs.Count);
            for (int start = 0; start < jobs.Count; start += b)
            {
                var chunk = jobs.Skip(start).Take(b).ToList();
                var encoded = chunk.Select(t => Encode(tokenizer, t)).ToList();
                var result = generator.Generate(encoded, options, rng);
                for (int i = 0; i < chunk.Count; i++)
                {
                    var response = result.Response(i);
                    // The EOS token ends the sample; it is not part of the completion text.
                    var textTokens = response.Length > 0 && response[^1] == options.EosTokenId ? response[..^1] : response;
                    string completion = tokenizer.Decode(textTokens);
                    if (queriesFile is not null) completions.Add(completion);
                    else if (parse.GetValue(json))
                    {
                        var logProbs = result.LogProbs.AsSpan(i * result.NewTokens, response.Length).ToArray();
                        Console.Out.WriteLine(JsonSerializer.Serialize(new { prompt = chunk[i], completion, tokens = response, logprobs = logProbs }));
                    }
                    else
                    {
                        Console.Out.WriteLine(chunk[i] + completion);
                        Console.Out.WriteLine("---");
                    }
                }
            }
            if (queriesFile is not null)
            {
                // Written to a temporary name and renamed, so an interrupted run never leaves a torn file.
                var lines = texts.Select((t, i) => JsonSerializer.Serialize(new { prompt = t, responses = completions.GetRange(i * k, k) }, QueryJson));
                AtomicFile.WriteAllText(queriesFile, string.Concat(lines.Select(l => l + "\n")));
                Console.Out.WriteLine($"Wrote {texts.Count} queries of {k} responses to {queriesFile}.");
            }
            return 0;
        });
        return command;
    }

    private static int[] Encode(ITokenizer tokenizer, string text)
    {
        var ids = tokenizer.Encode(text);
        // An empty prompt starts from <|endoftext|>, as GPT-2's unconditional samples do.
        if (ids.Length == 0)
            ids = tokenizer.EosId is int eos ? [eos] : throw new ArgumentException("sample: an empty prompt needs a tokenizer with an end-of-text token.");
        return ids;
    }

    private static List<string> ReadPrompts(string? prompt, string? file)
    {
        if ((prompt is null) == (file is null)) throw new ArgumentException("sample: give exactly one of --prompt TEXT or --prompts FILE.");
        if (prompt is not null) return [prompt];
        return PromptData.Read(file!);
    }
}
