// `rlhf label ...`: human feedback from the terminal — labelling (keys 1/2/t/s), labellers (add, flag, unflag, revoke,
// with every such admin action in the audit log), JSONL import and export, the oracle and AI-judge labellers, and the
// quality report. `rlhf label serve` (the web app) is added beside these.
using System.CommandLine;
using System.Globalization;
using RlhfSharp.Feedback;
using RlhfSharp.Feedback.Labelers;
using RlhfSharp.Feedback.Quality;
using RlhfSharp.Feedback.Stores;
using RlhfSharp.Runs;
using RlhfSharp.Text;
using RlhfSharp.Text.StoryWorld;
using Spectre.Console;

namespace RlhfSharp.Cli.Commands;

internal static class LabelCommand
{
    /// <summary>Where judgments live: --db FILE (SQLite, created if missing) or --pg CONN (PostgreSQL); exactly one. `label serve` takes them too.</summary>
    internal sealed class StoreOptions
    {
        public Option<FileInfo?> Db { get; } = new("--db") { Description = "The SQLite preference store (created if missing)." };
        public Option<string?> Pg { get; } = new("--pg") { Description = "A PostgreSQL connection string (Npgsql form), instead of --db." };
        public Option<bool> Durable { get; } = new("--durable")
        {
            Description = "SQLite: fsync every commit (synchronous=FULL), so an acknowledged judgment survives power loss, not only a crash of this process (PostgreSQL is durable already).",
        };

        public void AddTo(Command command)
        {
            command.Options.Add(Db);
            command.Options.Add(Pg);
            command.Options.Add(Durable);
        }

        public async Task<SqlPreferenceStore> OpenAsync(ParseResult p)
        {
            var (db, pg) = (p.GetValue(Db), p.GetValue(Pg));
            if ((db is null) == (pg is null)) throw new ArgumentException("give the store as exactly one of --db FILE or --pg CONNECTION-STRING.");
            SqlPreferenceStore store = db is not null ? new SqlitePreferenceStore(db.FullName, durable: p.GetValue(Durable)) : new PostgresPreferenceStore(pg!);
            try
            {
                await store.MigrateAsync();
                return store;
            }
            catch
            {
                await store.DisposeAsync();
                throw;
            }
        }
    }

    public static Command Create()
    {
        var command = new Command("label", "Human feedback: label in the terminal, manage labellers, import queries, export comparisons.");
        command.Subcommands.Add(AddLabeler());
        command.Subcommands.Add(SetAccess("revoke", "Revoke a labeller: their token and every session stop working at once (401); their judgments stay.",
            (store, l) => store.RevokeLabelerAsync(l.Id), "their token and sessions no longer work"));
        command.Subcommands.Add(SetAccess("flag", "Flag a labeller: no new assignments (their open ones are handed back) until unflagged.",
            (store, l) => store.SetFlaggedAsync(l.Id, true), "no new assignments until unflagged"));
        command.Subcommands.Add(SetAccess("unflag", "Unflag a labeller: they get assignments again.",
            (store, l) => store.SetFlaggedAsync(l.Id, false), "assignments resume"));
        command.Subcommands.Add(Audit());
        command.Subcommands.Add(Import());
        command.Subcommands.Add(Export());
        command.Subcommands.Add(Terminal());
        command.Subcommands.Add(Oracle());
        command.Subcommands.Add(Judge());
        command.Subcommands.Add(Report());
        command.Subcommands.Add(LabelServeCommand.Create());
        return command;
    }

    /// <summary>Runs an asynchronous action to its end; a refused or malformed operation throws to Program's one error handler.</summary>
    private static int Run(Func<Task<int>> action) => Blocking.Run(action);

    private static Command AddLabeler()
    {
        var db = new StoreOptions();
        var name = new Argument<string>("name") { Description = "The labeller's display name." };
        var admin = new Option<bool>("--admin") { Description = "Give the labeller the admin role (dashboard, managing labellers)." };
        var cmd = new Command("add-labeler", "Add a labeller and print their token (shown once; only its hash is stored).");
        cmd.Arguments.Add(name);
        cmd.Options.Add(admin);
        db.AddTo(cmd);
        cmd.SetAction(p => Run(async () =>
        {
            await using var store = await db.OpenAsync(p);
            var (labeler, token) = await store.AddLabelerAsync(p.GetValue(name)!, p.GetValue(admin) ? LabelerRole.Admin : LabelerRole.Labeler);
            await store.AppendAuditAsync(CliActor, "add-labeler", labeler.Display, p.GetValue(admin) ? "role admin" : "role labeler");
            Console.WriteLine($"labeller {labeler.Id} \"{labeler.Name}\" ({labeler.Role.ToString().ToLowerInvariant()}); token (shown once):");
            Console.WriteLine(token);
            return 0;
        }));
        return cmd;
    }

    /// <summary>Who the audit log names for an action taken at this terminal.</summary>
    private static string CliActor => $"cli:{Environment.UserName}";

    /// <summary>The labeller called NAME, or #ID; a name several labellers share must be given as #ID.</summary>
    private static async Task<Labeler> FindLabelerAsync(IPreferenceStore store, string nameOrId)
    {
        var all = await store.GetLabelersAsync();
        var named = all.Where(l => l.Name == nameOrId).ToList();
        if (named.Count == 1) return named[0];
        if (named.Count > 1)
            throw new FeedbackException($"{named.Count} labellers are named \"{nameOrId}\" (ids {string.Join(", ", named.Select(l => "#" + l.Id.ToString(CultureInfo.InvariantCulture)))}): give one as #ID.");
        if (nameOrId.StartsWith('#') && long.TryParse(nameOrId.AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out var id) && all.FirstOrDefault(l => l.Id == id) is { } byId)
            return byId;
        throw new FeedbackException($"no labeller is named \"{FeedbackLimits.Excerpt(nameOrId)}\" in this store (`rlhf label audit` and `rlhf label report` list them).", 404);
    }

    /// <summary>`label revoke|flag|unflag NAME`: changes one labeller's access and writes the change to the audit log.</summary>
    private static Command SetAccess(string action, string description, Func<IPreferenceStore, Labeler, Task> apply, string effect)
    {
        var db = new StoreOptions();
        var who = new Argument<string>("name") { Description = "The labeller's name, or #ID when several share it." };
        var cmd = new Command(action, description);
        cmd.Arguments.Add(who);
        db.AddTo(cmd);
        cmd.SetAction(p => Run(async () =>
        {
            await using var store = await db.OpenAsync(p);
            var labeler = await FindLabelerAsync(store, p.GetValue(who)!);
            await apply(store, labeler);
            await store.AppendAuditAsync(CliActor, action, labeler.Display);
            Console.WriteLine($"{action}: labeller {labeler.Id} \"{FeedbackLimits.Excerpt(labeler.Name, FeedbackLimits.LabelerName)}\": {effect}.");
            return 0;
        }));
        return cmd;
    }

    private static Command Audit()
    {
        var db = new StoreOptions();
        var cmd = new Command("audit", "Print the audit log of admin actions (add-labeler, flag, unflag, revoke): when (UTC), who, what, to whom.");
        db.AddTo(cmd);
        cmd.SetAction(p => Run(async () =>
        {
            await using var store = await db.OpenAsync(p);
            var log = await store.GetAuditLogAsync();
            // Tab-separated, one action a line, control characters escaped: fit for grep and cut, safe for a terminal.
            Console.WriteLine("when\twho\taction\tlabeller\tdetail");
            foreach (var e in log)
                Console.WriteLine(string.Join('\t', e.At.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
                    FeedbackLimits.Excerpt(e.Actor, 200), e.Action, FeedbackLimits.Excerpt(e.Target, 200), FeedbackLimits.Excerpt(e.Detail, 200)));
            Console.Error.WriteLine($"{log.Count} audited actions");
            return 0;
        }));
        return cmd;
    }

    private static Command Import()
    {
        var db = new StoreOptions();
        var file = new Argument<FileInfo>("file") { Description = "JSONL with one {\"prompt\",\"responses\":[...]} per line (optional campaign, kind, gold, sources)." };
        var campaign = new Option<string>("--campaign") { Description = "Campaign for lines that name none.", DefaultValueFactory = _ => "default" };
        var cmd = new Command("import", "Import queries from JSONL in one transaction (a bad line imports nothing).");
        cmd.Arguments.Add(file);
        cmd.Options.Add(campaign);
        db.AddTo(cmd);
        cmd.SetAction(p => Run(async () =>
        {
            await using var store = await db.OpenAsync(p);
            var ids = await Jsonl.ImportQueriesAsync(store, p.GetValue(file)!.FullName, p.GetValue(campaign)!);
            Console.WriteLine($"imported {ids.Count} queries");
            return 0;
        }));
        return cmd;
    }

    private static Command Export()
    {
        var db = new StoreOptions();
        var output = new Option<string>("--out") { Description = "Output JSONL file (a name ending in .parquet writes Parquet), or - for standard output.", DefaultValueFactory = _ => "-" };
        var format = new Option<ExportFormat>("--format") { Description = "pairs ({prompt,chosen,rejected}), ranking ({prompt,responses,ranking}), best ({prompt,responses,best}) or unpaired ({prompt,completion,label}, KTO).", DefaultValueFactory = _ => ExportFormat.Pairs };
        var conversational = new Option<bool>("--conversational") { Description = "TRL's conversational form: prompt and answers as lists of {role, content} messages." };
        var implicitPrompt = new Option<bool>("--implicit-prompt") { Description = "Pairs form: no prompt column; chosen and rejected each begin with the prompt." };
        var campaign = new Option<string?>("--campaign") { Description = "Only this campaign." };
        var ties = new Option<bool>("--include-ties") { Description = "Pairs form: write ties with \"tie\": true." };
        var excludeFlagged = new Option<bool>("--exclude-flagged") { Description = "Leave out labellers flagged by quality control." };
        var gold = new Option<bool>("--include-gold") { Description = "Also export judgments on gold tasks." };
        var aggregate = new Option<ExportAggregation>("--aggregate") { Description = "none (every judgment), majority or dawidskene (one answer per query).", DefaultValueFactory = _ => ExportAggregation.None };
        var cmd = new Command("export", "Export judgments as JSONL comparisons (TRL's column names).");
        foreach (var o in new Option[] { output, format, campaign, ties, excludeFlagged, gold, aggregate, conversational, implicitPrompt }) cmd.Options.Add(o);
        db.AddTo(cmd);
        cmd.SetAction(p => Run(async () =>
        {
            await using var store = await db.OpenAsync(p);
            var options = new ExportOptions(p.GetValue(format), p.GetValue(campaign), p.GetValue(ties), p.GetValue(excludeFlagged), p.GetValue(gold), p.GetValue(aggregate),
                p.GetValue(conversational), p.GetValue(implicitPrompt));
            string path = p.GetValue(output)!;
            int lines;
            if (path == "-") lines = await Jsonl.ExportAsync(store, Console.Out, options);
            else if (JsonlReader.IsParquet(path))
            {
                int written = 0;
                AtomicFile.Write(path, stream => written = Blocking.Run(() => Jsonl.ExportParquetAsync(store, stream, options)));
                lines = written;
            }
            else
            {
                // Written to a temporary name and renamed, so an interrupted export never leaves a torn file.
                int written = 0;
                AtomicFile.Write(path, stream =>
                {
                    using var writer = new StreamWriter(stream, leaveOpen: true);
                    written = Blocking.Run(() => Jsonl.ExportAsync(store, writer, options));
                });
                lines = written;
            }
            Console.Error.WriteLine($"exported {lines} lines");
            return 0;
        }));
        return cmd;
    }

    private static Command Terminal()
    {
        var db = new StoreOptions();
        var token = new Option<string?>("--token") { Description = "Your labeller token (or set RLHF_LABEL_TOKEN)." };
        var campaign = new Option<string?>("--campaign") { Description = "Only this campaign's queries." };
        var overlap = new Option<int>("--overlap") { Description = "How many distinct labellers each query goes to.", DefaultValueFactory = _ => 1 }.InRange(new(1));
        var goldRate = new Option<double>("--gold-rate") { Description = "Share of gold tasks mixed in (unannounced).", DefaultValueFactory = _ => 0 }.InRange(new(0, 1));
        var cmd = new Command("cli", "Label in the terminal: 1/2/… choose, t tie, s skip, q quit.");
        foreach (var o in new Option[] { token, campaign, overlap, goldRate }) cmd.Options.Add(o);
        db.AddTo(cmd);
        cmd.SetAction(p => Run(async () =>
        {
            await using var store = await db.OpenAsync(p);
            string secret = p.GetValue(token) ?? Environment.GetEnvironmentVariable("RLHF_LABEL_TOKEN")
                ?? throw new FeedbackException("no labeller token: pass --token or set RLHF_LABEL_TOKEN (rlhf label add-labeler prints one).", 401);
            var me = await store.AuthenticateAsync(secret) ?? throw new FeedbackException("the token is not known to this store.", 401);
            int shown = 0;
            int done = await LabelingSession.RunAsync(store, me.Id, (query, _) =>
            {
                Show(query, shown++, AnsiConsole.Console);
                return Task.FromResult(ReadAnswer(query.Candidates.Count));
            }, int.MaxValue, p.GetValue(campaign), p.GetValue(overlap), p.GetValue(goldRate));
            AnsiConsole.MarkupLine($"[green]{done}[/] judgments saved. Thank you, {Markup.Escape(TerminalText.Escape(me.Name))}.");
            return 0;
        }));
        return cmd;
    }

    /// <summary>
    /// Draws one query. Its text is untrusted (whoever wrote the JSONL): control characters are shown as escapes
    /// (TerminalText), so ESC[2J cannot clear the screen nor CR + ESC[K rewrite which side is which.
    /// </summary>
    internal static void Show(Query q, int done, IAnsiConsole console)
    {
        static string Safe(string text) => Markup.Escape(TerminalText.Escape(text));
        console.Write(new Rule($"query {q.Id} · {done} done").LeftJustified());
        console.Write(new Panel(Safe(q.Prompt)).Header("prompt").Expand());
        var panels = q.Candidates.Select((c, i) => (Spectre.Console.Rendering.IRenderable)new Panel(Safe(c.Content)).Header($"[bold]{i + 1}[/]").Expand()).ToList();
        if (q.Candidates.Count == 2) console.Write(new Columns(panels));
        else foreach (var panel in panels) console.Write(panel);
        console.MarkupLine(q.Candidates.Count == 2
            ? "[grey]1/2 better · t tie · s skip · q quit[/]"
            : $"[grey]1–{q.Candidates.Count} best, or a ranking best first (e.g. 312) · t tie · s skip · q quit[/]");
    }

    /// <summary>
    /// Reads one key (or, when input is piped, one line); null to quit. With more than two candidates a line of
    /// digits ("312") is a full ranking, best first, and one digit picks the best.
    /// </summary>
    private static Answer? ReadAnswer(int count)
    {
        while (true)
        {
            string input;
            if (Console.IsInputRedirected || count > 2)
            {
                var line = Console.IsInputRedirected ? Console.In.ReadLine() : AnsiConsole.Prompt(new TextPrompt<string>("your answer:"));
                if (line is null) return null;
                input = new string([.. line.Trim().ToLowerInvariant().Where(c => !char.IsWhiteSpace(c) && c != ',')]);
                if (input.Length == 0) continue;
            }
            else input = char.ToLowerInvariant(Console.ReadKey(intercept: true).KeyChar).ToString();

            if (input == "q") return null;
            if (input == "t") return Answer.Tie();
            if (input == "s")
            {
                var reason = Console.IsInputRedirected ? "can't tell" : AnsiConsole.Prompt(new TextPrompt<string>("why skip?").DefaultValue("can't tell"));
                return Answer.Skip(reason);
            }
            if (input.All(c => c >= '1' && c <= '9'))
            {
                var picks = input.Select(c => c - '1').ToArray();
                var answer = picks.Length == 1 ? Answer.Prefer(picks[0]) : Answer.Rank(picks);
                try
                {
                    answer.Validate(count);
                    return answer;
                }
                catch (ArgumentException ex)
                {
                    AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(ex.Message)}[/]");
                    continue;
                }
            }
            AnsiConsole.MarkupLine($"[yellow]press 1–{count}{(count > 2 ? " (or a ranking such as 312)" : "")}, t, s or q[/]");
        }
    }

    private static Command Oracle()
    {
        var db = new StoreOptions();
        var lexicon = new Option<string?>("--lexicon") { Description = "VADER lexicon (e.g. data/sentiment/vader_lexicon.txt): the gold scorer prefers the more positive text (default: the story world's gold scorer)." };
        var name = new Option<string>("--name") { Description = "Labeller name the oracle's judgments are stored under.", DefaultValueFactory = _ => "oracle" };
        var count = new Option<int>("--count") { Description = "At most this many judgments.", DefaultValueFactory = _ => 1000 }.InRange(new(1));
        var temperature = new Option<double>("--temperature") { Description = "Bradley–Terry temperature on gold scores.", DefaultValueFactory = _ => 0.05 }.InRange(NumericRange.Positive);
        var epsilon = new Option<double>("--epsilon") { Description = "Probability of a random answer.", DefaultValueFactory = _ => 0 }.InRange(new(0, 1));
        var seed = new Option<int>("--seed") { Description = "Oracle seed.", DefaultValueFactory = _ => 0 }.InRange(NumericRange.NonNegative);
        var campaign = new Option<string?>("--campaign") { Description = "Only this campaign's queries." };
        var overlap = new Option<int>("--overlap") { Description = "How many distinct labellers each query goes to.", DefaultValueFactory = _ => 1 }.InRange(new(1));
        var cmd = new Command("oracle", "Label queries with the synthetic oracle (a gold scorer — the story world's, or VADER with --lexicon — Bradley–Terry, ε-noise).");
        foreach (var o in new Option[] { lexicon, name, count, temperature, epsilon, seed, campaign, overlap }) cmd.Options.Add(o);
        db.AddTo(cmd);
        cmd.SetAction(p => Run(async () =>
        {
            await using var store = await db.OpenAsync(p);
            Func<string, Candidate, double> gold = p.GetValue(lexicon) is { } file
                ? VaderSentiment.Load(DataPaths.Resolve(file)).AsGoldScorer()
                : (prompt, candidate) => Stories.GoldReward(candidate.Content, prompt);
            var oracle = new OracleLabeler(gold, new OracleOptions(p.GetValue(temperature), p.GetValue(epsilon), Seed: p.GetValue(seed)), p.GetValue(name)!);
            var me = await LabelingSession.FindOrAddLabelerAsync(store, oracle.Name);
            int n = await LabelingSession.RunAsync(store, me.Id, oracle, p.GetValue(count), p.GetValue(campaign), p.GetValue(overlap));
            Console.WriteLine($"oracle \"{oracle.Name}\" submitted {n} judgments");
            return 0;
        }));
        return cmd;
    }

    private static Command Judge()
    {
        var db = new StoreOptions();
        var baseUrl = new Option<string>("--base-url") { Description = "OpenAI-compatible API root, e.g. http://127.0.0.1:8080/v1.", Required = true };
        var model = new Option<string>("--model") { Description = "Model name sent to the endpoint.", Required = true };
        var keyVar = new Option<string?>("--api-key-env") { Description = "Environment variable holding the API key (omit for servers that need none)." };
        var name = new Option<string>("--name") { Description = "Labeller name the judge's judgments are stored under.", DefaultValueFactory = _ => "ai-judge" };
        var count = new Option<int>("--count") { Description = "At most this many judgments.", DefaultValueFactory = _ => 100 }.InRange(new(1));
        var campaign = new Option<string?>("--campaign") { Description = "Only this campaign's queries." };
        var overlap = new Option<int>("--overlap") { Description = "How many distinct labellers each query goes to.", DefaultValueFactory = _ => 1 }.InRange(new(1));
        var cmd = new Command("judge", "Label queries with an AI judge over an OpenAI-compatible chat endpoint (RLAIF).");
        foreach (var o in new Option[] { baseUrl, model, keyVar, name, count, campaign, overlap }) cmd.Options.Add(o);
        db.AddTo(cmd);
        cmd.SetAction(p => Run(async () =>
        {
            await using var store = await db.OpenAsync(p);
            var judge = new AiJudge(new AiJudgeOptions(p.GetValue(baseUrl)!, p.GetValue(model)!, p.GetValue(keyVar)), p.GetValue(name)!);
            var me = await LabelingSession.FindOrAddLabelerAsync(store, judge.Name);
            int skips = 0;
            string? firstSkip = null;
            int n = await LabelingSession.RunAsync(store, me.Id, async (query, ct) =>
            {
                var answer = await judge.AnswerAsync(query, ct);
                if (answer.Kind == AnswerKind.Skip) { skips++; firstSkip ??= answer.SkipReason; }
                return (Answer?)answer;
            }, p.GetValue(count), p.GetValue(campaign), p.GetValue(overlap));
            // A judge that understood nothing has labelled nothing: say so, with what it answered, instead of a count.
            if (n > 0 && skips == n)
                throw new FeedbackException($"judge \"{judge.Name}\": all {n} answers were skips, none understood; the first: {firstSkip}", 502);
            Console.WriteLine($"judge \"{judge.Name}\" submitted {n} judgments ({n - skips} labels, {skips} skips)");
            return 0;
        }));
        return cmd;
    }

    private static Command Report()
    {
        var db = new StoreOptions();
        var campaign = new Option<string?>("--campaign") { Description = "Only this campaign." };
        var flagBelow = new Option<double?>("--flag-below") { Description = "Flag labellers whose gold accuracy is under this (0..1)." }.InRange(new(0, 1));
        var minGold = new Option<int>("--min-gold") { Description = "Gold judgments needed before a labeller can be flagged.", DefaultValueFactory = _ => 5 }.InRange(NumericRange.NonNegative);
        var cmd = new Command("report", "Quality report: gold accuracy per labeller, Cohen's κ per pair, Krippendorff's α; optional flagging.");
        foreach (var o in new Option[] { campaign, flagBelow, minGold }) cmd.Options.Add(o);
        db.AddTo(cmd);
        cmd.SetAction(p => Run(async () =>
        {
            await using var store = await db.OpenAsync(p);
            if (p.GetValue(flagBelow) is double threshold) await QualityControl.FlagAsync(store, threshold, p.GetValue(minGold), p.GetValue(campaign), actor: CliActor);
            var report = await QualityControl.ReportAsync(store, p.GetValue(campaign));
            var names = (await store.GetLabelersAsync()).ToDictionary(l => l.Id);
            string F(double x) => double.IsNaN(x) ? "–" : x.ToString("0.000", CultureInfo.InvariantCulture);
            var gold = new Table().AddColumns("labeller", "gold judged", "accuracy", "flagged");
            foreach (var g in report.Gold)
                gold.AddRow(Markup.Escape(names[g.LabelerId].Name), g.Judged.ToString(CultureInfo.InvariantCulture), F(g.Accuracy), names[g.LabelerId].Flagged ? "[red]yes[/]" : "no");
            AnsiConsole.Write(gold);
            var pairs = new Table().AddColumns("labeller A", "labeller B", "shared", "Cohen's κ");
            foreach (var k in report.Pairs)
                pairs.AddRow(Markup.Escape(names[k.LabelerA].Name), Markup.Escape(names[k.LabelerB].Name), k.SharedItems.ToString(CultureInfo.InvariantCulture), F(k.Kappa));
            AnsiConsole.Write(pairs);
            AnsiConsole.MarkupLine($"Krippendorff's α (nominal): {F(report.Alpha)}");
            return 0;
        }));
        return cmd;
    }
}
