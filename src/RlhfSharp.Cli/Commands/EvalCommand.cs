// `rlhf eval`: win rate of a policy over a baseline on held-out prompts (95% Wilson interval, ties ½), judged by the
// story world's gold scorer (or VADER with --lexicon), the noisy oracle, or an AI judge URL; prints one JSON object.
using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization;
using RlhfSharp.Text;
using RlhfSharp.Alignment;
using RlhfSharp.Alignment.Evaluation;
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Feedback.Labelers;
using RlhfSharp.Models;
using RlhfSharp.Runs;

namespace RlhfSharp.Cli.Commands;

internal static class EvalCommand
{
    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        // A file for people and scripts, never embedded in HTML: keep quotes and non-ASCII text readable.
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        // A figure that was not measured (no reward model given) is null, with a *_reason field beside it saying why.
        Converters = { new FiniteOrNullJsonConverter() },
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
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
        var maxNew = new Option<int>("--max-new-tokens") { Description = "Tokens generated per response at most.", DefaultValueFactory = _ => defaults.MaxNewTokens }.InRange(new(1));
        var temperature = new Option<float>("--temperature") { Description = "Sampling temperature.", DefaultValueFactory = _ => defaults.Temperature }.InRange(NumericRange.Positive);
        var seed = new Option<ulong>("--seed") { Description = "Random seed of sampling (and of the oracle).", DefaultValueFactory = _ => defaults.Seed }.InRange(NumericRange.NonNegative);
        var samples = new Option<int>("--samples") { Description = "Judged examples included in the output.", DefaultValueFactory = _ => defaults.SamplesKept }.InRange(NumericRange.NonNegative);
        var output = new Option<string?>("--out") { Description = "Also write the JSON to this file (atomically)." };
        var command = new Command("eval", "Win rate of a policy over a baseline with a 95% interval, plus gold reward, reward-model score, KL, length and distinct-n.");
        foreach (var o in new Option[] { policy, baseline, prompts, judge, judgeModel, apiKeyEnv, lexicon, reference, reward, maxNew, temperature, seed, samples, output }) command.Options.Add(o);
        command.SetAction(async (parse, ct) =>
        {
            string policyDir = parse.GetValue(policy)!, baselineDir = parse.GetValue(baseline)!;
            var (policyModel, tokenizer) = ModelFolder.Load(policyDir);
            var texts = PromptData.Read(parse.GetValue(prompts)!, ChatTemplate.For(tokenizer));
            var gold = EvaluationJudges.GoldScorer(parse.GetValue(lexicon) is string lex ? DataPaths.Resolve(lex) : null);
            var labeler = EvaluationJudges.Create(parse.GetValue(judge)!, gold, parse.GetValue(seed), parse.GetValue(judgeModel)!, parse.GetValue(apiKeyEnv));
            if (labeler is AiJudge aiJudge) await aiJudge.EnsureReachableAsync(ct);
            var baselineModel = Gpt.Load(baselineDir);
            var referenceModel = parse.GetValue(reference) is string refDir ? Gpt.Load(refDir) : null;
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
}
