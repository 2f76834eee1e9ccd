// `rlhf label serve`: the labelling web app over a SQLite file (--db) or a shared PostgreSQL database (--pg).
// The `label` parent command (LabelCommand.cs) adds this as its `serve` subcommand.
using System.CommandLine;
using Microsoft.Extensions.Hosting;
using RlhfSharp.Feedback;
using RlhfSharp.Feedback.Stores;
using RlhfSharp.Web;

namespace RlhfSharp.Cli.Commands;

internal static class LabelServeCommand
{
    public static Command Create()
    {
        var defaults = new LabelingAppOptions();
        var db = new Option<FileInfo?>("--db") { Description = "SQLite preference store file (created and migrated when missing)." };
        var pg = new Option<string?>("--pg") { Description = "PostgreSQL connection string, for many app instances over one database." };
        var port = new Option<int>("--port") { Description = "TCP port to listen on.", DefaultValueFactory = _ => defaults.Port };
        var host = new Option<string>("--host") { Description = "Address to bind: 127.0.0.1 (default, this machine only), 0.0.0.0 or another IP.", DefaultValueFactory = _ => defaults.Host };
        var campaign = new Option<string?>("--campaign") { Description = "Hand out and report only this campaign's queries (default: all)." };
        var overlap = new Option<int>("--overlap") { Description = "How many distinct labellers answer each query.", DefaultValueFactory = _ => defaults.Overlap };
        var goldRate = new Option<double>("--gold-rate") { Description = "Fraction of hand-outs that are gold tasks, mixed in unannounced.", DefaultValueFactory = _ => defaults.GoldRate };
        var maxBody = new Option<long>("--max-body") { Description = "Largest request body in bytes; larger ones get 413.", DefaultValueFactory = _ => defaults.MaxRequestBodyBytes };

        var command = new Command("serve", "Serve the labelling web app (sign-in, comparisons, rankings, clips, progress, admin dashboard).");
        foreach (var o in new Option[] { db, pg, port, host, campaign, overlap, goldRate, maxBody })
            command.Options.Add(o);

        // Ctrl+C stops the host itself (its console lifetime); a refusal throws to Program's one error handler.
        command.SetAction(parseResult => ServeAsync(parseResult).GetAwaiter().GetResult());
        return command;

        async Task<int> ServeAsync(ParseResult parseResult)
        {
            var ct = CancellationToken.None;
            var file = parseResult.GetValue(db);
            var conn = parseResult.GetValue(pg);
            if ((file is null) == string.IsNullOrWhiteSpace(conn))
                throw new ArgumentException("give exactly one of --db FILE or --pg CONNECTION_STRING.");
            var options = defaults with
            {
                Port = parseResult.GetValue(port),
                Host = parseResult.GetValue(host)!,
                Campaign = parseResult.GetValue(campaign),
                Overlap = parseResult.GetValue(overlap),
                GoldRate = parseResult.GetValue(goldRate),
                MaxRequestBodyBytes = parseResult.GetValue(maxBody),
            };
            options.Validate();

            await using IPreferenceStore store = file is not null ? new SqlitePreferenceStore(file.FullName) : new PostgresPreferenceStore(conn!);
            await store.MigrateAsync(ct);
            var labelers = await store.GetLabelersAsync(ct);
            var app = LabelingApp.Build(store, options);
            await app.StartAsync(ct);
            Console.WriteLine($"Labelling app at {LabelingApp.BoundAddress(app)} over {(file is not null ? file.FullName : "PostgreSQL")}; press Ctrl+C to stop.");
            if (labelers.Count == 0)
                Console.WriteLine("No labellers yet: add one with `rlhf label add-labeler NAME` (and `--admin` for the dashboard).");
            await app.WaitForShutdownAsync(ct);
            await app.DisposeAsync();
            return 0;
        }
    }
}
