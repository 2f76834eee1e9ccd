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
// This is the reusable core for issue 19's `rlhf rft`; it keeps no checkpoints yet (a run is short and deterministic, so
// an interrupted run is run again from the start with the same bits).
using System.Diagnostics;
using RlhfSharp.Alignment.Ppo;
using RlhfSharp.Models;
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

    [ConfigOption("N: completions per prompt; the best one is kept.", Min = 1)]
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
    }
}

/// <summary>The trained policy, one metrics record per round, whether it stopped on cancellation, the rounds done.</summary>
public sealed record ExpertIterationResult(Gpt Policy, IReadOnlyList<IReadOnlyDictionary<string, double>> History, bool Cancelled, int Rounds);

public sealed class ExpertIteration
{
    private readonly ExpertIterationConfig _config;

    public ExpertIteration(ExpertIterationConfig config)
    {
        config.Validate();
        _config = config;
    }

    public ExpertIterationResult Train(Gpt sft, ITokenizer tokenizer, IReadOnlyList<string> prompts, IRolloutReward reward, RunDirectory? run = null,
        IProgress<AlignmentProgress>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(sft);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(reward);
        if (prompts.Count == 0) throw new ArgumentException("expert iteration: no prompts.");
        int eos = tokenizer.EosId ?? sft.Config.EosTokenId ?? throw new ArgumentException("expert iteration: the tokenizer has no end-of-text token, so completions cannot end.");
        run?.WriteConfig(_config);

        // 1. Roles.
        var rng = new Rng(_config.Seed);
        var policy = sft.Clone();
        var opt = new AdamW(policy.ParameterSet, new AdamWConfig { LearningRate = _config.LearningRate, WeightDecay = 0f });
        var generator = new GptGenerator(policy);
        var kept = new List<(int[] Tokens, int PromptLength)>();
        var history = new List<IReadOnlyDictionary<string, double>>();
        int[] order = rng.Permutation(prompts.Count);
        int cursor = 0, round = 0;
        int N = _config.SamplesPerPrompt;
        for (; round < _config.Rounds; round++)
        {
            if (ct.IsCancellationRequested) break;
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
            history.Add(metrics);
            run?.Log(round + 1, metrics);
            progress?.Report(new AlignmentProgress("rft", round + 1, _config.Rounds, metrics));
        }
        return new ExpertIterationResult(policy, history, round < _config.Rounds, round);
    }

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
