// Continuous batching for `rlhf serve`: one thread owns the model and runs decode steps; between two steps it admits
// waiting sequences into the running batch (their prompts are prefilled in the same step as everyone else's next token)
// and retires the ones that finished (end-of-text, a stop string, max_tokens, or a client that went away). Each sequence
// has its own KV cache, position, sampling options, random stream and stop conditions, so what it draws depends on its
// own logits and its own Rng only: the same seeded request gives the same text alone or in a batch (BatchDecoder keeps
// each row's logits independent of the other rows).
// Log-probabilities are reported as the API does: log softmax of the raw logits (temperature 1), whatever the sampling
// temperature; top_logprobs are the k most likely tokens (ties to the lower id).
using System.Collections.Concurrent;
using RlhfSharp.Models;
using RlhfSharp.Tensors;

namespace RlhfSharp.Web.Serving;

/// <summary>A token with its log-probability and, when asked, the most likely alternatives at that position.</summary>
internal readonly record struct TokenLogprob(int Token, float LogProb, (int Token, float LogProb)[]? Top);

/// <summary>One choice to generate: a prompt, its budget and sampling, and where its tokens go.</summary>
internal sealed class DecodeSequence
{
    public required int[] Prompt { get; init; }

    /// <summary>Tokens to make at most; 0 only scores the prompt (echo with max_tokens 0).</summary>
    public required int MaxNew { get; init; }

    public required GenerationOptions Sampling { get; init; }
    public required Rng Rng { get; init; }

    /// <summary>−1: no log-probabilities; 0: the chosen token's; k &gt; 0: also the k most likely tokens at each position.</summary>
    public int TopLogprobs { get; init; } = -1;

    /// <summary>Score the prompt too: the log-probability of each prompt token after the ones before it (echo).</summary>
    public bool PromptLogprobs { get; init; }

    /// <summary>Takes each drawn token (on the scheduler thread); false once the text is complete.</summary>
    public required Func<int, bool> OnToken { get; init; }

    public CancellationToken Cancellation { get; init; }

    /// <summary>The drawn tokens with their scores (when <see cref="TopLogprobs"/> ≥ 0).</summary>
    public List<TokenLogprob> Generated { get; } = [];

    /// <summary>Scores of prompt tokens 1.. (token 0 has no context, so none), when <see cref="PromptLogprobs"/>.</summary>
    public List<TokenLogprob> PromptScores { get; } = [];

    /// <summary>Tokens drawn so far.</summary>
    public int Made { get; private set; }

    internal TaskCompletionSource Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    internal SequenceCache? Cache { get; set; }
    internal int Next { get; set; }

    internal void Took() => Made++;
}

internal sealed class DecodeScheduler : IDisposable
{
    private readonly Gpt _model;
    private readonly int _maxBatch;
    private readonly Func<CancellationToken, Task>? _beforeAdmit;
    private readonly ConcurrentQueue<DecodeSequence> _waiting = new();
    private readonly SemaphoreSlim _signal = new(0);
    private readonly Thread _thread;
    private readonly TokenSampler _sampler;
    private readonly float[] _weights;
    private volatile bool _stopping;

    /// <param name="beforeAdmit">Tests only: awaited (on the scheduler thread) as a sequence joins the batch.</param>
    public DecodeScheduler(Gpt model, int maxBatch, Func<CancellationToken, Task>? beforeAdmit)
    {
        _model = model;
        _maxBatch = maxBatch;
        _beforeAdmit = beforeAdmit;
        _sampler = new TokenSampler(model.Config.VocabSize);
        _weights = new float[model.Config.VocabSize];
        // A thread of its own, not a pool thread: decoding is seconds of synchronous compute, and the request handlers
        // that stream its pieces must never starve for a pool thread behind it on a 2-core machine.
        _thread = new Thread(Run) { IsBackground = true, Name = "rlhf-serve-decode" };
        _thread.Start();
    }

    /// <summary>Sequences decoded together in the last step (for tests and the bench).</summary>
    public int LastBatch { get; private set; }

    /// <summary>Largest batch decoded so far.</summary>
    public int PeakBatch { get; private set; }

    /// <summary>Queues the sequence; the task ends when it is complete (or fails, or is cancelled).</summary>
    public Task Submit(DecodeSequence sequence)
    {
        if (_stopping) throw new ObjectDisposedException(nameof(DecodeScheduler), "the server is stopping.");
        _waiting.Enqueue(sequence);
        _signal.Release();
        return sequence.Done.Task;
    }

    public void Dispose()
    {
        _stopping = true;
        _signal.Release();
        _thread.Join(TimeSpan.FromSeconds(10));
        while (_waiting.TryDequeue(out var s)) s.Done.TrySetCanceled();
    }

    private void Run()
    {
        var active = new List<DecodeSequence>();
        while (!_stopping)
        {
            if (active.Count == 0 && _waiting.IsEmpty)
            {
                _signal.Wait();
                continue;
            }
            // Admit waiting sequences up to the batch limit: they join at this step boundary.
            var fresh = new List<DecodeSequence>();
            while (active.Count + fresh.Count < _maxBatch && _waiting.TryDequeue(out var s))
            {
                if (s.Cancellation.IsCancellationRequested)
                {
                    s.Done.TrySetCanceled(s.Cancellation);
                    continue;
                }
                try
                {
                    _beforeAdmit?.Invoke(s.Cancellation).GetAwaiter().GetResult();
                    s.Cache = new SequenceCache(_model.Config, s.Prompt.Length + Math.Max(s.MaxNew, 1));
                    fresh.Add(s);
                }
                catch (OperationCanceledException) when (s.Cancellation.IsCancellationRequested)
                {
                    s.Done.TrySetCanceled(s.Cancellation);
                }
                catch (Exception ex)
                {
                    s.Done.TrySetException(ex);
                }
            }
            var step = new List<DecodeSequence>(active.Count + fresh.Count);
            var items = new List<DecodeItem>(active.Count + fresh.Count);
            foreach (var s in active)
            {
                step.Add(s);
                items.Add(new DecodeItem(s.Cache!, [s.Next], false));
            }
            foreach (var s in fresh)
            {
                step.Add(s);
                items.Add(new DecodeItem(s.Cache!, s.Prompt, s.PromptLogprobs));
            }
            active.Clear();
            if (step.Count == 0) continue;
            LastBatch = step.Count;
            PeakBatch = Math.Max(PeakBatch, step.Count);
            float[][] logits;
            try
            {
                logits = BatchDecoder.Step(_model, items);
            }
            catch (Exception ex)
            {
                foreach (var s in step) s.Done.TrySetException(ex);
                continue;
            }
            int V = _model.Config.VocabSize;
            for (int i = 0; i < step.Count; i++)
            {
                var s = step[i];
                try
                {
                    if (s.Cancellation.IsCancellationRequested)
                    {
                        s.Done.TrySetCanceled(s.Cancellation);
                        continue;
                    }
                    var all = logits[i];
                    if (items[i].AllPositions)
                        for (int t = 0; t + 1 < s.Prompt.Length; t++)
                            s.PromptScores.Add(Score(all.AsSpan(t * V, V), s.Prompt[t + 1], s.TopLogprobs));
                    if (s.Made >= s.MaxNew)
                    {
                        s.Done.TrySetResult();
                        continue;
                    }
                    var row = all.AsSpan(all.Length - V, V);
                    int token = s.Sampling.Greedy ? _sampler.Greedy(row, 0).Token : _sampler.Sample(row, s.Sampling, s.Rng, 0).Token;
                    if (s.TopLogprobs >= 0) s.Generated.Add(Score(row, token, s.TopLogprobs));
                    else s.Generated.Add(new TokenLogprob(token, 0, null));
                    s.Took();
                    bool more = s.OnToken(token);
                    if (!more || token == s.Sampling.EosTokenId || s.Made >= s.MaxNew)
                    {
                        s.Done.TrySetResult();
                        continue;
                    }
                    s.Next = token;
                    active.Add(s);
                }
                catch (Exception ex)
                {
                    s.Done.TrySetException(ex);
                }
            }
        }
        foreach (var s in active) s.Done.TrySetCanceled();
    }

    /// <summary>log softmax(logits)[token], and the k most likely tokens with theirs (k ≤ 0: none).</summary>
    private TokenLogprob Score(ReadOnlySpan<float> logits, int token, int k)
    {
        float lse = TokenSampler.Weights(logits, 1f, _weights, 0);
        if (k <= 0) return new TokenLogprob(token, logits[token] - lse, k == 0 ? [] : null);
        k = Math.Min(k, logits.Length);
        // Selection of the k largest (k ≤ 20): insertion into a sorted list, ties to the lower id.
        var top = new int[k];
        int count = 0;
        for (int v = 0; v < logits.Length; v++)
        {
            if (count == k && logits[v] <= logits[top[k - 1]]) continue;
            int at = Math.Min(count, k - 1);
            while (at > 0 && logits[top[at - 1]] < logits[v])
            {
                top[at] = top[at - 1];
                at--;
            }
            top[at] = v;
            if (count < k) count++;
        }
        var listed = new (int Token, float LogProb)[k];
        for (int i = 0; i < k; i++) listed[i] = (top[i], logits[top[i]] - lse);
        return new TokenLogprob(token, logits[token] - lse, listed);
    }
}
