// pass@k on a verifiable task (Chen et al. 2021, "Evaluating large language models trained on code", §2.1): sample n ≥ k
// completions per problem, count the c that the verifier accepts, and estimate the chance that at least one of k samples
// is right with the unbiased estimator
//   pass@k = E_problems[ 1 − C(n − c, k) / C(n, k) ],
// computed as the paper's numerically stable product 1 − Π_{i = n − c + 1}^{n} (1 − k/i) (1 when n − c < k).
using RlhfSharp.Alignment.Ppo;
using RlhfSharp.Models;
using RlhfSharp.Tensors;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment.Evaluation;

/// <summary>pass@k per k, and the share of all samples that were correct.</summary>
public sealed record PassAtKResult(int Problems, int Samples, IReadOnlyDictionary<int, double> PassAt, double CorrectFraction);

public static class PassAtK
{
    /// <summary>The unbiased estimator of pass@k from n samples of which c are correct.</summary>
    public static double Estimate(int n, int c, int k)
    {
        if (n < 1 || c < 0 || c > n || k < 1 || k > n) throw new ArgumentException($"pass@k: need 1 ≤ k ≤ n and 0 ≤ c ≤ n; got n = {n}, c = {c}, k = {k}.");
        if (n - c < k) return 1.0;
        double miss = 1.0;
        for (int i = n - c + 1; i <= n; i++) miss *= 1.0 - (double)k / i;
        return 1.0 - miss;
    }

    /// <summary>
    /// Samples <paramref name="samples"/> completions of each prompt at <paramref name="temperature"/> and returns pass@k for
    /// each k in <paramref name="ks"/>. <paramref name="verify"/>(i, completion) is 1 for a correct answer to problem i.
    /// </summary>
    public static PassAtKResult Evaluate(Gpt policy, ITokenizer tokenizer, IReadOnlyList<string> prompts, Func<int, string, double> verify, int samples,
        IReadOnlyList<int> ks, int maxNewTokens, float temperature, ulong seed, int rowsPerBatch = 64)
    {
        if (prompts.Count == 0) throw new ArgumentException("pass@k: no problems.");
        if (ks.Any(k => k < 1 || k > samples)) throw new ArgumentException($"pass@k: every k ({string.Join(", ", ks)}) must lie in 1..samples ({samples}).");
        int eos = tokenizer.EosId ?? policy.Config.EosTokenId ?? throw new ArgumentException("pass@k: the tokenizer has no end-of-text token.");
        var generator = new GptGenerator(policy);
        var rng = new Rng(seed);
        var correct = new int[prompts.Count];
        int perBatch = Math.Max(1, rowsPerBatch / samples);
        for (int first = 0; first < prompts.Count; first += perBatch)
        {
            int count = Math.Min(perBatch, prompts.Count - first);
            var batchPrompts = new List<string>(count * samples);
            for (int i = 0; i < count; i++) for (int s = 0; s < samples; s++) batchPrompts.Add(prompts[first + i]);
            var batch = PolicyRollouts.Sample(generator, tokenizer, eos, batchPrompts, maxNewTokens, temperature, rng);
            for (int i = 0; i < count; i++)
                for (int s = 0; s < samples; s++)
                    if (verify(first + i, batch.Responses[i * samples + s]) >= 1) correct[first + i]++;
        }
        var passAt = ks.Distinct().Order().ToDictionary(k => k, k => correct.Average(c => Estimate(samples, c, k)));
        return new PassAtKResult(prompts.Count, samples, passAt, correct.Sum() / (double)(prompts.Count * samples));
    }
}
