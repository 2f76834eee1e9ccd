// Dedicated GEMM worker threads: the caller runs part 0 of a fixed split and each worker one other part.
// Parts are fixed by shape and thread count (GemmPlan.Part), so who runs them never changes the result.
namespace RlhfSharp.Tensors.Kernels;

internal static class GemmWorkers
{
    private static readonly object Gate = new();
    private static GemmWorker[] _workers = [];
    private static GemmPlan _plan;
    private static int _parts;

    /// <summary>Runs every part of <paramref name="plan"/> split <paramref name="parts"/> ways, returning when all are done.</summary>
    public static void Run(in GemmPlan plan, int parts)
    {
        // A concurrent caller (another test, another model) finds the workers busy and runs its parts itself:
        // same parts, same bits, just slower.
        if (parts == 1 || !Monitor.TryEnter(Gate))
        {
            for (int part = 0; part < parts; part++) RunOne(plan, part, parts);
            return;
        }
        try
        {
            if (_workers.Length < parts - 1)
            {
                var grown = new GemmWorker[parts - 1];
                Array.Copy(_workers, grown, _workers.Length);
                for (int i = _workers.Length; i < grown.Length; i++) grown[i] = new GemmWorker(i + 1);
                _workers = grown;
            }
            _plan = plan;
            _parts = parts;
            for (int w = 0; w < parts - 1; w++) _workers[w].Start(w + 1);
            Exception? error = null;
            try
            {
                RunOne(plan, 0, parts);
            }
            finally
            {
                // Workers read _plan until they report done, so wait for all of them even when part 0 failed.
                for (int w = 0; w < parts - 1; w++) error ??= _workers[w].WaitDone();
            }
            if (error is not null) throw new InvalidOperationException($"gemm: a worker thread failed: {error.Message}", error);
        }
        finally
        {
            Monitor.Exit(Gate);
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
                    RunOne(_plan, _part, _parts);
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
