// Activation checkpointing (Gpt.Checkpointing.cs): a checkpointed pass keeps one block's activations instead of L, and its
// backward, which reruns each block from the block's input with the dropout generator's saved state, gives the same
// outputs and gradients bit for bit as the plain pass, with dropout and LoRA dropout on, through a padded batch and a
// reused pass; its gradients equal float64 central differences of the double reference; and a scoring pass
// (KeepActivations = false) keeps one block's activations and gives the plain pass's outputs. Run once more with
// DOTNET_EnableAVX512=0 for the AVX2 path.
using RlhfSharp.Models.Checkpoints;
using RlhfSharp.Tensors;

namespace RlhfSharp.Models.Tests;

public sealed class GptCheckpointingTests
{
    private static Gpt RandomGpt(GptConfig config, ulong seed, GptHeads heads)
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

    // Two rows, the second left-padded by two: B = 2, T = 6.
    private static GptInput Batch() => new(2, 6, [1, 5, 2, 5, 8, 0, 0, 0, 3, 7, 1, 4], [1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1]);

    // Two training steps' gradients (fresh dropout masks each; the second reuses the first's pass) for one setting.
    private static (float[] Logits, float[] Values, float[] Grads) TwoSteps(Gpt gpt, bool checkpointed)
    {
        gpt.ActivationCheckpointing = checkpointed;
        var input = Batch();
        int N = input.Batch * input.Length, V = gpt.Config.VocabSize;
        var targets = new int[N];
        for (int n = 0; n < N; n++) targets[n] = (input.Tokens[n] * 3 + 1) % V;
        var dropout = new Rng(42);
        var grads = new List<float>();
        GptPass? pass = null;
        for (int step = 0; step < 2; step++)
        {
            gpt.ZeroGrad();
            pass = gpt.Forward(input, new GptForwardOptions { DropoutRng = dropout }, pass);
            Assert.Equal(checkpointed ? 1 : gpt.Config.NLayer, pass.Layers.Length);
            var dLogits = new float[N * V];
            Gpt.CrossEntropy(pass, targets, input.AttentionMask!.Select(m => (float)m).ToArray(), dLogits);
            // A value-head loss too where the head trains (under LoRA the base's heads are frozen; the test's base has none).
            var dValues = pass.Values is null ? null : Enumerable.Range(0, N).Select(n => 0.1f * (n % 5) - 0.2f).ToArray();
            gpt.Backward(pass, dLogits, dValues);
            grads.AddRange(gpt.TrainableParameters.Grads);
        }
        return (pass!.Logits!.ToArray(), pass.Values?.ToArray() ?? [], grads.ToArray());
    }

    [Fact]
    public void CheckpointedGradients_AreBitIdentical_WithDropout()
    {
        var config = RandomWeights.TinyConfig(vocab: 9, block: 8, embd: 8, layers: 3, heads: 2) with { Dropout = 0.2f };
        var gpt = RandomGpt(config, 31, GptHeads.Value);

        var plain = TwoSteps(gpt, checkpointed: false);
        var checkpointed = TwoSteps(gpt, checkpointed: true);

        Assert.Equal(plain.Logits, checkpointed.Logits);
        Assert.Equal(plain.Values, checkpointed.Values);
        Assert.Equal(plain.Grads, checkpointed.Grads);
        // Dropout really drew masks: an evaluation pass (no generator) gives other logits.
        gpt.ActivationCheckpointing = false;
        Assert.NotEqual(plain.Logits, gpt.Forward(Batch()).Logits!.ToArray());
        Assert.Contains(plain.Grads, g => g != 0);
    }

    [Fact]
    public void CheckpointedGradients_AreBitIdentical_UnderLoraWithLoraDropout()
    {
        var config = RandomWeights.TinyConfig(vocab: 9, block: 8, embd: 8, layers: 2, heads: 2) with { Dropout = 0.1f };
        var baseModel = RandomGpt(config, 32, GptHeads.None);
        var rng = new Rng(5);
        var adapter = LoraAdapter.Create(baseModel, new LoraConfig { R = 2, LoraDropout = 0.3f, TargetModules = "c_attn,c_proj,c_fc,mlp.c_proj" }, rng);
        foreach (var m in adapter.Modules)
        {
            var b = m.B.Span;
            for (int i = 0; i < b.Length; i++) b[i] = (float)(0.3 * rng.Normal());
        }
        var gpt = baseModel.WithAdapter(adapter);

        var plain = TwoSteps(gpt, checkpointed: false);
        var checkpointed = TwoSteps(gpt, checkpointed: true);

        Assert.Equal(plain.Logits, checkpointed.Logits);
        Assert.Equal(plain.Grads, checkpointed.Grads);
        Assert.Contains(plain.Grads, g => g != 0);
    }

    [Fact]
    public void ScoringPass_KeepsOneBlocksActivations_AndGivesTheSameOutputs()
    {
        var config = RandomWeights.TinyConfig(vocab: 9, block: 8, embd: 8, layers: 3, heads: 2);
        var gpt = RandomGpt(config, 34, GptHeads.Value | GptHeads.Reward);
        var plain = gpt.Forward(Batch());
        var scoring = gpt.Forward(Batch(), new GptForwardOptions { KeepActivations = false });

        Assert.Equal(3, plain.Layers.Length);
        Assert.Single(scoring.Layers);
        Assert.Equal(plain.Logits, scoring.Logits);
        Assert.Equal(plain.Values, scoring.Values);
        Assert.Equal(plain.Rewards, scoring.Rewards);
    }

    [Fact]
    public void CheckpointedGradients_MatchCentralDifferencesOfTheDoubleReference()
    {
        var config = RandomWeights.TinyConfig(vocab: 9, block: 6, embd: 8, layers: 2, heads: 2);
        var gpt = RandomGpt(config, 33, GptHeads.None);
        gpt.ActivationCheckpointing = true;
        int[] tokens = [1, 5, 2, 5, 8, 0];
        int T = tokens.Length;
        var (targets, weights) = RandomWeights.NextTokenTargets(tokens);
        var pass = gpt.Forward(new GptInput(1, T, tokens));
        var dLogits = new float[T * config.VocabSize];
        float loss = Gpt.CrossEntropy(pass, targets, weights, dLogits);
        gpt.ZeroGrad();
        gpt.Backward(pass, dLogits);

        var tensors = gpt.ToTensors();
        var reference = new ReferenceGpt(config, tensors);
        Assert.Equal(reference.Loss(tokens), loss, 1e-4);
        var rng = new Rng(2);
        // Weights inside both blocks (the rerun ones) and the embeddings below them.
        foreach (var name in new[] { "h.0.attn.c_attn.weight", "h.0.mlp.c_fc.weight", "h.1.ln_1.weight", "h.1.attn.c_proj.weight", "h.1.mlp.c_proj.bias", "wpe.weight" })
        {
            var p = gpt[name];
            var values = tensors[name].Values;
            for (int trial = 0; trial < 3; trial++)
            {
                int i = rng.NextInt(p.Length);
                float original = values[i];
                values[i] = original + 1e-2f;
                double up = reference.Loss(tokens);
                float hi = values[i];
                values[i] = original - 1e-2f;
                double down = reference.Loss(tokens);
                float lo = values[i];
                values[i] = original;
                double numeric = (up - down) / ((double)hi - lo);
                double analytic = gpt.Gradients[p.Offset + i];
                Assert.True(Math.Abs(numeric - analytic) < 2e-3 + 2e-2 * Math.Abs(numeric), $"{name}[{i}]: analytic {analytic}, numeric {numeric}");
            }
        }
    }
}
