// How one cell (method × task × seed) of `rlhf compare` is measured against the SFT model it started from, on the task's
// fixed held-out prompts:
//   gold     mean task score of one sample per prompt (PolicyEvaluator); on the verifiable task pass@1 by Chen et al.'s
//            estimator over pass_samples samples per problem; reported with the SFT model's figure and the difference
//   KL       mean over prompts of Σ_t log π(y_t|·) − log π_SFT(y_t|·) on the policy's samples (k1, unbiased); best-of-N's
//            is the analytic log N − (N − 1)/N (Stiennon et al.)
//   win rate policy sample vs SFT sample per prompt, judged by the task's scorer (GoldJudge: equal scores tie, ties ½),
//            with Wilson's 95% interval (WinRate)
// Every cell of one seed shares the SFT samples (the same evaluation stream), so the methods face the same baseline.
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Serialization;
using RlhfSharp.Alignment.Evaluation;
using RlhfSharp.Alignment.Ppo;
using RlhfSharp.Alignment.Sampling;
using RlhfSharp.Feedback;
using RlhfSharp.Models;
using RlhfSharp.Tensors;

namespace RlhfSharp.Alignment.Comparison;

/// <summary>One measured cell. Everything but the two wall times is a pure function of the plan and the inputs.</summary>
public sealed record CellResult(
    [property: JsonPropertyName("task")] string Task,
    [property: JsonPropertyName("method")] string Method,
    [property: JsonPropertyName("seed")] ulong Seed,
    [property: JsonPropertyName("steps")] int Steps,
    [property: JsonPropertyName("gold")] double Gold,
    [property: JsonPropertyName("sft_gold")] double SftGold,
    [property: JsonPropertyName("kl")] double Kl,
    [property: JsonPropertyName("wins")] int Wins,
    [property: JsonPropertyName("losses")] int Losses,
    [property: JsonPropertyName("ties")] int Ties,
    [property: JsonPropertyName("policy_sha256")] string PolicySha256,
    [property: JsonPropertyName("train_seconds")] double TrainSeconds,
    [property: JsonPropertyName("eval_seconds")] double EvalSeconds,
    [property: JsonPropertyName("not_applicable")] string? NotApplicable = null)
{
    /// <summary>A cell whose method does not apply to its task, with the reason (its figures are NaN).</summary>
    public static CellResult NotApplicableCell(string task, string method, ulong seed, int steps, string reason) =>
        new(task, method, seed, steps, double.NaN, double.NaN, double.NaN, 0, 0, 0, "", 0, 0, reason);

    /// <summary>Gold (or pass@1) gained over the SFT model.</summary>
    [JsonPropertyName("gold_delta")]
    public double GoldDelta => Gold - SftGold;

    /// <summary>Win rate over the SFT model with its 95% Wilson interval.</summary>
    [JsonIgnore]
    public WinRateResult WinRate => Evaluation.WinRate.FromCounts(Wins, Losses, Ties);

    /// <summary>This result without its wall times: what must be bit-identical when the cell is run again.</summary>
    public CellResult WithoutTimes() => this with { TrainSeconds = 0, EvalSeconds = 0 };
}

public static class ComparisonEvaluation
{
    private const ulong EvalStream = 0xE7A1_5EEDUL;

    /// <summary>Measures <paramref name="run"/> (see the file header).</summary>
    public static CellResult Evaluate(ComparisonContext ctx, string method, MethodRun run, CancellationToken ct = default)
    {
        var watch = Stopwatch.StartNew();
        var c = ctx.Config;
        var task = ctx.Task;
        var prompts = task.HeldOutPrompts;
        ulong seed = EvalStream ^ ctx.Seed;
        var evaluator = new PolicyEvaluator(new EvaluationOptions { MaxNewTokens = c.MaxNewTokens, Temperature = 1f, Seed = seed, SamplesKept = 0 });
        double PassAt1(Gpt model) => PassAtK.Evaluate(model, ctx.Tokenizer, prompts, (i, y) => task.Score(prompts[i], y), c.PassSamples, [1],
            c.MaxNewTokens, 1f, seed).PassAt[1];

        if (run.Policy is Gpt policy)
        {
            var result = Blocking.Run(() => evaluator.EvaluateAsync(policy, ctx.Sft, ctx.Tokenizer, prompts, new GoldJudge(task.Score), ctx.Sft, task.Score, ct: ct));
            double gold = task.Verifiable ? PassAt1(policy) : result.Policy.MeanGold;
            double sftGold = task.Verifiable ? PassAt1(ctx.Sft) : result.Baseline.MeanGold;
            var w = result.WinRate;
            return new CellResult(task.Name, method, ctx.Seed, run.Steps, gold, sftGold, result.Policy.KlK1, w.Wins, w.Losses, w.Ties,
                Sha256(MemoryMarshal.AsBytes(policy.Parameters.AsSpan())), run.Seconds, watch.Elapsed.TotalSeconds);
        }

        // Best-of-N: N samples per held-out prompt from the SFT model, the best by the task's scorer, against the SFT sample
        // every other method of this seed faces (the evaluator's second fork of the same stream).
        int n = run.BestOfN ?? throw new ArgumentException($"compare: {method} produced neither a policy nor a best-of-N setting.");
        var stream = new Rng(seed);
        stream.Fork();
        var baseline = evaluator.Sample(ctx.Sft, ctx.Sft, ctx.Tokenizer, prompts, stream.Fork(), ct);
        int eos = ctx.Tokenizer.EosId ?? ctx.Sft.Config.EosTokenId ?? throw new ArgumentException("compare: the tokenizer has no end-of-text token.");
        var sampling = Stopwatch.StartNew();
        var best = BestOfN.Sample(ctx.Sft, ctx.Tokenizer, prompts, n, new FunctionReward(task.Score),
            new GenerationOptions { MaxNewTokens = Math.Min(c.MaxNewTokens, ctx.Sft.Config.BlockSize - 1), Temperature = 1f, EosTokenId = eos }, new Rng(seed ^ 0xB0F),
            ct: ct);
        double samplingSeconds = sampling.Elapsed.TotalSeconds;
        int wins = 0, losses = 0, ties = 0;
        double goldSum = 0, baseSum = 0;
        for (int i = 0; i < prompts.Count; i++)
        {
            double a = task.Score(prompts[i], best[i].Best), b = task.Score(prompts[i], baseline.Texts[i]);
            goldSum += a;
            baseSum += b;
            if (Math.Abs(a - b) <= 1e-9) ties++; else if (a > b) wins++; else losses++;
        }
        double bonGold = goldSum / prompts.Count;
        double bonSft = task.Verifiable ? PassAt1(ctx.Sft) : baseSum / prompts.Count;
        string digest = Sha256(Encoding.UTF8.GetBytes(string.Join("\u0000", best.Select(b => b.Best))));
        return new CellResult(task.Name, method, ctx.Seed, n, bonGold, bonSft, BestOfNSample.AnalyticKl(n), wins, losses, ties, digest,
            samplingSeconds, watch.Elapsed.TotalSeconds - samplingSeconds);
    }

    private static string Sha256(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));
}
