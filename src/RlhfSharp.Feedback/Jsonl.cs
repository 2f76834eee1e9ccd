// JSONL in and out, with TRL's column names (docs/design.md "Formats"): queries come in as {"prompt","responses":[...]},
// judgments go out as {"prompt","chosen","rejected"}, {"prompt","responses","ranking"}, {"prompt","responses","best"} or
// {"prompt","completion","label"}, each standard or conversational, pairs also with an implicit prompt; as JSONL or Parquet.
using System.Text.Json;
using System.Text.Json.Nodes;

namespace RlhfSharp.Feedback;

/// <summary>Which JSONL form comparisons are exported in.</summary>
public enum ExportFormat
{
    /// <summary>TRL's reward-trainer form {"prompt","chosen","rejected"}; a K-wise ranking gives all K·(K−1)/2 pairs.</summary>
    Pairs,
    /// <summary>InstructGPT's K-wise form {"prompt","responses","ranking"} (indices, best first).</summary>
    Ranking,
    /// <summary>Ziegler's best-of-K form {"prompt","responses","best"}.</summary>
    Best,
    /// <summary>TRL's unpaired form for KTO {"prompt","completion","label"}: the preferred (or top-ranked) candidate true, every other false.</summary>
    Unpaired,
}

/// <summary>Whether each judgment is exported, or one aggregated answer per query.</summary>
public enum ExportAggregation
{
    /// <summary>Every judgment becomes its own line(s): a query judged by three labellers appears three times.</summary>
    None,
    /// <summary>One line set per query from the label most labellers gave; queries whose top labels tie are left out.</summary>
    Majority,
    /// <summary>One line set per query from Dawid–Skene's most probable label (labellers weighted by their estimated confusions).</summary>
    DawidSkene,
}

/// <summary>What to export.</summary>
/// <param name="Format">The JSONL form written.</param>
/// <param name="Campaign">Only this campaign's judgments; null for all.</param>
/// <param name="IncludeTies">Pairs form only: write ties as {"prompt","chosen","rejected","tie":true} instead of leaving them out.</param>
/// <param name="ExcludeFlagged">Leave out judgments by labellers flagged by quality control.</param>
/// <param name="IncludeGold">Also export judgments on gold tasks (they are real comparisons, but were asked to measure people).</param>
/// <param name="Aggregation">Each judgment, or one aggregated answer per query (majority vote or Dawid–Skene).</param>
/// <param name="Conversational">TRL's conversational form: the prompt as [{"role":"user",...}], each answer as [{"role":"assistant",...}].</param>
/// <param name="ImplicitPrompt">Pairs form only: no "prompt" column; chosen and rejected each hold the prompt followed by the answer.</param>
public sealed record ExportOptions(ExportFormat Format = ExportFormat.Pairs, string? Campaign = null, bool IncludeTies = false, bool ExcludeFlagged = false, bool IncludeGold = false,
    ExportAggregation Aggregation = ExportAggregation.None, bool Conversational = false, bool ImplicitPrompt = false);

public static class Jsonl
{
    /// <summary>
    /// Reads queries from a JSONL file: each non-blank line {"prompt": str, "responses": [str, str, ...]} with optional
    /// "campaign" (str), "kind" ("text" or "clip"), "gold" (an index, a ranking array, or "tie"), "sources" ([str...]).
    /// Throws <see cref="FormatException"/> naming file:line and the field at the first bad line.
    /// </summary>
    public static IReadOnlyList<NewQuery> ReadQueries(string path, string defaultCampaign = "default") =>
        [.. JsonlReader.Read(path, "query file").Select(line => ParseQuery(line, defaultCampaign))];

    /// <summary>Reads the whole file, then stores it in one transaction: a bad line anywhere imports nothing.</summary>
    public static async Task<IReadOnlyList<long>> ImportQueriesAsync(IPreferenceStore store, string path, string defaultCampaign = "default", CancellationToken ct = default)
    {
        var queries = ReadQueries(path, defaultCampaign);
        return await store.AddQueriesAsync(queries, ct);
    }

    /// <summary>One {"prompt","responses"} line as a query.</summary>
    public static NewQuery ParseQuery(JsonlLine line, string defaultCampaign)
    {
        string prompt = line.String("prompt");
        var responses = line.StringArray("responses", minCount: 2);
        string[]? sources = line.Has("sources") ? line.StringArray("sources") : null;
        if (sources is not null && sources.Length != responses.Length)
            throw line.Error($"field \"sources\" must be an array with one string per response ({responses.Length}); got {sources.Length}.");
        var candidates = responses.Select((r, i) => new Candidate(r, sources?[i])).ToList();

        string campaign = line.OptionalString("campaign") ?? defaultCampaign;
        if (string.IsNullOrWhiteSpace(campaign)) throw line.Error("field \"campaign\" must not be empty.");
        var kind = line.OptionalString("kind") switch
        {
            null or "text" => QueryKind.Text,
            "clip" => QueryKind.Clip,
            var other => throw line.Error($"field \"kind\" must be \"text\" or \"clip\"; got \"{other}\"."),
        };
        Answer? gold = line.Optional("gold") is { } g ? ParseGold(g, line) : null;
        if (gold is not null)
        {
            try { gold.Validate(candidates.Count); }
            catch (ArgumentException ex) { throw line.Error($"field \"gold\": {ex.Message}"); }
        }
        return new NewQuery(kind, prompt, candidates, campaign, gold);
    }

    private static Answer ParseGold(JsonElement g, JsonlLine line) => g.ValueKind switch
    {
        JsonValueKind.Number => Answer.Prefer(line.Int("gold")),
        JsonValueKind.String when g.GetString() == "tie" => Answer.Tie(),
        JsonValueKind.Array => Answer.Rank(line.IntArray("gold")),
        _ => throw line.Error($"field \"gold\" must be an index, a ranking array or \"tie\"; got {g.GetRawText()}."),
    };

    /// <summary>Writes the store's judgments as JSONL in the chosen form; returns the number of lines written.</summary>
    public static async Task<int> ExportAsync(IPreferenceStore store, TextWriter writer, ExportOptions options, CancellationToken ct = default)
    {
        int lines = 0;
        foreach (var obj in await ExportRowsAsync(store, options, ct))
        {
            await writer.WriteLineAsync(obj.ToJsonString());
            lines++;
        }
        await writer.FlushAsync(ct);
        return lines;
    }

    /// <summary>Writes the same rows as <see cref="ExportAsync(IPreferenceStore, TextWriter, ExportOptions, CancellationToken)"/> as a Parquet file; returns the row count.</summary>
    public static async Task<int> ExportParquetAsync(IPreferenceStore store, Stream stream, ExportOptions options, CancellationToken ct = default)
    {
        var rows = await ExportRowsAsync(store, options, ct);
        if (rows.Count == 0) throw new InvalidOperationException("parquet export: no judgments to export (a Parquet file needs at least one row to know its columns).");
        await ParquetRows.WriteAsync(stream, rows, ct);
        return rows.Count;
    }

    /// <summary>The rows an export writes, in order.</summary>
    public static async Task<List<JsonObject>> ExportRowsAsync(IPreferenceStore store, ExportOptions options, CancellationToken ct = default)
    {
        if (options.ImplicitPrompt && options.Format != ExportFormat.Pairs)
            throw new ArgumentException("export: an implicit prompt exists only in the pairs form ({\"chosen\", \"rejected\"}).");
        var queries = (await store.GetQueriesAsync(options.Campaign, ct)).ToDictionary(q => q.Id);
        var flagged = options.ExcludeFlagged ? (await store.GetLabelersAsync(ct)).Where(l => l.Flagged).Select(l => l.Id).ToHashSet() : [];
        var unflagged = (await store.GetJudgmentsAsync(options.Campaign, ct))
            .Where(j => !flagged.Contains(j.LabelerId) && queries.ContainsKey(j.QueryId)).ToList();
        var kept = unflagged.Where(j => options.IncludeGold || !queries[j.QueryId].IsGold).ToList();
        IEnumerable<(long QueryId, Answer Answer)> answers = options.Aggregation switch
        {
            ExportAggregation.None => kept.Select(j => (j.QueryId, j.Answer)),
            ExportAggregation.Majority => Quality.QualityControl.MajorityVote(kept)
                .Where(kv => kv.Value is not null).OrderBy(kv => kv.Key).Select(kv => (kv.Key, FromCategory(kv.Value!))),
            ExportAggregation.DawidSkene => DawidSkeneAnswers(unflagged, queries, kept.Select(j => j.QueryId).ToHashSet()),
            _ => throw new ArgumentException($"export aggregation {options.Aggregation} is not known."),
        };
        return [.. answers.SelectMany(a => Lines(queries[a.QueryId], a.Answer, options))];
    }

    /// <summary>
    /// Dawid–Skene fitted on every unflagged judgment, gold tasks clamped to their true labels (so gold anchors the
    /// labellers' confusions even when gold is not exported), one answer for each query in <paramref name="export"/>.
    /// </summary>
    private static IEnumerable<(long, Answer)> DawidSkeneAnswers(List<Judgment> judgments, IReadOnlyDictionary<long, Query> queries, HashSet<long> export)
    {
        if (!judgments.Any(j => export.Contains(j.QueryId) && Quality.QualityControl.Category(j.Answer) is not null)) return [];
        var gold = queries.Values.Where(q => q.IsGold && Quality.QualityControl.Category(q.GoldAnswer!) is not null)
            .ToDictionary(q => q.Id, q => Quality.QualityControl.Category(q.GoldAnswer!)!);
        var fit = Quality.QualityControl.DawidSkeneLabels(judgments, gold: gold);
        return fit.Posteriors.Keys.Where(export.Contains).Order().Select(id => (id, FromCategory(fit.Label(id))));
    }

    /// <summary>The answer a nominal label (<see cref="Quality.QualityControl.Category"/>) stands for.</summary>
    internal static Answer FromCategory(string category) =>
        category == "tie" ? Answer.Tie()
        : category.StartsWith("rank:", StringComparison.Ordinal) ? Answer.Rank([.. category[5..].Split(',').Select(s => int.Parse(s, System.Globalization.CultureInfo.InvariantCulture))])
        : Answer.Prefer(int.Parse(category, System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>The JSONL objects one answer to one query becomes (none for a skip, or a form the answer cannot fill).</summary>
    public static IEnumerable<JsonObject> Lines(Query q, Answer answer, ExportOptions options) =>
        StandardLines(q, answer, options).Select(o => Shape(o, options));

    // The conversational and implicit-prompt forms are the standard rows rewritten (TRL's dataset_formats.md).
    private static JsonObject Shape(JsonObject row, ExportOptions options)
    {
        if (!options.Conversational && !options.ImplicitPrompt) return row;
        string prompt = (string)row["prompt"]!;
        JsonNode User(string text) => new JsonArray(new JsonObject { ["role"] = "user", ["content"] = text });
        JsonNode Assistant(string text) => new JsonArray(new JsonObject { ["role"] = "assistant", ["content"] = text });
        JsonNode Answer(string text) => options.ImplicitPrompt
            ? options.Conversational ? new JsonArray(new JsonObject { ["role"] = "user", ["content"] = prompt }, new JsonObject { ["role"] = "assistant", ["content"] = text }) : JsonValue.Create(prompt + text)
            : Assistant(text);
        var shaped = new JsonObject();
        foreach (var (key, value) in row)
        {
            switch (key)
            {
                case "prompt":
                    if (!options.ImplicitPrompt) shaped[key] = User(prompt);
                    break;
                case "chosen" or "rejected" or "completion":
                    shaped[key] = Answer((string)value!);
                    break;
                case "responses" when options.Conversational:
                    shaped[key] = new JsonArray([.. value!.AsArray().Select(r => Assistant((string)r!))]);
                    break;
                default:
                    shaped[key] = value?.DeepClone();
                    break;
            }
        }
        return shaped;
    }

    private static IEnumerable<JsonObject> StandardLines(Query q, Answer answer, ExportOptions options)
    {
        var texts = q.Candidates.Select(c => c.Content).ToArray();
        switch (options.Format)
        {
            case ExportFormat.Pairs:
                if (answer.Kind == AnswerKind.Tie)
                {
                    if (!options.IncludeTies) yield break;
                    for (int a = 0; a < texts.Length; a++)
                        for (int b = a + 1; b < texts.Length; b++)
                            yield return new JsonObject { ["prompt"] = q.Prompt, ["chosen"] = texts[a], ["rejected"] = texts[b], ["tie"] = true };
                    yield break;
                }
                foreach (var (w, l) in Pairs(answer, texts.Length))
                    yield return new JsonObject { ["prompt"] = q.Prompt, ["chosen"] = texts[w], ["rejected"] = texts[l] };
                break;
            case ExportFormat.Ranking:
                int[]? ranking = answer.Kind switch
                {
                    AnswerKind.Ranking => [.. answer.Ranking!],
                    // A pairwise choice is a full ranking only when there are two candidates.
                    AnswerKind.Preferred when texts.Length == 2 => [answer.Preferred!.Value, 1 - answer.Preferred.Value],
                    _ => null,
                };
                if (ranking is not null)
                    yield return new JsonObject { ["prompt"] = q.Prompt, ["responses"] = new JsonArray([.. texts.Select(t => JsonValue.Create(t))]), ["ranking"] = new JsonArray([.. ranking.Select(i => JsonValue.Create(i))]) };
                break;
            case ExportFormat.Best:
                int? best = answer.Kind switch
                {
                    AnswerKind.Preferred => answer.Preferred,
                    AnswerKind.Ranking => answer.Ranking![0],
                    _ => null,
                };
                if (best is int bi)
                    yield return new JsonObject { ["prompt"] = q.Prompt, ["responses"] = new JsonArray([.. texts.Select(t => JsonValue.Create(t))]), ["best"] = bi };
                break;
            case ExportFormat.Unpaired:
                // KTO's unpaired labels: the preferred (or top-ranked) candidate is desirable, the others are not; a tie says neither.
                int? top = answer.Kind switch
                {
                    AnswerKind.Preferred => answer.Preferred,
                    AnswerKind.Ranking => answer.Ranking![0],
                    _ => null,
                };
                if (top is int ti)
                    for (int i = 0; i < texts.Length; i++)
                        yield return new JsonObject { ["prompt"] = q.Prompt, ["completion"] = texts[i], ["label"] = i == ti };
                break;
            default:
                throw new ArgumentException($"export format {options.Format} is not known.");
        }
    }

    /// <summary>(winner, loser) index pairs an answer implies: the preferred one over each other, or every ordered pair of a ranking.</summary>
    public static IEnumerable<(int Winner, int Loser)> Pairs(Answer answer, int candidateCount)
    {
        if (answer.Kind == AnswerKind.Preferred)
        {
            for (int i = 0; i < candidateCount; i++)
                if (i != answer.Preferred) yield return (answer.Preferred!.Value, i);
        }
        else if (answer.Kind == AnswerKind.Ranking)
        {
            var r = answer.Ranking!;
            for (int a = 0; a < r.Count; a++)
                for (int b = a + 1; b < r.Count; b++)
                    yield return (r[a], r[b]);
        }
    }
}
