// BF16 frozen weights (Gpt.Bf16.cs): a narrowed model computes exactly what a float32 model holding the widened weights
// computes (logits, hidden states, rewards, log-probs through the chunked head), bit for bit; its log-probs stay within a
// stated tolerance of the float32 original's; it keeps float32 only for what is not a big matrix.
using RlhfSharp.Models.Checkpoints;
using RlhfSharp.Tensors;
using RlhfSharp.Tensors.Kernels;
using Xunit.Abstractions;

namespace RlhfSharp.Models.Tests;

[Collection(nameof(Bf16HeadChunkCollection))]
public sealed class Bf16Tests(ITestOutputHelper output)
{
    private static GptInput Batch(int B, int T, int V, ulong seed)
    {
        var rng = new Rng(seed);
        var tokens = new int[B * T];
        for (int i = 0; i < tokens.Length; i++) tokens[i] = (int)(rng.NextUInt64() % (ulong)V);
        return new GptInput(B, T, tokens);
    }

    /// <summary>The float32 model holding exactly the BF16 model's weights, widened.</summary>
    private static Gpt WidenedTwin(Gpt narrowed) => Gpt.FromTensors(narrowed.Config, narrowed.ToTensors());

    [Theory]
    // rows = B·T: 16 (the head's GEMM swaps operands; on AVX-512 the few-rows kernel) and 320 (> 256: not swapped).
    [InlineData(2, 300)]
    [InlineData(40, 257)]
    public void NarrowedModel_EqualsTheFloat32ModelOnItsWidenedWeights_BitForBit(int B, int headChunk)
    {
        var config = RandomWeights.TinyConfig(vocab: 600);
        var gpt = Gpt.FromTensors(config, RandomWeights.For(config, 7, withHeads: true));
        gpt.NarrowFrozenWeightsToBf16();
        var twin = WidenedTwin(gpt);
        var input = Batch(B, 8, config.VocabSize, 8);
        int saved = Gpt.HeadChunkRows;
        try
        {
            Gpt.HeadChunkRows = headChunk;   // 600 vocabulary rows in two column blocks of the head GEMM
            var mine = gpt.Forward(input);
            var theirs = twin.Forward(input);
            Assert.Equal(Bits(theirs.Logits!), Bits(mine.Logits!));
            Assert.Equal(Bits(theirs.Values!), Bits(mine.Values!));
            Assert.Equal(Bits(theirs.Rewards!), Bits(mine.Rewards!));
            Assert.Equal(Bits(GptScoring.TokenLogProbs(twin, input)), Bits(GptScoring.TokenLogProbs(gpt, input)));
        }
        finally
        {
            Gpt.HeadChunkRows = saved;
        }
    }

    [Fact]
    public void CreatedInBf16_HoldsTheBitsOfTheFloat32ModelNarrowed()
    {
        // CreateBf16 draws each matrix in pieces of 65,536 floats: wte (3000 × 64) spans three of them.
        var config = RandomWeights.TinyConfig(vocab: 3000, embd: 64);
        foreach (var heads in new[] { GptHeads.None, GptHeads.Value | GptHeads.Reward })
        {
            var narrowed = Gpt.Create(config, new Rng(5), heads);
            narrowed.NarrowFrozenWeightsToBf16();
            var created = Gpt.CreateBf16(config, new Rng(5), heads);

            Assert.True(created.HoldsBf16Weights);
            Assert.Equal(narrowed.Parameters.Length, created.Parameters.Length);
            var expected = narrowed.ToTensors();
            var actual = created.ToTensors();
            Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
            foreach (var (name, t) in expected) Assert.Equal(Bits(t.Values), Bits(actual[name].Values));
        }
    }

    [Fact]
    public void NarrowedModel_HoldsItsMatricesInHalfTheBytes_AndRoundsEachToNearestEven()
    {
        var config = RandomWeights.TinyConfig(vocab: 64, embd: 16);
        var tensors = RandomWeights.For(config, 9);
        var gpt = Gpt.FromTensors(config, tensors);
        int before = gpt.Parameters.Length;
        gpt.NarrowFrozenWeightsToBf16();

        Assert.True(gpt.HoldsBf16Weights);
        var matrices = tensors.Keys.Where(Gpt.IsBf16Matrix).ToList();
        Assert.Equal(1 + 4 * config.NLayer, matrices.Count);
        long matrixFloats = matrices.Sum(n => tensors[n].Values.Length);
        Assert.True(gpt.Parameters.Length <= before - matrixFloats, $"float32 buffer {gpt.Parameters.Length} of {before}");
        Assert.DoesNotContain(gpt.ParameterList, p => Gpt.IsBf16Matrix(p.Name));
        foreach (var name in matrices)
        {
            var widened = gpt.Param(name).ToArray();
            var original = tensors[name].Values;
            for (int i = 0; i < original.Length; i++) Assert.Equal(BFloat16.ToFloat(BFloat16.FromFloat(original[i])), widened[i]);
        }
        // Everything else is the float32 original, and a clone is as narrowed and computes the same bits.
        Assert.Equal(tensors["h.0.ln_1.weight"].Values, gpt.Param("h.0.ln_1.weight").ToArray());
        var clone = gpt.Clone();
        Assert.True(clone.HoldsBf16Weights);
        var input = Batch(2, 8, config.VocabSize, 3);
        Assert.Equal(Bits(gpt.Forward(input).Logits!), Bits(clone.Forward(input).Logits!));
    }

    [Fact]
    public void Bf16ReferenceLogProbs_StayWithinToleranceOfFloat32()
    {
        // GPT-2's initialisation (std 0.02) at a small shape: each weight moves by at most 2^-8 of itself.
        var config = new GptConfig { VocabSize = 256, BlockSize = 32, NEmbd = 64, NLayer = 2, NHead = 4 };
        var f32 = Gpt.Create(config, new Rng(4));
        var bf16 = f32.Clone();
        bf16.NarrowFrozenWeightsToBf16();
        var input = Batch(4, 32, config.VocabSize, 5);
        var a = GptScoring.TokenLogProbs(f32, input);
        var b = GptScoring.TokenLogProbs(bf16, input);
        double maxDiff = 0;
        for (int i = 0; i < a.Length; i++) maxDiff = Math.Max(maxDiff, Math.Abs(a[i] - b[i]));
        output.WriteLine($"max |Δ log p| = {maxDiff:G3} over {a.Length} tokens");
        // Stated tolerance: 5e-3 nats per token (log-probs here are about −5.5; measured: 1.0e-3 on AVX-512 and AVX2).
        Assert.True(maxDiff < 5e-3, $"max |Δ log p| = {maxDiff}");
        Assert.True(maxDiff > 0, "the BF16 model computed exactly the float32 logits: were its weights narrowed?");
    }

    [Fact]
    public void Bf16LoraBase_GivesTheAdapterTheGradientsAndSamplesOfItsWidenedTwin()
    {
        // A LoRA base trains only through its adapter, so it may be held in BF16: forward, backward (dX through the
        // widened matrices, the adapter's gradients) and KV-cached decoding equal the float32 twin's bit for bit.
        var config = RandomWeights.TinyConfig(vocab: 64, embd: 16);
        var narrowed = Gpt.FromTensors(config, RandomWeights.For(config, 12));
        narrowed.NarrowFrozenWeightsToBf16();
        var twin = WidenedTwin(narrowed);
        var adapter = LoraAdapter.Create(twin, new LoraConfig { R = 2, TargetModules = "c_attn,c_proj,c_fc,mlp.c_proj", LoraDropout = 0 }, new Rng(3));
        var values = adapter.ParameterSet.Values;
        var rng = new Rng(4);
        for (int i = 0; i < values.Length; i++) values[i] = (float)(0.1 * rng.Normal());   // B ≠ 0, so the adapter's path counts
        var mine = narrowed.WithAdapter(adapter.Clone());
        var theirs = twin.WithAdapter(adapter);

        var input = Batch(2, 8, config.VocabSize, 5);
        var dLogits = new float[2 * 8 * config.VocabSize];
        for (int i = 0; i < dLogits.Length; i++) dLogits[i] = (float)rng.Normal();
        foreach (var m in new[] { mine, theirs })
        {
            m.ZeroGrad();
            m.Backward(m.Forward(input), dLogits);
        }
        Assert.Equal(Bits(theirs.TrainableParameters.Grads), Bits(mine.TrainableParameters.Grads));
        Assert.Contains(mine.TrainableParameters.Grads, g => g != 0);

        var cacheA = new GptKvCache(config, 2, 8);
        var cacheB = new GptKvCache(config, 2, 8);
        var prompt = input.Tokens.Take(2 * 4).ToArray();
        Assert.Equal(Bits(GptInference.Step(theirs, cacheB, prompt, null, 4)), Bits(GptInference.Step(mine, cacheA, prompt, null, 4)));
        Assert.Equal(Bits(GptInference.Step(theirs, cacheB, [1, 2], null, 1)), Bits(GptInference.Step(mine, cacheA, [1, 2], null, 1)));

        // Merging a BF16 base gives the widened twin's merged model.
        Assert.Equal(Bits(theirs.Merged().Parameters), Bits(mine.Merged().Parameters));
    }

    [Fact]
    public void Bf16Sampling_EqualsFloat32SamplingOnTheWidenedTwin_BitForBit()
    {
        // KV-cached decoding with BF16 weights runs the GEMM that widens while it packs (Gemm.MultiplyBf16): prefill (18
        // rows), decode steps (3 rows: the skinny head tile on AVX-512) and the sampled tokens equal the float32 twin's.
        var config = RandomWeights.TinyConfig(vocab: 600, block: 24, embd: 32);
        var narrowed = Gpt.FromTensors(config, RandomWeights.For(config, 21));
        narrowed.NarrowFrozenWeightsToBf16();
        var twin = WidenedTwin(narrowed);
        int[][] prompts = [[3], [1, 2, 3, 4, 5, 6], [9, 9, 1]];
        var options = new GenerationOptions { MaxNewTokens = 12, Temperature = 1.5f };
        var logits = new List<float[]>[] { [], [] };
        var results = new[] { narrowed, twin }.Select((m, i) =>
            new GptGenerator(m).Generate(prompts, options, new Rng(5), (_, l) => logits[i].Add((float[])l.Clone()))).ToArray();
        Assert.Equal(results[1].Tokens, results[0].Tokens);
        Assert.Equal(Bits(results[1].LogProbs), Bits(results[0].LogProbs));
        Assert.Equal(logits[1].Count, logits[0].Count);
        for (int s = 0; s < logits[0].Count; s++) Assert.Equal(Bits(logits[1][s]), Bits(logits[0][s]));
        Assert.True(results[0].Response(0).Distinct().Count() > 3, "temperature 1.5 over 600 tokens should not repeat one token");
    }

    [Fact]
    public void Bf16KvCache_LogitsStayNearFloat32_AndArePinnedOnEveryPath()
    {
        // A BF16 KV cache rounds keys and values (relative error ≤ 2⁻⁹) and computes attention in float32 on them: over a
        // prefill and five decode steps the logits stay within 2% of the largest logit of the float32 cache's (measured
        // here: 0.46%), and their bits are pinned, the same on the Vector512 and the AVX2 paths.
        var config = RandomWeights.TinyConfig(vocab: 600, block: 24, embd: 32);
        var gpt = Gpt.FromTensors(config, RandomWeights.For(config, 22));
        var prompt = Batch(3, 6, config.VocabSize, 23).Tokens;
        var steps = Enumerable.Range(0, 5).Select(i => new[] { i + 1, 40 + i, 500 - i }).ToArray();
        List<float[]> Run(KvDtype dtype)
        {
            var cache = new GptKvCache(config, 3, 12, dtype);
            var all = new List<float[]> { GptInference.Step(gpt, cache, prompt, null, 6) };
            foreach (var tokens in steps) all.Add(GptInference.Step(gpt, cache, tokens, null, 1));
            return all;
        }
        var f32 = Run(KvDtype.F32);
        var bf16 = Run(KvDtype.Bf16);
        double worst = 0, scale = f32.Max(l => l.Max(Math.Abs));
        for (int s = 0; s < f32.Count; s++)
            for (int i = 0; i < f32[s].Length; i++) worst = Math.Max(worst, Math.Abs(f32[s][i] - bf16[s][i]));
        output.WriteLine($"bf16 KV cache: max |Δlogit| {worst:g3} of max |logit| {scale:g3}");
        Assert.True(worst <= 0.02 * scale, $"bf16 KV cache moved a logit by {worst} (max |logit| {scale})");
        Assert.True(worst > 0, "a bf16 cache that changes nothing is not rounding");

        // The same bits on every x86 path: this hash was taken on AVX-512 and holds under DOTNET_EnableAVX512=0 (AVX2 tiles).
        var hash = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(bf16.SelectMany(l => l.SelectMany(BitConverter.GetBytes)).ToArray()));
        output.WriteLine($"bf16 KV cache logits sha256 {hash}");
        Assert.Equal(Bf16KvLogitsHash, hash);
    }

    private const string Bf16KvLogitsHash = "E49DEC7DBAAE41CC5551DA75918DC3C50D7E94C0FAC765A0F85A6D59EBD654DB";

    [Theory]
    [InlineData(4)]
    [InlineData(300)]
    public void HeadInputGrad_InDepthBlocksOfWte_EqualsTheWholeProduct(int rows)
    {
        // V = 3500: one 3072-row depth block and a 428-row tail, accumulated into dHidden one after the other.
        var config = RandomWeights.TinyConfig(vocab: 3500);
        var narrowed = Gpt.FromTensors(config, RandomWeights.For(config, 13));
        narrowed.NarrowFrozenWeightsToBf16();
        var twin = WidenedTwin(narrowed);
        var rng = new Rng(14);
        var dLogits = new float[rows * config.VocabSize];
        for (int i = 0; i < dLogits.Length; i++) dLogits[i] = (float)rng.Normal();
        var start = new float[rows * config.NEmbd];
        for (int i = 0; i < start.Length; i++) start[i] = (float)rng.Normal();
        var mine = (float[])start.Clone();
        var theirs = (float[])start.Clone();
        narrowed.TiedHeadInputGrad(dLogits, rows, mine);
        twin.TiedHeadInputGrad(dLogits, rows, theirs);
        Assert.Equal(Bits(theirs), Bits(mine));
    }

    private static uint[] Bits(float[] x) => x.Select(BitConverter.SingleToUInt32Bits).ToArray();
}

/// <summary>Tests that set Gpt.HeadChunkRows run one at a time.</summary>
[CollectionDefinition(nameof(Bf16HeadChunkCollection), DisableParallelization = true)]
public sealed class Bf16HeadChunkCollection;
