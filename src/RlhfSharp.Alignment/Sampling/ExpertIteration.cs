// Expert iteration for language models (Anthony et al. 2017; as rejection-sampling fine-tuning: Yuan et al. 2023, and
// Havrilla et al. 2024, "Teaching large language models to reason with reinforcement learning"): sample, keep the best,
// imitate it, repeat. Each round r = 1..R:
//   D_r = { (x, y*) : x ∈ prompts_r, y* = argmax_{y ∈ {y_1..N} ~ π_θ(·|x)} r(x, y), r(x, y*) ≥ r_min }
//   D = D_1 ∪ … ∪ D_r,    θ ← θ − η ∇ [ −(1/|C|) Σ_{(x,y) ∈ batch ⊂ D} Σ_{t ∈ y ∪ {EOS}} log π_θ(y_t | x, y_<t) ]  (K SFT steps)
// With a verifier and r_min = 1 this is rejection-sampling fine-tuning on correct answers only. Numbered steps:
//  1. Roles: the policy (a copy of the SFT model), one AdamW kept across rounds; reward r behind IRolloutReward.
//  2. Prompts: PromptsPerRound per round, walked through a seeded permutation of the prompts (a new one each pass).
//  3. Sampling: N completions per prompt with the KV-cached generator (PolicyRollouts, shared with PPO and GRPO).
//  4. Selection: the best of each prompt's N by r (first on ties), kept when r ≥ r_min (no threshold: always kept).
//  5. SFT: K steps on minibatches drawn from every round's kept examples, loss on completion tokens (+ EOS when the
//     sample ended with it), gradient clipping, AdamW at a constant rate.
//  6. Logging: rft/reward_mean (all N samples), rft/best_reward_mean, rft/kept, rft/dataset_size, loss/sft.
//  7. Held-out evaluation (when held-out prompts are given), before training (round 0) and after every round: one sample
//     per prompt from a stream seeded alike every round (common random numbers, so rounds differ by the policy alone):
//     eval/gold (mean gold score; a verifier's mean is pass@1), objective/kl (k1 = Σ_t log π − log π_sft per sample,
//     mean), eval/distinct_1, eval/distinct_2. It draws nothing from the training stream, so it does not change the bits.
//  8. Collapse warning: distinct-1 or distinct-2 below CollapseFraction × round 0's; logged as rft/collapse_warning and
//     handed to the caller's Warn (the CLI prints it).
//  9. Checkpoints before round 1 and after every round (policy, AdamW moments, RNG, prompt order and cursor, every kept example, round 0's
//     diversity), so a resumed run continues from the last finished round with the same bits.
// `rlhf rft` (Cli/Commands/RftCommand.cs) is the command; `rlhf compare` runs it without a run folder.
using System.Diagnostics;
using RlhfSharp.Alignment.Evaluation;
using RlhfSharp.Alignment.Ppo;
using RlhfSharp.Models;
using RlhfSharp.Models.Checkpoints;
using RlhfSharp.Runs;
using RlhfSharp.Tensors;
using RlhfSharp.Tensors.Optim;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment.Sampling;

public sealed record ExpertIterationConfig
{
    [ConfigOption("R: sample-select-imitate rounds.", Min = 1)]
    public int Rounds { get; init; } = 10;

    [ConfigOption("Prompts sampled per round.", Min = 1)]
    public int PromptsPerRound { get; init; } = 16;

    [ConfigOption("N: completions per prompt; the best one is kept.", Name = "--samples", Min = 1)]
    public int SamplesPerPrompt { get; init; } = 4;

    [ConfigOption("r_min: the best completion is kept only when its reward reaches this (a verifier: 1); unset keeps every best.", Min = double.NegativeInfinity)]
    public double? MinReward { get; init; }

    [ConfigOption("K: SFT steps after each round's sampling.", Min = 1)]
    public int SftStepsPerRound { get; init; } = 4;

    [ConfigOption("Examples per SFT step (fewer while the kept set is smaller).", Min = 1)]
    public int BatchSize { get; init; } = 16;

    [ConfigOption("AdamW learning rate (constant).", Name = "--lr", Min = 0, MinExclusive = true)]
    public float LearningRate { get; init; } = 1e-4f;

    [ConfigOption("Completion length limit in tokens.", Min = 1)]
    public int MaxNewTokens { get; init; } = 32;

    [ConfigOption("Sampling temperature.", Min = 0, MinExclusive = true)]
    public float Temperature { get; init; } = 1f;

    [ConfigOption("Gradient-norm clip.", Min = 0, MinExclusive = true)]
    public double MaxGradNorm { get; init; } = 1.0;

    [ConfigOption("Seed for prompt order, sampling and minibatches.", Min = 0)]
    public ulong Seed { get; init; } = 1;

    [ConfigOption("Collapse warning when held-out distinct-1 or distinct-2 falls below this fraction of round 0's (0: never).", Min = 0, Max = 1)]
    public double CollapseFraction { get; init; } = 0.5;

    [ConfigOption("Checkpoints kept, one per round (0 keeps all).", Name = "--keep-checkpoints", Min = 0)]
    public int KeepCheckpoints { get; init; } = 2;

    public void Validate()
    {
        void Check(bool ok, string what) { if (!ok) throw new ArgumentException($"expert iteration config: {what}."); }
        Check(Rounds >= 1, $"rounds {Rounds} must be ≥ 1");
        Check(PromptsPerRound >= 1, $"prompts per round {PromptsPerRound} must be ≥ 1");
        Check(SamplesPerPrompt >= 1, $"samples per prompt {SamplesPerPrompt} must be ≥ 1");
        Check(MinReward is null || !double.IsNaN(MinReward.Value), "the minimum reward must be a number");
        Check(SftStepsPerRound >= 1, $"SFT steps per round {SftStepsPerRound} must be ≥ 1");
        Check(BatchSize >= 1, $"batch size {BatchSize} must be ≥ 1");
        Check(LearningRate > 0 && float.IsFinite(LearningRate), $"learning rate {LearningRate} must be positive");
        Check(MaxNewTokens >= 1, $"max new tokens {MaxNewTokens} must be ≥ 1");
        Check(Temperature > 0, $"temperature {Temperature} must be positive");
        Check(MaxGradNorm > 0, $"max grad norm {MaxGradNorm} must be positive");
        Check(CollapseFraction is >= 0 and <= 1, $"collapse fraction {CollapseFraction} must be in [0, 1]");
        Check(KeepCheckpoints >= 0, $"kept checkpoints {KeepCheckpoints} must be ≥ 0");
    }
}

/// <summary>
/// The trained policy, one metrics record per round run in this process (round 0's evaluation first when there are
/// held-out prompts and the run started fresh), whether it stopped on cancellation, the rounds done, and every kept
/// (prompt, completion) pair in the order kept.
/// </summary>
public sealed record ExpertIterationResult(Gpt Policy, IReadOnlyList<IReadOnlyDictionary<string, double>> History, bool Cancelled, int Rounds,
    IReadOnlyList<(string Prompt, string Completion)> Kept);

public sealed class ExpertIteration
{
    /// <summary>Held-out figures (step 7): mean gold score, distinct-1, distinct-2; KL is <see cref="MetricKeys.Kl"/>.</summary>
    public const string GoldKey = "eval/gold", Distinct1Key = "eval/distinct_1", Distinct2Key = "eval/distinct_2", CollapseKey = "rft/collapse_warning";

    private readonly ExpertIterationConfig _config;

    public ExpertIteration(ExpertIterationConfig config)
    {
        config.Validate();
        _config = config;
    }

    /// <summary>What a run adds to the core loop: a run folder (metrics, checkpoints, resume), held-out evaluation, progress, warnings.</summary>
    /// <param name="HeldOut">Prompts for step 7's evaluation (none: no evaluation and no collapse warning).</param>
    /// <param name="Gold">(prompt, completion) → true score for eval/gold (a verifier's 0/1: pass@1); null leaves it out.</param>
    /// <param name="EvalSeed">Seed of the held-out sampling stream, the same every round.</param>
    /// <param name="Warn">Receives each collapse warning as one line.</param>
    public sealed record Options(RunDirectory? Run = null, IReadOnlyList<string>? HeldOut = null, Func<string, string, double>? Gold = null, ulong EvalSeed = 1000,
        IProgress<AlignmentProgress>? Progress = null, Action<string>? Warn = null);

    public ExpertIterationResult Train(Gpt sft, ITokenizer tokenizer, IReadOnlyList<string> prompts, IRolloutReward reward, RunDirectory? run = null,
        IProgress<AlignmentProgress>? progress = null, CancellationToken ct = default) =>
        Train(sft, tokenizer, prompts, reward, new Options(Run: run, Progress: progress), ct);

    public ExpertIterationResult Train(Gpt sft, ITokenizer tokenizer, IReadOnlyList<string> prompts, IRolloutReward reward, Options options, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(sft);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(reward);
        ArgumentNullException.ThrowIfNull(options);
        if (prompts.Count == 0) throw new ArgumentException("expert iteration: no prompts.");
        int eos = tokenizer.EosId ?? sft.Config.EosTokenId ?? throw new ArgumentException("expert iteration: the tokenizer has no end-of-text token, so completions cannot end.");
        var run = options.Run;

        // 1. Roles.
        var rng = new Rng(_config.Seed);
        var policy = sft.Clone();
        var opt = NewOptimizer(policy);
        var kept = new List<(int[] Tokens, int PromptLength)>();
        var keptText = new List<(string Prompt, string Completion)>();
        var history = new List<IReadOnlyDictionary<string, double>>();
        int[] order = rng.Permutation(prompts.Count);
        int cursor = 0, round = 0;
        double baseDistinct1 = double.NaN, baseDistinct2 = double.NaN;
        if (run is { Resumed: true } && run.LatestCheckpoint() is { } checkpoint)
        {
            // 9. Resume from the last finished round.
            policy = Gpt.Load(Path.Combine(checkpoint.Path, "policy"));
            opt = NewOptimizer(policy);
            var state = TrainerCheckpoint.ReadState<RftState>(checkpoint.Path);
            TrainerCheckpoint.ReadOptimizers(checkpoint.Path, ("policy", opt));
            opt.StepCount = state.AdamSteps;
            rng.SetState(state.Rng);
            order = state.Order;
            cursor = state.Cursor;
            round = state.Round;
            for (int i = 0; i < state.KeptTokens.Length; i++)
            {
                kept.Add((state.KeptTokens[i], state.KeptPromptLengths[i]));
                keptText.Add((state.KeptPrompts[i], state.KeptCompletions[i]));
            }
            baseDistinct1 = state.BaseDistinct1 ?? double.NaN;
            baseDistinct2 = state.BaseDistinct2 ?? double.NaN;
        }
        else
        {
            run?.WriteConfig(_config);
            // 7. Round 0: the SFT model on the held-out prompts.
            if (options.HeldOut is { Count: > 0 })
            {
                var zero = Evaluate(policy, sft, tokenizer, options);
                baseDistinct1 = zero[Distinct1Key];
                baseDistinct2 = zero[Distinct2Key];
                history.Add(zero);
                run?.Log(0, zero);
            }
            // 9. Checkpoint 0: a run stopped during round 1 resumes without logging round 0 twice.
            if (run is not null) SaveCheckpoint(run, 0, policy, opt, rng, order, cursor, kept, keptText, baseDistinct1, baseDistinct2);
        }
        var generator = new GptGenerator(policy);
        int N = _config.SamplesPerPrompt;
        bool cancelled = false;
        for (; round < _config.Rounds; round++)
        {
            if (ct.IsCancellationRequested) { cancelled = true; break; }
            var watch = Stopwatch.StartNew();

            // 2. This round's prompts, each repeated N times.
            var roundPrompts = new List<string>(_config.PromptsPerRound);
            for (int i = 0; i < _config.PromptsPerRound; i++)
            {
                if (cursor == order.Length) { order = rng.Permutation(prompts.Count); cursor = 0; }
                roundPrompts.Add(prompts[order[cursor++]]);
            }
            var repeated = roundPrompts.SelectMany(p => Enumerable.Repeat(p, N)).ToList();

            // 3. Sampling and scoring.
            RolloutBatch batch;
            using (Autograd.NoGrad()) batch = PolicyRollouts.Sample(generator, tokenizer, eos, repeated, _config.MaxNewTokens, _config.Temperature, rng);
            var scores = reward.Score(repeated, batch.Responses, batch.Rows);

            // 4. The best of each group, kept when it reaches r_min.
            int keptNow = 0;
            double bestSum = 0;
            for (int g = 0; g < roundPrompts.Count; g++)
            {
                int best = g * N;
                for (int k = 1; k < N; k++) if (scores[g * N + k] > scores[best]) best = g * N + k;
                bestSum += scores[best];
                if (_config.MinReward is double min && scores[best] < min) continue;
                kept.Add(TokenRows.Encode(tokenizer, roundPrompts[g], batch.Responses[best], policy.Config.BlockSize, appendEos: batch.EndsWithEos[best]));
                keptText.Add((roundPrompts[g], batch.Responses[best]));
                keptNow++;
            }

            // 5. SFT on every round's kept examples (none yet: nothing to imitate this round).
            double loss = double.NaN;
            if (kept.Count > 0)
            {
                double sum = 0;
                for (int s = 0; s < _config.SftStepsPerRound; s++) sum += SftStep(policy, opt, kept, rng);
                loss = sum / _config.SftStepsPerRound;
            }

            // 6. Logging.
            var metrics = new Dictionary<string, double>
            {
                ["rft/reward_mean"] = scores.Average(x => (double)x),
                ["rft/best_reward_mean"] = bestSum / roundPrompts.Count,
                ["rft/kept"] = keptNow,
                ["rft/dataset_size"] = kept.Count,
                [MetricKeys.TrainLoss] = loss,
                ["perf/round_seconds"] = watch.Elapsed.TotalSeconds,
            };
            // 7-8. Held-out figures and the collapse warning.
            if (options.HeldOut is { Count: > 0 })
            {
                foreach (var (key, value) in Evaluate(policy, sft, tokenizer, options)) metrics[key] = value;
                double f = _config.CollapseFraction;
                bool collapsed = f > 0 && (metrics[Distinct1Key] < f * baseDistinct1 || metrics[Distinct2Key] < f * baseDistinct2);
                metrics[CollapseKey] = collapsed ? 1 : 0;
                if (collapsed)
                    options.Warn?.Invoke(FormattableString.Invariant(
                        $"rft round {round + 1}: diversity collapsing: held-out distinct-1 {metrics[Distinct1Key]:F3}, distinct-2 {metrics[Distinct2Key]:F3} against round 0's {baseDistinct1:F3}, {baseDistinct2:F3} (warning below {f:0.##} of them)."));
            }
            history.Add(metrics);
            run?.Log(round + 1, metrics);
            options.Progress?.Report(new AlignmentProgress("rft", round + 1, _config.Rounds, metrics));
            if (run is not null) SaveCheckpoint(run, round + 1, policy, opt, rng, order, cursor, kept, keptText, baseDistinct1, baseDistinct2);
        }
        return new ExpertIterationResult(policy, history, cancelled, round, keptText);
    }

    private AdamW NewOptimizer(Gpt model) =>
        new(model.ParameterSet, new AdamWConfig { LearningRate = _config.LearningRate, WeightDecay = 0f });

    /// <summary>7. One sample per held-out prompt from <paramref name="policy"/>: gold, KL k1 to the SFT model, distinct-1/2.</summary>
    private Dictionary<string, double> Evaluate(Gpt policy, Gpt sft, ITokenizer tokenizer, Options options)
    {
        var heldOut = options.HeldOut!;
        var evaluator = new PolicyEvaluator(new EvaluationOptions { MaxNewTokens = _config.MaxNewTokens, Temperature = _config.Temperature, Seed = options.EvalSeed });
        var sampled = evaluator.Sample(policy, sft, tokenizer, heldOut, new Rng(options.EvalSeed));
        var stats = PolicyEvaluator.Stats(sampled, heldOut, options.Gold, null);
        var metrics = new Dictionary<string, double>
        {
            [MetricKeys.Kl] = stats.KlK1,
            [Distinct1Key] = stats.Distinct1,
            [Distinct2Key] = stats.Distinct2,
            ["eval/response_length"] = stats.MeanLength,
        };
        if (options.Gold is not null) metrics[GoldKey] = stats.MeanGold;
        return metrics;
    }

    // 9. Checkpoints.
    private sealed record RftState(int Round, ulong[] Rng, int AdamSteps, int[] Order, int Cursor, int[][] KeptTokens, int[] KeptPromptLengths,
        string[] KeptPrompts, string[] KeptCompletions, double? BaseDistinct1, double? BaseDistinct2);

    private void SaveCheckpoint(RunDirectory run, int round, Gpt policy, AdamW opt, Rng rng, int[] order, int cursor,
        List<(int[] Tokens, int PromptLength)> kept, List<(string Prompt, string Completion)> keptText, double baseDistinct1, double baseDistinct2) =>
        run.SaveCheckpoint(round, dir =>
        {
            policy.Save(Path.Combine(dir, "policy"));
            TrainerCheckpoint.WriteOptimizers(dir, ("policy", opt));
            TrainerCheckpoint.WriteState(dir, new RftState(round, rng.GetState(), opt.StepCount, order, cursor, [.. kept.Select(k => k.Tokens)],
                [.. kept.Select(k => k.PromptLength)], [.. keptText.Select(k => k.Prompt)], [.. keptText.Select(k => k.Completion)],
                double.IsNaN(baseDistinct1) ? null : baseDistinct1, double.IsNaN(baseDistinct2) ? null : baseDistinct2));
        }, _config.KeepCheckpoints);

    /// <summary>One SFT step on a minibatch drawn with replacement from <paramref name="kept"/>; returns its mean completion-token loss.</summary>
    private float SftStep(Gpt policy, AdamW opt, List<(int[] Tokens, int PromptLength)> kept, Rng rng)
    {
        int B = Math.Min(_config.BatchSize, kept.Count);
        var rows = new List<(int[] Tokens, int PromptLength)>(B);
        for (int i = 0; i < B; i++) rows.Add(kept[rng.NextInt(kept.Count)]);
        var input = TokenRows.RightPadded(rows.Select(r => r.Tokens).ToList());
        int T = input.Length, V = policy.Config.VocabSize;
        // Position t predicts token t + 1; only completion tokens (t + 1 ≥ prompt length) carry weight.
        var targets = new int[B * T];
        var weights = new float[B * T];
        for (int b = 0; b < B; b++)
            for (int t = 0; t + 1 < rows[b].Tokens.Length; t++)
            {
                targets[b * T + t] = rows[b].Tokens[t + 1];
                if (t + 1 >= rows[b].PromptLength) weights[b * T + t] = 1;
            }
        if (!weights.Any(w => w > 0)) return float.NaN;
        policy.ZeroGrad();
        var pass = policy.Forward(input);
        var dLogits = new float[B * T * V];
        float loss = Gpt.CrossEntropy(pass, targets, weights, dLogits);
        policy.Backward(pass, dLogits);
        policy.ParameterSet.ClipGradNorm(_config.MaxGradNorm);
        opt.Step(_config.LearningRate);
        return loss;
    }
}
