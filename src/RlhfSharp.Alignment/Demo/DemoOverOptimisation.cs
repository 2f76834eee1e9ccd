// The demo's over-optimisation stages: the held-out evaluation of every PPO snapshot (proxy, gold, KL), the best-of-N
// curve from SFT, and Ziegler's KL–reward frontier from a sweep of short fixed-β PPO runs; all on one set of held-out prompts.
using System.Globalization;
using RlhfSharp.Alignment.Evaluation;
using RlhfSharp.Alignment.Ppo;
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Models;
using RlhfSharp.Tensors;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment.Demo;

/// <param name="config">The demo's sizes.</param>
/// <param name="sft">The SFT model: reference of every KL and base of best-of-N.</param>
/// <param name="heldOut">Prompts no stage trained on.</param>
/// <param name="gold">The true reward, never trained on.</param>
internal sealed class DemoOverOptimisation(DemoConfig config, Gpt sft, ITokenizer tokenizer, RewardEnsemble ensemble, IReadOnlyList<string> heldOut,
    Func<string, string, double> gold)
{
    public const string SnapshotsFolder = "snapshots";

    private readonly IRolloutReward _proxy = new RewardModelReward(ensemble, config.PpoEndCutResponses);
    private readonly CheckpointEvaluator _evaluator = new(new EvaluationOptions { MaxNewTokens = config.MaxNewTokens, Seed = config.Seed + 8 });

    /// <summary>Where a PPO stage's snapshot of <paramref name="step"/> is saved.</summary>
    public static string SnapshotDir(string stageDir, int step) => Path.Combine(stageDir, SnapshotsFolder, $"step-{step.ToString("D4", CultureInfo.InvariantCulture)}");

    /// <summary>The snapshot saver a PPO stage hands the trainer.</summary>
    public static Action<int, Gpt> SaveSnapshots(string stageDir) => (step, policy) => policy.Save(SnapshotDir(stageDir, step));

    /// <summary>Every snapshot saved in <paramref name="stageDir"/>, in step order, scored on the held-out prompts.</summary>
    public IReadOnlyList<CheckpointEvaluation> EvaluateSnapshots(string run, string stageDir, CancellationToken ct)
    {
        string root = Path.Combine(stageDir, SnapshotsFolder);
        if (!Directory.Exists(root)) throw new DirectoryNotFoundException($"demo: {root} holds no PPO snapshots; run the PPO stage again (without --resume).");
        var snapshots = Directory.GetDirectories(root, "step-*")
            .Select(d => (Dir: d, Step: int.Parse(Path.GetFileName(d)["step-".Length..], NumberStyles.None, CultureInfo.InvariantCulture)))
            .OrderBy(s => s.Step).ToList();
        return snapshots.Select(s => _evaluator.Evaluate(run, s.Step, Gpt.Load(s.Dir), sft, tokenizer, heldOut, _proxy, gold, ct)).ToList();
    }

    /// <summary>Best-of-N from SFT for N = 1, 2, 4, … up to BestOfNMax on the first BestOfNPrompts held-out prompts.</summary>
    public IReadOnlyList<BestOfNPoint> BestOfN(CancellationToken ct)
    {
        var prompts = heldOut.Take(config.BestOfNPrompts).ToList();
        var generation = new GenerationOptions { MaxNewTokens = Math.Min(config.MaxNewTokens, sft.Config.BlockSize - 1), Temperature = 1f, EosTokenId = tokenizer.EosId };
        return BestOfNCurve.Evaluate(sft, tokenizer, prompts, config.BestOfNMax, _proxy, gold, generation, new Rng(config.Seed + 9), ct);
    }

    /// <summary>
    /// One PPO run per fixed β of FrontierBetas (the main runs' settings otherwise), each scored on the held-out prompts
    /// when it ends. Ziegler et al. 2019 (fig. 4) trace the frontier the same way, across KL coefficients.
    /// </summary>
    public IReadOnlyList<CheckpointEvaluation> FrontierSweep(PpoConfig basePpo, IReadOnlyList<string> ppoPrompts, IProgress<AlignmentProgress>? progress, CancellationToken ct)
    {
        var points = new List<CheckpointEvaluation>();
        foreach (double beta in config.FrontierBetas)
        {
            string name = BetaName(beta);
            var ppo = basePpo with { InitialKlCoef = beta, TargetKl = null, Steps = config.FrontierSteps, SnapshotEvery = 0 };
            var stageProgress = progress is null ? null : new DemoPipeline.StageProgress($"frontier {name}", progress);
            var r = new PpoTrainer(ppo).Train(sft, tokenizer, ppoPrompts, _proxy, ensemble, new PpoTrainer.Options(Progress: stageProgress), ct);
            if (r.Cancelled) throw new OperationCanceledException($"demo: stopped during the frontier run {name}.");
            points.Add(_evaluator.Evaluate(name, config.FrontierSteps, r.Policy, sft, tokenizer, heldOut, _proxy, gold, ct));
        }
        return points;
    }

    public static string BetaName(double beta) => "β = " + beta.ToString("0.###", CultureInfo.InvariantCulture);

    /// <summary>
    /// The frontier's points: the reference (<paramref name="referenceName"/>) at KL 0 (the β → ∞ end), each fixed-β run and the β = 0 run at its end, joined as the
    /// "fixed β" curve; the adaptive run's end on its own.
    /// </summary>
    public static IReadOnlyList<FrontierPoint> FrontierPoints(IReadOnlyList<CheckpointEvaluation> snapshots, IReadOnlyList<CheckpointEvaluation> sweep,
        string betaZeroRun, string referenceName = "SFT")
    {
        const string FixedBeta = "fixed β";
        var points = new List<FrontierPoint>();
        if (snapshots.FirstOrDefault(c => c.Step == 0) is { } sft) points.Add(new FrontierPoint(referenceName, 0, sft.Gold, FixedBeta));
        foreach (var c in sweep) points.Add(new FrontierPoint(c.Run, Math.Max(0, c.KlK1), c.Gold, FixedBeta));
        foreach (var run in snapshots.GroupBy(c => c.Run))
        {
            var last = run.MaxBy(c => c.Step)!;
            points.Add(new FrontierPoint(run.Key, Math.Max(0, last.KlK1), last.Gold, run.Key == betaZeroRun ? FixedBeta : null));
        }
        return points;
    }
}
