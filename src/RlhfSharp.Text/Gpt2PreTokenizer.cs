// GPT-2's pre-tokenisation: the text is cut into pieces before BPE, so merges never cross word boundaries.
// A hand-written scanner equal to GPT-2's regex (tested on all of Austen), without a Regex match object per piece.
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace RlhfSharp.Text;

public static class Gpt2PreTokenizer
{
    /// <summary>The pattern from OpenAI's gpt-2 `src/encoder.py` (also tiktoken's "gpt2"/"r50k_base").</summary>
    public const string Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private static readonly Regex PatternRegex = new(Pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant);

    internal enum Kind : byte { Letter, Number, Space, Other }

    private static readonly Kind[] AsciiKinds = BuildAsciiKinds();

    private static Kind[] BuildAsciiKinds()
    {
        var kinds = new Kind[128];
        for (int c = 0; c < 128; c++) kinds[c] = Classify(new Rune(c));
        return kinds;
    }

    private static Kind Classify(Rune r)
    {
        if (Rune.IsWhiteSpace(r)) return Kind.Space;
        return Rune.GetUnicodeCategory(r) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => Kind.Letter,
            UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => Kind.Number,
            _ => Kind.Other,
        };
    }

    // Classifies whole code points, as Python's `regex` module does: a letter outside the BMP (e.g. U+1D400)
    // is a letter here, whereas .NET's Regex would see two surrogate chars. A lone surrogate counts as "other".
    private static Kind KindAt(ReadOnlySpan<char> s, int i, out int width)
    {
        char c = s[i];
        if (c < 128)
        {
            width = 1;
            return AsciiKinds[c];
        }
        Rune.DecodeFromUtf16(s[i..], out Rune r, out width);
        return Classify(r);
    }

    /// <summary>Appends the (start, length) of each piece of <paramref name="text"/>, in order, covering it exactly.</summary>
    public static void Split(ReadOnlySpan<char> text, List<(int Start, int Length)> pieces)
    {
        int n = text.Length;
        int i = 0;
        while (i < n)
        {
            int start = i;
            char c = text[i];
            // 's|'t|'re|'ve|'m|'ll|'d (case-sensitive, and only at the start of a piece).
            if (c == '\'' && i + 1 < n)
            {
                char c1 = text[i + 1];
                if (c1 is 's' or 't' or 'm' or 'd')
                {
                    pieces.Add((start, 2));
                    i += 2;
                    continue;
                }
                if (i + 2 < n)
                {
                    char c2 = text[i + 2];
                    if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l'))
                    {
                        pieces.Add((start, 3));
                        i += 3;
                        continue;
                    }
                }
            }

            Kind kind = KindAt(text, i, out int width);
            if (kind == Kind.Space)
            {
                // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: one plain space joins the run that follows it.
                if (c == ' ' && i + 1 < n)
                {
                    Kind next = KindAt(text, i + 1, out _);
                    if (next != Kind.Space)
                    {
                        i = ConsumeRun(text, i + 1, next);
                        pieces.Add((start, i - start));
                        continue;
                    }
                }
                // `\s+(?!\S)` then `\s+`: a whitespace run gives up its last character when a non-space follows,
                // so that character can lead the next piece (all whitespace characters are in the BMP).
                int j = i + 1;
                while (j < n && KindAt(text, j, out _) == Kind.Space) j++;
                int end = j == n || j - i == 1 ? j : j - 1;
                pieces.Add((start, end - start));
                i = end;
                continue;
            }

            i = ConsumeRun(text, i + width, kind);
            pieces.Add((start, i - start));
        }
    }

    private static int ConsumeRun(ReadOnlySpan<char> text, int i, Kind kind)
    {
        while (i < text.Length && KindAt(text, i, out int w) == kind) i += w;
        return i;
    }

    /// <summary>The pieces as strings (convenience for tests and tools; Split avoids the allocations).</summary>
    public static List<string> SplitToStrings(string text)
    {
        var ranges = new List<(int, int)>();
        Split(text, ranges);
        return ranges.Select(r => text.Substring(r.Item1, r.Item2)).ToList();
    }

    /// <summary>The regex split as (start, length) ranges, without a Match object per piece: the benchmark's peer.</summary>
    public static void SplitWithRegex(ReadOnlySpan<char> text, List<(int Start, int Length)> pieces)
    {
        foreach (var m in PatternRegex.EnumerateMatches(text)) pieces.Add((m.Index, m.Length));
    }

    /// <summary>The same split done by .NET's Regex with GPT-2's pattern: the reference the scanner is tested against.</summary>
    public static List<string> SplitWithRegex(string text)
    {
        return PatternRegex.Matches(text).Select(m => m.Value).ToList();
    }
}
