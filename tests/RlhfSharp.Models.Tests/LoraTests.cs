// LoRA on the GPT: a fresh adapter is the identity (bit for bit), adapter gradients equal float64 central differences of
// the double reference run on merged weights, the base stays frozen, merging reproduces the adapted logits, the adapter-
// off view is the base, and the saved files carry PEFT's names.
using System.Text.Json.Nodes;
using RlhfSharp.Models.Checkpoints;
using RlhfSharp.Tensors;

namespace RlhfSharp.Models.Tests;

public sealed class LoraTests
{
    private static readonly LoraConfig AllTargets = new() { R = 2, LoraAlpha = 3f, LoraDropout = 0f, TargetModules = "c_attn,c_proj c_fc,mlp.c_proj" };

    private static Gpt RandomGpt(GptConfig config, ulong seed, GptHeads heads = GptHeads.None)
    {
        var tensors = RandomWeights.For(config, seed, withHeads: true);
        if (!heads.HasFlag(GptHeads.Reward)) tensors.Remove(GptCheckpoint.RewardHeadWeight);
        if (!heads.HasFlag(GptHeads.Value))
        {
            tensors.Remove(GptCheckpoint.ValueHeadWeight);
            tensors.Remove(GptCheckpoint.ValueHeadBias);
        }
        return Gpt.FromTensors(config, tensors);
    }

    // An adapter with B random too, so every A and B entry moves the output.
    private static LoraAdapter RandomAdapter(Gpt gpt, LoraConfig config, ulong seed)
    {
        var rng = new Rng(seed);
        var adapter = LoraAdapter.Create(gpt, config, rng);
        foreach (var m in adapter.Modules)
        {
            var b = m.B.Span;
            for (int i = 0; i < b.Length; i++) b[i] = (float)(0.3 * rng.Normal());
        }
        return adapter;
    }

    [Fact]
    public void FreshAdapter_IsTheIdentity_BitForBit()
    {
        // Given a base model and a fresh adapter (B = 0) on every target
        var config = RandomWeights.TinyConfig(vocab: 13, block: 10, embd: 12, layers: 2, heads: 3);
        var gpt = RandomGpt(config, 31);
        int[] tokens = [3, 1, 12, 0, 7, 7, 2, 9];
        var input = new GptInput(2, 4, tokens, [0, 1, 1, 1, 1, 1, 1, 1]);
        var before = gpt.Forward(input).Logits!.ToArray();
        var cache0 = new GptKvCache(config, 2, 4);
        var stepBefore = GptInference.Step(gpt, cache0, tokens, [0, 1, 1, 1, 1, 1, 1, 1], 4, allPositions: true);

        // When the adapter is attached
        var adapter = LoraAdapter.Create(gpt, AllTargets, new Rng(5));
        Assert.All(adapter.Modules, m => Assert.All(m.B.Span.ToArray(), v => Assert.Equal(0f, v)));
        Assert.Contains(adapter.Modules.First().A.Span.ToArray(), v => v != 0f);
        gpt = gpt.WithAdapter(adapter);

        // Then the fused forward and KV-cached decoding give the same bits
        Assert.Equal(before, gpt.Forward(input).Logits!.ToArray());
        var cache1 = new GptKvCache(config, 2, 4);
        Assert.Equal(stepBefore, GptInference.Step(gpt, cache1, tokens, [0, 1, 1, 1, 1, 1, 1, 1], 4, allPositions: true));
    }

    [Fact]
    public void KaimingUniformInit_BoundIsOneOverSqrtFanIn()
    {
        var config = RandomWeights.TinyConfig(vocab: 9, block: 6, embd: 16, layers: 1, heads: 2);
        var adapter = LoraAdapter.Create(RandomGpt(config, 3), new LoraConfig { R = 4, TargetModules = "mlp.c_proj" }, new Rng(9));
        var m = Assert.Single(adapter.Modules);
        Assert.Equal((64, 16), (m.In, m.Out));
        Assert.Equal([4, 64], m.A.Shape.ToArray());
        Assert.Equal([16, 4], m.B.Shape.ToArray());
        float bound = 1f / MathF.Sqrt(64);
        Assert.All(m.A.Span.ToArray(), v => Assert.InRange(v, -bound, bound));
        Assert.True(m.A.Span.ToArray().Max() > 0.8f * bound, "the draws should fill the interval");
    }

    [Fact]
    public void AdapterGradients_MatchCentralDifferencesOfTheDoubleReference_AndTheBaseIsFrozen()
    {
        var config = RandomWeights.TinyConfig(vocab: 9, block: 6, embd: 8, layers: 2, heads: 2);
        var gpt = RandomGpt(config, 25);
        var adapter = RandomAdapter(gpt, AllTargets, 7);
        gpt = gpt.WithAdapter(adapter);
        int[] tokens = [1, 5, 2, 5, 8, 0];
        int T = tokens.Length;
        var (targets, weights) = RandomWeights.NextTokenTargets(tokens);

        var pass = gpt.Forward(new GptInput(1, T, tokens));
        var dLogits = new float[T * config.VocabSize];
        float loss = Gpt.CrossEntropy(pass, targets, weights, dLogits);
        gpt.ZeroGrad();
        adapter.ParameterSet.ZeroGrad();
        gpt.Backward(pass, dLogits);

        // The base gets no gradient at all.
        Assert.All(gpt.Gradients, g => Assert.Equal(0f, g));
        var baseTensors = gpt.ToTensors();
        double RefLoss() => new ReferenceGpt(config, MergedInDouble(baseTensors, adapter)).Loss(tokens);
        Assert.Equal(RefLoss(), loss, 1e-4);

        var rng = new Rng(1);
        double diffSq = 0, refSq = 0;
        foreach (var slot in adapter.ParameterSet.Slots)
        {
            var values = slot.Value.Span;
            for (int trial = 0; trial < 3; trial++)
            {
                int i = rng.NextInt(slot.Length);
                float original = values[i];
                values[i] = original + 1e-2f;
                float hi = values[i];
                double up = RefLoss();
                values = slot.Value.Span;
                values[i] = original - 1e-2f;
                float lo = values[i];
                double down = RefLoss();
                values[i] = original;
                double numeric = (up - down) / ((double)hi - lo);
                double analytic = adapter.ParameterSet.Grads[slot.Offset + i];
                Assert.True(Math.Abs(numeric - analytic) < 2e-3 + 2e-2 * Math.Abs(numeric), $"{slot.Name}[{i}]: analytic {analytic}, numeric {numeric}");
                diffSq += (numeric - analytic) * (numeric - analytic);
                refSq += numeric * numeric;
            }
        }
        Assert.True(refSq > 0);
        Assert.True(Math.Sqrt(diffSq / refSq) < 1e-3, $"relative gradient error {Math.Sqrt(diffSq / refSq)}");
    }

    [Fact]
    public void HeadCopies_TrainInTheAdapter_AndTheirGradientsMatchCentralDifferences()
    {
        var config = RandomWeights.TinyConfig(vocab: 9, block: 6, embd: 8, layers: 1, heads: 2);
        var gpt = RandomGpt(config, 26, GptHeads.Reward);
        var adapter = RandomAdapter(gpt, new LoraConfig { R = 2, LoraDropout = 0f, TargetModules = "c_attn" }, 8);
        gpt = gpt.WithAdapter(adapter);
        var score = adapter.Head(GptCheckpoint.RewardHeadWeight)!;
        score.Span[0] += 0.5f; // the adapter's copy differs from the base's now
        int[] tokens = [1, 5, 2, 5];
        double Reward() => gpt.Forward(new GptInput(1, 4, tokens), new GptForwardOptions { Logits = false }).Rewards![0];
        double r0 = Reward();
        Assert.NotEqual(r0, gpt.WithAdapterOff().Forward(new GptInput(1, 4, tokens), new GptForwardOptions { Logits = false }).Rewards![0]);

        adapter.ParameterSet.ZeroGrad();
        gpt.Backward(gpt.Forward(new GptInput(1, 4, tokens), new GptForwardOptions { Logits = false }), dRewards: [1f]);
        Assert.All(gpt.Gradients, g => Assert.Equal(0f, g));
        for (int i = 0; i < 3; i++)
        {
            float original = score.Span[i];
            score.Span[i] = original + 1e-2f;
            double up = Reward();
            score.Span[i] = original - 1e-2f;
            double down = Reward();
            score.Span[i] = original;
            Assert.Equal((up - down) / 2e-2, score.Grad!.Span[i], 2e-3);
        }
    }

    [Fact]
    public void MergedModel_GivesTheAdaptedLogits_AndTheAdapterOffView_IsTheBase()
    {
        var config = RandomWeights.TinyConfig(vocab: 13, block: 10, embd: 12, layers: 2, heads: 3);
        var gpt = RandomGpt(config, 41);
        int[] tokens = [3, 1, 12, 0, 7, 7, 2, 9, 11, 4];
        var input = new GptInput(2, 5, tokens);
        var baseLogits = gpt.Forward(input).Logits!.ToArray();
        gpt = gpt.WithAdapter(RandomAdapter(gpt, AllTargets, 11));

        var adapted = gpt.Forward(input).Logits!.ToArray();
        var merged = gpt.Merged();
        Assert.Null(merged.Adapter);
        var mergedLogits = merged.Forward(input).Logits!;
        double maxDiff = 0, maxChange = 0;
        for (int i = 0; i < adapted.Length; i++)
        {
            maxDiff = Math.Max(maxDiff, Math.Abs(adapted[i] - mergedLogits[i]));
            maxChange = Math.Max(maxChange, Math.Abs(adapted[i] - baseLogits[i]));
        }
        Assert.True(maxChange > 0.1, $"the adapter should change the logits (max change {maxChange})");
        Assert.True(maxDiff < 1e-4, $"merged vs adapted: max |Δlogit| {maxDiff}");

        // The view with the adapter off shares the base's buffers and computes the base exactly.
        var off = gpt.WithAdapterOff();
        Assert.Same(gpt.Parameters, off.Parameters);
        Assert.Equal(baseLogits, off.Forward(input).Logits!.ToArray());
        Assert.Equal(baseLogits, GptInference.Step(off, new GptKvCache(config, 2, 5), tokens, null, 5, allPositions: true));
        Assert.Equal(adapted, GptInference.Step(gpt, new GptKvCache(config, 2, 5), tokens, null, 5, allPositions: true), new ToleranceComparer(1e-4f));
    }

    [Fact]
    public void GraphForward_WithAdapter_MatchesTheFusedPass_AndItsAdapterGradients()
    {
        var config = RandomWeights.TinyConfig(vocab: 9, block: 6, embd: 8, layers: 2, heads: 2);
        var gpt = RandomGpt(config, 51);
        var adapter = RandomAdapter(gpt, AllTargets, 13);
        gpt = gpt.WithAdapter(adapter);
        int[] tokens = [1, 5, 2, 5, 8, 0];
        var input = new GptInput(1, 6, tokens);
        var fused = gpt.Forward(input);
        var dLogits = new float[6 * config.VocabSize];
        var rng = new Rng(3);
        for (int i = 0; i < dLogits.Length; i++) dLogits[i] = (float)rng.Normal();
        adapter.ParameterSet.ZeroGrad();
        gpt.Backward(fused, dLogits);
        var fusedGrads = adapter.ParameterSet.Grads.ToArray();

        adapter.ParameterSet.ZeroGrad();
        var graph = gpt.ForwardGraph(input);
        Assert.Equal(fused.Logits!, graph.Logits!.Span.ToArray(), new ToleranceComparer(1e-4f));
        Ops.Sum(Ops.Mul(graph.Logits!, Tensor.Wrap(dLogits, 1, 6, config.VocabSize))).Backward();
        Assert.Equal(fusedGrads, adapter.ParameterSet.Grads, new ToleranceComparer(1e-3f));
    }

    [Fact]
    public void SavedAdapter_CarriesPeftKeyNamesAndConfig_AndLoadsBack()
    {
        var config = RandomWeights.TinyConfig(vocab: 9, block: 6, embd: 8, layers: 2, heads: 2);
        var gpt = RandomGpt(config, 61);
        var adapter = RandomAdapter(gpt, AllTargets with { LoraDropout = 0.1f }, 17);
        string dir = Path.Combine(Path.GetTempPath(), "rlhf-lora-" + Guid.NewGuid().ToString("N"));
        try
        {
            adapter.Save(dir, baseModel: "gpt2");
            var stored = Safetensors.Read(Path.Combine(dir, "adapter_model.safetensors")).Tensors;
            // Written out by hand from PEFT's get_peft_model_state_dict for GPT2LMHeadModel (adapter name removed).
            string[] expected =
            [
                "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight", "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight",
                "base_model.model.transformer.h.0.attn.c_proj.lora_A.weight", "base_model.model.transformer.h.0.attn.c_proj.lora_B.weight",
                "base_model.model.transformer.h.0.mlp.c_fc.lora_A.weight", "base_model.model.transformer.h.0.mlp.c_fc.lora_B.weight",
                "base_model.model.transformer.h.0.mlp.c_proj.lora_A.weight", "base_model.model.transformer.h.0.mlp.c_proj.lora_B.weight",
                "base_model.model.transformer.h.1.attn.c_attn.lora_A.weight", "base_model.model.transformer.h.1.attn.c_attn.lora_B.weight",
                "base_model.model.transformer.h.1.attn.c_proj.lora_A.weight", "base_model.model.transformer.h.1.attn.c_proj.lora_B.weight",
                "base_model.model.transformer.h.1.mlp.c_fc.lora_A.weight", "base_model.model.transformer.h.1.mlp.c_fc.lora_B.weight",
                "base_model.model.transformer.h.1.mlp.c_proj.lora_A.weight", "base_model.model.transformer.h.1.mlp.c_proj.lora_B.weight",
            ];
            Assert.Equal(expected.Order(StringComparer.Ordinal), stored.Keys.Order(StringComparer.Ordinal));
            // nn.Linear layouts: lora_A [r, in], lora_B [out, r]; C = 8.
            Assert.Equal([2, 8], stored["base_model.model.transformer.h.0.attn.c_attn.lora_A.weight"].Shape);
            Assert.Equal([24, 2], stored["base_model.model.transformer.h.0.attn.c_attn.lora_B.weight"].Shape);
            Assert.Equal([2, 32], stored["base_model.model.transformer.h.1.mlp.c_proj.lora_A.weight"].Shape);
            Assert.Equal([8, 2], stored["base_model.model.transformer.h.1.mlp.c_proj.lora_B.weight"].Shape);

            var json = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "adapter_config.json")))!;
            Assert.Equal("LORA", json["peft_type"]!.GetValue<string>());
            Assert.Equal("CAUSAL_LM", json["task_type"]!.GetValue<string>());
            Assert.Equal(2, json["r"]!.GetValue<int>());
            Assert.Equal(3.0, json["lora_alpha"]!.GetValue<double>());
            Assert.Equal(0.1, json["lora_dropout"]!.GetValue<double>(), 1e-6);
            Assert.True(json["fan_in_fan_out"]!.GetValue<bool>());
            Assert.Equal("none", json["bias"]!.GetValue<string>());
            Assert.Equal("gpt2", json["base_model_name_or_path"]!.GetValue<string>());
            Assert.Equal(["c_attn", "attn.c_proj", "c_fc", "mlp.c_proj"], json["target_modules"]!.AsArray().Select(n => n!.GetValue<string>()));

            var loaded = LoraAdapter.Load(dir, config);
            Assert.Equal(adapter.ParameterSet.Values, loaded.ParameterSet.Values);
            Assert.Equal(adapter.Scaling, loaded.Scaling);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void RewardAdapter_SavesTheScoreHeadUnderPeftsModulesToSaveKey()
    {
        var config = RandomWeights.TinyConfig(vocab: 9, block: 6, embd: 8, layers: 1, heads: 2);
        var gpt = RandomGpt(config, 71, GptHeads.Reward);
        var adapter = LoraAdapter.Create(gpt, new LoraConfig { R = 1, TargetModules = "c_attn" }, new Rng(1));
        string dir = Path.Combine(Path.GetTempPath(), "rlhf-lora-" + Guid.NewGuid().ToString("N"));
        try
        {
            adapter.Save(dir);
            var stored = Safetensors.Read(Path.Combine(dir, "adapter_model.safetensors")).Tensors;
            Assert.Equal(
                ["base_model.model.score.weight", "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight", "base_model.model.transformer.h.0.attn.c_attn.lora_B.weight"],
                stored.Keys.Order(StringComparer.Ordinal));
            var json = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "adapter_config.json")))!;
            Assert.Equal("SEQ_CLS", json["task_type"]!.GetValue<string>());
            Assert.Equal("score", json["modules_to_save"]![0]!.GetValue<string>());
            Assert.Equal(gpt.Param(GptCheckpoint.RewardHeadWeight).ToArray(), LoraAdapter.Load(dir, config).Head(GptCheckpoint.RewardHeadWeight)!.Span.ToArray());
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void ModelWithAdapter_SavesAndLoadsAsOneFolder_AndClonesIndependently()
    {
        var config = RandomWeights.TinyConfig(vocab: 9, block: 6, embd: 8, layers: 2, heads: 2);
        var gpt = RandomGpt(config, 81);
        gpt = gpt.WithAdapter(RandomAdapter(gpt, AllTargets, 19));
        var input = new GptInput(1, 5, [1, 2, 3, 4, 5]);
        var logits = gpt.Forward(input).Logits!.ToArray();
        string dir = Path.Combine(Path.GetTempPath(), "rlhf-lora-" + Guid.NewGuid().ToString("N"));
        try
        {
            gpt.Save(dir); // an in-memory base: its files go beside the adapter's
            Assert.True(File.Exists(Path.Combine(dir, "adapter_config.json")));
            var loaded = Gpt.Load(dir);
            Assert.NotNull(loaded.Adapter);
            Assert.Equal(logits, loaded.Forward(input).Logits!.ToArray());

            var clone = loaded.Clone();
            clone.Adapter!.Modules.First().B.Span[0] += 1f;
            Assert.Equal(logits, loaded.Forward(input).Logits!.ToArray());
            Assert.NotEqual(logits, clone.Forward(input).Logits!.ToArray());
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void UnknownTarget_IsRefusedByName()
    {
        var e = Assert.Throws<ArgumentException>(() => new LoraConfig { R = 4, TargetModules = "c_attn,q_proj" }.Validate());
        Assert.Contains("q_proj", e.Message);
    }

    // W' = W + s·(B·A)ᵀ in double, rounded once to float (the reference runs on float tensors).
    private static Dictionary<string, StoredTensor> MergedInDouble(IReadOnlyDictionary<string, StoredTensor> baseTensors, LoraAdapter adapter)
    {
        var result = baseTensors.ToDictionary(kv => kv.Key, kv => new StoredTensor(kv.Value.Shape, kv.Value.Values.ToArray()), StringComparer.Ordinal);
        int r = adapter.Config.R;
        foreach (var m in adapter.Modules)
        {
            var w = result[m.Prefix + ".weight"].Values;
            var a = m.A.Span;
            var b = m.B.Span;
            for (int i = 0; i < m.In; i++)
            {
                for (int o = 0; o < m.Out; o++)
                {
                    double sum = baseTensors[m.Prefix + ".weight"].Values[i * m.Out + o];
                    for (int k = 0; k < r; k++) sum += adapter.Scaling * (double)b[o * r + k] * a[k * m.In + i];
                    w[i * m.Out + o] = (float)sum;
                }
            }
        }
        return result;
    }

    private sealed class ToleranceComparer(float tolerance) : IEqualityComparer<float>
    {
        public bool Equals(float x, float y) => Math.Abs(x - y) <= tolerance * (1 + Math.Abs(x));
        public int GetHashCode(float obj) => 0;
    }
}
