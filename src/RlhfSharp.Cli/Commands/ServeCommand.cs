// `rlhf serve`: a checkpoint behind the OpenAI-compatible API (/v1/chat/completions and /v1/completions with
// streaming, /v1/models) on 127.0.0.1 by default, e.g. as the AI judge for `rlhf eval --judge http://127.0.0.1:P/v1`
// or for lm-evaluation-harness (local-completions: echo + logprobs). Concurrent requests decode together, --max-batch
// sequences per step.
using System.CommandLine;
using RlhfSharp.Runs;
using Microsoft.Extensions.Hosting;
using RlhfSharp.Models;
using RlhfSharp.Text;
using RlhfSharp.Web;
using RlhfSharp.Web.Serving;

namespace RlhfSharp.Cli.Commands;

internal static class ServeCommand
{
    public static Command Create()
    {
        var defaults = new ModelServerOptions();
        var model = new Option<string>("--model") { Description = "Model folder (config.json + model.safetensors + tokenizer files).", Required = true };
        var port = new Option<int>("--port") { Description = "TCP port to listen on.", DefaultValueFactory = _ => defaults.Port }.InRange(new(0, 65535));
        var host = new Option<string>("--host") { Description = "Address to bind: 127.0.0.1 (default, this machine only) or 0.0.0.0.", DefaultValueFactory = _ => defaults.Host };
        var name = new Option<string>("--name") { Description = "Model id reported by /v1/models and in responses.", DefaultValueFactory = _ => defaults.ModelName };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Tokens generated when a request gives no max_tokens.", DefaultValueFactory = _ => defaults.DefaultMaxTokens }.InRange(new(1));
        var seed = new Option<ulong>("--seed") { Description = "Seed of sampling when a request gives none.", DefaultValueFactory = _ => defaults.Seed }.InRange(NumericRange.NonNegative);
        var maxQueue = new Option<int>("--max-queue") { Description = "Requests that may wait behind the ones being decoded; one more gets 429 with Retry-After.", DefaultValueFactory = _ => defaults.MaxQueue }.InRange(NumericRange.NonNegative);
        var maxBatch = new Option<int>("--max-batch") { Description = "Sequences decoded together in one step (continuous batching: concurrent requests join and leave at step boundaries).", DefaultValueFactory = _ => defaults.MaxBatch }.InRange(new(1));
        var command = new Command("serve", "Serve a model over the OpenAI-compatible API (/v1/chat/completions, /v1/completions, /v1/models).");
        foreach (var o in new Option[] { model, port, host, name, maxTokens, seed, maxQueue, maxBatch }) command.Options.Add(o);
        var weightsDtype = WeightsDtypeOption.Create();
        command.Options.Add(weightsDtype);
        command.SetAction(async (parse, ct) =>
        {
            string dir = parse.GetValue(model)!;
            var gpt = Gpt.Load(dir);
            gpt.HoldFrozenWeightsAs(parse.GetValue(weightsDtype));
            var tokenizer = TokenizerFiles.Load(dir);
            var options = new ModelServerOptions(parse.GetValue(host)!, parse.GetValue(port), parse.GetValue(name)!, parse.GetValue(maxTokens), parse.GetValue(seed),
                MaxQueue: parse.GetValue(maxQueue), MaxBatch: parse.GetValue(maxBatch));
            await using var app = ModelServer.Build(gpt, tokenizer, options);
            await app.StartAsync(ct);
            Console.WriteLine($"Serving {dir} as \"{options.ModelName}\" at {new Uri(LabelingApp.BoundAddress(app), "/v1")}; press Ctrl+C to stop.");
            await app.WaitForShutdownAsync(ct);
            return 0;
        });
        return command;
    }
}
