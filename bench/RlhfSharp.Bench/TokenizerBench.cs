// GPT-2 encode throughput on a corpus, beside the same encoder driven by .NET's Regex for pre-tokenisation (the peer,
// measured in the same process) (`rlhf bench tokenizer`).
using System.Diagnostics;
using System.Globalization;
using System.Text;
using RlhfSharp.Text;

namespace RlhfSharp.Bench;

/// <summary>Seconds per pass over <see cref="Bytes"/> bytes of UTF-8 text: fastest warm pass (wall and CPU), the first pass, the Regex path.</summary>
public sealed record TokenizerResult(long Bytes, int Tokens, double WarmSeconds, double WarmCpuSeconds, double ColdSeconds, double RegexSeconds)
{
    private double Mb => Bytes / 1e6;

    public double MbPerSecond => Mb / WarmSeconds;
    public double CpuMbPerSecond => Mb / WarmCpuSeconds;
    public double ColdMbPerSecond => Mb / ColdSeconds;
    public double RegexMbPerSecond => Mb / RegexSeconds;
    public double SpeedupVsRegex => RegexSeconds / WarmSeconds;

    /// <summary>One JSON object: corpus, bytes, mb_per_s, tokens, cpu_mb_per_s, cold_mb_per_s, regex_mb_per_s, speedup_vs_regex.</summary>
    public string ToJson(string corpus) => string.Create(CultureInfo.InvariantCulture,
        $"{{\"corpus\":\"{corpus}\",\"bytes\":{Bytes},\"mb_per_s\":{MbPerSecond:F2},\"tokens\":{Tokens},\"cpu_mb_per_s\":{CpuMbPerSecond:F2},\"cold_mb_per_s\":{ColdMbPerSecond:F2},\"regex_mb_per_s\":{RegexMbPerSecond:F2},\"speedup_vs_regex\":{SpeedupVsRegex:F2}}}");
}

public static class TokenizerBench
{
    /// <summary>
    /// Encodes <paramref name="text"/> once untimed (compiling the code), once timed with an empty piece cache ("cold"),
    /// then <paramref name="passes"/> timed passes each of the scanner (wall and CPU time) and of the Regex path; the
    /// fastest pass of each is kept. Throws if the two paths disagree on the token count.
    /// </summary>
    public static TokenizerResult Measure(Gpt2Tokenizer tokenizer, string text, int passes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(passes, 1);
        long bytes = Encoding.UTF8.GetByteCount(text);
        var ids = new List<int>(text.Length / 3);
        tokenizer.EncodeOrdinary(text, ids);
        tokenizer.ClearCache();
        double cold = Time(() => tokenizer.EncodeOrdinary(text, ids), ids);
        int tokens = ids.Count;
        double warm = Enumerable.Range(0, passes).Min(_ => Time(() => tokenizer.EncodeOrdinary(text, ids), ids));
        // CPU time of the same single-threaded work: steadier than wall time when the machine is shared.
        double warmCpu = Enumerable.Range(0, passes).Min(_ => CpuTime(() => tokenizer.EncodeOrdinary(text, ids), ids));
        double regex = Enumerable.Range(0, passes).Min(_ => Time(() => tokenizer.EncodeOrdinaryWithRegex(text, ids), ids));
        if (ids.Count != tokens) throw new InvalidOperationException($"The regex path gave {ids.Count} tokens, the scanner {tokens}.");
        return new TokenizerResult(bytes, tokens, warm, warmCpu, cold, regex);
    }

    private static double CpuTime(Action encode, List<int> ids)
    {
        ids.Clear();
        var process = Process.GetCurrentProcess();
        var before = process.TotalProcessorTime;
        encode();
        process.Refresh();
        return Math.Max(1e-6, (process.TotalProcessorTime - before).TotalSeconds);
    }

    private static double Time(Action encode, List<int> ids)
    {
        ids.Clear();
        var sw = Stopwatch.StartNew();
        encode();
        return sw.Elapsed.TotalSeconds;
    }
}
