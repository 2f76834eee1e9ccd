// The text pieces `rlhf serve` streams, made as tokens are drawn: each token's new text goes out as soon as it is whole.
// A byte-level BPE token can end inside a UTF-8 character, and a stop string can span tokens, so such text waits.
using System.Runtime.InteropServices;
using RlhfSharp.Text;

namespace RlhfSharp.Web.Serving;

/// <param name="tokenizer">Decodes the response so far.</param>
/// <param name="stop">Stop strings (none empty): the text ends before the first one, which is never sent.</param>
/// <param name="eos">The end-of-text token, which ends the text and is never decoded.</param>
/// <param name="onPiece">Called on the generating thread with each piece as soon as it is safe to send.</param>
internal sealed class TextPieceStream(ITokenizer tokenizer, IReadOnlyList<string> stop, int? eos, Action<string>? onPiece)
{
    private readonly List<int> _ids = [];
    private readonly List<string> _pieces = [];
    private string _sent = "";
    private string? _final;

    /// <summary>Tokens taken, the end-of-text token included (the API's completion_tokens).</summary>
    public int Tokens { get; private set; }

    /// <summary>"stop" after the end-of-text token or a stop string, otherwise "length".</summary>
    public string FinishReason { get; private set; } = "length";

    /// <summary>The pieces sent so far; once finished they concatenate to <see cref="Text"/>.</summary>
    public IReadOnlyList<string> Pieces => _pieces;

    /// <summary>The whole response text (after <see cref="Finish"/>).</summary>
    public string Text => _final ?? throw new InvalidOperationException("the piece stream is not finished yet.");

    /// <summary>Takes the next drawn token; false once the text is complete (end-of-text or a stop string), so generation can end.</summary>
    public bool Add(int token)
    {
        if (_final is not null) return false;
        Tokens++;
        if (token == eos)
        {
            FinishReason = "stop";
            Finish();
            return false;
        }
        _ids.Add(token);
        string text = tokenizer.Decode(CollectionsMarshal.AsSpan(_ids));
        int cut = FirstStop(text);
        if (cut >= 0)
        {
            FinishReason = "stop";
            _final = text[..cut];
            Send(_final);
            return false;
        }
        // The token ended inside a UTF-8 character: the rest of it comes with the next token.
        if (text.EndsWith('\uFFFD')) return true;
        Send(text[..(text.Length - HeldForStop(text))]);
        return true;
    }

    /// <summary>Ends the text (generation ran out of tokens or stopped): what was held back goes out now.</summary>
    public void Finish()
    {
        if (_final is not null) return;
        _final = tokenizer.Decode(CollectionsMarshal.AsSpan(_ids));
        Send(_final);
    }

    private void Send(string upTo)
    {
        // Decoding a prefix of the tokens gives a prefix of the text except where bytes are invalid UTF-8; text that is
        // not an extension of what went out would have to be taken back, so it is never sent.
        if (upTo.Length <= _sent.Length || !upTo.StartsWith(_sent, StringComparison.Ordinal)) return;
        string piece = upTo[_sent.Length..];
        _sent = upTo;
        _pieces.Add(piece);
        onPiece?.Invoke(piece);
    }

    private int FirstStop(string text)
    {
        int first = -1;
        foreach (var s in stop)
        {
            int i = text.IndexOf(s, StringComparison.Ordinal);
            if (i >= 0 && (first < 0 || i < first)) first = i;
        }
        return first;
    }

    /// <summary>Characters at the end of <paramref name="text"/> that could be the start of a stop string.</summary>
    private int HeldForStop(string text)
    {
        int held = 0;
        foreach (var s in stop)
            for (int k = Math.Min(s.Length - 1, text.Length); k > held; k--)
                if (text.EndsWith(s[..k], StringComparison.Ordinal))
                {
                    held = k;
                    break;
                }
        return held;
    }
}
