// PpoTrainer's data-parallel path (docs/distributed.md; PPO, RLOO and REINFORCE alike), taken when GradShards = S > 1:
// one process computing S shards one after the other, or S ranks of mpirun computing one each, with the same bits.
//  2. Rollouts: the batch's prompts are drawn from the run's RNG as in one pass; shard s samples the responses of rows
//     [⌊s·B/S⌋, ⌊(s+1)·B/S⌋) from its own stream of (seed, step, s), so what a row gets does not depend on which rank
//     samples it. Every rank then holds all rows (ShardedGradient.Gather) laid out as one batch (PolicyRollouts.Layout).
//  3. Scoring is split the same way: shard s computes log π_old, log π_ref, V and r(x, y) for its rows of that batch.
//  4–6. Rewards, advantages and whitening run on every rank over the whole batch (cheap, and identical everywhere).
//  7. Each minibatch's rows are cut into S slices; slice s's loss is its masked mean times its share of the minibatch's
//     real tokens (every loss here is a masked mean over tokens), so the slices' gradients, summed in slice order,
//     are the minibatch's; the figures logged (clip fraction, approx KL, entropy) are token-weighted the same way.
// Not data-parallel yet: PPO-ptx (its pre-training rows are drawn from the run's RNG minibatch by minibatch).
using System.Diagnostics;
using RlhfSharp.Distributed;
using RlhfSharp.Models;
using RlhfSharp.Objectives;
using RlhfSharp.Tensors;
using RlhfSharp.Tensors.Kernels;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment.Ppo;

public sealed partial class PpoTrainer
{
    /// <summary>The shards of every batch when GradShards &gt; 1 (set by Train), null for the single-pass path.</summary>
    private ShardedGradient? _shards;

    private const ulong RolloutStream = 0x5A3D0C7E11F02B49UL;

    /// <summary>Steps 2–3's outputs for the whole batch: the rollouts and, per row, log π_old, log π_ref and V ([B, R]) and the score ([B]).</summary>
    private sealed record ScoredRollouts(RolloutBatch Batch, float[] OldLogp, float[] RefLogp, float[] OldValues, float[] Scores, double GenerationSeconds, double ScoringSeconds);

    /// <summary>Steps 2–3 split over the shards (file header; the machinery is ShardedRollouts, shared with GRPO).</summary>
    private ScoredRollouts ShardedRollouts(int step, ShardedGradient shards, Gpt policy, Gpt reference, Gpt? value, GptGenerator generator,
        ITokenizer tokenizer, int eos, List<string> batchPrompts, IRolloutReward reward)
    {
        int B = batchPrompts.Count;
        // 2. Shard s samples its rows from the stream of (seed, step, s).
        var batch = Ppo.ShardedRollouts.Sample(shards, s => new Rng(_config.Seed ^ RolloutStream ^ (0x9E3779B97F4A7C15UL * (ulong)((long)step * shards.Shards + s + 1))),
            generator, tokenizer, eos, batchPrompts, _config.MaxNewTokens, _config.Temperature);

        // 3. Shard s scores its rows of the whole batch's layout.
        var watch = Stopwatch.StartNew();
        int Tp = batch.PromptLength, R = batch.ResponseLength;
        var figures = Ppo.ShardedRollouts.ScoreRows(shards, B, [R, R, R, 1], (start, count) =>
        {
            var sub = PolicyRollouts.Rows(batch.Input, [.. Enumerable.Range(start, count)]);
            var scores = reward.Score(batchPrompts.GetRange(start, count), batch.Responses[start..(start + count)], batch.Rows.GetRange(start, count));
            if (scores.Length != count) throw new InvalidOperationException($"ppo: the reward returned {scores.Length} scores for {count} responses.");
            return [
                PolicyRollouts.ResponseLogProbs(policy, sub, Tp, R, _config.Temperature),
                PolicyRollouts.ResponseLogProbs(reference, sub, Tp, R, _config.Temperature),
                value is null ? new float[count * R] : PolicyRollouts.ResponseValues(value, sub, Tp, R),
                scores];
        });
        return new ScoredRollouts(batch, figures[0], figures[1], figures[2], figures[3], batch.GenerationSeconds, watch.Elapsed.TotalSeconds);
    }

    /// <summary>Step 7's policy gradient of one minibatch, slice by slice; returns (loss, policy loss, clip fraction, approx KL, entropy).</summary>
    private (double Loss, double PolicyLoss, double ClipFraction, double ApproxKl, double Entropy) ShardedPolicyGradient(ShardedGradient shards, Gpt policy,
        GptInput input, int[] idx, float[] mask, float[] oldLogp, float[] advantages, int Tp, int R)
    {
        float total = Tokens(mask, idx, R);
        var gradient = policy.TrainableParameters.Grads;
        foreach (int s in shards.LocalShards)
        {
            var (start, count) = shards.Slice(s, idx.Length);
            var part = idx[start..(start + count)];
            float tokens = Tokens(mask, part, R);
            policy.ZeroGrad();
            var values = new double[5];
            if (tokens > 0)
            {
                float share = tokens / total;
                int b = part.Length;
                var subMask = Tensor.FromArray(PolicyRollouts.Gather(mask, part, R), b, R);
                var taped = PolicyLogProbsOnTape(policy, PolicyRollouts.Rows(input, part), Tp, R, null);
                var (loss, policyLoss, clip, approxKl, entropy) = MinibatchPolicyLoss(taped, part, subMask, oldLogp, advantages, Tp, R);
                var scaled = Ops.MulScalar(loss, share);
                scaled.Backward();
                PolicyRollouts.Backward(policy, taped, _config.Temperature);
                values = [scaled.Item(), policyLoss * share, clip * share, approxKl * share, entropy * share];
            }
            shards.Add(s, gradient, values);
        }
        double sum = shards.Finish(gradient);
        var t = shards.Totals;
        return (sum, t[1], t[2], t[3], t[4]);
    }

    /// <summary>Step 7's value gradient of one minibatch, slice by slice; returns (value loss, value clip fraction).</summary>
    private (double Loss, double ClipFraction) ShardedValueGradient(ShardedGradient shards, Gpt value, GptInput input, int[] idx, float[] mask,
        float[] oldValues, float[] returns, int Tp, int R)
    {
        float total = Tokens(mask, idx, R);
        int L = input.Length;
        var gradient = value.TrainableParameters.Grads;
        foreach (int s in shards.LocalShards)
        {
            var (start, count) = shards.Slice(s, idx.Length);
            var part = idx[start..(start + count)];
            float tokens = Tokens(mask, part, R);
            value.ZeroGrad();
            var values = new double[2];
            if (tokens > 0)
            {
                float share = tokens / total;
                int b = part.Length;
                var subMask = Tensor.FromArray(PolicyRollouts.Gather(mask, part, R), b, R);
                var vpass = value.Forward(PolicyRollouts.Rows(input, part), new GptForwardOptions { Logits = false });
                var vAll = Tensor.Wrap(vpass.Values!, b, L);
                vAll.RequiresGrad = true;
                var v = Ops.Narrow(vAll, 1, Tp - 1, R);
                var vl = MinibatchValueLoss(v, part, subMask, oldValues, returns, R);
                var scaled = Ops.MulScalar(vl.Loss, share);
                Ops.MulScalar(scaled, _config.ValueCoef).Backward();
                value.Backward(vpass, dValues: vAll.Grad!.ToArray());
                values = [scaled.Item(), vl.ClipFraction * share];
            }
            shards.Add(s, gradient, values);
        }
        double sum = shards.Finish(gradient);
        return (sum, shards.Totals[1]);
    }

    /// <summary>Real response tokens in rows <paramref name="idx"/> of a [B, R] mask (an exact count in float).</summary>
    private static float Tokens(float[] mask, int[] idx, int R)
    {
        float n = 0;
        foreach (int i in idx) n += Reduce.Sum(mask.AsSpan(i * R, R));
        return n;
    }
    /// <summary>
    /// log π of a minibatch's response tokens on the tape. Under LoRA the LM head runs at the response positions only
    /// (PolicyRollouts.ResponseLogProbsOnTape: the same values, a third of the head's work); a policy that trains wte needs
    /// every position's logits.
    /// </summary>
    private TapedLogProbs PolicyLogProbsOnTape(Gpt policy, GptInput sub, int Tp, int R, TapedLogProbs? reuse) =>
        policy.Adapter is not null
            ? PolicyRollouts.ResponseLogProbsOnTape(policy, sub, Tp, R, _config.Temperature, reuse)
            : PolicyRollouts.LogProbsOnTape(policy, sub, Tp, R, _config.Temperature, reuse?.Pass);

    /// <summary>Step 7's policy loss of one minibatch's rows on the tape: REINFORCE's or PPO's clipped loss, plus the
    /// entropy bonus through the logits when EntropyCoef &gt; 0 (else the entropy is only measured). Both the one-pass and
    /// the sliced paths call this, so they build the same graph. PolicyLoss is the loss before the bonus.</summary>
    private (Tensor Loss, double PolicyLoss, double ClipFraction, double ApproxKl, double Entropy) MinibatchPolicyLoss(
        TapedLogProbs taped, int[] rows, Tensor subMask, float[] oldLogp, float[] advantages, int Tp, int R)
    {
        int b = rows.Length;
        var subAdvantages = Tensor.FromArray(PolicyRollouts.Gather(advantages, rows, R), b, R);
        Tensor loss;
        double clip = 0, approxKl = 0, entropy;
        if (_config.Algorithm == PolicyAlgorithm.Reinforce) loss = PolicyGradientLosses.Reinforce(taped.LogProbs, subAdvantages, subMask);
        else
        {
            var pl = PpoLosses.ClippedPolicy(taped.LogProbs, Tensor.FromArray(PolicyRollouts.Gather(oldLogp, rows, R), b, R), subAdvantages, subMask, _config.ClipRange);
            (loss, clip, approxKl) = (pl.Loss, pl.ClipFraction, pl.ApproxKl);
        }
        double policyLoss = loss.Item();
        if (_config.EntropyCoef > 0)
        {
            // The entropy bonus −c_e·H through the logits on the tape, so it shapes the gradient.
            var bonus = PolicyGradientLosses.EntropyBonus(taped.ResponseEntropy(Tp, R, detach: false), subMask, _config.EntropyCoef);
            loss = Ops.Add(loss, bonus.Loss);
            entropy = bonus.Entropy;
        }
        else
        {
            using (Autograd.NoGrad())
                entropy = Ops.MaskedMean(taped.ResponseEntropy(Tp, R, detach: true), subMask).Item();
        }
        return (loss, policyLoss, clip, approxKl, entropy);
    }

    /// <summary>Step 7's value loss of one minibatch's rows: REINFORCE's baseline regresses on the returns directly; PPO
    /// clips the value's move.</summary>
    private ValueLossResult MinibatchValueLoss(Tensor v, int[] rows, Tensor subMask, float[] oldValues, float[] returns, int R)
    {
        int b = rows.Length;
        var subReturns = Tensor.FromArray(PolicyRollouts.Gather(returns, rows, R), b, R);
        return _config.Algorithm == PolicyAlgorithm.Reinforce
            ? new ValueLossResult(PolicyGradientLosses.ValueLoss(v, subReturns, subMask), 0)
            : PpoLosses.ClippedValue(v, Tensor.FromArray(PolicyRollouts.Gather(oldValues, rows, R), b, R), subReturns, subMask, _config.ClipRangeValue);
    }
}
