// Turns a wall-clock budget into step counts, once, on the machine at hand, so that the comparison itself is reproducible:
// the plan (steps per method × task) goes into the run's config.json, and a resumed run or `--plan FILE` replays those
// steps anywhere with the same bits. For each method × task the calibration times a whole run (setup included) of 1 step,
// t₁, and of 1 + k steps, t₁₊ₖ (after one untimed step per method, so the JIT's first compilation is in neither); then
//   seconds per step  p = (t₁₊ₖ − t₁) / k          (if timing noise makes this ≤ 0: p = t₁₊ₖ / (1 + k))
//   fixed overhead    o = max(0, t₁ − p)           (model copies, reference log-probs, a value head…)
//   steps             n = clamp(⌊(S − o) / p⌋, 1, max_steps)
// so a method's run of n steps takes about the budget S. Best-of-N's "step" is one more sample per held-out prompt (N),
// expert iteration's one round.
using System.Text.Json.Serialization;

namespace RlhfSharp.Alignment.Comparison;

/// <summary>One method × task of the plan: its steps, and the timings they came from (null when the steps were given).</summary>
public sealed record PlanEntry(
    [property: JsonPropertyName("task")] string Task,
    [property: JsonPropertyName("method")] string Method,
    [property: JsonPropertyName("steps")] int Steps,
    [property: JsonPropertyName("seconds_per_step")] double? SecondsPerStep = null,
    [property: JsonPropertyName("overhead_seconds")] double? OverheadSeconds = null,
    [property: JsonPropertyName("calibration_seconds")] double[]? CalibrationSeconds = null);

/// <summary>The steps every method × task runs; <paramref name="BudgetSeconds"/> is 0 when the steps were given, not calibrated.</summary>
public sealed record ComparisonPlan(
    [property: JsonPropertyName("budget_seconds")] double BudgetSeconds,
    [property: JsonPropertyName("entries")] IReadOnlyList<PlanEntry> Entries)
{
    /// <summary>The entry of <paramref name="task"/> × <paramref name="method"/>, or an error naming what the plan lacks.</summary>
    public PlanEntry For(string task, string method) =>
        Entries.FirstOrDefault(e => e.Task == task && e.Method == method)
        ?? throw new ArgumentException($"comparison plan: no entry for method {method} on task {task} (the plan has {string.Join(", ", Entries.Select(e => $"{e.Task}/{e.Method}"))}).");
}

public static class ComparisonPlanner
{
    /// <summary>
    /// Steps that fit <paramref name="budgetSeconds"/> given a 1-step run of <paramref name="secondsOne"/> and a
    /// (1 + <paramref name="k"/>)-step run of <paramref name="secondsMany"/> seconds, clamped to 1..<paramref name="maxSteps"/>
    /// (see the file header); returns the step count with the seconds per step and overhead it used.
    /// </summary>
    public static PlanEntry Plan(string task, string method, double budgetSeconds, int k, double secondsOne, double secondsMany, int maxSteps)
    {
        if (k < 1) throw new ArgumentException($"planner: k = {k} must be ≥ 1.");
        if (maxSteps < 1) throw new ArgumentException($"planner: max steps {maxSteps} must be ≥ 1.");
        if (!(budgetSeconds > 0) || !double.IsFinite(budgetSeconds)) throw new ArgumentException($"planner: budget {budgetSeconds} s must be a positive finite number.");
        if (!(secondsOne >= 0 && secondsMany > 0) || !double.IsFinite(secondsOne) || !double.IsFinite(secondsMany))
            throw new ArgumentException($"planner: timings {secondsOne} s (1 step) and {secondsMany} s ({1 + k} steps) must be finite, the second positive.");
        double perStep = (secondsMany - secondsOne) / k;
        if (perStep <= 0) perStep = secondsMany / (1 + k);
        double overhead = Math.Max(0, secondsOne - perStep);
        double fit = Math.Floor((budgetSeconds - overhead) / perStep);
        int steps = (int)Math.Clamp(fit, 1, maxSteps);
        return new PlanEntry(task, method, steps, perStep, overhead, [secondsOne, secondsMany]);
    }
}
