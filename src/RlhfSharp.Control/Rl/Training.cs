// What the control trainers (PpoTrainer, ReinforceTrainer) are given besides their configuration, what they report while
// they run, and what they return. With a run folder they keep the run contract themselves (docs/runs.md): config.json's
// "trainer" section, metrics.jsonl and TensorBoard, checkpoints that resume bit-identically, policy/ at the end.
using RlhfSharp.Runs;

namespace RlhfSharp.Control.Rl;

/// <summary>Where a control trainer keeps its run and reports.</summary>
/// <param name="Run">
/// The run folder: the config goes into config.json's "trainer" section, one metrics row per update into metrics.jsonl and
/// TensorBoard, checkpoints every CheckpointInterval updates, on cancellation and at the end, the policy into RUN/policy;
/// when opened to resume, training continues from its latest checkpoint. Null trains in memory only.
/// </param>
/// <param name="Progress">A report after each update.</param>
/// <param name="OnMetrics">Each logged row, as it is logged.</param>
public sealed record TrainOptions(RunDirectory? Run = null, IProgress<TrainProgress>? Progress = null, Action<MetricsRow>? OnMetrics = null)
{
    /// <summary>A callback as an IProgress that reports synchronously (System.Progress posts to the thread pool).</summary>
    public static IProgress<TrainProgress>? ProgressOf(Action<TrainProgress>? report) => report is null ? null : new CallbackProgress(report);

    private sealed class CallbackProgress(Action<TrainProgress> report) : IProgress<TrainProgress>
    {
        public void Report(TrainProgress value) => report(value);
    }
}

/// <summary>Where training is, for a progress display: environment steps done, the budget, and the mean of the last 20 episode returns.</summary>
public sealed record TrainProgress(long GlobalStep, long TotalSteps, double? RecentReturn);

/// <summary>A trained agent and how training went.</summary>
/// <param name="Policy">The agent (as trained so far when cancelled).</param>
/// <param name="Metrics">The rows logged by this call (a resumed run's earlier rows are in its metrics.jsonl).</param>
/// <param name="WallSeconds">Wall time of this call.</param>
/// <param name="StepsPerSecond">Environment steps per second in this call.</param>
/// <param name="Steps">Environment steps done in all, over every copy (a resumed run counts the steps before it).</param>
/// <param name="Cancelled">True when the trainer stopped on its cancellation token, after writing a checkpoint.</param>
public sealed record TrainResult(ControlPolicy Policy, IReadOnlyList<MetricsRow> Metrics, double WallSeconds, double StepsPerSecond, long Steps, bool Cancelled = false);
