// Token rows as the alignment trainers feed them to a GPT: prompt tokens followed by response tokens (and EOS),
// right-padded into one batch, with the rule for rows longer than the model's block (the prompt loses its start).
using RlhfSharp.Models;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment;

public static class TokenRows
{
    /// <summary>
    /// encode(prompt) ++ encode(response) (++ EOS when the tokenizer has one and <paramref name="appendEos"/>), cut to the
    /// last <paramref name="blockSize"/> tokens. Returns the row and how many of its tokens are the prompt's.
    /// Text rendered by the chat template (<paramref name="templated"/>) is encoded with its special tokens recognised and
    /// gets no EOS of ours: the template closes the turn itself (TRL appends EOS to standard forms only).
    /// </summary>
    public static (int[] Tokens, int PromptLength) Encode(ITokenizer tokenizer, string prompt, string response, int blockSize, bool appendEos = true, bool templated = false)
    {
        var p = tokenizer.Encode(prompt, allowSpecial: templated);
        var r = tokenizer.Encode(response, allowSpecial: templated);
        int eos = appendEos && !templated && tokenizer.EosId is int ? 1 : 0;
        var row = new int[p.Length + r.Length + eos];
        p.CopyTo(row, 0);
        r.CopyTo(row, p.Length);
        if (eos == 1) row[^1] = tokenizer.EosId!.Value;
        if (row.Length == 0) throw new ArgumentException("token row: prompt and response are both empty.");
        int cut = Math.Max(0, row.Length - blockSize);
        return cut == 0 ? (row, p.Length) : (row[cut..], Math.Max(0, p.Length - cut));
    }

    /// <summary>Rows of different lengths right-padded with token 0 and mask 0 (positions count real tokens only).</summary>
    public static GptInput RightPadded(IReadOnlyList<int[]> rows)
    {
        if (rows.Count == 0) throw new ArgumentException("token rows: no rows.");
        int T = rows.Max(r => r.Length);
        var tokens = new int[rows.Count * T];
        var mask = new byte[rows.Count * T];
        for (int b = 0; b < rows.Count; b++)
        {
            if (rows[b].Length == 0) throw new ArgumentException($"token rows: row {b} is empty.");
            rows[b].CopyTo(tokens, b * T);
            mask.AsSpan(b * T, rows[b].Length).Fill(1);
        }
        return new GptInput(rows.Count, T, tokens, mask);
    }
}
