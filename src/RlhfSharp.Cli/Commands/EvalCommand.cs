// `rlhf eval`: win rate of a policy over a baseline on held-out prompts (95% Wilson interval, ties ½), judged by the
// story world's gold scorer (or VADER with --lexicon), the noisy oracle, or an AI judge URL; prints one JSON object.
using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization;
using RlhfSharp.Alignment;
using RlhfSharp.Alignment.Evaluation;
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Feedback;
using RlhfSharp.Feedback.Labelers;
using RlhfSharp.Models;
using RlhfSharp.Runs;
using RlhfSharp.Text;
using RlhfSharp.Text.StoryWorld;

namespace RlhfSharp.Cli.Commands;

internal static class EvalCommand
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        // A file for people and scripts, never embedded in HTML: keep quotes and non-ASCII text readable.
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        // A figure that was not measured (no reward model given) is NaN, written as the string "NaN" like metrics.jsonl.
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static Command Create()
    {
        var defaults = new EvaluationOptions();
        var policy = new Option<string>("--policy") { Description = "Policy model folder (config.json + model.safetensors + tokenizer files).", Required = true };
        var baseline = new Option<string>("--baseline") { Description = "Baseline model folder (e.g. the SFT model); also the KL reference unless --reference is given.", Required = true };
        var prompts = new Option<string>("--prompts") { Description = "Held-out prompts: JSONL with a \"prompt\" field per line, or plain text with one prompt per line.", Required = true };
        var judge = new Option<string>("--judge") { Description = "gold (deterministic gold scorer), oracle (gold scorer with Bradley–Terry noise) or the URL of an OpenAI-compatible API root (…/v1).", DefaultValueFactory = _ => "gold" };
        var judgeModel = new Option<string>("--judge-model") { Description = "Model name sent to an AI judge.", DefaultValueFactory = _ => "judge" };
        var apiKeyEnv = new Option<string?>("--api-key-env") { Description = "Environment variable holding the AI judge's API key (none by default, for local servers)." };
        var lexicon = new Option<string?>("--lexicon") { Description = "Use VADER compound sentiment with this lexicon file (e.g. data/sentiment/vader_lexicon.txt) as the gold scorer instead of the story world's." };
        var reference = new Option<string?>("--reference") { Description = "KL reference model folder (default: the baseline)." };
        var reward = new Option<string?>("--reward") { Description = "Reward model folder, for the mean reward-model score." };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Tokens generated per response at most.", DefaultValueFactory = _ => defaults.MaxNewTokens };
        var temperature = new Option<float>("--temperature") { Description = "Sampling temperature.", DefaultValueFactory = _ => defaults.Temperature };
        var seed = new Option<ulong>("--seed") { Description = "Random seed of sampling (and of the oracle).", DefaultValueFactory = _ => defaults.Seed };
        var samples = new Option<int>("--samples") { Description = "Judged examples included in the output.", DefaultValueFactory = _ => defaults.SamplesKept };
        var output = new Option<string?>("--out") { Description = "Also write the JSON to this file (atomically)." };
        var command = new Command("eval", "Win rate of a policy over a baseline with a 95% interval, plus gold reward, reward-model score, KL, length and distinct-n.");
        foreach (var o in new Option[] { policy, baseline, prompts, judge, judgeModel, apiKeyEnv, lexicon, reference, reward, maxNew, temperature, seed, samples, output }) command.Options.Add(o);
        command.SetAction(async (parse, ct) =>
        {
            var texts = PromptData.Read(parse.GetValue(prompts)!);
            Func<string, string, double> gold = parse.GetValue(lexicon) is string lex
                ? VaderGold(VaderSentiment.Load(DataPaths.Resolve(lex)))
                : (prompt, response) => Stories.GoldReward(response, prompt);
            string judgeSpec = parse.GetValue(judge)!;
            ILabeler labeler = judgeSpec switch
            {
                "gold" => new GoldJudge(gold),
                "oracle" => new OracleLabeler((p, c) => gold(p, c.Content), new OracleOptions(Seed: (int)(parse.GetValue(seed) & int.MaxValue))),
                _ when Uri.TryCreate(judgeSpec, UriKind.Absolute, out var u) && (u.Scheme == "http" || u.Scheme == "https")
                    => new AiJudge(new AiJudgeOptions(judgeSpec, parse.GetValue(judgeModel)!, ApiKeyVariable: parse.GetValue(apiKeyEnv))),
                _ => throw new ArgumentException($"--judge: expected gold, oracle or an http(s) URL; got \"{judgeSpec}\"."),
            };
            if (labeler is AiJudge) await CheckReachableAsync(judgeSpec, ct);
            string policyDir = parse.GetValue(policy)!, baselineDir = parse.GetValue(baseline)!;
            var policyModel = Gpt.Load(policyDir);
            var baselineModel = Gpt.Load(baselineDir);
            var referenceModel = parse.GetValue(reference) is string refDir ? Gpt.Load(refDir) : null;
            var tokenizer = TokenizerFiles.Load(policyDir);
            if (tokenizer.VocabSize > policyModel.Config.VocabSize)
                throw new ArgumentException($"{policyDir}: tokenizer has {tokenizer.VocabSize} tokens but the model's vocab_size is {policyModel.Config.VocabSize}.");
            var rm = parse.GetValue(reward) is string rmDir ? RewardModel.Load(rmDir) : null;
            var evaluator = new PolicyEvaluator(new EvaluationOptions
            {
                MaxNewTokens = parse.GetValue(maxNew),
                Temperature = parse.GetValue(temperature),
                Seed = parse.GetValue(seed),
                SamplesKept = parse.GetValue(samples),
            });
            var result = await evaluator.EvaluateAsync(policyModel, baselineModel, tokenizer, texts, labeler, referenceModel, gold, rm, ct);
            string text = JsonSerializer.Serialize(result, Json);
            if (parse.GetValue(output) is string outFile) AtomicFile.WriteAllText(outFile, text + "\n");
            Console.Out.WriteLine(text);
            return 0;
        });
        return command;
    }

    /// <summary>
    /// Refuses a judge URL nothing answers at before any sampling is spent (the judge's own retries are for a busy server,
    /// not a missing one). Any HTTP answer, even a 404 from a server without /models, counts as reachable.
    /// </summary>
    private static async Task CheckReachableAsync(string baseUrl, CancellationToken ct)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        try
        {
            using var _ = await http.GetAsync(baseUrl.TrimEnd('/') + "/models", ct);
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            throw new ArgumentException($"--judge {baseUrl}: no AI judge answers there ({ex.Message}).");
        }
    }

    private static Func<string, string, double> VaderGold(VaderSentiment vader) => (_, response) => vader.Compound(response);
}
