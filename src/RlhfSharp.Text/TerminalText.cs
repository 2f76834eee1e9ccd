// Untrusted text (queries, model samples, file names in log lines) made safe to print on a terminal: every C0 control
// character but line feed and tab, DEL, every C1 control character (U+0080–U+009F, where 8-bit terminals read CSI as
// U+009B) and the bidirectional overrides and isolates (U+202A–U+202E, U+2066–U+2069, which reorder what a reader sees)
// are shown as visible escapes instead of being obeyed: ESC → \x1b, CR → \r, BEL → \x07, U+009B → \x9b, U+202E → \u202e.
// Line feed and tab stay as they are, so multi-line text still reads as text; a backslash is left alone (the escapes are
// for the eye, not a round-trip format). Without this, ESC[2J clears the labeller's screen, ESC]0;…BEL sets the window
// title, and CR + ESC[K rewrites a line already shown (issue 17).
using System.Globalization;
using System.Text;

namespace RlhfSharp.Text;

public static class TerminalText
{
    /// <summary><paramref name="text"/> with control characters shown as escapes (see the file header); unchanged when it has none.</summary>
    public static string Escape(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        int first = 0;
        while (first < text.Length && !NeedsEscape(text[first])) first++;
        if (first == text.Length) return text;
        var sb = new StringBuilder(text.Length + 16).Append(text, 0, first);
        for (int i = first; i < text.Length; i++)
        {
            char c = text[i];
            if (!NeedsEscape(c)) sb.Append(c);
            else if (c == '\r') sb.Append("\\r");
            else if (c <= '\u00FF') sb.Append("\\x").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
            else sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }

    /// <summary>Whether <paramref name="c"/> is shown escaped: C0 but LF and TAB, DEL, C1, bidi overrides and isolates.</summary>
    public static bool NeedsEscape(char c) =>
        (c < ' ' && c != '\n' && c != '\t') || c is >= '\u007F' and <= '\u009F' || c is >= '\u202A' and <= '\u202E' || c is >= '\u2066' and <= '\u2069';
}
