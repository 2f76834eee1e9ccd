// The over-optimisation monitors on the command line of every RL command (ppo, grpo, online-dpo): the settings come from
// MonitorConfig inside each trainer's config (--monitor-every, --monitor-gold-fall, ...); these two options say where the
// held-out prompts and the gold reward come from. Without --monitor-prompts the last --monitor-prompts-count distinct
// training prompts are held out (and no longer trained on), so the monitor never scores a prompt the policy trained on.
using System.CommandLine;
using RlhfSharp.Alignment;
using RlhfSharp.Alignment.Evaluation;
using RlhfSharp.Alignment.Ppo;
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Runs;
using RlhfSharp.Text;

namespace RlhfSharp.Cli.Commands;

internal sealed class MonitorOptions
{
    private readonly Option<string?> _prompts = new("--monitor-prompts")
    {
        Description = "Held-out prompts for the monitors (JSONL with \"prompt\" or one per line); default: the last --monitor-prompts-count training prompts, then not trained on.",
    };

    private readonly Option<string> _gold = new("--monitor-gold")
    {
        Description = "Gold reward for monitor/gold: story (the story world's gold scorer), a VADER lexicon file, or none.",
        DefaultValueFactory = _ => "none",
    };

    public MonitorOptions(Command command, bool goldOption = true)
    {
        command.Options.Add(_prompts);
        if (goldOption) command.Options.Add(_gold);
    }

    /// <summary>
    /// The monitor for a run (null when <paramref name="config"/> is off) and the prompts left to train on.
    /// <paramref name="gold"/> is the command's own gold scorer, used when --monitor-gold is not given.
    /// </summary>
    public (List<string> Train, OverOptimisationMonitor? Monitor) Build(ParseResult p, MonitorConfig config, List<string> prompts, ITokenizer tokenizer,
        IRolloutReward proxy, int maxNewTokens, float temperature, RunDirectory? run, Func<string, string, double>? gold = null, RewardEnsemble? ensemble = null)
    {
        if (!config.Enabled) return (prompts, null);
        string goldSpec = p.GetValue(_gold) ?? "none";
        if (goldSpec != "none" || p.GetResult(_gold) is { Implicit: false })
            gold = goldSpec switch
            {
                "none" => null,
                "story" => EvaluationJudges.GoldScorer(null),
                _ when File.Exists(goldSpec) => EvaluationJudges.GoldScorer(goldSpec),
                _ => throw new ArgumentException($"--monitor-gold: expected story, none or a VADER lexicon file; {goldSpec} is none of them."),
            };
        List<string> held;
        if (p.GetValue(_prompts) is string file)
            held = PromptData.Read(file, ChatTemplate.For(tokenizer));
        else
        {
            var distinct = prompts.Distinct(StringComparer.Ordinal).ToList();
            if (distinct.Count <= config.Prompts)
                throw new ArgumentException($"--monitor-prompts-count {config.Prompts}: only {distinct.Count} distinct training prompts, so none would be left to train on; give --monitor-prompts FILE.");
            held = distinct.Skip(distinct.Count - config.Prompts).ToList();
            var heldSet = held.ToHashSet(StringComparer.Ordinal);
            prompts = prompts.Where(x => !heldSet.Contains(x)).ToList();
        }
        var monitor = new OverOptimisationMonitor(config, tokenizer, held, proxy, maxNewTokens, temperature, gold, ensemble, run?.Path);
        return (prompts, monitor);
    }

    /// <summary>status.json's note when a monitor stopped the run ("stopped by the over-optimisation monitor ..."), else null.</summary>
    public static string? StatusNote(OverOptimisationMonitor? monitor) =>
        monitor?.StoppedAt is int step && monitor.Events.LastOrDefault(e => e.Action == "stop" && e.Step == step) is { } e
            ? $"stopped after step {step} by the over-optimisation monitor ({e.Rule}: {e.Message}); best checkpoint in {MonitorEvents.BestFolderName}/ (step {monitor.Best?.Step})"
            : null;

    /// <summary>One line per rule that fired, for the command's summary (empty when none did).</summary>
    public static string Summary(OverOptimisationMonitor? monitor)
    {
        if (monitor is null) return "";
        var lines = monitor.Events.Select(e => $"monitor: step {e.Step}: {e.Rule} {(e.Action == "stop" ? "stopped the run" : "warned")}: {e.Message}").ToList();
        if (monitor.Best is { } best)
            lines.Add($"monitor: best checkpoint (by {best.Metric} = {AlignCommandSupport.Format(best.Value)}) is step {best.Step}, in {MonitorEvents.BestFolderName}/ of the run folder");
        return string.Join("\n", lines);
    }
}
