// How well a pairwise judge model agrees with labels, and how much the order of the responses sways it. Each pair is
// asked twice, (chosen, rejected) and (rejected, chosen), exactly as AiJudge asks an endpoint: the chat template with the
// generation prompt, greedy decoding (temperature 0) of at most AiJudge.MaxAnswerTokens tokens, AiJudge.ParseVerdict.
//   answer accuracy  = share of the 2N answers that name the preferred response;
//   pair agreement   = share of the N pairs whose combined verdict (AiJudge's: +1/−1 per order, summed) is the preferred one;
//   position flips   = share of the N pairs, both answers understood, whose chosen response changes when the order is
//                      swapped (the judge named the same position twice): 0 for a judge that reads the responses, 1 for
//                      one that always answers "1";
//   first position   = share of understood answers that are "1" (½ for an unbiased judge on both orders).
using RlhfSharp.Feedback.Labelers;
using RlhfSharp.Models;
using RlhfSharp.Tensors;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment.Judging;

/// <summary>A judge's held-out measurement (see the file header for each rate).</summary>
/// <param name="Pairs">Pairs asked (each in both orders).</param>
/// <param name="AnswerAccuracy">Share of the 2·Pairs answers naming the preferred response.</param>
/// <param name="PairAgreement">Share of pairs whose combined verdict is the preferred response (a tie or a skip counts against).</param>
/// <param name="PositionFlips">Share of pairs with both answers understood whose chosen response changed with the order.</param>
/// <param name="FirstPosition">Share of understood answers that named position 1.</param>
/// <param name="NotUnderstood">Answers AiJudge could not parse (it would skip the query).</param>
/// <param name="Ties">Answers that were "tie".</param>
public sealed record JudgeAgreement(int Pairs, double AnswerAccuracy, double PairAgreement, double PositionFlips, double FirstPosition, int NotUnderstood, int Ties)
{
    /// <summary>One line for a terminal.</summary>
    public override string ToString() => FormattableString.Invariant(
        $"{Pairs} pairs: agreement {Percent(PairAgreement)} (answers {Percent(AnswerAccuracy)}), position flips {Percent(PositionFlips)}, answers \"1\" {Percent(FirstPosition)}, not understood {NotUnderstood}, ties {Ties}");

    /// <summary>A share as "63.2 %", or "n/a" when nothing was counted (no pair had both answers understood).</summary>
    private static string Percent(double share) => double.IsNaN(share) ? "n/a" : share.ToString("P1", System.Globalization.CultureInfo.InvariantCulture);
}

public static class JudgeEvaluator
{
    /// <summary>
    /// Asks <paramref name="judge"/> about every pair in both orders. With <paramref name="gold"/> ((prompt, response) →
    /// true reward) the preferred response is the one gold scores higher, and pairs gold scores equal are left out;
    /// otherwise it is the pair's Chosen.
    /// </summary>
    public static JudgeAgreement Evaluate(Gpt judge, ITokenizer tokenizer, IReadOnlyList<JudgePair> pairs, Func<string, string, double>? gold = null,
        string instructions = AiJudge.DefaultInstructions, int batchSize = 16)
    {
        ArgumentNullException.ThrowIfNull(judge);
        ArgumentNullException.ThrowIfNull(tokenizer);
        if (gold is not null)
            pairs = [.. pairs.Select(p => (p, d: gold(p.Prompt, p.Chosen) - gold(p.Prompt, p.Rejected))).Where(x => x.d != 0)
                .Select(x => x.d > 0 ? x.p : x.p with { Chosen = x.p.Rejected, Rejected = x.p.Chosen })];
        if (pairs.Count == 0) throw new ArgumentException("judge evaluation: no pairs to ask (gold scores every pair's responses equal, or none were given).");
        // Row 2i asks (chosen, rejected), row 2i+1 (rejected, chosen); verdict = 0-based position, −1 tie, null not understood.
        var verdicts = Verdicts(judge, tokenizer,
            [.. pairs.SelectMany(p => new[] { JudgeTrainer.Question(p.Prompt, p.Chosen, p.Rejected, instructions), JudgeTrainer.Question(p.Prompt, p.Rejected, p.Chosen, instructions) })], batchSize);
        int correct = 0, agree = 0, flips = 0, bothUnderstood = 0, first = 0, understood = 0, unparsed = 0, ties = 0;
        for (int i = 0; i < pairs.Count; i++)
        {
            int? forward = verdicts[2 * i], backward = verdicts[2 * i + 1];
            // In chosen-first terms: +1 names chosen, −1 rejected, 0 tie (AiJudge's vote, summed over the two orders).
            int Vote(int? v, bool chosenFirst) => v is not int x || x < 0 ? 0 : (x == 0) == chosenFirst ? 1 : -1;
            foreach (var (v, chosenFirst) in new[] { (forward, true), (backward, false) })
            {
                if (v is null) { unparsed++; continue; }
                if (v < 0) { ties++; continue; }
                understood++;
                if (v == 0) first++;
                if (Vote(v, chosenFirst) > 0) correct++;
            }
            if (Vote(forward, true) + Vote(backward, false) > 0) agree++;
            if (forward is >= 0 && backward is >= 0)
            {
                bothUnderstood++;
                if (forward == backward) flips++; // the same position twice: the chosen response changed with the order
            }
        }
        static double Share(int k, int n) => n == 0 ? double.NaN : (double)k / n;
        return new JudgeAgreement(pairs.Count, Share(correct, 2 * pairs.Count), Share(agree, pairs.Count), Share(flips, bothUnderstood),
            Share(first, understood), unparsed, ties);
    }

    /// <summary>
    /// The judge's verdict on each two-response question, asked as AiJudge asks an endpoint (the chat template with the
    /// generation prompt, greedy decoding of at most AiJudge.MaxAnswerTokens tokens, AiJudge.ParseVerdict): the 0-based
    /// position it named, −1 for a tie, null when the reply names no single position.
    /// </summary>
    public static int?[] Verdicts(Gpt judge, ITokenizer tokenizer, IReadOnlyList<ChatMessage[]> questions, int batchSize = 16, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(judge);
        ArgumentNullException.ThrowIfNull(tokenizer);
        var template = ChatTemplate.For(tokenizer);
        var rows = questions.Select(q => tokenizer.Encode(template.Render(q, addGenerationPrompt: true), allowSpecial: true)).ToList();
        var verdicts = new int?[rows.Count];
        var generator = new GptGenerator(judge);
        for (int start = 0; start < rows.Count; start += batchSize)
        {
            ct.ThrowIfCancellationRequested();
            var batch = rows.GetRange(start, Math.Min(batchSize, rows.Count - start));
            int room = judge.Config.BlockSize - batch.Max(q => q.Length);
            if (room < 1) throw new ArgumentException($"judge evaluation: a question of {batch.Max(q => q.Length)} tokens does not fit the judge's context of {judge.Config.BlockSize}.");
            var options = new GenerationOptions { Greedy = true, MaxNewTokens = Math.Min(AiJudge.MaxAnswerTokens, room), EosTokenId = tokenizer.EosId };
            var result = generator.Generate(batch, options, new Rng(1));
            for (int b = 0; b < batch.Count; b++)
            {
                var reply = result.Response(b);
                if (tokenizer.EosId is int eos && reply.Length > 0 && reply[^1] == eos) reply = reply[..^1];
                verdicts[start + b] = AiJudge.ParseVerdict(tokenizer.Decode(reply), 2);
            }
        }
        return verdicts;
    }
}
