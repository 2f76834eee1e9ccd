// Preference examples for reward models and DPO, read from JSONL or Parquet in TRL's forms (DatasetForms: standard or
// conversational, explicit or implicit prompt, pairwise, K-wise ranking, best-of-K) or from a preference store (SQLite
// file). One example is one prompt with its candidates and the label the loss form needs.
using RlhfSharp.Feedback;
using RlhfSharp.Feedback.Stores;
using RlhfSharp.Text;

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
/// <param name="Templated">Rendered by the chat template: encoded with special tokens recognised, closed by the template rather than an appended EOS.</param>
public sealed record PreferenceExample(string Prompt, IReadOnlyList<string> Responses, PreferenceKind Kind,
    IReadOnlyList<int>? Ranking = null, int? Best = null, bool Tie = false, float Margin = 0, bool Templated = false)
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
    /// Reads every preference form of <see cref="DatasetForms.Preference"/> from JSONL or Parquet; conversational rows are
    /// rendered with <paramref name="template"/> (the model's; the default when null). A bad line throws
    /// <see cref="FormatException"/> naming file:line and the field.
    /// </summary>
    public static IReadOnlyList<PreferenceExample> ReadJsonl(string path, ChatTemplate? template = null)
    {
        var list = JsonlReader.Read(path, "preference file").Select(line => FromLine(line, template)).ToList();
        if (list.Count == 0) throw new FormatException($"{path}: no preference examples.");
        return list;
    }

    /// <summary>One line in any of the comparison forms as an example (conversational rows with the default template).</summary>
    public static PreferenceExample FromLine(JsonlLine line) => FromLine(line, null);

    /// <summary>One line in any of the comparison forms as an example.</summary>
    public static PreferenceExample FromLine(JsonlLine line, ChatTemplate? template)
    {
        template ??= ChatTemplate.Default;
        if (line.Has("chosen") || line.Has("rejected"))
        {
            float margin = (float)(line.OptionalNumber("margin") ?? 0);
            bool tie = line.OptionalBool("tie") ?? false;
            if (line.IsConversational("chosen") || line.IsConversational("rejected") || line.IsConversational("prompt"))
            {
                var chosen = DatasetForms.Messages(line, "chosen");
                var rejected = DatasetForms.Messages(line, "rejected");
                ChatMessage[] prompt;
                if (line.Has("prompt")) prompt = DatasetForms.Messages(line, "prompt");
                else
                {
                    // Implicit prompt: the leading messages both conversations share.
                    int n = DatasetForms.ImplicitPromptLength(chosen, rejected);
                    if (n == 0) throw line.Error("implicit prompt: \"chosen\" and \"rejected\" share no leading message, so there is no prompt; give a \"prompt\" column.");
                    prompt = chosen[..n];
                    (chosen, rejected) = (chosen[n..], rejected[n..]);
                    if (chosen.Length == 0 || rejected.Length == 0) throw line.Error("implicit prompt: \"chosen\" and \"rejected\" are the same conversation.");
                }
                var (p, c) = DatasetForms.Render(template, prompt, [chosen, rejected], line);
                return new PreferenceExample(p, c, PreferenceKind.Pair, Tie: tie, Margin: margin, Templated: true);
            }
            string chosenText = line.String("chosen"), rejectedText = line.String("rejected");
            if (line.Has("prompt")) return new PreferenceExample(line.String("prompt"), [chosenText, rejectedText], PreferenceKind.Pair, Tie: tie, Margin: margin);
            int cut = DatasetForms.ImplicitPromptLength(chosenText, rejectedText);
            return new PreferenceExample(chosenText[..cut], [chosenText[cut..], rejectedText[cut..]], PreferenceKind.Pair, Tie: tie, Margin: margin);
        }
        if (line.Has("responses"))
        {
            string prompt;
            string[] responses;
            bool templated = line.IsConversational("prompt");
            if (templated)
            {
                if (line.Optional("responses") is not { ValueKind: System.Text.Json.JsonValueKind.Array } arr || arr.GetArrayLength() < 2)
                    throw line.Error("field \"responses\" needs at least 2 conversations (lists of messages).");
                var conversations = new List<ChatMessage[]>();
                int i = 0;
                foreach (var conversation in arr.EnumerateArray())
                {
                    if (conversation.ValueKind != System.Text.Json.JsonValueKind.Array) throw line.Error($"field \"responses[{i}]\" must be a list of messages, as the prompt is.");
                    conversations.Add([.. line.Messages(conversation, $"responses[{i}]").Select(m => new ChatMessage(m.Role, m.Content))]);
                    i++;
                }
                (prompt, responses) = DatasetForms.Render(template, DatasetForms.Messages(line, "prompt"), conversations, line);
            }
            else
            {
                prompt = line.String("prompt");
                responses = line.StringArray("responses", minCount: 2);
            }
            int k = responses.Length;
            if (line.Has("ranking"))
            {
                var ranking = line.IntArray("ranking");
                if (ranking.Length != k) throw line.Error($"field \"ranking\" must be an array of {k} indices; got {ranking.Length}.");
                for (int r = 0; r < k; r++)
                    if (ranking[r] < 0 || ranking[r] >= k) throw line.Error($"field \"ranking[{r}]\" must be an index in 0..{k - 1}; got {ranking[r]}.");
                if (ranking.Distinct().Count() != k)
                    throw line.Error($"field \"ranking\" [{string.Join(",", ranking)}] lists an index twice.");
                return new PreferenceExample(prompt, responses, PreferenceKind.Ranking, Ranking: ranking, Templated: templated);
            }
            if (line.Has("best"))
            {
                int best = line.Int("best");
                if (best < 0 || best >= k) throw line.Error($"field \"best\" must be an index in 0..{k - 1}; got {best}.");
                return new PreferenceExample(prompt, responses, PreferenceKind.Best, Best: best, Templated: templated);
            }
            throw line.Error("a \"responses\" line needs \"ranking\" or \"best\".");
        }
        if (line.Has("completion") && line.Has("label"))
            throw line.Error($"this is an unpaired preference (KTO's {{\"prompt\", \"completion\", \"label\"}}), which a reward model or DPO cannot train on; the accepted forms are {DatasetForms.Preference}.");
        throw line.Error($"not a preference example; the accepted forms are {DatasetForms.Preference}.");
    }

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

    /// <summary>Reads a JSONL or Parquet file, or a SQLite preference store when the file ends in .db, .sqlite or .sqlite3.</summary>
    public static async Task<IReadOnlyList<PreferenceExample>> LoadAsync(string path, string? campaign = null, CancellationToken ct = default, ChatTemplate? template = null)
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
        return ReadJsonl(path, template);
    }
}
