// OnlineDpoTrainer's data-parallel path (step 6 of its header; docs/distributed.md), taken when GradShards = S > 1: the
// step's 2P rows sampled, judged and scored by the reference in S row slices (Ppo.ShardedRollouts), then the update's P
// pairs (rows b and P + b) cut into S slices, each slice's DPO loss count/P of the batch mean, gradients and the logged
// sums added in slice order. One process computing the S slices in turn equals S ranks of mpirun bit for bit.
using RlhfSharp.Alignment.Ppo;
using RlhfSharp.Distributed;
using RlhfSharp.Models;
using RlhfSharp.Objectives;
using RlhfSharp.Tensors;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment.Dpo;

public sealed partial class OnlineDpoTrainer
{
    /// <summary>The slices of every step when GradShards &gt; 1 (set by Train), null for the single-pass path.</summary>
    private ShardedGradient? _shards;

    /// <summary>2.–3. The 2P rows sampled (streams keyed by one draw of the run's RNG and the slice) and judged, slice by slice.</summary>
    private (RolloutBatch Batch, float[] Scores) ShardedRollout(ShardedGradient shards, GptGenerator generator, ITokenizer tokenizer, int eos,
        List<string> prompts, IRolloutReward judge, Rng rng)
    {
        ulong key = rng.NextUInt64();
        var batch = ShardedRollouts.Sample(shards, s => new Rng(key ^ (0x9E3779B97F4A7C15UL * (ulong)(s + 1))), generator, tokenizer, eos, prompts,
            _config.MaxNewTokens, _config.Temperature);
        var scores = ShardedRollouts.ScoreRows(shards, batch.Batch, [1], (start, count) =>
            [judge.Score(prompts.GetRange(start, count), batch.Responses[start..(start + count)], batch.Rows.GetRange(start, count))])[0];
        return (batch, scores);
    }

    /// <summary>4. log π_ref of every response token (temperature 1), slice by slice.</summary>
    private static float[] ShardedReferenceLogProbs(ShardedGradient shards, Gpt reference, RolloutBatch batch)
    {
        int Tp = batch.PromptLength, R = batch.ResponseLength;
        return ShardedRollouts.ScoreRows(shards, batch.Batch, [R], (start, count) =>
            [PolicyRollouts.ResponseLogProbs(reference, PolicyRollouts.Rows(batch.Input, [.. Enumerable.Range(start, count)]), Tp, R, 1f)])[0];
    }

    /// <summary>4. The DPO update over the P pairs, slice by slice; returns (loss, mean chosen and rejected rewards, accuracy, margin, KL).</summary>
    private (double Loss, double Chosen, double Rejected, double Accuracy, double Margin, double Kl) ShardedUpdate(ShardedGradient shards, Gpt policy,
        RolloutBatch batch, float[] firstWins, float[] refSums, float[] refChosen, float[] refRejected)
    {
        int P = firstWins.Length, Tp = batch.PromptLength, R = batch.ResponseLength;
        var gradient = policy.TrainableParameters.Grads;
        foreach (int s in shards.LocalShards)
        {
            var (start, count) = shards.Slice(s, P);
            policy.ZeroGrad();
            var values = new double[6];
            if (count > 0)
            {
                // The slice's pairs: first completions, then their second ones, as the whole batch lays them out.
                int[] idx = [.. Enumerable.Range(start, count), .. Enumerable.Range(P + start, count)];
                var taped = PolicyRollouts.LogProbsOnTape(policy, PolicyRollouts.Rows(batch.Input, idx), Tp, R, 1f);
                var sums = Ops.Sum(Ops.Mul(taped.LogProbs, Tensor.FromArray(PolicyRollouts.Gather(batch.Mask, idx, R), 2 * count, R)), 1); // [2·count]
                var (a, c) = (Ops.Narrow(sums, 0, 0, count), Ops.Narrow(sums, 0, count, count));
                var wins = Tensor.FromArray(firstWins[start..(start + count)], count);
                var res = DpoLoss.Compute(Ops.Where(wins, a, c), Ops.Where(wins, c, a), refChosen[start..(start + count)], refRejected[start..(start + count)], _config.Beta);
                var loss = Ops.MulScalar(res.Loss, (float)count / P);
                loss.Backward();
                PolicyRollouts.Backward(policy, taped, 1f);
                values[0] = loss.Item();
                for (int i = 0; i < count; i++)
                {
                    values[1] += res.ChosenRewards[i];
                    values[2] += res.RejectedRewards[i];
                    if (res.ChosenRewards[i] > res.RejectedRewards[i]) values[3]++;
                    values[4] += res.ChosenRewards[i] - res.RejectedRewards[i];
                }
                var sum = sums.Span;
                for (int j = 0; j < idx.Length; j++) values[5] += sum[j] - refSums[idx[j]];
            }
            shards.Add(s, gradient, values);
        }
        double total = shards.Finish(gradient);
        var t = shards.Totals;
        return (total, t[1] / P, t[2] / P, t[3] / P, t[4] / P, t[5] / (2 * P));
    }
}
