// The comparison planner turns a 1-step and a (1 + k)-step timing into a step count as ComparisonPlanner's header says:
// p = (t₁₊ₖ − t₁)/k, o = max(0, t₁ − p), n = clamp(⌊(S − o)/p⌋, 1, max).
using RlhfSharp.Alignment.Comparison;

namespace RlhfSharp.Alignment.Tests;

public sealed class ComparisonPlannerTests
{
    [Fact]
    public void Given_a_one_step_and_a_three_step_timing_When_planning_Then_the_steps_fill_the_budget_after_the_overhead()
    {
        // p = (2.5 − 1.5)/2 = 0.5 s, o = 1.5 − 0.5 = 1 s, n = ⌊(10 − 1)/0.5⌋ = 18.
        var e = ComparisonPlanner.Plan("story", "grpo", budgetSeconds: 10, k: 2, secondsOne: 1.5, secondsMany: 2.5, maxSteps: 100);
        Assert.Equal(18, e.Steps);
        Assert.Equal(0.5, e.SecondsPerStep!.Value, 12);
        Assert.Equal(1.0, e.OverheadSeconds!.Value, 12);
        Assert.Equal([1.5, 2.5], e.CalibrationSeconds!);
    }

    [Fact]
    public void Given_noise_that_makes_more_steps_faster_When_planning_Then_the_average_of_the_longer_run_is_the_step_cost()
    {
        // t₃ < t₁: p = 2.4/3 = 0.8 s, o = 3 − 0.8 = 2.2 s, n = ⌊(10 − 2.2)/0.8⌋ = ⌊9.75⌋ = 9.
        var e = ComparisonPlanner.Plan("story", "ppo", 10, 2, secondsOne: 3, secondsMany: 2.4, maxSteps: 100);
        Assert.Equal(0.8, e.SecondsPerStep!.Value, 12);
        Assert.Equal(9, e.Steps);
    }

    [Fact]
    public void Given_budgets_beyond_either_end_When_planning_Then_the_steps_are_clamped_to_one_and_to_the_maximum()
    {
        Assert.Equal(1, ComparisonPlanner.Plan("t", "m", 0.5, 2, 2, 3, 100).Steps);      // the overhead alone exceeds the budget
        Assert.Equal(40, ComparisonPlanner.Plan("t", "m", 1000, 2, 0.1, 0.3, 40).Steps); // 9,999 steps would fit; max_steps is 40
        Assert.Throws<ArgumentException>(() => ComparisonPlanner.Plan("t", "m", 0, 2, 1, 2, 10));
        Assert.Throws<ArgumentException>(() => ComparisonPlanner.Plan("t", "m", 10, 0, 1, 2, 10));
    }

    [Fact]
    public void Given_a_plan_When_asked_for_a_pair_it_lacks_Then_the_error_names_the_pair()
    {
        var plan = new ComparisonPlan(10, [new PlanEntry("story", "grpo", 5)]);
        Assert.Equal(5, plan.For("story", "grpo").Steps);
        var e = Assert.Throws<ArgumentException>(() => plan.For("arithmetic", "dpo"));
        Assert.Contains("dpo", e.Message);
        Assert.Contains("arithmetic", e.Message);
    }
}
