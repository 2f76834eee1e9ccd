// Evaluation of a policy against a baseline on held-out prompts: sample one response from each per prompt, have a
// judge (gold scorer, oracle or AI judge) pick the better one, and report the win rate with its 95% interval beside
// the figures that show how it was won: mean gold reward, mean reward-model score, KL to the reference (k1 and k3),
// response length and distinct-1/2 (a reward hack tends to show as high proxy, falling gold, long or repetitive text).
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Feedback;
using RlhfSharp.Feedback.Labelers;
using RlhfSharp.Models;
using RlhfSharp.Objectives;
using RlhfSharp.Tensors;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment.Evaluation;

/// <summary>How responses are sampled for evaluation.</summary>
public sealed record EvaluationOptions
{
    /// <summary>Tokens generated per response at most (fewer if the model's block is shorter).</summary>
    public int MaxNewTokens { get; init; } = 32;

    /// <summary>Sampling temperature; the KL figures are for the distribution sampled at this temperature.</summary>
    public float Temperature { get; init; } = 1f;

    /// <summary>Prompts generated together.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Seed of the sampling stream; policy and baseline get forks of it.</summary>
    public ulong Seed { get; init; } = 1;

    /// <summary>How many (prompt, policy, baseline, verdict) examples the result keeps for a report table.</summary>
    public int SamplesKept { get; init; } = 8;

    internal void Validate()
    {
        if (MaxNewTokens < 1) throw new ArgumentException($"evaluation: max new tokens must be ≥ 1; got {MaxNewTokens}.");
        if (!(Temperature > 0)) throw new ArgumentException($"evaluation: temperature must be positive; got {Temperature}.");
        if (BatchSize < 1) throw new ArgumentException($"evaluation: batch size must be ≥ 1; got {BatchSize}.");
        if (SamplesKept < 0) throw new ArgumentException($"evaluation: samples kept must be ≥ 0; got {SamplesKept}.");
    }
}

/// <summary>Figures for one model's responses; NaN where the input needed for it (gold scorer, reward model) was not given.</summary>
/// <param name="MeanGold">Mean true reward of the responses.</param>
/// <param name="MeanRewardModel">Mean (normalised) reward-model score.</param>
/// <param name="KlK1">Mean over prompts of Σ_t (log π − log π_ref) over response tokens, nats (unbiased, can be negative).</param>
/// <param name="KlK3">Mean over prompts of Σ_t ((r − 1) − log r), r = π_ref/π, nats (unbiased, never negative).</param>
/// <param name="MeanLength">Mean response length in tokens (EOS not counted).</param>
/// <param name="Distinct1">Distinct unigrams / all unigrams over the responses.</param>
/// <param name="Distinct2">Distinct bigrams / all bigrams over the responses.</param>
public sealed record ResponseStats(double MeanGold, double MeanRewardModel, double KlK1, double KlK3, double MeanLength, double Distinct1, double Distinct2)
{
    /// <summary>Why <see cref="MeanGold"/> has no value (JSON writes it as null beside this), or null.</summary>
    public string? MeanGoldReason => double.IsNaN(MeanGold) ? "no gold scorer was given" : null;

    /// <summary>Why <see cref="MeanRewardModel"/> has no value (JSON writes it as null beside this), or null.</summary>
    public string? MeanRewardModelReason => double.IsNaN(MeanRewardModel) ? "no reward model was given (--reward)" : null;
}

/// <summary>One judged prompt; <paramref name="Verdict"/> is "win", "loss", "tie" or "skip: reason" from the policy's side.</summary>
public sealed record EvaluatedSample(string Prompt, string PolicyResponse, string BaselineResponse, string Verdict);

/// <summary>The evaluation of a policy over a baseline.</summary>
public sealed record EvaluationResult(int Prompts, string Judge, WinRateResult WinRate, ResponseStats Policy, ResponseStats Baseline, IReadOnlyList<EvaluatedSample> Samples);

/// <summary>What one model said to each prompt, with the log-probabilities the KL figures need.</summary>
/// <param name="EndsWithEos">Whether each response ended with EOS (false: cut at the length limit).</param>
public sealed record SampledResponses(IReadOnlyList<string> Texts, IReadOnlyList<int[]> Rows, double[] KlK1, double[] KlK3, int[] Lengths, bool[]? EndsWithEos = null);

public sealed class PolicyEvaluator(EvaluationOptions? options = null)
{
    private readonly EvaluationOptions _options = options ?? new EvaluationOptions();

    /// <summary>
    /// Samples policy and baseline on every prompt and judges each pair. The position of the policy's response
    /// alternates between prompts so a judge's position bias cancels. <paramref name="reference"/> (the KL anchor)
    /// defaults to the baseline.
    /// </summary>
    public async Task<EvaluationResult> EvaluateAsync(Gpt policy, Gpt baseline, ITokenizer tokenizer, IReadOnlyList<string> prompts, ILabeler judge,
        Gpt? reference = null, Func<string, string, double>? gold = null, RewardModel? rewardModel = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(baseline);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(prompts);
        ArgumentNullException.ThrowIfNull(judge);
        _options.Validate();
        if (prompts.Count == 0) throw new ArgumentException("evaluation: no prompts.");
        if (policy.Config.VocabSize != baseline.Config.VocabSize)
            throw new ArgumentException($"evaluation: policy vocabulary {policy.Config.VocabSize} differs from the baseline's {baseline.Config.VocabSize}; they cannot share a tokenizer.");
        reference ??= baseline;
        var rng = new Rng(_options.Seed);
        var ours = Sample(policy, reference, tokenizer, prompts, rng.Fork(), ct);
        var theirs = Sample(baseline, reference, tokenizer, prompts, rng.Fork(), ct);

        int wins = 0, losses = 0, ties = 0, skipped = 0;
        string? firstSkip = null;
        var kept = new List<EvaluatedSample>();
        for (int i = 0; i < prompts.Count; i++)
        {
            ct.ThrowIfCancellationRequested();
            bool policyFirst = i % 2 == 0;
            var a = new Candidate(ours.Texts[i], "policy");
            var b = new Candidate(theirs.Texts[i], "baseline");
            var query = new Query(i, QueryKind.Text, prompts[i], policyFirst ? [a, b] : [b, a], "evaluation", null, DateTimeOffset.UnixEpoch);
            var answer = await judge.AnswerAsync(query, ct).ConfigureAwait(false);
            int? preferred = answer.Kind switch
            {
                AnswerKind.Preferred => answer.Preferred,
                AnswerKind.Ranking => answer.Ranking is { Count: > 0 } r ? r[0] : null,
                _ => null,
            };
            string verdict;
            if (answer.Kind == AnswerKind.Tie) { ties++; verdict = "tie"; }
            else if (preferred is int p && p is 0 or 1)
            {
                bool policyWon = (p == 0) == policyFirst;
                if (policyWon) { wins++; verdict = "win"; } else { losses++; verdict = "loss"; }
            }
            else { skipped++; verdict = $"skip: {answer.SkipReason ?? answer.Kind.ToString()}"; firstSkip ??= answer.SkipReason ?? answer.Kind.ToString(); }
            if (kept.Count < _options.SamplesKept) kept.Add(new EvaluatedSample(prompts[i], ours.Texts[i], theirs.Texts[i], verdict));
        }
        if (skipped > 0 && wins + losses + ties == 0)
            throw new InvalidOperationException($"evaluation: all {skipped} answers of judge \"{judge.Name}\" were skips, so there is no win rate; the first: {firstSkip}");
        return new EvaluationResult(prompts.Count, judge.Name, WinRate.FromCounts(wins, losses, ties, skipped),
            Stats(ours, prompts, gold, rewardModel), Stats(theirs, prompts, gold, rewardModel), kept);
    }

    /// <summary>Figures for one set of responses (see <see cref="ResponseStats"/>).</summary>
    public static ResponseStats Stats(SampledResponses responses, IReadOnlyList<string> prompts, Func<string, string, double>? gold, RewardModel? rewardModel)
    {
        ArgumentNullException.ThrowIfNull(responses);
        ArgumentNullException.ThrowIfNull(prompts);
        int n = responses.Texts.Count;
        double meanGold = gold is null ? double.NaN : Enumerable.Range(0, n).Average(i => gold(prompts[i], responses.Texts[i]));
        double meanRm = double.NaN;
        if (rewardModel is not null)
        {
            var rows = Enumerable.Range(0, n).Select(i => TokenRows.Encode(rewardModel.Tokenizer, prompts[i], responses.Texts[i], rewardModel.Model.Config.BlockSize).Tokens).ToList();
            meanRm = rewardModel.ScoreTokens(rows).Average(s => (double)s);
        }
        return new ResponseStats(meanGold, meanRm, responses.KlK1.Average(), responses.KlK3.Average(), responses.Lengths.Average(),
            DistinctN.Compute(responses.Texts, 1), DistinctN.Compute(responses.Texts, 2));
    }

    /// <summary>One response per prompt from <paramref name="model"/>, with per-sequence KL estimates against <paramref name="reference"/>.</summary>
    public SampledResponses Sample(Gpt model, Gpt reference, ITokenizer tokenizer, IReadOnlyList<string> prompts, Rng rng, CancellationToken ct = default)
    {
        _options.Validate();
        int block = model.Config.BlockSize;
        int maxNew = Math.Min(_options.MaxNewTokens, block - 1);
        int? eos = tokenizer.EosId;
        var texts = new string[prompts.Count];
        var rows = new int[prompts.Count][];
        var k1 = new double[prompts.Count];
        var k3 = new double[prompts.Count];
        var lengths = new int[prompts.Count];
        var ended = new bool[prompts.Count];
        var generator = new GptGenerator(model);
        for (int start = 0; start < prompts.Count; start += _options.BatchSize)
        {
            ct.ThrowIfCancellationRequested();
            int B = Math.Min(_options.BatchSize, prompts.Count - start);
            var encoded = new List<int[]>(B);
            for (int i = 0; i < B; i++)
            {
                var t = tokenizer.Encode(prompts[start + i]);
                if (t.Length == 0) t = eos is int e ? [e] : throw new ArgumentException($"evaluation: prompt {start + i} encodes to no tokens and the tokenizer has no EOS to stand in.");
                // The prompt loses its start, as in PPO, so prompt + response fits the block.
                encoded.Add(t.Length > block - maxNew ? t[^(block - maxNew)..] : t);
            }
            GenerationResult r;
            float[] refLogp;
            using (Autograd.NoGrad())
            {
                r = generator.Generate(encoded, new GenerationOptions { MaxNewTokens = maxNew, Temperature = _options.Temperature, EosTokenId = eos }, rng);
                refLogp = GptScoring.TokenLogProbs(reference, new GptInput(r.Batch, r.Length, r.Tokens, r.AttentionMask));
            }
            int L = r.Length, Tp = r.PromptLength, R = r.NewTokens;
            for (int b = 0; b < B; b++)
            {
                var resp = r.Response(b);
                bool endsWithEos = eos is int e && resp.Length > 0 && resp[^1] == e;
                texts[start + b] = tokenizer.Decode(endsWithEos ? resp.AsSpan(0, resp.Length - 1) : resp);
                rows[start + b] = [.. r.Prompt(b), .. resp];
                lengths[start + b] = endsWithEos ? resp.Length - 1 : resp.Length;
                ended[start + b] = endsWithEos;
                double s1 = 0, s3 = 0;
                for (int t = 0; t < resp.Length; t++)
                {
                    // Generated token t sits at position Tp + t; its reference log-prob is entry Tp − 1 + t of the (B, L−1) table.
                    double lp = r.LogProbs[b * R + t], lq = refLogp[b * (L - 1) + Tp - 1 + t];
                    s1 += KlEstimators.K1(lp, lq);
                    s3 += KlEstimators.K3(lp, lq);
                }
                k1[start + b] = s1;
                k3[start + b] = s3;
            }
        }
        return new SampledResponses(texts, rows, k1, k3, lengths, ended);
    }
}
