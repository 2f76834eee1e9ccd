// `rlhf score`: the tokens a model folder's tokenizer makes of TEXT (no BOS added) and log p(tokens[t+1] | tokens[0..t]),
// so our forward pass can be checked against any other implementation.
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using RlhfSharp.Models;
using RlhfSharp.Text;

namespace RlhfSharp.Cli.Commands;

internal static class ScoreCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Model folder (config.json + model.safetensors + tokenizer files).", Required = true };
        var text = new Option<string>("--text") { Description = "Text to score.", Required = true };
        var json = new Option<bool>("--json") { Description = "Print one JSON object {\"tokens\":[...],\"logprobs\":[...]}." };
        var allowNonFinite = InspectionOptions.AllowNonFinite();
        var command = new Command("score", "Per-token log-probabilities of a text under a model.");
        foreach (var o in new Option[] { model, text, json, allowNonFinite }) command.Options.Add(o);
        command.SetAction(parse =>
        {
            string dir = parse.GetValue(model)!;
            var (gpt, tokenizer) = ModelFolder.Load(dir, parse.GetValue(allowNonFinite));
            var scores = GptScoring.Score(gpt, tokenizer, parse.GetValue(text)!);
            if (parse.GetValue(json))
            {
                Console.Out.WriteLine(JsonSerializer.Serialize(new { tokens = scores.Tokens, logprobs = scores.LogProbs }, InspectionOptions.Json));
                return 0;
            }
            for (int t = 0; t < scores.Tokens.Length; t++)
            {
                string piece = JsonSerializer.Serialize(tokenizer.Decode([scores.Tokens[t]]));
                string lp = t == 0 ? "" : scores.LogProbs[t - 1].ToString("F4", CultureInfo.InvariantCulture);
                Console.Out.WriteLine($"{t,5} {scores.Tokens[t],7} {lp,10}  {TerminalText.Escape(piece)}");
            }
            double total = scores.LogProbs.Sum();
            Console.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"sum log p = {total:F4}, perplexity = {(scores.LogProbs.Length == 0 ? 1 : Math.Exp(-total / scores.LogProbs.Length)):F3}"));
            return 0;
        });
        return command;
    }
}
