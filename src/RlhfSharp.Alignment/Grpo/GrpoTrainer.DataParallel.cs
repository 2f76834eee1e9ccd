// GrpoTrainer's data-parallel path (docs/distributed.md), taken when GradShards = S > 1: one process computing S slices
// one after the other, or S ranks of mpirun computing one each, with the same bits.
//  2.–3. Each generation round's prompts are drawn from the run's RNG as in one pass, with one more draw keying the
//     round's sampling streams: slice s samples its rows from the stream of (key, s) and scores them (Ppo.ShardedRollouts);
//     every rank then holds the whole round. Group advantages and dynamic sampling run on every rank.
//  5. Slice s computes log π_old and log π_ref for its rows of the kept batch.
//  6. Each minibatch's rows are cut into S slices with their aggregation weights: GRPO's loss is Σ w·ℓ over the
//     minibatch, so the slices' losses and gradients, summed in slice order, are the minibatch's. Clip fractions, KL and
//     entropy (means over the slice's tokens) are weighted by each slice's share of the minibatch's tokens.
using System.Diagnostics;
using RlhfSharp.Alignment.Ppo;
using RlhfSharp.Distributed;
using RlhfSharp.Models;
using RlhfSharp.Objectives;
using RlhfSharp.Tensors;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment.Grpo;

public sealed partial class GrpoTrainer
{
    /// <summary>The slices of every round and minibatch when GradShards &gt; 1 (set by Train), null for the single-pass path.</summary>
    private ShardedGradient? _shards;

    /// <summary>2.–3. One generation round sampled and scored slice by slice.</summary>
    private (RolloutBatch Batch, float[] Rewards) ShardedRound(ShardedGradient shards, GptGenerator generator, ITokenizer tokenizer, int eos,
        List<string> prompts, IRolloutReward reward, Rng rng, Stopwatch scoreWatch)
    {
        ulong key = rng.NextUInt64();
        var batch = ShardedRollouts.Sample(shards, s => new Rng(key ^ (0x9E3779B97F4A7C15UL * (ulong)(s + 1))), generator, tokenizer, eos, prompts,
            _config.MaxNewTokens, _config.Temperature);
        scoreWatch.Start();
        var rewards = ShardedRollouts.ScoreRows(shards, batch.Batch, [1], (start, count) =>
            [reward.Score(prompts.GetRange(start, count), batch.Responses[start..(start + count)], batch.Rows.GetRange(start, count))])[0];
        return (batch, rewards);
    }

    /// <summary>5. log π_old (and log π_ref when β &gt; 0) of the kept batch, slice by slice.</summary>
    private (float[] Old, float[]? Reference) ShardedLogProbs(ShardedGradient shards, Gpt policy, Gpt? reference, RolloutBatch kept)
    {
        int Tp = kept.PromptLength, R = kept.ResponseLength;
        var figures = ShardedRollouts.ScoreRows(shards, kept.Batch, reference is null ? [R] : [R, R], (start, count) =>
        {
            var sub = PolicyRollouts.Rows(kept.Input, [.. Enumerable.Range(start, count)]);
            var old = PolicyRollouts.ResponseLogProbs(policy, sub, Tp, R, _config.Temperature);
            return reference is null ? [old] : [old, PolicyRollouts.ResponseLogProbs(reference, sub, Tp, R, _config.Temperature)];
        });
        return (figures[0], reference is null ? null : figures[1]);
    }

    /// <summary>6. One minibatch's gradient slice by slice; returns (loss, KL, low and high clip fractions, entropy).</summary>
    private (double Loss, double Kl, double Low, double High, double Entropy) SlicedGradient(ShardedGradient shards, Gpt policy, GptInput input, int[] idx,
        float[] lossMask, float[] weights, float[] oldLogp, float[]? refLogp, float[] advantages, int Tp, int R)
    {
        var minibatchMask = PolicyRollouts.Gather(lossMask, idx, R);
        float total = 0;
        foreach (float m in minibatchMask) total += m;
        var gradient = policy.TrainableParameters.Grads;
        foreach (int s in shards.LocalShards)
        {
            var (start, count) = shards.Slice(s, idx.Length);
            policy.ZeroGrad();
            var values = new double[5];
            if (count > 0)
            {
                var part = idx[start..(start + count)];
                var mask = minibatchMask[(start * R)..((start + count) * R)];
                var taped = PolicyRollouts.LogProbsOnTape(policy, PolicyRollouts.Rows(input, part), Tp, R, _config.Temperature);
                var res = GrpoLoss.Compute(taped.LogProbs, PolicyRollouts.Gather(oldLogp, part, R), refLogp is null ? default : PolicyRollouts.Gather(refLogp, part, R),
                    [.. part.Select(i => advantages[i])], mask, weights[(start * R)..((start + count) * R)], _config.Epsilon, _config.UpperEpsilon, (float)_config.Beta);
                res.Loss.Backward();
                float tokens = 0;
                foreach (float m in mask) tokens += m;
                double share = total > 0 ? tokens / total : 0, entropy = 0;
                if (tokens > 0)
                    using (Autograd.NoGrad())
                        entropy = Ops.MaskedMean(Ops.Narrow(Ops.Entropy(taped.Logits.Detach()), 1, Tp - 1, R), Tensor.FromArray(mask, count, R)).Item();
                PolicyRollouts.Backward(policy, taped, _config.Temperature);
                values = [res.Loss.Item(), res.Kl * share, res.LowClipFraction * share, res.HighClipFraction * share, entropy * share];
            }
            shards.Add(s, gradient, values);
        }
        double loss = shards.Finish(gradient);
        var t = shards.Totals;
        return (loss, t[1], t[2], t[3], t[4]);
    }
}
