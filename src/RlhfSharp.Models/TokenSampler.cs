// Picking the next token from one row of logits (V): greedy, or a temperature-scaled draw restricted to the top-k and/or
// the nucleus (top-p; Holtzman et al. 2020). Vectorised over V and without sorting the whole vocabulary: top-k keeps a
// k-entry heap, top-p sorts only the tokens above a probability threshold that provably holds the nucleus.
// Scalar reference (full sort, zeroing, Rng.Categorical): TokenSamplerTests.ReferenceKept, compared on every size 1..257.
using System.Numerics.Tensors;
using RlhfSharp.Tensors;

namespace RlhfSharp.Models;

/// <summary>Reusable buffers for one generator: the weights and candidate indices of a row (V each).</summary>
internal sealed class TokenSampler(int vocab)
{
    private readonly float[] _weights = new float[vocab];
    private readonly int[] _candidates = new int[vocab];

    /// <summary>The most likely token (lowest index among ties) and its log-probability at temperature 1.</summary>
    public (int Token, float LogProb) Greedy(ReadOnlySpan<float> logits, int row)
    {
        float lse = Weights(logits, 1f, _weights, row);
        int best = TensorPrimitives.IndexOfMax(logits);
        return (best, logits[best] - lse);
    }

    /// <summary>A draw from softmax(logits / T) truncated by top-k and top-p; the log-probability is the untruncated one.</summary>
    public (int Token, float LogProb) Sample(ReadOnlySpan<float> logits, GenerationOptions o, Rng rng, int row)
    {
        int V = logits.Length;
        float invT = 1f / o.Temperature;
        var w = _weights.AsSpan(0, V);
        float lse = Weights(logits, invT, w, row);
        int token;
        if ((o.TopK > 0 && o.TopK < V) || o.TopP < 1)
        {
            int kept = Kept(w, o.TopK, o.TopP, _candidates);
            token = Draw(w, _candidates.AsSpan(0, kept), rng);
        }
        else
        {
            token = DrawAll(w, rng);
        }
        return (token, logits[token] * invT - lse);
    }

    /// <summary>w = exp(logits·scale − max) (the largest weight is 1); returns log Σ exp(logits·scale).</summary>
    internal static float Weights(ReadOnlySpan<float> logits, float scale, Span<float> w, int row)
    {
        var dst = w[..logits.Length];
        TensorPrimitives.Multiply(logits, scale, dst);
        float max = TensorPrimitives.Max(dst);
        if (!float.IsFinite(max))
            throw new ArgumentException($"generation: the logits of row {row} hold {max} (a NaN or infinite value); cannot sample.");
        TensorPrimitives.Subtract(dst, max, dst);
        TensorPrimitives.Exp(dst, dst);
        return max + MathF.Log(RlhfSharp.Tensors.Kernels.Reduce.Sum(dst));
    }

    /// <summary>
    /// Writes to <paramref name="kept"/> (ascending) the tokens that survive top-k and top-p, exactly the set a full
    /// descending sort would keep (ties broken towards the lower index), and returns how many there are.
    /// </summary>
    internal static int Kept(ReadOnlySpan<float> w, int topK, float topP, int[] kept)
    {
        int V = w.Length;
        int count = topP < 1 ? NucleusCandidates(w, topP, kept) : TopK(w, Math.Min(topK, V), kept);
        var candidates = kept.AsSpan(0, count);
        SortDescending(w, candidates);
        int keep = topK > 0 ? Math.Min(topK, count) : count;
        if (topP < 1)
        {
            // The nucleus, measured on the normalised probabilities as the sorted definition does.
            double total = 0;
            for (int v = 0; v < V; v++) total += w[v];
            double cumulative = 0;
            for (int i = 0; i < keep; i++)
            {
                cumulative += w[candidates[i]] / total;
                if (cumulative >= topP)
                {
                    keep = i + 1;
                    break;
                }
            }
        }
        candidates[..keep].Sort();
        return keep;
    }

    /// <summary>
    /// Tokens with weight ≥ x for the largest x in a geometric ladder whose tokens together reach mass p: the sorted prefix
    /// that first reaches p lies inside that set. At x = (1 − p)·total/V the set always qualifies, since the tokens below x
    /// hold less than V·x = (1 − p)·total; below that every token is taken.
    /// </summary>
    private static int NucleusCandidates(ReadOnlySpan<float> w, float topP, int[] candidates)
    {
        int V = w.Length;
        double total = 0;
        for (int v = 0; v < V; v++) total += w[v];
        double floor = (1 - topP) * total / V;
        for (double x = total / 64; ; x /= 16)
        {
            if (x <= floor) x = 0;
            int count = 0;
            double mass = 0;
            for (int v = 0; v < V; v++)
            {
                if (w[v] < x) continue;
                candidates[count++] = v;
                mass += w[v];
            }
            if (mass >= topP * total || x == 0) return count;
        }
    }

    /// <summary>The k heaviest tokens (ties to the lower index), unordered, via a k-entry min-heap whose root is the weakest.</summary>
    private static int TopK(ReadOnlySpan<float> w, int k, int[] heap)
    {
        int size = 0;
        for (int v = 0; v < w.Length; v++)
        {
            if (size < k)
            {
                // Sift up.
                int i = size++;
                while (i > 0)
                {
                    int parent = (i - 1) / 2;
                    if (!Weaker(w, v, heap[parent])) break;
                    heap[i] = heap[parent];
                    i = parent;
                }
                heap[i] = v;
            }
            else if (Weaker(w, heap[0], v))
            {
                // Replace the root and sift down.
                int i = 0;
                while (true)
                {
                    int child = 2 * i + 1;
                    if (child >= size) break;
                    if (child + 1 < size && Weaker(w, heap[child + 1], heap[child])) child++;
                    if (!Weaker(w, heap[child], v)) break;
                    heap[i] = heap[child];
                    i = child;
                }
                heap[i] = v;
            }
        }
        return size;
    }

    /// <summary>a ranks below b: lighter, or as heavy with a higher index.</summary>
    private static bool Weaker(ReadOnlySpan<float> w, int a, int b) => w[a] < w[b] || (w[a] == w[b] && a > b);

    /// <summary>Orders tokens by descending weight, ties by ascending index: one sort of (weight, index) packed into a long,
    /// since the bit patterns of non-negative floats order like the floats.</summary>
    private static void SortDescending(ReadOnlySpan<float> w, Span<int> tokens)
    {
        var keys = new long[tokens.Length];
        for (int i = 0; i < tokens.Length; i++)
            keys[i] = ((long)(int.MaxValue - BitConverter.SingleToInt32Bits(w[tokens[i]])) << 32) | (uint)tokens[i];
        Array.Sort(keys);
        for (int i = 0; i < tokens.Length; i++) tokens[i] = (int)(keys[i] & 0xFFFFFFFF);
    }

    /// <summary>Inverse-CDF draw among <paramref name="tokens"/> (ascending) with weights w; one uniform from the generator.</summary>
    private static int Draw(ReadOnlySpan<float> w, ReadOnlySpan<int> tokens, Rng rng)
    {
        double total = 0;
        foreach (int t in tokens) total += w[t];
        double r = rng.NextDouble() * total, acc = 0;
        int last = tokens[0];
        foreach (int t in tokens)
        {
            if (w[t] <= 0) continue;
            acc += w[t];
            last = t;
            if (r < acc) return t;
        }
        return last; // r landed in the rounding gap at the very top: the last positive weight owns it
    }

    private static int DrawAll(ReadOnlySpan<float> w, Rng rng)
    {
        double total = 0;
        foreach (float x in w) total += x;
        double r = rng.NextDouble() * total, acc = 0;
        int last = 0;
        for (int v = 0; v < w.Length; v++)
        {
            if (w[v] <= 0) continue;
            acc += w[v];
            last = v;
            if (r < acc) return v;
        }
        return last;
    }
}
