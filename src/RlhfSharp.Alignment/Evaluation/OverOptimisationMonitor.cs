// Live over-optimisation monitors for every RL trainer (PPO, RLOO, REINFORCE, GRPO, online DPO): the signs of reward
// hacking Gao et al. (2022) measure after the fact, watched while the run goes, with rules that warn or stop it and the
// best checkpoint kept by the monitored quantity (TRL's load_best_model_at_end / metric_for_best_model).
// Every k steps, on a fixed set of held-out prompts (one response each, sampled from the monitor's own seed every time,
// so successive evaluations share their random numbers and the training RNG is never touched):
//   monitor/gold            mean gold reward (only when a gold scorer or judge is given)
//   monitor/proxy           mean proxy reward (the reward the run optimises)
//   monitor/disagreement    mean over prompts of the std of the ensemble members' scores (only with ≥ 2 reward models)
//   monitor/kl              mean Σ_t (log π − log π_ref) per response, nats (k1)
//   monitor/proxy_per_nat   (proxy_i − proxy_{i−W}) / (kl_i − kl_{i−W}) over the last W evaluations (when KL grew)
//   monitor/mean_length, monitor/missing_eos_rate, monitor/distinct_1, monitor/distinct_2
// Every step: monitor/kl_spike_ratio = KL / max(median(previous W KL values), 0), from the trainer's own batch KL
// (objective/kl, train/kl) or, when the trainer logs none, from the held-out KL at evaluations.
// Rules (each off, warn or stop; a firing is logged as monitor/fired/RULE = 1 warn, 2 stop, and a line of monitor.jsonl):
//   gold_fall        gold fell N evaluations running while the proxy rose over the same N
//   gold_drop        gold more than d below its best so far (off unless d > 0)
//   kl_spike         KL > factor × rolling median and KL − median > min nats
//   length_collapse  held-out mean length < fraction × the initial policy's
// The initial policy (the reference) is evaluated once as step 0: the baseline of length_collapse and the first best.
using RlhfSharp.Alignment.Ppo;
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Models;
using RlhfSharp.Runs;
using RlhfSharp.Tensors;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment.Evaluation;

/// <summary>What a rule does when it fires.</summary>
public enum MonitorAction
{
    Off,
    Warn,
    Stop,
}

/// <summary>What the best checkpoint is kept by.</summary>
public enum MonitorQuantity
{
    /// <summary>Gold when a gold scorer is given; else proxy − disagreement with several reward models; else proxy.</summary>
    Auto,
    Gold,
    Proxy,
    /// <summary>Proxy minus the ensemble's disagreement (a pessimistic reward, as in conservative reward-model ensembles).</summary>
    ConservativeProxy,
}

/// <summary>Settings of the over-optimisation monitors; off unless Every &gt; 0.</summary>
public sealed record MonitorConfig
{
    [ConfigOption("Evaluate the over-optimisation monitors every this many steps on held-out prompts (0: off).", Name = "--monitor-every", Min = 0)]
    public int Every { get; init; }

    [ConfigOption("Held-out prompts per monitor evaluation.", Name = "--monitor-prompts-count", Min = 1)]
    public int Prompts { get; init; } = 32;

    [ConfigOption("Seed of the monitor's own sampling stream (reused at every evaluation).", Name = "--monitor-seed", Min = 0)]
    public ulong Seed { get; init; } = 23;

    [ConfigOption("Evaluations spanned by monitor/proxy_per_nat (Δproxy/ΔKL).", Name = "--monitor-slope-window", Min = 1)]
    public int SlopeWindow { get; init; } = 2;

    [ConfigOption("gold_fall: gold fell this many evaluations running while the proxy rose.", Name = "--monitor-gold-fall", Min = 1)]
    public int GoldFallEvaluations { get; init; } = 3;

    [ConfigOption("What gold_fall does: off, warn or stop.", Name = "--monitor-on-gold-fall")]
    public MonitorAction OnGoldFall { get; init; } = MonitorAction.Stop;

    [ConfigOption("gold_drop: held-out gold this far below its best so far (0: off).", Name = "--monitor-gold-drop", Min = 0)]
    public double GoldDrop { get; init; }

    [ConfigOption("What gold_drop does: off, warn or stop.", Name = "--monitor-on-gold-drop")]
    public MonitorAction OnGoldDrop { get; init; } = MonitorAction.Stop;

    [ConfigOption("kl_spike: KL above this multiple of the rolling median of the previous values.", Name = "--monitor-kl-spike-factor", Min = 1, MinExclusive = true)]
    public double KlSpikeFactor { get; init; } = 3;

    [ConfigOption("kl_spike: values in the rolling median.", Name = "--monitor-kl-spike-window", Min = 1)]
    public int KlSpikeWindow { get; init; } = 5;

    [ConfigOption("kl_spike: the jump over the median must also exceed this many nats.", Name = "--monitor-kl-spike-min-nats", Min = 0)]
    public double KlSpikeMinNats { get; init; } = 1;

    [ConfigOption("What kl_spike does: off, warn or stop.", Name = "--monitor-on-kl-spike")]
    public MonitorAction OnKlSpike { get; init; } = MonitorAction.Warn;

    [ConfigOption("length_collapse: held-out mean length below this fraction of the initial policy's.", Name = "--monitor-length-collapse", Min = 0, Max = 1, MinExclusive = true)]
    public double LengthCollapseFraction { get; init; } = 0.5;

    [ConfigOption("What length_collapse does: off, warn or stop.", Name = "--monitor-on-length-collapse")]
    public MonitorAction OnLengthCollapse { get; init; } = MonitorAction.Warn;

    [ConfigOption("What best/ is kept by: auto, gold, proxy or conservative_proxy (proxy − ensemble disagreement).", Name = "--monitor-best-by")]
    public MonitorQuantity BestBy { get; init; } = MonitorQuantity.Auto;

    [System.Text.Json.Serialization.JsonIgnore]
    public bool Enabled => Every > 0;
}

/// <summary>One held-out evaluation; NaN where the input it needs (gold scorer, several reward models) was not given.</summary>
public sealed record MonitorEvaluation(int Step, double Gold, double Proxy, double Disagreement, double Kl, double MeanLength, double MissingEosRate,
    double Distinct1, double Distinct2);

/// <summary>What a trainer calls once per step (one call site, after the step's metrics are made and before they are logged).</summary>
public interface ITrainingMonitor
{
    /// <summary>
    /// Adds monitor/* figures to <paramref name="metrics"/> and returns true when a rule asks the run to stop after this
    /// step. <paramref name="reference"/> is the KL anchor (the initial policy). Never changes training state.
    /// </summary>
    bool AfterStep(int step, Gpt policy, Gpt reference, IDictionary<string, double> metrics, CancellationToken ct = default);
}

/// <summary>The monitors of <see cref="MonitorConfig"/> over one run.</summary>
/// <param name="config">Rules and sizes.</param>
/// <param name="tokenizer">The policy's tokenizer.</param>
/// <param name="heldOutPrompts">Prompts never trained on; the first <see cref="MonitorConfig.Prompts"/> are used.</param>
/// <param name="proxy">The reward the run optimises.</param>
/// <param name="maxNewTokens">Response limit (the trainer's).</param>
/// <param name="temperature">Sampling temperature (the trainer's).</param>
/// <param name="gold">The true reward, never trained on; null when there is none.</param>
/// <param name="ensemble">Reward models whose disagreement is watched (skipped unless it has ≥ 2 members).</param>
/// <param name="runPath">Run folder: monitor.jsonl and best/ go there; null keeps the best policy in memory (<see cref="BestPolicy"/>).</param>
public sealed class OverOptimisationMonitor(MonitorConfig config, ITokenizer tokenizer, IReadOnlyList<string> heldOutPrompts, IRolloutReward proxy,
    int maxNewTokens, float temperature = 1f, Func<string, string, double>? gold = null, RewardEnsemble? ensemble = null, string? runPath = null) : ITrainingMonitor
{
    public const string GoldFall = "gold_fall", GoldDropRule = "gold_drop", KlSpike = "kl_spike", LengthCollapse = "length_collapse";

    private readonly IReadOnlyList<string> _prompts = Check(config, heldOutPrompts);
    private readonly PolicyEvaluator _sampler = new(new EvaluationOptions { MaxNewTokens = maxNewTokens, Temperature = temperature, Seed = config.Seed });
    private readonly RewardEnsemble? _ensemble = ensemble is { Members.Count: >= 2 } ? ensemble : null;
    private readonly List<MonitorEvaluation> _evaluations = [];
    private readonly List<MonitorEvent> _events = [];
    private readonly List<double> _klSeries = [];

    /// <summary>The quantity best/ is kept by, resolved from <see cref="MonitorConfig.BestBy"/> and what was given.</summary>
    public MonitorQuantity BestBy { get; } = Resolve(config.BestBy, gold is not null, ensemble is { Members.Count: >= 2 });

    /// <summary>Every evaluation so far, step 0 (the initial policy) first.</summary>
    public IReadOnlyList<MonitorEvaluation> Evaluations => _evaluations;

    /// <summary>Every rule firing so far.</summary>
    public IReadOnlyList<MonitorEvent> Events => _events;

    /// <summary>The kept checkpoint's step and value (null before the first evaluation).</summary>
    public BestCheckpoint? Best { get; private set; }

    /// <summary>A copy of the best policy, kept when no run folder was given.</summary>
    public Gpt? BestPolicy { get; private set; }

    /// <summary>The step after which a rule stopped the run, or null.</summary>
    public int? StoppedAt { get; private set; }

    public bool AfterStep(int step, Gpt policy, Gpt reference, IDictionary<string, double> metrics, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(metrics);
        bool stop = false;
        if (_evaluations.Count == 0) Keep(Evaluate(0, reference, reference, ct), reference);

        // KL spikes, every step, on the trainer's batch KL when it logs one.
        if (metrics.TryGetValue(MetricKeys.Kl, out double batchKl) || metrics.TryGetValue(MetricKeys.GrpoKl, out batchKl))
            stop |= ObserveKl(step, batchKl, metrics);

        if (step % config.Every != 0) return Stopped(step, stop, metrics);
        var e = Evaluate(step, policy, reference, ct);
        if (!metrics.ContainsKey(MetricKeys.Kl) && !metrics.ContainsKey(MetricKeys.GrpoKl)) stop |= ObserveKl(step, e.Kl, metrics);
        void Put(string key, double v) { if (double.IsFinite(v)) metrics[key] = v; }
        Put(MetricKeys.MonitorGold, e.Gold);
        Put(MetricKeys.MonitorProxy, e.Proxy);
        Put(MetricKeys.MonitorDisagreement, e.Disagreement);
        Put(MetricKeys.MonitorKl, e.Kl);
        Put(MetricKeys.MonitorMeanLength, e.MeanLength);
        Put(MetricKeys.MonitorMissingEos, e.MissingEosRate);
        Put(MetricKeys.MonitorDistinct1, e.Distinct1);
        Put(MetricKeys.MonitorDistinct2, e.Distinct2);
        int i = _evaluations.Count - 1, w = Math.Min(config.SlopeWindow, i);
        if (w > 0 && e.Kl - _evaluations[i - w].Kl > 1e-6)
            Put(MetricKeys.MonitorProxyPerNat, (e.Proxy - _evaluations[i - w].Proxy) / (e.Kl - _evaluations[i - w].Kl));

        // Rules on the held-out figures.
        int n = config.GoldFallEvaluations;
        if (config.OnGoldFall != MonitorAction.Off && !double.IsNaN(e.Gold) && i >= n
            && Enumerable.Range(i - n + 1, n).All(j => _evaluations[j].Gold < _evaluations[j - 1].Gold) && e.Proxy > _evaluations[i - n].Proxy)
            stop |= Fire(step, GoldFall, config.OnGoldFall, metrics, string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"held-out gold fell {n} evaluations running ({_evaluations[i - n].Gold:F3} at step {_evaluations[i - n].Step} → {e.Gold:F3}) while the proxy rose ({_evaluations[i - n].Proxy:F3} → {e.Proxy:F3})"));
        double peak = _evaluations.Take(i).Max(x => x.Gold);
        if (config.GoldDrop > 0 && config.OnGoldDrop != MonitorAction.Off && !double.IsNaN(e.Gold) && e.Gold < peak - config.GoldDrop)
            stop |= Fire(step, GoldDropRule, config.OnGoldDrop, metrics, string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"held-out gold {e.Gold:F3} is more than {config.GoldDrop:0.###} below its best so far ({peak:F3})"));
        double baseLength = _evaluations[0].MeanLength;
        if (config.OnLengthCollapse != MonitorAction.Off && e.MeanLength < config.LengthCollapseFraction * baseLength)
            stop |= Fire(step, LengthCollapse, config.OnLengthCollapse, metrics, string.Create(System.Globalization.CultureInfo.InvariantCulture,
                $"held-out mean length {e.MeanLength:F1} tokens is below {config.LengthCollapseFraction:0.##} × the initial {baseLength:F1}"));

        Keep(e, policy);
        metrics[MetricKeys.MonitorBest] = Best!.Value;
        metrics[MetricKeys.MonitorBestStep] = Best.Step;
        return Stopped(step, stop, metrics);
    }

    private bool Stopped(int step, bool stop, IDictionary<string, double> metrics)
    {
        if (!stop) return false;
        StoppedAt = step;
        metrics[MetricKeys.MonitorStopped] = 1;
        return true;
    }

    private bool ObserveKl(int step, double kl, IDictionary<string, double> metrics)
    {
        bool stop = false;
        int w = config.KlSpikeWindow;
        if (_klSeries.Count >= w && double.IsFinite(kl))
        {
            var last = _klSeries.Skip(_klSeries.Count - w).Order().ToArray();
            // k1 averages can dip below 0 by sampling noise; a KL below 0 is no KL, so the median counts from 0.
            double median = Math.Max(0, w % 2 == 1 ? last[w / 2] : 0.5 * (last[w / 2 - 1] + last[w / 2]));
            metrics[MetricKeys.MonitorKlSpike] = kl / Math.Max(median, 1e-3);
            if (config.OnKlSpike != MonitorAction.Off && kl > config.KlSpikeFactor * median && kl - median > config.KlSpikeMinNats)
                stop = Fire(step, KlSpike, config.OnKlSpike, metrics, string.Create(System.Globalization.CultureInfo.InvariantCulture,
                    $"KL {kl:F3} nats jumped over {config.KlSpikeFactor:0.##} × the median {median:F3} of the previous {w} values"));
        }
        if (double.IsFinite(kl)) _klSeries.Add(kl);
        return stop;
    }

    private bool Fire(int step, string rule, MonitorAction action, IDictionary<string, double> metrics, string message)
    {
        var e = new MonitorEvent(step, rule, action == MonitorAction.Stop ? "stop" : "warn", message);
        _events.Add(e);
        if (runPath is not null) MonitorEvents.Append(runPath, e);
        metrics[MetricKeys.MonitorFiredPrefix + rule] = action == MonitorAction.Stop ? 2 : 1;
        return action == MonitorAction.Stop;
    }

    private MonitorEvaluation Evaluate(int step, Gpt policy, Gpt reference, CancellationToken ct)
    {
        // A fresh stream from the same seed every time: the training RNG is untouched and evaluations share their draws.
        var sampled = _sampler.Sample(policy, reference, tokenizer, _prompts, new Rng(config.Seed), ct);
        var scores = proxy.Score(_prompts, sampled.Texts, sampled.Rows);
        double goldMean = gold is null ? double.NaN : Enumerable.Range(0, _prompts.Count).Average(i => gold(_prompts[i], sampled.Texts[i]));
        double disagreement = _ensemble is null ? double.NaN : _ensemble.ScoreTokens(sampled.Rows).Std.Average(s => (double)s);
        double missingEos = sampled.EndsWithEos is { } ends ? ends.Count(x => !x) / (double)ends.Length : double.NaN;
        var e = new MonitorEvaluation(step, goldMean, scores.Average(s => (double)s), disagreement, sampled.KlK1.Average(), sampled.Lengths.Average(), missingEos,
            DistinctN.Compute(sampled.Texts, 1), DistinctN.Compute(sampled.Texts, 2));
        _evaluations.Add(e);
        return e;
    }

    private double Value(MonitorEvaluation e) => BestBy switch
    {
        MonitorQuantity.Gold => e.Gold,
        MonitorQuantity.ConservativeProxy => e.Proxy - e.Disagreement,
        _ => e.Proxy,
    };

    // Keeps the policy as best/ when the monitored quantity beat every earlier evaluation (ties keep the earlier one).
    private void Keep(MonitorEvaluation e, Gpt policy)
    {
        double v = Value(e);
        if (Best is not null && !(v > Best.Value)) return;
        Best = new BestCheckpoint(e.Step, Metric(BestBy), v);
        if (runPath is null)
        {
            BestPolicy = policy.Clone();
            return;
        }
        var best = Best;
        AtomicFile.WriteDirectory(Path.Combine(runPath, MonitorEvents.BestFolderName), dir =>
        {
            policy.Save(dir);
            tokenizer.Save(dir);
            File.WriteAllText(Path.Combine(dir, MonitorEvents.BestFileName), MonitorEvents.WriteBest(best));
        });
    }

    private static string Metric(MonitorQuantity q) => q switch
    {
        MonitorQuantity.Gold => MetricKeys.MonitorGold,
        MonitorQuantity.ConservativeProxy => "monitor/proxy - monitor/disagreement",
        _ => MetricKeys.MonitorProxy,
    };

    private static MonitorQuantity Resolve(MonitorQuantity wanted, bool hasGold, bool hasEnsemble)
    {
        if (wanted == MonitorQuantity.Gold && !hasGold) throw new ArgumentException("monitor: best_by gold needs a gold scorer or judge; none was given.");
        if (wanted == MonitorQuantity.ConservativeProxy && !hasEnsemble) throw new ArgumentException("monitor: best_by conservative_proxy needs an ensemble of at least 2 reward models.");
        if (wanted != MonitorQuantity.Auto) return wanted;
        return hasGold ? MonitorQuantity.Gold : hasEnsemble ? MonitorQuantity.ConservativeProxy : MonitorQuantity.Proxy;
    }

    private static IReadOnlyList<string> Check(MonitorConfig config, IReadOnlyList<string> prompts)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(prompts);
        ConfigRanges.Validate(config, "monitor config");
        if (!config.Enabled) throw new ArgumentException("monitor: every = 0 turns the monitors off; do not build one.");
        if (prompts.Count == 0) throw new ArgumentException("monitor: no held-out prompts.");
        return prompts.Take(config.Prompts).ToList();
    }
}
