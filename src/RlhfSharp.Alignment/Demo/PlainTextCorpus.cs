// A plain-text corpus (a file, or a folder's *.txt files in name order) cut into paragraphs and sentences, the raw
// material of the mock-sentiment task: paragraphs are pre-training documents, sentence starts are prompts.
using System.Text;

namespace RlhfSharp.Alignment.Demo;

/// <summary>One paragraph: its text on one line, and where it starts (for messages and tests).</summary>
public sealed record CorpusParagraph(string Text, string File, int Line);

public static class PlainTextCorpus
{
    // Titles whose full stop does not end a sentence ("Mr. Knightley"); Project Gutenberg novels use all of these.
    private static readonly HashSet<string> Abbreviations = new(StringComparer.Ordinal)
    {
        "Mr", "Mrs", "Ms", "Dr", "St", "Col", "Capt", "Gen", "Lt", "Sir", "Messrs", "Esq", "Rev", "Jr", "Sr", "Mt", "No", "vol", "ch",
    };

    /// <summary>
    /// Paragraphs of <paramref name="path"/>: blocks separated by blank lines, their lines joined by single spaces, with
    /// Gutenberg's italic underscores removed. Blocks of fewer than <paramref name="minWords"/> words (titles, chapter
    /// headings) are left out.
    /// </summary>
    public static IReadOnlyList<CorpusParagraph> ReadParagraphs(string path, int minWords = 4)
    {
        string[] files;
        if (System.IO.File.Exists(path)) files = [path];
        else if (Directory.Exists(path))
        {
            files = [.. Directory.GetFiles(path, "*.txt").Order(StringComparer.Ordinal)];
            if (files.Length == 0) throw new FileNotFoundException($"corpus {path}: the folder holds no .txt files.", path);
        }
        else throw new FileNotFoundException($"corpus {path}: no such file or folder.", path);

        var paragraphs = new List<CorpusParagraph>();
        foreach (string file in files)
        {
            var block = new StringBuilder();
            int start = 0, lineNo = 0;
            void Flush()
            {
                string text = string.Join(' ', block.ToString().Replace("_", "", StringComparison.Ordinal).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
                if (CountWords(text) >= minWords) paragraphs.Add(new CorpusParagraph(text, file, start));
                block.Clear();
            }
            foreach (var (_, line) in RlhfSharp.Text.Utf8TextFile.ReadLines(file))
            {
                lineNo++;
                if (string.IsNullOrWhiteSpace(line))
                {
                    if (block.Length > 0) Flush();
                    continue;
                }
                if (block.Length == 0) start = lineNo;
                block.Append(line).Append(' ');
            }
            if (block.Length > 0) Flush();
        }
        if (paragraphs.Count == 0) throw new InvalidDataException($"corpus {path}: no paragraph of at least {minWords} words.");
        return paragraphs;
    }

    /// <summary>
    /// Sentences of one paragraph: a break after '.', '!' or '?' (and any closing quotes) followed by white space and an
    /// upper-case letter or an opening quote, unless the word before the full stop is a title such as "Mr".
    /// </summary>
    public static IReadOnlyList<string> Sentences(string paragraph)
    {
        var result = new List<string>();
        int begin = 0;
        for (int i = 0; i < paragraph.Length; i++)
        {
            char c = paragraph[i];
            if (c is not ('.' or '!' or '?')) continue;
            int end = i + 1;
            while (end < paragraph.Length && paragraph[end] is '.' or '!' or '?' or '"' or '\'' or '”' or '’' or ')') end++;
            if (end >= paragraph.Length || !char.IsWhiteSpace(paragraph[end])) continue;
            int next = end;
            while (next < paragraph.Length && char.IsWhiteSpace(paragraph[next])) next++;
            if (next >= paragraph.Length || !(char.IsUpper(paragraph[next]) || paragraph[next] is '"' or '“' or '\'' or '‘')) continue;
            if (c == '.' && Abbreviations.Contains(WordBefore(paragraph, i))) continue;
            result.Add(paragraph[begin..end].Trim());
            begin = next;
            i = next - 1;
        }
        string tail = paragraph[begin..].Trim();
        if (tail.Length > 0) result.Add(tail);
        return result;
    }

    /// <summary>White-space separated words.</summary>
    public static string[] Words(string text) => text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);

    private static int CountWords(string text) => Words(text).Length;

    private static string WordBefore(string text, int dot)
    {
        int s = dot;
        while (s > 0 && char.IsLetter(text[s - 1])) s--;
        return text[s..dot];
    }
}
