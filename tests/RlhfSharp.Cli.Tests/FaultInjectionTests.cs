// The fault-injection suite's short form (issue 17; the long form is `rlhf-faults`, tests/RlhfSharp.Faults): five
// trainers are interrupted twice at random moments — SIGKILL or SIGTERM, wherever the moment falls, start-up and the
// writing of outputs included — resumed from its run folder alone, and must end with an uninterrupted run's bits. The
// moments' seed is printed on failure; the moments differ from run to run, which is the point (the resume tests pin
// two fixed points per trainer).
using RlhfSharp.Faults;
using Xunit.Abstractions;

namespace RlhfSharp.Cli.Tests;

[Collection(ResumeCollection.Name)]
public sealed class FaultInjectionTests(ResumeChain chain, ITestOutputHelper output)
{
    // One trainer per loop the others share (the LM training loop, the reward trainer, LM PPO's rollouts, the Christiano
    // loop, GRPO's groups), to keep the suite short; `rlhf-faults` runs all of them.
    public static TheoryData<string> Trainers => ["pretrain", "reward", "ppo", "prefrl", "grpo"];

    [Theory]
    [MemberData(nameof(Trainers))]
    public void InterruptedAtRandomMomentsThenResumed_EndsWithTheUninterruptedBits(string trainer)
    {
        int seed = Environment.TickCount & 0x7fffffff;
        var outcome = FaultInjector.Run(chain.Dir, trainer, faults: 2, new Random(seed), $"short{seed}", output.WriteLine);
        output.WriteLine($"{trainer}: seed {seed}, {outcome.Kills} SIGKILL, {outcome.Terms} SIGTERM, {outcome.Resumes} resumes, {outcome.Restarts} restarts, {outcome.Seconds:F1} s");
        Assert.True(outcome.Matched, $"{trainer} (moments seed {seed}): {outcome.Mismatch}");
    }

    [Fact]
    public void LabelServe_KilledUnderLoad_LosesNoAcknowledgedJudgment()
    {
        int seed = Environment.TickCount & 0x7fffffff;
        var outcome = LabelServeFaults.Run(Path.Combine(chain.Dir, "label-serve"), kills: 3, labelers: 8, queries: 150, new Random(seed), output.WriteLine);
        output.WriteLine($"label-serve: seed {seed}, {outcome.Kills} SIGKILL, {outcome.Acknowledged} acknowledged, {outcome.Stored} stored, {outcome.Seconds:F1} s");
        Assert.True(outcome.Matched, $"label serve (moments seed {seed}): {outcome.Mismatch}");
        Assert.True(outcome.Kills > 0, "the server was never killed while labellers worked");
        Assert.Equal(150 * 2, outcome.Stored); // every query got its overlap of judgments in the end
    }
}
