// Preference examples for reward models and DPO, read from JSONL in TRL's column names (docs/design.md "Formats") or from a
// preference store (SQLite file). One example is one prompt with its candidates and the label the loss form needs.
using System.Text.Json;
using System.Text.Json.Nodes;
using RlhfSharp.Feedback;
using RlhfSharp.Feedback.Stores;

namespace RlhfSharp.Alignment.RewardModeling;

/// <summary>Which loss an example trains with (Objectives.PreferenceLosses).</summary>
public enum PreferenceKind
{
    /// <summary>Two responses, Responses[0] preferred (or a tie): Bradley–Terry with margin, ties as μ = ½.</summary>
    Pair,
    /// <summary>K responses with a full ranking, best first: InstructGPT's all-pairs loss in one batch element.</summary>
    Ranking,
    /// <summary>K responses, one chosen as best: Ziegler's softmax over K.</summary>
    Best,
}

/// <summary>One labelled comparison.</summary>
/// <param name="Prompt">The prompt the responses continue.</param>
/// <param name="Responses">Pair: [chosen, rejected] (or two tied answers); Ranking/Best: the K candidates in shown order.</param>
/// <param name="Kind">Which loss form applies.</param>
/// <param name="Ranking">Ranking: candidate indices, best first.</param>
/// <param name="Best">Best: index of the chosen candidate.</param>
/// <param name="Tie">Pair: the two are equally good (μ = ½).</param>
/// <param name="Margin">Pair: how much the chosen one should win by (TRL's optional "margin" column).</param>
public sealed record PreferenceExample(string Prompt, IReadOnlyList<string> Responses, PreferenceKind Kind,
    IReadOnlyList<int>? Ranking = null, int? Best = null, bool Tie = false, float Margin = 0)
{
    /// <summary>(winner, loser) index pairs this label implies (none for a tie); used for accuracy and calibration.</summary>
    public IEnumerable<(int Winner, int Loser)> OrderedPairs()
    {
        switch (Kind)
        {
            case PreferenceKind.Pair:
                if (!Tie) yield return (0, 1);
                break;
            case PreferenceKind.Ranking:
                for (int a = 0; a < Ranking!.Count; a++)
                    for (int b = a + 1; b < Ranking.Count; b++) yield return (Ranking[a], Ranking[b]);
                break;
            case PreferenceKind.Best:
                for (int i = 0; i < Responses.Count; i++) if (i != Best) yield return (Best!.Value, i);
                break;
        }
    }
}

public static class PreferenceData
{
    /// <summary>
    /// Reads {"prompt","chosen","rejected"} (optional "margin" number, "tie" bool), {"prompt","responses","ranking"} or
    /// {"prompt","responses","best"} lines. A bad line throws <see cref="FormatException"/> naming file:line and the field.
    /// </summary>
    public static IReadOnlyList<PreferenceExample> ReadJsonl(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: preference file not found.", path);
        var list = new List<PreferenceExample>();
        int lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            list.Add(Parse(line, $"{path}:{lineNo}"));
        }
        if (list.Count == 0) throw new FormatException($"{path}: no preference examples.");
        return list;
    }

    /// <summary>Parses one JSONL line; <paramref name="where"/> ("file:line") prefixes every error.</summary>
    public static PreferenceExample Parse(string line, string where)
    {
        JsonNode? node;
        try { node = JsonNode.Parse(line); }
        catch (JsonException ex) { throw new FormatException($"{where}: not valid JSON ({ex.Message})."); }
        if (node is not JsonObject obj) throw new FormatException($"{where}: each line must be a JSON object.");
        string prompt = Str(obj, "prompt", where);
        if (obj.ContainsKey("chosen") || obj.ContainsKey("rejected"))
        {
            string chosen = Str(obj, "chosen", where), rejected = Str(obj, "rejected", where);
            float margin = 0;
            if (obj["margin"] is JsonNode m)
            {
                if (m is not JsonValue mv || !mv.TryGetValue(out double md) || !double.IsFinite(md))
                    throw new FormatException($"{where}: field \"margin\" must be a number; got {m.ToJsonString()}.");
                margin = (float)md;
            }
            bool tie = false;
            if (obj["tie"] is JsonNode t)
            {
                if (t is not JsonValue tv || !tv.TryGetValue(out tie))
                    throw new FormatException($"{where}: field \"tie\" must be true or false; got {t.ToJsonString()}.");
            }
            return new PreferenceExample(prompt, [chosen, rejected], PreferenceKind.Pair, Tie: tie, Margin: margin);
        }
        if (obj["responses"] is not JsonArray arr)
            throw new FormatException($"{where}: expected \"chosen\"/\"rejected\" or a \"responses\" array.");
        if (arr.Count < 2) throw new FormatException($"{where}: field \"responses\" needs at least 2 entries; got {arr.Count}.");
        var responses = new string[arr.Count];
        for (int i = 0; i < arr.Count; i++)
            responses[i] = arr[i] is JsonValue v && v.TryGetValue(out string? s) ? s : throw new FormatException($"{where}: field \"responses\"[{i}] must be a string.");
        if (obj["ranking"] is JsonNode rn)
        {
            if (rn is not JsonArray ra || ra.Count != arr.Count)
                throw new FormatException($"{where}: field \"ranking\" must be an array of {arr.Count} indices.");
            var ranking = new int[ra.Count];
            for (int i = 0; i < ra.Count; i++)
                if (ra[i] is not JsonValue e || !e.TryGetValue(out ranking[i]) || ranking[i] < 0 || ranking[i] >= arr.Count)
                    throw new FormatException($"{where}: field \"ranking\"[{i}] must be an index in 0..{arr.Count - 1}.");
            if (ranking.Distinct().Count() != ranking.Length)
                throw new FormatException($"{where}: field \"ranking\" [{string.Join(",", ranking)}] lists an index twice.");
            return new PreferenceExample(prompt, responses, PreferenceKind.Ranking, Ranking: ranking);
        }
        if (obj["best"] is JsonNode bn)
        {
            if (bn is not JsonValue bv || !bv.TryGetValue(out int best) || best < 0 || best >= arr.Count)
                throw new FormatException($"{where}: field \"best\" must be an index in 0..{arr.Count - 1}; got {bn.ToJsonString()}.");
            return new PreferenceExample(prompt, responses, PreferenceKind.Best, Best: best);
        }
        throw new FormatException($"{where}: a \"responses\" line needs \"ranking\" or \"best\".");
    }

    private static string Str(JsonObject obj, string field, string where) =>
        obj[field] is null ? throw new FormatException($"{where}: field \"{field}\" is missing.")
        : obj[field] is JsonValue v && v.TryGetValue(out string? s) ? s
        : throw new FormatException($"{where}: field \"{field}\" must be a string; got {obj[field]!.ToJsonString()}.");

    /// <summary>
    /// Judgments of a preference store as examples: a choice between two is a pair, a choice among K a best-of-K, a
    /// ranking a ranking, a tie between two a tied pair; skips are left out. Flagged labellers' judgments are left out.
    /// </summary>
    public static async Task<IReadOnlyList<PreferenceExample>> FromStoreAsync(IPreferenceStore store, string? campaign = null, CancellationToken ct = default)
    {
        var queries = (await store.GetQueriesAsync(campaign, ct)).ToDictionary(q => q.Id);
        var flagged = (await store.GetLabelersAsync(ct)).Where(l => l.Flagged).Select(l => l.Id).ToHashSet();
        var list = new List<PreferenceExample>();
        foreach (var j in await store.GetJudgmentsAsync(campaign, ct))
        {
            if (flagged.Contains(j.LabelerId) || !queries.TryGetValue(j.QueryId, out var q) || q.Kind != QueryKind.Text) continue;
            var texts = q.Candidates.Select(c => c.Content).ToArray();
            var a = j.Answer;
            PreferenceExample? e = a.Kind switch
            {
                AnswerKind.Preferred when texts.Length == 2 => new(q.Prompt, [texts[a.Preferred!.Value], texts[1 - a.Preferred.Value]], PreferenceKind.Pair),
                AnswerKind.Preferred => new(q.Prompt, texts, PreferenceKind.Best, Best: a.Preferred),
                AnswerKind.Ranking => new(q.Prompt, texts, PreferenceKind.Ranking, Ranking: [.. a.Ranking!]),
                AnswerKind.Tie when texts.Length == 2 => new(q.Prompt, texts, PreferenceKind.Pair, Tie: true),
                _ => null,
            };
            if (e is not null) list.Add(e);
        }
        return list;
    }

    /// <summary>Reads a JSONL file, or a SQLite preference store when the file ends in .db, .sqlite or .sqlite3.</summary>
    public static async Task<IReadOnlyList<PreferenceExample>> LoadAsync(string path, string? campaign = null, CancellationToken ct = default)
    {
        string ext = Path.GetExtension(path).ToLowerInvariant();
        if (ext is ".db" or ".sqlite" or ".sqlite3")
        {
            if (!File.Exists(path)) throw new FileNotFoundException($"{path}: preference store not found.", path);
            await using var store = await SqlitePreferenceStore.OpenAsync(path, ct: ct);
            var examples = await FromStoreAsync(store, campaign, ct);
            if (examples.Count == 0) throw new FormatException($"{path}: the store holds no usable judgments{(campaign is null ? "" : $" in campaign '{campaign}'")}.");
            return examples;
        }
        return ReadJsonl(path);
    }
}
