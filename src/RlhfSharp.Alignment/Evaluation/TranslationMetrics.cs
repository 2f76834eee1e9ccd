// Sentence-level BLEU and chrF, the task metrics of RL on a metric (machine translation), defined as sacreBLEU 2.x
// computes them (github.com/mjpost/sacrebleu, sacrebleu/metrics/bleu.py and chrf.py), so scores compare with the field's:
//   BLEU (Papineni et al. 2002) of a hypothesis against references, after mteval-v13a tokenisation (tokenizer_13a.py):
//     p_n = matched n-grams / hypothesis n-grams, n = 1..4, each hypothesis n-gram's count clipped at its largest
//           count in any one reference;
//     BP  = 1 if c ≥ r else exp(1 − r/c) (0 when c = 0), c the hypothesis length, r the closest reference length (the
//           shorter on a tie);
//     BLEU = 100 · BP · exp((1/N) Σ_{n≤N} ln p_n), with sentence_bleu's settings: "exp" smoothing (the k-th order with
//           no match counts 1/(2^k · total), NIST's method 3 in Chen & Cherry 2014) and effective order (N stops at the
//           last order the hypothesis has n-grams of); 0 when no unigram matches.
//   chrF (Popović 2015) of a hypothesis against one reference, whitespace removed: for character n-grams n = 1..6,
//     chrP_n = matched / hypothesis n-grams, chrR_n = matched / reference n-grams, averaged over the orders both sides
//     have; chrF_β = 100 · (1 + β²)·chrP·chrR / (β²·chrP + chrR), β = 2 (recall weighs twice as much).
//   Corpus scores (corpus_bleu, CHRF.corpus_score) sum each sentence's counts first and take one score from the sums;
//   corpus BLEU keeps all four orders (no effective order), r the sum of the closest reference lengths.
using System.Text.RegularExpressions;

namespace RlhfSharp.Alignment.Evaluation;

public static partial class TranslationMetrics
{
    /// <summary>Largest n-gram order of BLEU.</summary>
    public const int BleuOrder = 4;

    /// <summary>Character n-gram order of chrF.</summary>
    public const int ChrfOrder = 6;

    /// <summary>chrF's β: recall is β times as important as precision.</summary>
    public const double ChrfBeta = 2;

    /// <summary>sacreBLEU's stand-in for ln 0 (utils.my_log).</summary>
    private const double LogZero = -9999999999;

    /// <summary>Sentence BLEU (0–100) of <paramref name="hypothesis"/> against one or more references.</summary>
    public static double SentenceBleu(string hypothesis, params IReadOnlyList<string> references) =>
        Bleu(BleuStatistics(hypothesis, references), effectiveOrder: true);

    /// <summary>
    /// Corpus BLEU (0–100), sacreBLEU's corpus_bleu: n-gram matches, totals and lengths summed over the sentences before one
    /// BLEU is taken ("exp" smoothing, fixed order 4). Each hypothesis has its own references.
    /// </summary>
    public static double CorpusBleu(IReadOnlyList<string> hypotheses, IReadOnlyList<IReadOnlyList<string>> references)
    {
        if (hypotheses.Count != references.Count) throw new ArgumentException($"BLEU: {hypotheses.Count} hypotheses but {references.Count} reference lists.");
        var sum = new BleuStats(new int[BleuOrder], new int[BleuOrder], 0, 0);
        for (int i = 0; i < hypotheses.Count; i++)
        {
            var s = BleuStatistics(hypotheses[i], references[i]);
            for (int n = 0; n < BleuOrder; n++)
            {
                sum.Correct[n] += s.Correct[n];
                sum.Total[n] += s.Total[n];
            }
            sum = sum with { HypLength = sum.HypLength + s.HypLength, RefLength = sum.RefLength + s.RefLength };
        }
        return Bleu(sum, effectiveOrder: false);
    }

    /// <summary>Per order n (index n − 1): clipped matches and hypothesis n-grams; hypothesis length c; closest reference length r.</summary>
    private sealed record BleuStats(int[] Correct, int[] Total, int HypLength, int RefLength);

    private static BleuStats BleuStatistics(string hypothesis, IReadOnlyList<string> references)
    {
        ArgumentNullException.ThrowIfNull(hypothesis);
        if (references is null || references.Count == 0) throw new ArgumentException("BLEU needs at least one reference.", nameof(references));
        string[] hyp = Tokenize13a(hypothesis);
        var refCounts = new Dictionary<(int N, string Words), int>();
        var refLengths = new List<int>();
        foreach (string reference in references)
        {
            string[] tokens = Tokenize13a(reference ?? throw new ArgumentException("a reference is null.", nameof(references)));
            refLengths.Add(tokens.Length);
            foreach (var (gram, count) in NGrams(tokens, BleuOrder))
                refCounts[gram] = Math.Max(refCounts.GetValueOrDefault(gram), count);
        }
        // The closest reference length, the shorter one on a tie.
        int refLen = refLengths.OrderBy(r => Math.Abs(hyp.Length - r)).ThenBy(r => r).First();
        var correct = new int[BleuOrder];
        var total = new int[BleuOrder];
        foreach (var (gram, count) in NGrams(hyp, BleuOrder))
        {
            total[gram.N - 1] += count;
            correct[gram.N - 1] += Math.Min(count, refCounts.GetValueOrDefault(gram));
        }
        return new BleuStats(correct, total, hyp.Length, refLen);
    }

    // sacreBLEU's BLEU.compute_bleu with smooth_method "exp"; sentence_bleu sets effective order, corpus_bleu does not.
    private static double Bleu(BleuStats s, bool effectiveOrder)
    {
        var (correct, total) = (s.Correct, s.Total);
        double bp = s.HypLength < s.RefLength ? (s.HypLength > 0 ? Math.Exp(1 - (double)s.RefLength / s.HypLength) : 0) : 1;
        if (correct.All(c => c == 0)) return 0;
        var precisions = new double[BleuOrder];
        double smooth = 1;
        int order = BleuOrder;
        for (int n = 1; n <= BleuOrder; n++)
        {
            if (total[n - 1] == 0) break;
            if (effectiveOrder) order = n;
            if (correct[n - 1] == 0)
            {
                smooth *= 2;
                precisions[n - 1] = 100.0 / (smooth * total[n - 1]);
            }
            else precisions[n - 1] = 100.0 * correct[n - 1] / total[n - 1];
        }
        double logSum = 0;
        for (int n = 0; n < order; n++) logSum += precisions[n] == 0 ? LogZero : Math.Log(precisions[n]);
        return bp * Math.Exp(logSum / order);
    }

    /// <summary>Sentence chrF (0–100, β = 2, character 6-grams, whitespace ignored) of <paramref name="hypothesis"/> against <paramref name="reference"/>.</summary>
    public static double SentenceChrf(string hypothesis, string reference) => Chrf(ChrfStatistics(hypothesis, reference));

    /// <summary>
    /// Corpus chrF (0–100), sacreBLEU's corpus_score: each order's hypothesis, reference and matched n-gram counts summed
    /// over the sentences, then one chrF from the sums. Each hypothesis has one reference.
    /// </summary>
    public static double CorpusChrf(IReadOnlyList<string> hypotheses, IReadOnlyList<string> references)
    {
        if (hypotheses.Count != references.Count) throw new ArgumentException($"chrF: {hypotheses.Count} hypotheses but {references.Count} references.");
        var sum = new long[ChrfOrder, 3];
        for (int i = 0; i < hypotheses.Count; i++)
        {
            var s = ChrfStatistics(hypotheses[i], references[i]);
            for (int n = 0; n < ChrfOrder; n++)
                for (int k = 0; k < 3; k++) sum[n, k] += s[n, k];
        }
        return Chrf(sum);
    }

    // Per order n (row n − 1): hypothesis n-grams, reference n-grams, matched n-grams, whitespace removed.
    private static long[,] ChrfStatistics(string hypothesis, string reference)
    {
        ArgumentNullException.ThrowIfNull(hypothesis);
        ArgumentNullException.ThrowIfNull(reference);
        string hyp = Whitespace().Replace(hypothesis, ""), refText = Whitespace().Replace(reference, "");
        var stats = new long[ChrfOrder, 3];
        for (int n = 1; n <= ChrfOrder; n++)
        {
            var h = CharNGrams(hyp, n);
            var r = CharNGrams(refText, n);
            stats[n - 1, 0] = Math.Max(0, hyp.Length - n + 1);
            stats[n - 1, 1] = Math.Max(0, refText.Length - n + 1);
            stats[n - 1, 2] = h.Sum(kv => Math.Min(kv.Value, r.GetValueOrDefault(kv.Key)));
        }
        return stats;
    }

    // sacreBLEU 2.x CHRF._compute_f_score without eps smoothing: precision and recall averaged over the orders both sides have.
    private static double Chrf(long[,] stats)
    {
        double precision = 0, recall = 0;
        int effective = 0;
        for (int n = 0; n < ChrfOrder; n++)
        {
            long hypCount = stats[n, 0], refCount = stats[n, 1], matched = stats[n, 2];
            if (hypCount <= 0 || refCount <= 0) continue;
            precision += (double)matched / hypCount;
            recall += (double)matched / refCount;
            effective++;
        }
        if (effective == 0) return 0;
        precision /= effective;
        recall /= effective;
        if (precision + recall == 0) return 0;
        double b2 = ChrfBeta * ChrfBeta;
        return 100 * (1 + b2) * precision * recall / (b2 * precision + recall);
    }

    /// <summary>mteval-v13a's tokenisation (sacreBLEU's "13a"): punctuation split off, except . and , between digits.</summary>
    public static string[] Tokenize13a(string line)
    {
        line = line.Replace("<skipped>", "").Replace("-\n", "").Replace("\n", " ")
            .Replace("&quot;", "\"").Replace("&amp;", "&").Replace("&lt;", "<").Replace("&gt;", ">");
        line = " " + line + " ";
        line = Symbols().Replace(line, " $1 ");
        line = PeriodCommaAfterNonDigit().Replace(line, "$1 $2 ");
        line = PeriodCommaBeforeNonDigit().Replace(line, " $1 $2");
        line = DashAfterDigit().Replace(line, "$1 $2 ");
        return line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
    }

    /// <summary>
    /// Counts of every n-gram of order 1..<paramref name="maxOrder"/>, keyed by its order and its words joined by a space
    /// (no token holds whitespace, so the key is unambiguous whatever characters a model generates).
    /// </summary>
    private static Dictionary<(int N, string Words), int> NGrams(string[] tokens, int maxOrder)
    {
        var counts = new Dictionary<(int, string), int>();
        for (int n = 1; n <= maxOrder; n++)
            for (int i = 0; i + n <= tokens.Length; i++)
            {
                var gram = (n, string.Join(' ', tokens, i, n));
                counts[gram] = counts.GetValueOrDefault(gram) + 1;
            }
        return counts;
    }

    private static Dictionary<string, int> CharNGrams(string text, int n)
    {
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i + n <= text.Length; i++)
        {
            string gram = text.Substring(i, n);
            counts[gram] = counts.GetValueOrDefault(gram) + 1;
        }
        return counts;
    }

    [GeneratedRegex(@"([\{-\~\[-\` -\&\(-\+\:-\@\/])")]
    private static partial Regex Symbols();

    [GeneratedRegex(@"([^0-9])([\.,])")]
    private static partial Regex PeriodCommaAfterNonDigit();

    [GeneratedRegex(@"([\.,])([^0-9])")]
    private static partial Regex PeriodCommaBeforeNonDigit();

    [GeneratedRegex(@"([0-9])(-)")]
    private static partial Regex DashAfterDigit();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();
}
