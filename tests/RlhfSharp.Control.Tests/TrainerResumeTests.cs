// The control trainers' run contract in the library: a run stopped through its cancellation token (a checkpoint is
// written), resumed from its run folder, stopped again, and resumed after losing its newest checkpoint (as a kill -9
// between checkpoints would) ends with the parameters and metrics (timing fields aside) of an uninterrupted run, bit for
// bit — for the clipped and the KL-penalty PPO, the Gaussian actor with both normalisers, and REINFORCE.
using RlhfSharp.Control.Rl;
using RlhfSharp.Runs;

namespace RlhfSharp.Control.Tests;

public sealed class TrainerResumeTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("control-resume-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<string> Trainers => ["ppo CartPole-v1", "ppo-penalty CartPole-v1", "ppo Pendulum-v1", "reinforce CartPole-v1"];

    /// <summary>A short run of <paramref name="trainer"/> ("ALGO ENV") in <paramref name="run"/>, cancelled after <paramref name="stopAfter"/> updates when given.</summary>
    private static TrainResult Train(string trainer, RunDirectory run, int? stopAfter)
    {
        var (algo, env) = (trainer.Split(' ')[0], trainer.Split(' ')[1]);
        using var cts = new CancellationTokenSource();
        int reports = 0;
        var options = new TrainOptions(run, TrainOptions.ProgressOf(_ => { if (++reports == stopAfter) cts.Cancel(); }));
        if (algo == "reinforce")
            return ReinforceTrainer.Train(new ReinforceConfig { EnvId = env, Seed = 4, TotalSteps = 2500, EpisodesPerBatch = 4, CheckpointInterval = 2 }, options, cts.Token);
        var cfg = PpoConfig.ForEnv(env) with { Seed = 4, KlPenalty = algo == "ppo-penalty", CheckpointInterval = 2 };
        cfg = env == "Pendulum-v1" ? cfg with { NumSteps = 128, NumMinibatches = 4, UpdateEpochs = 2, TotalSteps = 8 * 512 } : cfg with { TotalSteps = 8 * 256 };
        return PpoTrainer.Train(cfg, options, cts.Token);
    }

    /// <summary>metrics.jsonl without its timing fields, one line per row: the step and each value's bits, in file order.</summary>
    private static List<string> Metrics(string run) =>
        [.. MetricsWriter.ReadAll(Path.Combine(run, RunDirectory.MetricsFileName)).Select(r => $"{r.Step}: " + string.Join(", ", r.Values
            .Where(kv => kv.Key != MetricKeys.StepsPerSecond && !kv.Key.StartsWith("perf/", StringComparison.Ordinal))
            .Select(kv => $"{kv.Key}={BitConverter.DoubleToInt64Bits(kv.Value):x}")))];

    [Theory]
    [MemberData(nameof(Trainers))]
    public void StoppedResumedAndKilledBetweenCheckpoints_EqualsAnUninterruptedRun(string trainer)
    {
        string straightPath = Path.Combine(_dir, "straight"), stoppedPath = Path.Combine(_dir, "stopped");
        TrainResult straight;
        using (var run = RunDirectory.Open(straightPath, resume: false)) straight = Train(trainer, run, stopAfter: null);
        Assert.False(straight.Cancelled);

        // Stopped after the 3rd update (a checkpoint on cancellation, beside the one of update 2).
        using (var run = RunDirectory.Open(stoppedPath, resume: false))
        {
            var first = Train(trainer, run, stopAfter: 3);
            Assert.True(first.Cancelled);
            Assert.Equal(first.Steps, run.LatestCheckpoint()!.Step);
            Assert.False(Directory.Exists(Path.Combine(stoppedPath, "policy")), "a stopped run writes no policy folder");
        }
        // Resumed, stopped again two updates later; then the newest checkpoint is lost, as if the process had been killed
        // just before writing it, so the last resume replays updates whose metrics are already in metrics.jsonl.
        using (var run = RunDirectory.Open(stoppedPath, resume: true))
        {
            var second = Train(trainer, run, stopAfter: 2);
            Assert.True(second.Cancelled);
            Assert.Equal(2, second.Metrics.Count);
            Directory.Delete(run.LatestCheckpoint()!.Path, recursive: true);
        }
        TrainResult resumed;
        using (var run = RunDirectory.Open(stoppedPath, resume: true)) resumed = Train(trainer, run, stopAfter: null);

        Assert.False(resumed.Cancelled);
        Assert.Equal(straight.Steps, resumed.Steps);
        var expected = straight.Policy.Agent.StateDict();
        foreach (var (name, actual) in resumed.Policy.Agent.StateDict())
            Assert.True(expected[name].ToArray().SequenceEqual(actual.ToArray()), $"{trainer}: {name} differs from the uninterrupted run");
        Assert.Equal(Metrics(straightPath), Metrics(stoppedPath));
        // The policy folder of the run is the final policy.
        var saved = ControlPolicy.Load(Path.Combine(stoppedPath, "policy"));
        Assert.Equal(straight.Policy.Agent.ActorParameters.Values, saved.Agent.ActorParameters.Values);
        Assert.Equal(straight.Policy.Normalization?.Observation?.Mean, saved.Normalization?.Observation?.Mean);
    }

    [Fact]
    public void ARunFolder_HoldsTheConfigMetricsAndCheckpointsOfTheContract()
    {
        string path = Path.Combine(_dir, "contract");
        using (var run = RunDirectory.Open(path, resume: false)) Train("ppo CartPole-v1", run, stopAfter: null);
        using var reopened = RunDirectory.Open(path, resume: true);
        var config = reopened.ReadConfig<PpoConfig>();
        Assert.Equal(PpoConfig.ForEnv("CartPole-v1") with { Seed = 4, CheckpointInterval = 2, TotalSteps = 2048, Hidden = config.Hidden }, config);
        Assert.Equal([64, 64], config.Hidden);
        // Every 2 updates (256 steps each) but not at the last, which the end writes.
        Assert.Equal([512L, 1024, 1536, 2048], reopened.Checkpoints().Select(c => c.Step));
        Assert.Equal(8, Metrics(path).Count);
        Assert.All(Metrics(path), row => Assert.Contains(MetricKeys.ControlPolicyLoss + "=", row));
    }
}
