// SFT demonstrations in TRL's forms (DatasetForms): {"text"} and {"messages"} (language modelling: the loss covers every
// token), {"prompt","completion"} standard or conversational (the loss covers the completion), from JSONL or Parquet, with
// errors that name file:line and the field; the story world's built-in demonstrations; and batching into rows whose loss
// covers completion tokens (and EOS) only.
using System.Text.Json;
using RlhfSharp.Feedback;
using RlhfSharp.Models;
using RlhfSharp.Text;
using RlhfSharp.Text.StoryWorld;

namespace RlhfSharp.Alignment.LanguageModeling;

/// <summary>One demonstration; <paramref name="Source"/> says where it came from ("demos.jsonl:12") for error messages.</summary>
/// <param name="Templated">Rendered by the chat template: encoded with special tokens recognised, and closed by the template rather than an appended EOS.</param>
public sealed record SftExample(string Prompt, string Completion, string Source = "", bool Templated = false);

public static class SftData
{
    /// <summary>
    /// Reads demonstrations in any SFT form of <see cref="DatasetForms.Sft"/> from JSONL or Parquet (other fields are
    /// ignored; blank lines skipped); conversational rows are rendered with <paramref name="template"/> (the model's, see
    /// <see cref="ChatTemplate.For"/>; the default when null). A bad line is an error naming file:line and the field.
    /// </summary>
    public static IReadOnlyList<SftExample> ReadJsonl(string path, ChatTemplate? template = null)
    {
        var result = JsonlReader.Read(path, "SFT data").Select(line => FromLine(line, template)).ToList();
        if (result.Count == 0) throw new FormatException($"{path}: no demonstrations (the file has no non-blank lines).");
        return result;
    }

    /// <summary>One line as a demonstration; its source is "FILE:LINE".</summary>
    public static SftExample FromLine(JsonlLine line) => FromLine(line, null);

    /// <summary>One line in any SFT form as a demonstration, conversational rows rendered with <paramref name="template"/>.</summary>
    public static SftExample FromLine(JsonlLine line, ChatTemplate? template)
    {
        template ??= ChatTemplate.Default;
        if (line.Has("prompt") || line.Has("completion"))
        {
            if (line.IsConversational("prompt") || line.IsConversational("completion"))
            {
                var (p, c) = DatasetForms.Render(template, DatasetForms.Messages(line, "prompt"), [DatasetForms.Messages(line, "completion")], line);
                if (c[0].Length == 0) throw line.Error("field \"completion\" renders to no text; there would be nothing to learn.");
                return new SftExample(p, c[0], line.Where, Templated: true);
            }
            string prompt = line.String("prompt");
            string completion = line.String("completion");
            if (completion.Length == 0) throw line.Error("field \"completion\" is empty; there would be nothing to learn.");
            return new SftExample(prompt, completion, line.Where);
        }
        if (line.Has("messages"))
        {
            string text;
            try
            {
                text = template.Render(DatasetForms.Messages(line, "messages"), addGenerationPrompt: false);
            }
            catch (Text.Chat.ChatTemplateException ex)
            {
                throw line.Error(ex.Message);
            }
            return new SftExample("", text, line.Where, Templated: true);
        }
        if (line.Has("text"))
        {
            string text = line.String("text");
            if (text.Length == 0) throw line.Error("field \"text\" is empty; there would be nothing to learn.");
            return new SftExample("", text, line.Where);
        }
        throw line.Error($"not an SFT example; the accepted forms are {DatasetForms.Sft}.");
    }

    /// <summary>Writes examples as {"prompt","completion"} JSONL (what <see cref="ReadJsonl(string, ChatTemplate?)"/> reads).</summary>
    public static void WriteJsonl(string path, IEnumerable<SftExample> examples)
    {
        using var ms = new MemoryStream();
        foreach (var e in examples)
        {
            using (var w = new Utf8JsonWriter(ms))
            {
                w.WriteStartObject();
                w.WriteString("prompt", e.Prompt);
                w.WriteString("completion", e.Completion);
                w.WriteEndObject();
            }
            ms.WriteByte((byte)'\n');
        }
        Runs.AtomicFile.WriteAllBytes(path, ms.ToArray());
    }

    /// <summary>The story world's demonstrations: a story's first sentence → the next one or two (used when no data is given).</summary>
    public static IReadOnlyList<SftExample> StoryWorld(ulong seed, int count) =>
        Stories.Demonstrations(seed, count).Select((d, i) => new SftExample(d.Prompt, d.Completion, $"story world demonstration {i}")).ToList();
}

/// <summary>One tokenised demonstration: prompt ++ completion (++ EOS), of which the first PromptLength tokens are the prompt's.</summary>
internal sealed record SftRow(int[] Tokens, int PromptLength);

internal static class SftBatches
{
    /// <summary>Tokenises examples, keeping at most <paramref name="blockSize"/> tokens (the prompt loses its start first).</summary>
    public static List<SftRow> Encode(ITokenizer tokenizer, IReadOnlyList<SftExample> examples, int blockSize, bool appendEos)
    {
        var rows = new List<SftRow>(examples.Count);
        foreach (var e in examples)
        {
            var (tokens, promptLength) = TokenRows.Encode(tokenizer, e.Prompt, e.Completion, blockSize, appendEos, e.Templated);
            // A row trains on targets t+1 ≥ PromptLength for t+1 < length: it needs at least one completion token after the first token.
            if (tokens.Length < 2 || promptLength >= tokens.Length)
                throw new FormatException($"{(e.Source.Length > 0 ? e.Source : "SFT example")}: field \"completion\" gives no token to train on after tokenisation (prompt {promptLength} of {tokens.Length} tokens).");
            rows.Add(new SftRow(tokens, promptLength));
        }
        return rows;
    }

    /// <summary>
    /// A padded batch (B,T): targets[b,t] = the row's next token, with weight 1 exactly where that next token belongs to
    /// the completion (or EOS); prompt positions and padding have weight 0, so they add nothing to the loss or its gradient.
    /// </summary>
    public static LmBatch Build(IReadOnlyList<SftRow> rows, SftPadding padding)
    {
        int B = rows.Count, T = rows.Max(r => r.Tokens.Length);
        var tokens = new int[B * T];
        var mask = new byte[B * T];
        var targets = new int[B * T];
        var weights = new float[B * T];
        long real = 0;
        for (int b = 0; b < B; b++)
        {
            var row = rows[b];
            int L = row.Tokens.Length;
            int start = padding == SftPadding.Left ? T - L : 0; // where the row's first real token sits
            for (int t = 0; t < L; t++)
            {
                int n = b * T + start + t;
                tokens[n] = row.Tokens[t];
                mask[n] = 1;
                if (t + 1 < L)
                {
                    targets[n] = row.Tokens[t + 1];
                    weights[n] = t + 1 >= row.PromptLength ? 1f : 0f;
                }
            }
            real += L;
        }
        return new LmBatch(new GptInput(B, T, tokens, mask), targets, weights, real);
    }
}

/// <summary>SFT batches: shuffled training rows each epoch, and a fixed held-out list.</summary>
internal sealed class SftBatchSource : ILmBatchSource
{
    private readonly List<SftRow> _train;
    private readonly EpochOrder _order;
    private readonly int _batchSize;
    private readonly SftPadding _padding;

    public SftBatchSource(List<SftRow> rows, LmTrainingOptions o, SftPadding padding)
    {
        int heldOut = (int)Math.Ceiling(rows.Count * o.HeldOutFraction);
        if (rows.Count - heldOut < 1 || heldOut < 1)
            throw new ArgumentException($"SFT: {rows.Count} examples cannot be split into training and held-out parts with HeldOutFraction {o.HeldOutFraction}.");
        _train = rows.GetRange(0, rows.Count - heldOut);
        var held = rows.GetRange(rows.Count - heldOut, heldOut);
        _batchSize = o.BatchSize;
        _padding = padding;
        _order = new EpochOrder(_train.Count, o.Seed);
        HeldOut = held.Chunk(o.BatchSize).Take(o.EvalBatches).Select(c => SftBatches.Build(c, padding)).ToList();
    }

    public LmDataPosition Position { get => _order.Position; set => _order.Position = value; }

    public IReadOnlyList<LmBatch> HeldOut { get; }

    public LmBatch Next()
    {
        var rows = new SftRow[_batchSize];
        for (int i = 0; i < rows.Length; i++) rows[i] = _train[_order.Next()];
        return SftBatches.Build(rows, _padding);
    }
}
