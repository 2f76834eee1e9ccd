// `rlhf label serve`: the labelling web app over a SQLite file (--db) or a shared PostgreSQL database (--pg).
// The `label` parent command (LabelCommand.cs) adds this as its `serve` subcommand.
using System.CommandLine;
using RlhfSharp.Runs;
using Microsoft.Extensions.Hosting;
using RlhfSharp.Feedback;
using RlhfSharp.Web;

namespace RlhfSharp.Cli.Commands;

internal static class LabelServeCommand
{
    public static Command Create()
    {
        var defaults = new LabelingAppOptions();
        var stores = new LabelCommand.StoreOptions();
        var port = new Option<int>("--port") { Description = "TCP port to listen on.", DefaultValueFactory = _ => defaults.Port }.InRange(new(0, 65535));
        var host = new Option<string>("--host") { Description = "Address to bind: 127.0.0.1 (default, this machine only), 0.0.0.0 or another IP.", DefaultValueFactory = _ => defaults.Host };
        var campaign = new Option<string?>("--campaign") { Description = "Hand out and report only this campaign's queries (default: all)." };
        var overlap = new Option<int>("--overlap") { Description = "How many distinct labellers answer each query.", DefaultValueFactory = _ => defaults.Overlap }.InRange(new(1));
        var goldRate = new Option<double>("--gold-rate") { Description = "Fraction of hand-outs that are gold tasks, mixed in unannounced.", DefaultValueFactory = _ => defaults.GoldRate }.InRange(new(0, 1));
        var maxBody = new Option<long>("--max-body") { Description = "Largest request body in bytes; larger ones get 413.", DefaultValueFactory = _ => defaults.MaxRequestBodyBytes }.InRange(new(1));
        var secureCookies = new Option<bool?>("--secure-cookies")
        {
            Description = "Mark the session cookie Secure (sent over HTTPS only). Default: on unless --host is loopback; `--secure-cookies false` for plain-HTTP use on a trusted LAN.",
            Arity = ArgumentArity.ZeroOrOne,
        };

        var command = new Command("serve", "Serve the labelling web app (sign-in, comparisons, rankings, clips, progress, admin dashboard).");
        stores.AddTo(command);
        foreach (var o in new Option[] { port, host, campaign, overlap, goldRate, maxBody, secureCookies })
            command.Options.Add(o);

        // Ctrl+C stops the host itself (its console lifetime); a refusal throws to Program's one error handler.
        command.SetAction(parseResult => Blocking.Run(() => ServeAsync(parseResult)));
        return command;

        async Task<int> ServeAsync(ParseResult parseResult)
        {
            var ct = CancellationToken.None;
            var options = defaults with
            {
                Port = parseResult.GetValue(port),
                Host = parseResult.GetValue(host)!,
                Campaign = parseResult.GetValue(campaign),
                Overlap = parseResult.GetValue(overlap),
                GoldRate = parseResult.GetValue(goldRate),
                MaxRequestBodyBytes = parseResult.GetValue(maxBody),
                // A bare --secure-cookies parses as true; absent, null picks by host.
                SecureCookies = parseResult.GetResult(secureCookies) is { } given ? (given.Tokens.Count == 0 || parseResult.GetValue(secureCookies) == true) : null,
            };
            options.Validate();

            await using var store = await stores.OpenAsync(parseResult);
            var labelers = await store.GetLabelersAsync(ct);
            var app = LabelingApp.Build(store, options);
            await app.StartAsync(ct);
            Console.WriteLine($"Labelling app at {LabelingApp.BoundAddress(app)} over {(parseResult.GetValue(stores.Db) is { } file ? file.FullName : "PostgreSQL")}; press Ctrl+C to stop.");
            if (options.CookiesAreSecure && options.SecureCookies is null)
                Console.WriteLine($"Session cookies are Secure because --host {options.Host} is not loopback: browsers send them only over HTTPS, so serve behind a TLS proxy, or pass --secure-cookies false on a trusted plain-HTTP LAN.");
            if (labelers.Count == 0)
                Console.WriteLine("No labellers yet: add one with `rlhf label add-labeler NAME` (and `--admin` for the dashboard).");
            await app.WaitForShutdownAsync(ct);
            await app.DisposeAsync();
            return 0;
        }
    }
}
