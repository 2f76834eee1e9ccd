// Unit checks of the preference loop's parts: the segment loss against a hand computation, disagreement ranking,
// the label schedule spending exactly its budget, the segment pool's padding, the predictor's held-out evidence, and
// refused settings.
using RlhfSharp.Control.Clips;
using RlhfSharp.Control.Preferences;
using RlhfSharp.Control.Rl;
using RlhfSharp.Objectives;
using RlhfSharp.Tensors;
using Xunit.Abstractions;

namespace RlhfSharp.Control.Tests.Preferences;

public sealed class PreferenceUnitTests(ITestOutputHelper output)
{
    /// <summary>The learning checks below run on three seeds: seed s shifts every seed of the setup by 100·(s − 1).</summary>
    private static ulong Shift(int seed) => 100 * (ulong)(seed - 1);

    [Fact]
    public void SegmentLoss_EqualsHandComputation_WithTenPercentRandomAnswers()
    {
        // Pair 1: sums 2 and 0.5, first preferred. Pair 2: sums −1 and 1, a tie (μ = ½).
        var first = Tensor.FromArray([2f, -1f], 2);
        var second = Tensor.FromArray([0.5f, 1f], 2);
        double loss = SegmentPreferenceLoss.Loss(first, second, [1f, 0.5f], 0.1).ToArray()[0];
        static double Sig(double x) => 1 / (1 + Math.Exp(-x));
        double p1 = 0.9 * Sig(1.5) + 0.05;          // 0.9·0.817574 + 0.05 = 0.785817
        double p2 = 0.9 * Sig(-2) + 0.05;           // 0.9·0.119203 + 0.05 = 0.157283
        double expected = (-Math.Log(p1) + -(0.5 * Math.Log(p2) + 0.5 * Math.Log(1 - p2))) / 2;
        Assert.Equal(expected, loss, 5);
        Assert.Equal(0.785817, p1, 5);
        // Without the random-answer term the first pair's loss is plain −log σ(1.5): the 10% term must change it.
        double plain = SegmentPreferenceLoss.Loss(Tensor.FromArray([2f], 1), Tensor.FromArray([0.5f], 1), [1f], 0).ToArray()[0];
        Assert.Equal(-Math.Log(Sig(1.5)), plain, 5);
        Assert.NotEqual(plain, -Math.Log(p1), 3);
    }

    [Fact]
    public void SegmentLoss_Gradient_MatchesFiniteDifference()
    {
        var first = Tensor.FromArray([0.7f, -0.2f], 2);
        first.RequiresGrad = true;
        var second = Tensor.FromArray([0.1f, 0.4f], 2);
        SegmentPreferenceLoss.Loss(first, second, [0f, 1f]).Backward();
        float g = first.Grad!.Span[0];
        double L(float x) => SegmentPreferenceLoss.Loss(Tensor.FromArray([x, -0.2f], 2), second, [0f, 1f]).ToArray()[0];
        double fd = (L(0.7f + 1e-3f) - L(0.7f - 1e-3f)) / 2e-3;
        Assert.Equal(fd, g, 3);
    }

    [Fact]
    public void Disagreement_RanksSplitPairAboveAgreedPair()
    {
        // Members' segment sums: on pair A all three say "first by 3" (agreed); on pair B they split (+3, −3, 0).
        var agreed = RewardEnsemble.Disagreement([3, 3, 3], [0, 0, 0]);
        var split = RewardEnsemble.Disagreement([3, -3, 0], [0, 0, 0]);
        Assert.Equal(0, agreed.Variance, 12);
        Assert.True(split.Variance > 0.1, $"split variance {split.Variance}");
        Assert.Equal(["split", "agreed"], QuerySelection.Rank([("agreed", agreed.Variance), ("split", split.Variance)]).ToArray());
    }

    [Theory]
    [InlineData(300, 75, 390, 4.0)]
    [InlineData(175, 44, 97, 0.0)]
    [InlineData(1400, 350, 50, 10.0)]
    [InlineData(10, 10, 7, 4.0)]
    public void Schedule_SpendsExactlyTheBudget_FrontLoaded(int total, int preRl, int updates, double decay)
    {
        var schedule = new LabelSchedule(total, preRl, decay);
        schedule.Validate();
        var due = Enumerable.Range(1, updates).Select(u => schedule.DueAt(u, updates)).ToArray();
        Assert.All(due, d => Assert.True(d >= 0));
        Assert.Equal(total, preRl + due.Sum());
        if (decay > 0 && total - preRl >= 100)
        {
            int half = updates / 2;
            Assert.True(due.Take(half).Sum() > due.Skip(half).Sum(), "a decaying rate asks more in the first half");
        }
    }

    [Fact]
    public void Schedule_BudgetBelowPreRlShare_IsRefusedWithBothNumbers()
    {
        var ex = Assert.Throws<ArgumentException>(() => new LabelSchedule(50, 75).Validate());
        Assert.Contains("50", ex.Message);
        Assert.Contains("75", ex.Message);
    }

    [Fact]
    public void Loop_BudgetBelowPreRlShare_IsRefusedBeforeAnyWork_WithBothNumbers()
    {
        var cfg = new PreferenceConfig { EnvId = "CartPole-v1", Ppo = PpoConfig.ForEnv("CartPole-v1") with { TotalSteps = 1024 }, Schedule = new LabelSchedule(40, 60) };
        int asked = 0;
        var counting = new CountingLabeler(() => asked++);
        var ex = Assert.Throws<ArgumentException>(() => PreferenceLoop.Run(cfg, counting, seed: 1));
        Assert.Contains("40", ex.Message);
        Assert.Contains("60", ex.Message);
        Assert.Equal(0, asked);
    }

    [Fact]
    public void Loop_ClipsForPeople_OnAnEnvWithoutRenderer_AreRefusedListingRenderableEnvs()
    {
        // Every registered env has a clip renderer today, so the refusal is met only by an id the renderers lack.
        Assert.All(EnvRegistry.Ids, id => Assert.Contains(id, ClipRenderers.RenderableEnvs));
        var cfg = new PreferenceConfig { EnvId = "Hopper-v4", Ppo = PpoConfig.ForEnv("CartPole-v1") with { TotalSteps = 1024 }, Schedule = new LabelSchedule(10, 5), RenderClips = true };
        var ex = Assert.Throws<ArgumentException>(() => cfg.Validate());
        Assert.Contains("Hopper-v4", ex.Message);
        Assert.All(ClipRenderers.RenderableEnvs, id => Assert.Contains(id, ex.Message));
        // Without people (the oracle reads metadata) the same id fails as an unknown env instead, not as a missing renderer.
        var noClips = Assert.ThrowsAny<Exception>(() => (cfg with { RenderClips = false }).Validate());
        Assert.DoesNotContain("renderer", noClips.Message);
    }

    private sealed class CountingLabeler(Action onAsk) : RlhfSharp.Feedback.Labelers.ILabeler
    {
        public string Name => "counting";

        public Task<RlhfSharp.Feedback.Answer> AnswerAsync(RlhfSharp.Feedback.Query query, CancellationToken ct = default)
        {
            onAsk();
            return Task.FromResult(RlhfSharp.Feedback.Answer.Prefer(0));
        }
    }

    [Fact]
    public void Pool_PadsTerminatedEpisodes_AndDropsTruncatedTails()
    {
        var pool = new SegmentPool("CartPole-v1", envCount: 1, segmentLength: 5);
        var env = new VectorEnv("CartPole-v1", 1, seed: 3);
        float[] obs = env.Reset();
        var rng = new Rng(1);
        int episodes = 0;
        while (episodes < 3)
        {
            float[] act = [rng.NextInt(2)];
            var step = env.Step(act);
            pool.Add(obs, act, step);
            episodes += step.Finished.Count;
            obs = step.Observations;
        }
        Assert.NotEmpty(pool.Segments);
        Assert.All(pool.Segments, s => Assert.Equal(5, s.Length));
        var ended = pool.Segments.Where(s => s.Terminated).ToList();
        Assert.Equal(3, ended.Count); // random CartPole episodes always terminate
        foreach (var s in ended)
        {
            int live = s.Rewards.Count(r => r != 0);
            Assert.True(live >= 1 && live <= 5);
            Assert.Equal(live, s.LiveSteps);
            // Padded steps repeat the terminal observation and pay 0.
            for (int t = live; t < 5; t++) Assert.Equal(s.Observations[^1], s.Observations[t]);
            Assert.Equal(live, s.Return);
        }
    }

    // Seeds 1, 2, 3: r̂_abs below 100%, 100%, 100% of live steps (bar 90%).
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Ensemble_LearnsThatTheAbsorbingStatePaysLessThanLiving_FromClipLengths(int seed)
    {
        // Random CartPole play: every clip ends early, its frozen tail is the absorbing state, and the oracle prefers the
        // clip that stayed up longer. The fit must put r̂_abs below the r̂ of nearly every live step (the sign PPO needs).
        ulong k = Shift(seed);
        var pool = RandomCartPolePool(envCount: 4, segmentLength: 40, segments: 200, envSeed: 11 + k, actionSeed: 4 + k);
        var segs = pool.Segments;
        var train = Enumerable.Range(0, 80).Select(i => new Comparison(segs[2 * i], segs[2 * i + 1], segs[2 * i].Return > segs[2 * i + 1].Return ? 1f : segs[2 * i].Return < segs[2 * i + 1].Return ? 0f : 0.5f)).ToList();
        var ens = new RewardEnsemble(4, new DiscreteSpace(2), new RewardEnsembleConfig(), new Rng(6 + k));
        ens.SetInputStatistics(segs);
        ens.Fit(train, 300, new Rng(7 + k));
        double abs = ens.AbsorbingReward();
        var live = segs.Skip(160).SelectMany(g => g.Observations.Take(g.LiveSteps).Zip(g.Actions)).ToList();
        var r = ens.Predict([.. live.SelectMany(x => x.First)], [.. live.SelectMany(x => x.Second)], live.Count);
        double below = r.Count(v => v > abs) / (double)r.Length;
        output.WriteLine($"seed {seed}: r̂_abs below {below:P1} of live steps");
        Assert.True(below > 0.9, $"r̂_abs {abs:F3} lies below only {below:P0} of live steps' r̂ (mean {r.Average():F3})");
    }

    // Seeds 1, 2, 3: held-out accuracy 0.960, 0.990, 0.990 (bar 0.85); out-of-bag 0.953, 0.954, 0.974 (bar 0.8).
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Ensemble_LearnsToRankByAConstructedReward(int seed)
    {
        // True per-step reward = first observation coordinate; comparisons labelled by the sum, the ensemble must rank
        // unseen pairs far better than chance.
        ulong k = Shift(seed);
        var rng = new Rng(5 + k);
        Trajectory Seg()
        {
            var o = Enumerable.Range(0, 6).Select(_ => new[] { (float)rng.Normal(), (float)rng.Normal(), 0f, 0f }).ToArray();
            var a = Enumerable.Range(0, 6).Select(_ => new[] { (float)rng.NextInt(2) }).ToArray();
            return new Trajectory("CartPole-v1", o, a, [.. o.Select(x => (double)x[0])], false, false);
        }
        List<Comparison> Make(int n) => [.. Enumerable.Range(0, n).Select(_ => { var x = Seg(); var y = Seg(); return new Comparison(x, y, x.Return > y.Return ? 1f : 0f); })];
        var train = Make(200);
        var test = Make(100);
        var ens = new RewardEnsemble(4, new DiscreteSpace(2), new RewardEnsembleConfig(), new Rng(2 + k));
        ens.SetInputStatistics(train.Select(c => c.First));
        ens.Fit(train, 300, new Rng(3 + k));
        output.WriteLine($"seed {seed}: held-out accuracy {ens.Accuracy(test):F3}, out-of-bag {ens.OutOfBagAccuracy():F3}");
        Assert.True(ens.Accuracy(test) > 0.85, $"held-out accuracy {ens.Accuracy(test)}");
        Assert.True(ens.OutOfBagAccuracy() > 0.8, $"out-of-bag accuracy {ens.OutOfBagAccuracy()}");
    }

    [Fact]
    public void Fit_WithALearningRateThatDiverges_StopsNamingTheMember()
    {
        // Issue 17: the predictor's fit goes through NumericGuard like every trainer; a rate of 1e30 makes it diverge.
        var pool = RandomCartPolePool(envCount: 2, segmentLength: 30, segments: 12, envSeed: 3, actionSeed: 8);
        var segs = pool.Segments.ToList();
        var ens = new RewardEnsemble(4, new DiscreteSpace(2), new RewardEnsembleConfig { LearningRate = 1e30 }, new Rng(9));
        ens.SetInputStatistics(segs);
        var data = Enumerable.Range(0, 6).Select(i => new Comparison(segs[2 * i], segs[2 * i + 1], segs[2 * i].Return >= segs[2 * i + 1].Return ? 1f : 0f)).ToList();
        var ex = Assert.Throws<NonFiniteException>(() => ens.Fit(data, 50, new Rng(10)));
        Assert.StartsWith("reward-predictor training: ", ex.Message);
        Assert.Contains("member", ex.Message);
        Assert.Contains("(learning_rate 1E+30 too high?)", ex.Message);
    }

    [Fact]
    public void SegmentSums_Batched_EqualPerStepPredictionsPlusPaddingTimesAbsorbingReward()
    {
        // The batched sums feed one shared absorbing row for all padded tails; summed per step by hand they must agree.
        var pool = RandomCartPolePool(envCount: 2, segmentLength: 30, segments: 12, envSeed: 3, actionSeed: 8);
        var segs = pool.Segments.ToList();
        Assert.Contains(segs, g => g.LiveSteps < g.Length); // random play pads some clips
        var ens = new RewardEnsemble(4, new DiscreteSpace(2), new RewardEnsembleConfig(), new Rng(9));
        ens.SetInputStatistics(segs);
        ens.Fit([.. Enumerable.Range(0, 6).Select(i => new Comparison(segs[2 * i], segs[2 * i + 1], segs[2 * i].Return >= segs[2 * i + 1].Return ? 1f : 0f))], 20, new Rng(10));
        var batched = ens.SegmentSums(segs);
        for (int k = 0; k < segs.Count; k++)
        {
            var g = segs[k];
            var per = ens.PredictMembers([.. g.Observations.Take(g.LiveSteps).SelectMany(o => o)], [.. g.Actions.Take(g.LiveSteps).SelectMany(x => x)], g.LiveSteps);
            double[] single = ens.SegmentSums(g);
            for (int m = 0; m < ens.MemberCount; m++)
            {
                double byHand = per[m].Sum(v => (double)v);
                Assert.Equal(single[m], batched[m][k], 4);
                if (g.LiveSteps == g.Length) Assert.Equal(byHand, batched[m][k], 3);
            }
            double meanByHand = Enumerable.Range(0, ens.MemberCount).Average(m => per[m].Sum(v => (double)v)) + (g.Length - g.LiveSteps) * ens.AbsorbingReward();
            Assert.Equal(meanByHand, batched.Average(b => b[k]), 3);
        }
    }

    [Fact]
    public void FitGradient_ThroughSegmentSumsAndTheFusedMember_MatchesCentralDifferences()
    {
        // Given clips of random CartPole play (some padded, so the shared absorbing row carries gradient too) and a member
        // moved off its zero output layer by a short fit,
        var pool = RandomCartPolePool(envCount: 2, segmentLength: 30, segments: 16, envSeed: 5, actionSeed: 6);
        var segs = pool.Segments.ToList();
        Assert.Contains(segs, g => g.LiveSteps < g.Length);
        var ens = new RewardEnsemble(4, new DiscreteSpace(2), new RewardEnsembleConfig { Members = 1, Hidden = [8, 8], WeightDecay = 0 }, new Rng(9));
        ens.SetInputStatistics(segs);
        var pairs = Enumerable.Range(0, 8).Select(i => new Comparison(segs[2 * i], segs[2 * i + 1], i % 3 == 0 ? 0.5f : i % 2)).ToList();
        ens.Fit(pairs, 30, new Rng(10));
        // When the loss gradient is taken by the fused path,
        ens.LossGradient(0, pairs);
        var set = ens.MemberParameters(0);
        float[] analytic = (float[])set.Grads.Clone();
        // Then it matches the fourth-order central difference of the loss (evaluated in float32, differenced in float64).
        double diff = 0, norm = 0;
        const float h = 1e-3f;
        foreach (var slot in set.Slots)
            for (int k = slot.Offset; k < slot.Offset + slot.Length; k++)
            {
                float keep = set.Values[k];
                double L(float v) { set.Values[k] = v; return ens.LossGradient(0, pairs); }
                double numeric = (-L(keep + 2 * h) + 8 * L(keep + h) - 8 * L(keep - h) + L(keep - 2 * h)) / (12.0 * h);
                set.Values[k] = keep;
                diff += (numeric - analytic[k]) * (numeric - analytic[k]);
                norm += numeric * numeric;
            }
        Assert.True(norm > 1e-6, "the loss should depend on the parameters");
        Assert.True(Math.Sqrt(diff / norm) < 1e-2, $"relative error {Math.Sqrt(diff / norm):G3}");
    }

    [Fact]
    public void Fit_GivesTheSameBits_WithTheMembersSideBySideOrOneAfterAnother()
    {
        // Given the same data and seeds, When the ensemble trains with one kernel thread (members one after another, GEMMs on
        // all threads) and with two (members side by side, each GEMM on its own thread), Then its sums are the same bits.
        var pool = RandomCartPolePool(envCount: 4, segmentLength: 40, segments: 120, envSeed: 21, actionSeed: 22);
        var segs = pool.Segments.ToList();
        var pairs = Enumerable.Range(0, 50).Select(i => new Comparison(segs[2 * i], segs[2 * i + 1], segs[2 * i].Return > segs[2 * i + 1].Return ? 1f : 0f)).ToList();
        double[][] Train(int threads)
        {
            int saved = Parallelism.Threads;
            try
            {
                Parallelism.Threads = threads;
                var ens = new RewardEnsemble(4, new DiscreteSpace(2), new RewardEnsembleConfig(), new Rng(31));
                ens.SetInputStatistics(segs);
                ens.Fit(pairs, 40, new Rng(32));
                Assert.True(ens.OutOfBagAccuracy() > 0.5);
                return ens.SegmentSums(segs);
            }
            finally { Parallelism.Threads = saved; }
        }
        Assert.Equal(Train(1), Train(2));
    }

    // Seeds 1, 2, 3: 80.8, 64.1, 76.4 nats from the oracle's answers (bar 5); −14.4, −29.1, −25.8 from coin flips (bar 2).
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Evidence_IsZeroUnfitted_PositiveForRealPreferences_AndNotForCoinFlips(int seed)
    {
        // The constant reward (an unfitted ensemble: output layer at zero) says P = ½ to every pair, so its gain over the
        // constant is exactly 0. Fitted to the oracle's answers on random CartPole clips (dying early is worse), the held-out
        // gain must be clearly positive; fitted to coin flips on the same pairs, it must not be.
        ulong k = Shift(seed);
        var pool = RandomCartPolePool(envCount: 4, segmentLength: 40, segments: 240, envSeed: 21 + k, actionSeed: 5 + k);
        var segs = pool.Segments;
        var coin = new Rng(13 + k);
        var real = new List<Comparison>();
        var flips = new List<Comparison>();
        for (int i = 0; i < 120; i++)
        {
            var (x, y) = (segs[2 * i], segs[2 * i + 1]);
            real.Add(new Comparison(x, y, x.Return > y.Return ? 1f : x.Return < y.Return ? 0f : 0.5f));
            flips.Add(new Comparison(x, y, coin.NextInt(2)));
        }
        RewardEnsemble Fitted(List<Comparison> data, int steps)
        {
            var ens = new RewardEnsemble(4, new DiscreteSpace(2), new RewardEnsembleConfig(), new Rng(6 + k));
            ens.SetInputStatistics(segs);
            ens.Fit(data, steps, new Rng(7 + k));
            return ens;
        }
        Assert.True(double.IsNaN(new RewardEnsemble(4, new DiscreteSpace(2), new RewardEnsembleConfig(), new Rng(6)).OutOfBagEvidence()));
        Assert.Equal(0, Fitted(real, steps: 0).OutOfBagEvidence(), 9);
        double evidenceReal = Fitted(real, 300).OutOfBagEvidence(), evidenceFlips = Fitted(flips, 300).OutOfBagEvidence();
        output.WriteLine($"seed {seed}: evidence {evidenceReal:F2} nats (oracle), {evidenceFlips:F2} (coin flips)");
        Assert.True(evidenceReal > 5, $"oracle labels: {evidenceReal:F2} nats");
        Assert.True(evidenceFlips < 2, $"coin flips: {evidenceFlips:F2} nats");
    }

    [Fact]
    public void Ensemble_IgnoresActionsUnlessTold()
    {
        // Actions are ignored by default, so r̂ cannot carry an action bias the labels never asked for; UseActions = true
        // brings them back, discrete (one-hot) and Box alike. Fitted on pairs that differ only in the action taken.
        Trajectory Seg(float action) => new("CartPole-v1", [.. Enumerable.Range(0, 5).Select(_ => new[] { 0.1f, 0f, 0f, 0f })],
            [.. Enumerable.Range(0, 5).Select(_ => new[] { action })], [1, 1, 1, 1, 1], false, false);
        var pairs = Enumerable.Range(0, 40).Select(_ => new Comparison(Seg(1f), Seg(0f), 1f)).ToList();
        double Gap(RewardEnsemble ens)
        {
            ens.SetInputStatistics([Seg(0f), Seg(1f), new("CartPole-v1", [[0.3f, 1f, 0.1f, 0f]], [[0f]], [1], false, false)]);
            ens.Fit(pairs, 100, new Rng(2));
            return ens.Predict([0.1f, 0f, 0f, 0f], [1f], 1)[0] - ens.Predict([0.1f, 0f, 0f, 0f], [0f], 1)[0];
        }
        Assert.Equal(0, Gap(new RewardEnsemble(4, new DiscreteSpace(2), new RewardEnsembleConfig(), new Rng(1))), 6);
        Assert.True(Gap(new RewardEnsemble(4, new DiscreteSpace(2), new RewardEnsembleConfig { UseActions = true }, new Rng(1))) > 0.1);
        Assert.Equal(0, Gap(new RewardEnsemble(4, new BoxSpace([-2f], [2f]), new RewardEnsembleConfig(), new Rng(1))), 6);
        Assert.True(Gap(new RewardEnsemble(4, new BoxSpace([-2f], [2f]), new RewardEnsembleConfig { UseActions = true }, new Rng(1))) > 0.1);
    }

    /// <summary>Segments of uniformly random CartPole play (most clips end early and carry absorbing padding).</summary>
    private static SegmentPool RandomCartPolePool(int envCount, int segmentLength, int segments, ulong envSeed, ulong actionSeed)
    {
        var pool = new SegmentPool("CartPole-v1", envCount, segmentLength, capacity: 2 * segments);
        var env = new VectorEnv("CartPole-v1", envCount, seed: envSeed);
        float[] obs = env.Reset();
        var rng = new Rng(actionSeed);
        while (pool.Segments.Count < segments)
        {
            float[] act = [.. Enumerable.Range(0, envCount).Select(_ => (float)rng.NextInt(2))];
            var step = env.Step(act);
            pool.Add(obs, act, step);
            obs = step.Observations;
        }
        return pool;
    }
}
