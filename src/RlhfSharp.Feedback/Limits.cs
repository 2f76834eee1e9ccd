// How long the free text a labeller or admin types may be, and how refusals quote what they refuse: a refusal names
// the field and the limit and shows at most a short excerpt, so a hostile megabyte never comes back in an error reply.
using System.Globalization;
using System.Text;

namespace RlhfSharp.Feedback;

public static class FeedbackLimits
{
    /// <summary>Longest labeller name, in UTF-16 characters (after trimming).</summary>
    public const int LabelerName = 64;

    /// <summary>Longest skip reason a labeller may give.</summary>
    public const int SkipReason = 500;

    /// <summary>Longest labeller token or session id accepted at sign-in (ours are 43 characters).</summary>
    public const int Token = 256;

    /// <summary>Most characters of caller input a refusal quotes back.</summary>
    public const int ExcerptLength = 40;

    /// <summary>
    /// A bounded, printable excerpt of <paramref name="value"/> for an error message: at most <paramref name="max"/>
    /// characters, control characters shown as \uXXXX, and "… (N characters)" when cut.
    /// </summary>
    public static string Excerpt(string? value, int max = ExcerptLength)
    {
        if (value is null) return "";
        var sb = new StringBuilder();
        foreach (var c in value.Length > max ? value[..max] : value)
            sb.Append(char.IsControl(c) ? "\\u" + ((int)c).ToString("X4", CultureInfo.InvariantCulture) : c);
        if (value.Length > max) sb.Append("… (").Append(value.Length.ToString(CultureInfo.InvariantCulture)).Append(" characters)");
        return sb.ToString();
    }

    /// <summary>Refuses a labeller name that is empty, too long or holds control characters; returns it trimmed.</summary>
    public static string CheckLabelerName(string? name)
    {
        var trimmed = name?.Trim() ?? "";
        if (trimmed.Length == 0) throw new FeedbackException("name: a labeller name must not be empty.");
        if (trimmed.Length > LabelerName)
            throw new FeedbackException($"name: a labeller name must be at most {LabelerName} characters; got {trimmed.Length}.");
        if (trimmed.Any(char.IsControl))
            throw new FeedbackException("name: a labeller name must not hold control characters (tabs, newlines, escapes).");
        return trimmed;
    }
}
