// Over-optimisation monitors (OverOptimisationMonitor). On the story world, β = 0 PPO against a hackable proxy (mean
// lexicon sentiment over every word: what a reward model learns first, without the gold scorer's grammar and repeat
// penalties) lowers the held-out gold while the proxy rises; the monitor stops the run before gold has fallen 0.1 from
// its peak and best/ holds the peak's policy. Monitors never change the training bits of PPO, RLOO, GRPO or online DPO,
// and a stopped run leaves best/, monitor.jsonl and monitor/* metrics that `rlhf report` shows.
using RlhfSharp.Alignment.Dpo;
using RlhfSharp.Alignment.Evaluation;
using RlhfSharp.Alignment.Grpo;
using RlhfSharp.Alignment.Ppo;
using RlhfSharp.Models;
using RlhfSharp.Runs;
using RlhfSharp.Runs.Reports;
using RlhfSharp.Text;
using RlhfSharp.Text.StoryWorld;
using Xunit.Abstractions;

namespace RlhfSharp.Alignment.Tests;

public sealed class OverOptimisationMonitorTests(ITestOutputHelper output)
{
    private static readonly ITokenizer Chars = CharTokenizer.FromCorpus("abcdefghijklmnopqrstuvwxyz .,!?");
    private static readonly string[] Prompts = ["the cat", "a dog", "one day", "we saw"];
    private static readonly Func<string, string, double> CountA = (_, r) => r.Count(c => c == 'a') / 4.0;

    private static Gpt TinySft() => TinyStoryModel.Random(Chars.VocabSize, 3) is var g ? Gpt.FromTensors(g.Config with { EosTokenId = Chars.EosId }, g.ToTensors()) : null!;

    // The proxy: mean lexicon sentiment over every word, with none of the gold scorer's grammar and repeat penalties.
    private static double BagOfWords(string prompt, string response)
    {
        var words = response.ToLowerInvariant().Split([' ', '.', ',', '!', '?'], StringSplitOptions.RemoveEmptyEntries);
        return words.Length == 0 ? -0.5 : words.Sum(w => Lexicon.Sentiment(w) ?? 0) / words.Length;
    }

    private static readonly Func<string, string, double> Gold = (p, r) => Stories.GoldReward(r, p);

    // Seeds 1, 2, 3 (lr 2e-4, 48 held-out prompts, every step): peak gold −0.127 (step 2), −0.150 (step 0), −0.150 (step 0);
    // the monitor stopped at step 4 (gold_fall, gold −0.156), 2 (gold_fall and gold_drop, −0.233), 1 (gold_drop, −0.241):
    // fallen 0.029, 0.083, 0.091 from the peak; best/ kept the peak itself. Left running (warn only), gold went on falling to
    // −0.43, −0.37, −0.44 by step 16 while the proxy rose. 3.1, 2.4, 0.7 s at load 25 (after the shared model).
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Given_beta_zero_PPO_on_the_story_world_When_gold_falls_Then_the_monitor_stops_before_a_fall_of_0_1_and_keeps_the_peak(int seed)
    {
        var s = TinyStoryModel.Get();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var config = new PpoConfig
        {
            Steps = 16, BatchSize = 16, MiniBatchSize = 8, Epochs = 4, MaxNewTokens = 24, LearningRate = 2e-4f, InitialKlCoef = 0, TargetKl = null, Seed = (ulong)seed,
        };
        var monitorConfig = new MonitorConfig
        {
            Every = 1, Prompts = 48, GoldFallEvaluations = 2, OnGoldFall = MonitorAction.Stop, GoldDrop = 0.05, OnGoldDrop = MonitorAction.Stop, BestBy = MonitorQuantity.Gold,
        };
        var heldOut = Stories.Prompts(99, 48);
        var proxy = new FunctionReward(BagOfWords);
        var monitor = new OverOptimisationMonitor(monitorConfig, s.Tokenizer, heldOut, proxy, config.MaxNewTokens, gold: Gold);
        var result = new PpoTrainer(config).Train(s.Model, s.Tokenizer, Stories.Prompts(31, 200), proxy, options: new PpoTrainer.Options(Monitor: monitor));
        foreach (var e in monitor.Evaluations) output.WriteLine($"step {e.Step}: gold {e.Gold:F3} proxy {e.Proxy:F3} KL {e.Kl:F2} length {e.MeanLength:F1}");
        foreach (var e in monitor.Events) output.WriteLine(e.ToString());

        // It stopped, after the step it fired at, and said so in the metrics.
        Assert.NotNull(monitor.StoppedAt);
        Assert.Equal(monitor.StoppedAt, result.Steps);
        Assert.True(result.Steps < config.Steps, $"stopped at {result.Steps} of {config.Steps}");
        Assert.Equal(1, result.History[^1][MetricKeys.MonitorStopped]);
        Assert.Contains(monitor.Events, e => e.Step == result.Steps && e.Action == "stop");

        double peak = monitor.Evaluations.Max(e => e.Gold);
        double atFiring = monitor.Evaluations.Single(e => e.Step == monitor.StoppedAt).Gold;
        output.WriteLine($"seed {seed}: peak {peak:F3}, at firing (step {monitor.StoppedAt}) {atFiring:F3}, best kept {monitor.Best!.Value:F3} (step {monitor.Best.Step}); {watch.Elapsed.TotalSeconds:F1} s after the shared model (built in {s.BuildTime.TotalSeconds:F0} s)");
        Assert.True(peak - atFiring < 0.1, $"gold fell {peak - atFiring:F3} from its peak {peak:F3} before the monitor fired (seed {seed})");
        Assert.True(peak - monitor.Best.Value <= 0.02, $"best kept {monitor.Best.Value:F3} vs peak {peak:F3} (seed {seed})");

        // The kept weights are the peak's: a fresh monitor on the same prompts and seed scores BestPolicy at the kept value.
        var check = new OverOptimisationMonitor(monitorConfig with { OnGoldFall = MonitorAction.Off, GoldDrop = 0 }, s.Tokenizer, heldOut, proxy, config.MaxNewTokens, gold: Gold);
        check.AfterStep(1, monitor.BestPolicy!, s.Model, new Dictionary<string, double>());
        Assert.Equal(monitor.Best.Value, check.Evaluations[^1].Gold, 12);
    }

    public static TheoryData<string> Trainers => ["ppo", "rloo", "grpo", "online-dpo"];

    [Theory]
    [MemberData(nameof(Trainers))]
    public void Given_a_monitor_that_only_warns_When_a_trainer_runs_Then_its_weights_and_training_metrics_are_unchanged(string trainer)
    {
        var sft = TinySft();
        var proxy = new FunctionReward(CountA);
        (Gpt Policy, IReadOnlyList<IReadOnlyDictionary<string, double>> History) Run(ITrainingMonitor? monitor) => trainer switch
        {
            "ppo" or "rloo" => new PpoTrainer(new PpoConfig
            {
                Algorithm = trainer == "rloo" ? PolicyAlgorithm.Rloo : PolicyAlgorithm.Ppo, Steps = 3, BatchSize = 8, MiniBatchSize = 4, Epochs = 2, MaxNewTokens = 6,
                LearningRate = 1e-3f, RlooSamples = 2, InitialKlCoef = 0, TargetKl = null, Seed = 5,
            }).Train(sft, Chars, Prompts, proxy, options: new PpoTrainer.Options(Monitor: monitor)) is var r ? (r.Policy, r.History) : default,
            "grpo" => new GrpoTrainer(new GrpoConfig { Steps = 3, BatchSize = 8, NumGenerations = 4, MiniBatchSize = 4, MaxNewTokens = 6, LearningRate = 1e-3f, Seed = 5 })
                .Train(sft, Chars, Prompts, proxy, new GrpoTrainer.Options(Monitor: monitor)) is var g ? (g.Policy, g.History) : default,
            _ => new OnlineDpoTrainer(new OnlineDpoConfig { Steps = 3, BatchSize = 4, MaxNewTokens = 6, LearningRate = 1e-3f, Seed = 5 })
                .Train(sft, Chars, Prompts, proxy, new OnlineDpoTrainer.Options(Monitor: monitor)) is var d ? (d.Policy, d.History) : default,
        };
        var plain = Run(null);
        var config = new MonitorConfig { Every = 1, Prompts = 4, OnGoldFall = MonitorAction.Warn, GoldDrop = 1e-9, OnGoldDrop = MonitorAction.Warn, KlSpikeWindow = 1, KlSpikeMinNats = 0 };
        var monitor = new OverOptimisationMonitor(config, Chars, ["it was", "she said"], proxy, 6, gold: (p, r) => -CountA(p, r));
        var watched = Run(monitor);

        Assert.Equal(plain.Policy.Parameters, watched.Policy.Parameters);
        Assert.Equal(plain.History.Count, watched.History.Count);
        for (int i = 0; i < plain.History.Count; i++)
            foreach (var (key, value) in plain.History[i])
                if (!key.StartsWith("time/", StringComparison.Ordinal) && !key.StartsWith("perf/", StringComparison.Ordinal))
                    Assert.Equal(value, watched.History[i][key]);
        // Every step carries the held-out figures (gold here is −proxy, so both are logged).
        Assert.All(watched.History, m =>
        {
            foreach (var key in new[] { MetricKeys.MonitorGold, MetricKeys.MonitorProxy, MetricKeys.MonitorKl, MetricKeys.MonitorMeanLength, MetricKeys.MonitorMissingEos,
                MetricKeys.MonitorDistinct1, MetricKeys.MonitorDistinct2, MetricKeys.MonitorBest, MetricKeys.MonitorBestStep })
                Assert.True(m.ContainsKey(key), $"{trainer}: {key} missing");
            Assert.False(m.ContainsKey(MetricKeys.MonitorDisagreement)); // one reward, no ensemble: skipped, not faked
        });
        Assert.Equal(4, monitor.Evaluations.Count); // step 0 (the reference) and steps 1..3
        Assert.Equal(0, monitor.Evaluations[0].Kl, 3);
    }

    [Fact]
    public void Given_a_kl_spike_rule_set_to_stop_When_KL_jumps_between_evaluations_Then_the_run_stops_at_that_step()
    {
        // Evaluations every 100 steps (only the step-0 one happens): the rule reads the trainer's own objective/kl each
        // step. Step 1's rollouts come from the reference itself (KL exactly 0); batch KL then went −0.065 (below 0: no
        // spike) and 0.173 at step 3, more than 1.5 × the previous value (counted as 0) and 0.01 nats above it: stop.
        var config = new MonitorConfig { Every = 100, Prompts = 2, OnGoldFall = MonitorAction.Off, KlSpikeWindow = 1, KlSpikeFactor = 1.5, KlSpikeMinNats = 0.01, OnKlSpike = MonitorAction.Stop };
        var monitor = new OverOptimisationMonitor(config, Chars, ["it was", "she said"], new FunctionReward(CountA), 6);
        var ppo = new PpoConfig { Steps = 8, BatchSize = 8, MiniBatchSize = 4, Epochs = 2, MaxNewTokens = 6, LearningRate = 3e-3f, InitialKlCoef = 0, TargetKl = null, Seed = 5 };
        var result = new PpoTrainer(ppo).Train(TinySft(), Chars, Prompts, new FunctionReward(CountA), options: new PpoTrainer.Options(Monitor: monitor));
        output.WriteLine(string.Join("\n", result.History.Select(m => m[MetricKeys.Kl].ToString("F4", System.Globalization.CultureInfo.InvariantCulture))));

        Assert.Equal(0, result.History[0][MetricKeys.Kl]);
        var fired = Assert.Single(monitor.Events);
        Assert.Equal((OverOptimisationMonitor.KlSpike, "stop"), (fired.Rule, fired.Action));
        Assert.Equal(monitor.StoppedAt, result.Steps);
        Assert.Equal(fired.Step, result.Steps);
        Assert.True(result.History[^1][MetricKeys.Kl] > 0.01 && result.History.SkipLast(1).All(m => m[MetricKeys.Kl] <= 0.01), "the stop came at the first KL above 0.01");
        Assert.True(result.Steps < ppo.Steps, $"stopped at {result.Steps}");
        Assert.Equal(1, result.History[^1][MetricKeys.MonitorStopped]);
        Assert.Equal(2, result.History[^1][MetricKeys.MonitorFiredPrefix + OverOptimisationMonitor.KlSpike]);
        Assert.False(result.History[^1].ContainsKey(MetricKeys.MonitorProxy)); // no evaluation at that step
    }

    [Fact]
    public void Given_a_run_folder_When_a_rule_stops_PPO_Then_best_monitor_jsonl_metrics_and_the_report_say_so()
    {
        using var tmp = new TempDirectory();
        var sft = TinySft();
        var proxy = new FunctionReward(CountA);
        using var run = RunDirectory.Open(Path.Combine(tmp.Path, "run"), resume: false);
        // Gold is the proxy's negative, so as PPO raises the proxy gold falls; a drop of any size stops the run.
        var config = new MonitorConfig { Every = 1, Prompts = 4, GoldDrop = 1e-9, OnGoldDrop = MonitorAction.Stop };
        var monitor = new OverOptimisationMonitor(config, Chars, ["it was", "she said", "one day", "the cat"], proxy, 6, gold: (p, r) => -CountA(p, r), runPath: run.Path);
        var ppo = new PpoConfig { Steps = 12, BatchSize = 8, MiniBatchSize = 4, Epochs = 2, MaxNewTokens = 6, LearningRate = 3e-3f, InitialKlCoef = 0, TargetKl = null, Seed = 5 };
        var result = new PpoTrainer(ppo).Train(sft, Chars, Prompts, proxy, options: new PpoTrainer.Options(Run: run, Monitor: monitor));
        output.WriteLine(string.Join("\n", monitor.Events));

        Assert.NotNull(monitor.StoppedAt);
        Assert.Equal(monitor.StoppedAt, result.Steps);
        var events = MonitorEvents.Read(run.Path);
        Assert.Equal(monitor.Events, events);
        Assert.Equal("stop", events[^1].Action);
        Assert.Equal(OverOptimisationMonitor.GoldDropRule, events[^1].Rule);
        var best = MonitorEvents.ReadBest(run.Path)!;
        Assert.Equal(monitor.Best, best);
        Assert.True(best.Step < result.Steps, $"best step {best.Step}, stopped at {result.Steps}");
        var kept = Gpt.Load(Path.Combine(run.Path, MonitorEvents.BestFolderName));
        var check = new OverOptimisationMonitor(config with { GoldDrop = 0 }, Chars, ["it was", "she said", "one day", "the cat"], proxy, 6, gold: (p, r) => -CountA(p, r));
        check.AfterStep(1, kept, sft, new Dictionary<string, double>());
        Assert.Equal(best.Value, check.Evaluations[^1].Gold, 12);
        var last = MetricsWriter.ReadAll(Path.Combine(run.Path, RunDirectory.MetricsFileName))[^1];
        Assert.Equal(result.Steps, last.Step);
        Assert.Equal(2, last.Values[MetricKeys.MonitorFiredPrefix + OverOptimisationMonitor.GoldDropRule]);
        Assert.Equal(1, last.Values[MetricKeys.MonitorStopped]);

        string html = File.ReadAllText(RunReport.Write(run.Path));
        Assert.Contains("id=\"monitors\"", html);
        Assert.Contains(OverOptimisationMonitor.GoldDropRule, html);
        Assert.Contains("stopped the run", html);
    }
}
