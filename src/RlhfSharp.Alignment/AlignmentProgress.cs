// What every alignment trainer reports while it runs (the CLI draws a progress bar from it; the library never prints).
namespace RlhfSharp.Alignment;

/// <summary>One progress report.</summary>
/// <param name="Stage">What is running ("reward member 1/3", "ppo", "dpo", "normalise").</param>
/// <param name="Step">Steps done in this stage.</param>
/// <param name="TotalSteps">Steps this stage will take.</param>
/// <param name="Metrics">The latest metrics (the same keys as metrics.jsonl).</param>
public sealed record AlignmentProgress(string Stage, long Step, long TotalSteps, IReadOnlyDictionary<string, double> Metrics);
