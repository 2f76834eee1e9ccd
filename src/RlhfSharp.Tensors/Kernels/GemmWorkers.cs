// Dedicated GEMM worker threads: the caller runs part 0 of a fixed split and each worker one other part.
// Parts are fixed by shape and thread count (GemmPlan.Part), so who runs them never changes the result.
// The same workers run ParallelChunks' loops (layer norm, GELU, attention, AdamW, ...): a training step alternates
// GEMMs with those kernels hundreds of times, and with a second pool (the .NET thread pool behind Parallel.For) two
// sets of threads took turns spinning and waking on the same two cores. One pool hands off to a thread that is
// already spinning from the previous kernel.
using System.Runtime.ExceptionServices;

namespace RlhfSharp.Tensors.Kernels;

internal static class GemmWorkers
{
    // 1 while a caller owns the workers. Not a Monitor: a Monitor is re-entrant, and a chunk body that runs a GEMM on
    // the owning thread must find the workers busy (and run its parts itself), not hand them a second job.
    private static int _busy;
    private static GemmWorker[] _workers = [];
    private static GemmPlan _plan;
    private static Action<int, int>? _body;
    private static int _count;
    private static int _parts;

    /// <summary>Runs every part of <paramref name="plan"/> split <paramref name="parts"/> ways, returning when all are done.</summary>
    public static void Run(in GemmPlan plan, int parts)
    {
        // A concurrent caller (another test, another model) finds the workers busy and runs its parts itself:
        // same parts, same bits, just slower.
        if (parts == 1 || Interlocked.CompareExchange(ref _busy, 1, 0) != 0)
        {
            for (int part = 0; part < parts; part++) RunOne(plan, part, parts);
            return;
        }
        _plan = plan;
        _body = null;
        RunOwned(parts);
    }

    /// <summary>
    /// ParallelChunks.For on the workers: body(start, end) for the chunks [count·c/parts, count·(c+1)/parts), chunk 0 on
    /// the calling thread. False (nothing run) when the workers are busy; the caller then runs the same chunks elsewhere.
    /// </summary>
    public static bool TryRunChunks(int count, int parts, Action<int, int> body)
    {
        if (Interlocked.CompareExchange(ref _busy, 1, 0) != 0) return false;
        _plan = default;
        _body = body;
        _count = count;
        RunOwned(parts);
        return true;
    }

    /// <summary>Runs parts 0..parts-1 of the job in the statics (part 0 here) while owning the workers; releases them.</summary>
    private static void RunOwned(int parts)
    {
        try
        {
            if (_workers.Length < parts - 1)
            {
                var grown = new GemmWorker[parts - 1];
                Array.Copy(_workers, grown, _workers.Length);
                for (int i = _workers.Length; i < grown.Length; i++) grown[i] = new GemmWorker(i + 1);
                _workers = grown;
            }
            _parts = parts;
            for (int w = 0; w < parts - 1; w++) _workers[w].Start(w + 1);
            Exception? error = null;
            try
            {
                RunJob(0);
            }
            finally
            {
                // Workers read _plan until they report done, so wait for all of them even when part 0 failed.
                for (int w = 0; w < parts - 1; w++) error ??= _workers[w].WaitDone();
            }
            if (error is not null)
            {
                // A chunk body's exception keeps its type, as it would on the calling thread.
                if (_body is not null) ExceptionDispatchInfo.Throw(error);
                throw new InvalidOperationException($"gemm: a worker thread failed: {error.Message}", error);
            }
        }
        finally
        {
            _body = null;
            Volatile.Write(ref _busy, 0);
        }
    }

    /// <summary>Part <paramref name="part"/> of the current job: a chunk of the body's loop, or a rectangle of the plan.</summary>
    private static void RunJob(int part)
    {
        if (_body is { } body)
        {
            int start = (int)((long)_count * part / _parts), end = (int)((long)_count * (part + 1) / _parts);
            if (end > start) body(start, end);
        }
        else
        {
            RunOne(_plan, part, _parts);
        }
    }

    private static void RunOne(in GemmPlan plan, int part, int parts)
    {
        var (r0, r1, s0, s1) = plan.Part(part, parts);
        if (plan.Kind == GemmKind.Blocked) GemmBlocked.RunPart(plan, r0, r1, s0, s1);
        else GemmSkinny.RunPart(plan, r0, r1, s0, s1);
    }

    /// <summary>One background thread that waits for a part number, runs it against the shared plan, and signals.</summary>
    private sealed class GemmWorker
    {
        // Spin briefly before sleeping: back-to-back matmuls (a training step) hand off without a kernel wait.
        private const int SpinCount = 2000;
        private readonly ManualResetEventSlim _go = new(false, SpinCount);
        private readonly ManualResetEventSlim _done = new(false, SpinCount);
        private int _part;
        private Exception? _error;

        public GemmWorker(int index)
        {
            var thread = new Thread(Loop) { IsBackground = true, Name = $"gemm worker {index}" };
            thread.Start();
        }

        public void Start(int part)
        {
            _part = part;
            _error = null;
            _done.Reset();
            _go.Set();
        }

        public Exception? WaitDone()
        {
            _done.Wait();
            return _error;
        }

        private void Loop()
        {
            while (true)
            {
                _go.Wait();
                _go.Reset();
                try
                {
                    RunJob(_part);
                }
                catch (Exception ex)
                {
                    _error = ex;
                }
                _done.Set();
            }
        }
    }
}
