// report.html for any run folder (`rlhf report RUN`, and every trainer at its end): what ran (command, status, the
// trainer's configuration), the headline curves of its kind — KL, reward and entropy for RL runs, loss and perplexity for
// language-model runs, calibration for reward models — and then every metric in metrics.jsonl, one chart per prefix
// ("loss/", "objective/", "charts/", ...), with the over-optimisation monitors' section (fired rules, best/) when the
// run had monitors. Read only from the folder, so a resumed run's report shows every step.
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace RlhfSharp.Runs.Reports;

public static class RunReport
{
    public const string FileName = "report.html";

    /// <summary>Headline charts: (title, y label, metric keys); a chart is drawn when the run logged any of its keys.</summary>
    private static readonly (string Title, string YLabel, string[] Keys)[] Headlines =
    [
        ("Reward", "reward", [MetricKeys.Scores, MetricKeys.RlhfReward, MetricKeys.GoldScore, MetricKeys.EpisodicReturn, "charts/true_episodic_return", MetricKeys.RewardsMargins]),
        ("KL to the reference", "KL (nats)", [MetricKeys.Kl, MetricKeys.KlK3, MetricKeys.PolicyApproxKl, MetricKeys.ControlApproxKl]),
        ("Entropy", "entropy (nats)", [MetricKeys.Entropy, MetricKeys.PolicyEntropy, MetricKeys.ControlEntropy]),
        ("Loss", "loss", [MetricKeys.TrainLoss, MetricKeys.EvalLoss]),
        ("Held-out perplexity", "perplexity", [MetricKeys.EvalPerplexity]),
        ("Accuracy", "accuracy", [MetricKeys.TrainAccuracy, MetricKeys.EvalAccuracy, MetricKeys.RewardsAccuracies, MetricKeys.EvalRewardsAccuracies]),
    ];

    /// <summary>Writes RUN/report.html (or <paramref name="output"/>) and returns its path.</summary>
    public static string Write(string runPath, string? output = null)
    {
        string run = Path.GetFullPath(runPath);
        if (!Directory.Exists(run)) throw new DirectoryNotFoundException($"report: run folder {run} does not exist.");
        string metricsFile = Path.Combine(run, RunDirectory.MetricsFileName);
        if (!File.Exists(metricsFile)) throw new FileNotFoundException($"report: {metricsFile} does not exist (not a run folder?).", metricsFile);
        var records = MetricsWriter.ReadAll(metricsFile);
        JsonObject config;
        using (var dir = RunDirectory.OpenToRead(run)) config = dir.ReadConfigRoot();
        string command = config["command"]?.GetValue<string>() ?? Path.GetFileName(run);

        var report = new HtmlReport($"rlhf {command}", run);
        var status = RunDirectory.ReadStatus(run);
        long lastStep = records.Count > 0 ? records.Max(r => r.Step) : 0;
        var overview = report.Section("run", "The run").Figures(
            new ReportFigure("status", status?.State ?? "not finished", status?.Note is { } note ? $"{status.Output}; {note}" : status?.Output),
            new ReportFigure("last logged step", lastStep.ToString(CultureInfo.InvariantCulture)),
            new ReportFigure("metric rows", records.Count.ToString(CultureInfo.InvariantCulture)));
        if (config["args"] is JsonArray args)
            overview.Text("rlhf " + string.Join(' ', args.Select(a => a?.GetValue<string>() ?? "")));
        if (config[RunDirectory.TrainerSection] is JsonObject trainer)
            overview.Table(new ReportTable(["setting", "value"], Flatten(trainer, "").Select(kv => (IReadOnlyList<string>)[kv.Key, kv.Value]).ToList(), "The trainer's configuration (config.json)"));

        var keys = records.SelectMany(r => r.Values.Keys).Distinct().Order(StringComparer.Ordinal).ToList();
        var headlines = Headlines.Where(h => h.Keys.Any(keys.Contains))
            .Select(h => SvgChart.Line(new ChartFrame(h.Title, "step", h.YLabel), h.Keys.Where(keys.Contains).Select(k => Series(records, k)).ToList()))
            .ToList();
        if (headlines.Count > 0) report.Section("curves", "Headline curves").Charts(headlines);

        Monitors(report, run, records, keys);

        string evalFile = Path.Combine(run, "reward_eval.json");
        if (File.Exists(evalFile)) Calibration(report, evalFile);

        var groups = keys.Where(k => k != "wall_time").GroupBy(k => k.Contains('/') ? k[..k.IndexOf('/')] : "other").ToList();
        if (groups.Count > 0)
        {
            var all = report.Section("metrics", "Every metric");
            all.Charts(groups.Select(g => SvgChart.Line(new ChartFrame(g.Key, "step", g.Key), g.Select(k => Series(records, k)).ToList())).ToList());
        }
        string path = output ?? Path.Combine(run, FileName);
        report.Write(path);
        return path;
    }

    // The over-optimisation monitors (any RL run given --monitor-every): held-out gold beside the proxy, KL, length and
    // diversity, each rule that fired and what it did (monitor.jsonl), and the kept best/ checkpoint.
    private static void Monitors(HtmlReport report, string run, List<MetricsRecord> records, List<string> keys)
    {
        var events = MonitorEvents.Read(run);
        var best = MonitorEvents.ReadBest(run);
        var monitorKeys = keys.Where(k => k.StartsWith("monitor/", StringComparison.Ordinal)).ToList();
        if (monitorKeys.Count == 0 && events.Count == 0 && best is null) return;
        var stop = events.FirstOrDefault(e => e.Action == "stop");
        var section = report.Section("monitors", "Over-optimisation monitors").Figures(
            new ReportFigure("rules fired", events.Count.ToString(CultureInfo.InvariantCulture), events.Count == 0 ? "none" : string.Join(", ", events.Select(e => e.Rule).Distinct())),
            new ReportFigure("early stop", stop is null ? "no" : "step " + stop.Step.ToString(CultureInfo.InvariantCulture), stop?.Rule),
            new ReportFigure("best checkpoint", best is null ? "none" : "step " + best.Step.ToString(CultureInfo.InvariantCulture),
                best is null ? null : $"{best.Metric} = {best.Value.ToString("F4", CultureInfo.InvariantCulture)}, in {MonitorEvents.BestFolderName}/"));
        (string Title, string YLabel, string[] Keys)[] charts =
        [
            ("Held-out gold and proxy", "reward", [MetricKeys.MonitorGold, MetricKeys.MonitorProxy, MetricKeys.MonitorDisagreement]),
            ("Held-out KL and spikes", "nats / ratio", [MetricKeys.MonitorKl, MetricKeys.MonitorKlSpike]),
            ("Proxy per nat", "Δproxy / ΔKL", [MetricKeys.MonitorProxyPerNat]),
            ("Length and diversity", "value", [MetricKeys.MonitorMeanLength, MetricKeys.MonitorMissingEos, MetricKeys.MonitorDistinct1, MetricKeys.MonitorDistinct2]),
        ];
        var svgs = charts.Where(c => c.Keys.Any(monitorKeys.Contains))
            .Select(c => SvgChart.Line(new ChartFrame(c.Title, "step", c.YLabel), c.Keys.Where(monitorKeys.Contains).Select(k => Series(records, k)).ToList())).ToList();
        if (svgs.Count > 0) section.Charts(svgs);
        if (events.Count > 0)
            section.Table(new ReportTable(["step", "rule", "what it did", "what it saw"],
                events.Select(e => (IReadOnlyList<string>)[e.Step.ToString(CultureInfo.InvariantCulture), e.Rule, e.Action == "stop" ? "stopped the run" : "warned", e.Message]).ToList(),
                "Rules that fired (monitor.jsonl)"));
    }

    private static ChartSeries Series(List<MetricsRecord> records, string key) =>
        new(key, records.Where(r => r.Values.TryGetValue(key, out double v) && double.IsFinite(v)).Select(r => new ChartPoint(r.Step, r.Values[key])).ToList());

    private static void Calibration(HtmlReport report, string file)
    {
        JsonObject eval;
        try
        {
            eval = JsonNode.Parse(File.ReadAllText(file)) as JsonObject ?? throw new FormatException($"{file}: expected a JSON object.");
        }
        catch (JsonException ex)
        {
            throw new FormatException($"{file}: {ex.Message}", ex);
        }
        double Get(string name) => eval[name]?.GetValue<double>() ?? double.NaN;
        var section = report.Section("calibration", "Reward-model calibration (held out)").Figures(
            new ReportFigure("accuracy", Get("Accuracy").ToString("F3", CultureInfo.InvariantCulture), "ordered pairs, ties excluded"),
            new ReportFigure("ECE", Get("ExpectedCalibrationError").ToString("F3", CultureInfo.InvariantCulture), "expected calibration error"),
            new ReportFigure("loss", Get("Loss").ToString("F4", CultureInfo.InvariantCulture)));
        if (eval["Calibration"] is JsonArray bins)
        {
            var points = bins.OfType<JsonObject>().Where(b => b["Count"]?.GetValue<int>() > 0)
                .Select(b => new ChartPoint(b["MeanPredicted"]!.GetValue<double>(), b["Observed"]!.GetValue<double>())).ToList();
            section.Charts(SvgChart.Reliability(new ChartFrame("Reliability", "predicted P(a ≻ b)", "observed frequency"), points));
        }
    }

    private static IEnumerable<KeyValuePair<string, string>> Flatten(JsonObject node, string prefix)
    {
        foreach (var (name, value) in node)
        {
            string key = prefix + name;
            if (value is JsonObject child)
                foreach (var kv in Flatten(child, key + ".")) yield return kv;
            else yield return new(key, value?.ToJsonString() ?? "null");
        }
    }
}
