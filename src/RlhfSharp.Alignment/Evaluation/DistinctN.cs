// distinct-n (Li et al. 2016, "A Diversity-Promoting Objective Function for Neural Conversation Models"): the
// number of distinct n-grams across all responses divided by the total number of n-grams. A policy that collapses
// onto one phrase (a classic reward hack) scores near 0.
namespace RlhfSharp.Alignment.Evaluation;

public static class DistinctN
{
    /// <summary>
    /// distinct-n over whitespace-separated, lower-cased words (so the figure does not depend on the tokenizer);
    /// n-grams never span two responses. 0 when there are no n-grams at all.
    /// </summary>
    public static double Compute(IEnumerable<string> responses, int n)
    {
        ArgumentNullException.ThrowIfNull(responses);
        if (n < 1) throw new ArgumentException($"distinct-n: n must be ≥ 1; got {n}.");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        long total = 0;
        foreach (var text in responses)
        {
            var words = (text ?? "").ToLowerInvariant().Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            for (int i = 0; i + n <= words.Length; i++)
            {
                // U+0001 cannot appear inside a word split on whitespace, so joined n-grams never collide.
                seen.Add(string.Join('\u0001', words, i, n));
                total++;
            }
        }
        return total == 0 ? 0 : (double)seen.Count / total;
    }
}
