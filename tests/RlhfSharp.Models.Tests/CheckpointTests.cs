// GptConfig <-> Hugging Face config.json, and model folders: HF key variants, tied lm_head, shape errors, round trip.
using System.Text.Json;
using RlhfSharp.Models.Checkpoints;
using RlhfSharp.Tensors;

namespace RlhfSharp.Models.Tests;

public sealed class CheckpointTests
{
    // OpenAI GPT-2 124M's config.json as published on the Hugging Face hub (openai-community/gpt2), abridged of task_specific_params.
    private const string HubGpt2Config = """
        {
          "activation_function": "gelu_new",
          "architectures": ["GPT2LMHeadModel"],
          "attn_pdrop": 0.1,
          "bos_token_id": 50256,
          "embd_pdrop": 0.1,
          "eos_token_id": 50256,
          "initializer_range": 0.02,
          "layer_norm_epsilon": 1e-05,
          "model_type": "gpt2",
          "n_ctx": 1024,
          "n_embd": 768,
          "n_head": 12,
          "n_layer": 12,
          "n_positions": 1024,
          "resid_pdrop": 0.1,
          "summary_activation": null,
          "summary_first_dropout": 0.1,
          "summary_proj_to_labels": true,
          "summary_type": "cls_index",
          "summary_use_proj": true,
          "vocab_size": 50257
        }
        """;

    [Fact]
    public void HubGpt2Config_ReadsAsTheNamedGpt2Size()
    {
        using var dir = new TempDirectory();
        File.WriteAllText(dir.File("config.json"), HubGpt2Config);

        var config = GptConfig.ReadJson(dir.File("config.json"));

        var named = GptConfig.Named("gpt2", 50257);
        Assert.Equal(named with { Dropout = 0.1f, BosTokenId = 50256, EosTokenId = 50256 }, config);
        Assert.Equal(64, config.HeadSize);
    }

    [Fact]
    public void Config_RoundTripsThroughJson_WithHfFieldNames()
    {
        using var dir = new TempDirectory();
        var config = GptConfig.Named("small", 4096) with { Dropout = 0.05f, EosTokenId = 7, Architecture = "GPT2ForSequenceClassification" };

        config.WriteJson(dir.File("config.json"));
        var back = GptConfig.ReadJson(dir.File("config.json"));

        Assert.Equal(config, back);
        using var doc = JsonDocument.Parse(File.ReadAllText(dir.File("config.json")));
        Assert.Equal("gpt2", doc.RootElement.GetProperty("model_type").GetString());
        Assert.Equal(256, doc.RootElement.GetProperty("n_embd").GetInt32());
        Assert.Equal(128, doc.RootElement.GetProperty("n_positions").GetInt32());
        Assert.Equal(1, doc.RootElement.GetProperty("num_labels").GetInt32());
        Assert.Equal("GPT2ForSequenceClassification", doc.RootElement.GetProperty("architectures")[0].GetString());
    }

    [Theory]
    [InlineData("\"n_head\": 5", "n_head")]
    [InlineData("\"model_type\": \"llama\"", "model_type")]
    [InlineData("\"activation_function\": \"relu\"", "activation_function")]
    [InlineData("\"n_inner\": 100", "n_inner")]
    [InlineData("\"vocab_size\": \"big\"", "vocab_size")]
    public void BadConfigField_IsNamedInTheError(string replacement, string field)
    {
        using var dir = new TempDirectory();
        string key = replacement[..(replacement.IndexOf(':', StringComparison.Ordinal))];
        var lines = HubGpt2Config.Split('\n').Where(l => !l.TrimStart().StartsWith(key, StringComparison.Ordinal)).ToList();
        lines.Insert(1, "  " + replacement + ",");
        File.WriteAllText(dir.File("config.json"), string.Join('\n', lines));

        var ex = Assert.Throws<FormatException>(() => GptConfig.ReadJson(dir.File("config.json")));

        Assert.Contains(field, ex.Message);
        Assert.Contains(dir.File("config.json"), ex.Message);
    }

    [Fact]
    public void NamedSizes_AreValid_GrowInParameters_AndMiniSitsBetweenTinyAndSmall()
    {
        // Parameters of a GPT-2 block stack, counted independently of Gpt.Create: per layer 12·C² weights + 13·C biases and
        // gains (attention 4·C² + 4·C, MLP 8·C² + 5·C, two LayerNorms 4·C), plus token and position tables and the final LayerNorm.
        static long Count(GptConfig c) => (long)c.NLayer * (12L * c.NEmbd * c.NEmbd + 13L * c.NEmbd) + (long)(c.VocabSize + c.BlockSize) * c.NEmbd + 2L * c.NEmbd;
        var configs = GptConfig.Sizes.Select(s => GptConfig.Named(s, 2048)).ToList();

        for (int i = 1; i < configs.Count; i++)
            Assert.True(Count(configs[i]) > Count(configs[i - 1]), $"{GptConfig.Sizes[i]} ({Count(configs[i])}) is not larger than {GptConfig.Sizes[i - 1]} ({Count(configs[i - 1])})");
        // The GPT-2 checkpoints' published parameter counts (Hugging Face gpt2, gpt2-medium, gpt2-large; vocabulary 50257).
        Assert.Equal(124_439_808L, Count(GptConfig.Named("gpt2", 50257)));
        Assert.Equal(354_823_168L, Count(GptConfig.Named("gpt2-medium", 50257)));
        Assert.Equal(774_030_080L, Count(GptConfig.Named("gpt2-large", 50257)));
        var large = GptConfig.Named("gpt2-large", 50257);
        Assert.Equal((36, 1280, 20, 1024, 64), (large.NLayer, large.NEmbd, large.NHead, large.BlockSize, large.HeadSize));
        var mini = GptConfig.Named("mini", 2048);
        Assert.Equal((4, 128, 4, 64, 32), (mini.NLayer, mini.NEmbd, mini.NHead, mini.BlockSize, mini.HeadSize));
        var gpt = Gpt.Create(mini, new Rng(5), GptHeads.None);
        Assert.Equal(Count(mini), gpt.ParameterSet.Count);
    }

    [Fact]
    public void UnknownSizeName_ListsTheChoices()
    {
        var ex = Assert.Throws<ArgumentException>(() => GptConfig.Named("huge", 10));
        Assert.Contains("tiny", ex.Message);
    }

    [Fact]
    public void SavedFolder_LoadsBackBitIdentical_AndUsesHfNaming()
    {
        using var dir = new TempDirectory();
        var config = RandomWeights.TinyConfig();
        var tensors = RandomWeights.For(config, 3, withHeads: true);

        GptCheckpoint.Save(dir.Path, config, tensors);
        var loaded = GptCheckpoint.Load(dir.Path);

        Assert.Equal(config, loaded.Config);
        Assert.Equal(tensors.Keys.Order(), loaded.Tensors.Keys.Order());
        foreach (var (name, t) in tensors)
            Assert.Equal(t.Values.Select(BitConverter.SingleToInt32Bits), loaded.Tensors[name].Values.Select(BitConverter.SingleToInt32Bits));
        var raw = Safetensors.Read(dir.File(GptCheckpoint.WeightsFileName));
        Assert.Contains("transformer.h.1.attn.c_attn.weight", raw.Tensors.Keys);
        Assert.Contains("score.weight", raw.Tensors.Keys);
        Assert.DoesNotContain("lm_head.weight", raw.Tensors.Keys);
        Assert.Equal("pt", raw.Metadata["format"]);
    }

    [Fact]
    public void HfStyleFolder_WithoutPrefix_WithBuffersAndTiedLmHead_Loads()
    {
        using var dir = new TempDirectory();
        var config = RandomWeights.TinyConfig();
        var tensors = RandomWeights.For(config, 4);
        // As the hub's gpt2 model.safetensors stores it: no prefix, causal-mask buffers, plus lm_head tied to wte.
        var stored = new Dictionary<string, StoredTensor>(tensors);
        for (int i = 0; i < config.NLayer; i++)
        {
            stored[$"h.{i}.attn.bias"] = new([1, 1, config.BlockSize, config.BlockSize], new float[config.BlockSize * config.BlockSize]);
            stored[$"h.{i}.attn.masked_bias"] = new([], [-1e4f]);
        }
        stored["lm_head.weight"] = new(tensors["wte.weight"].Shape, (float[])tensors["wte.weight"].Values.Clone());
        config.WriteJson(dir.File("config.json"));
        Safetensors.Write(dir.File("model.safetensors"), stored);

        var loaded = GptCheckpoint.Load(dir.Path);

        Assert.Equal(tensors.Keys.Order(), loaded.Tensors.Keys.Order());
        Assert.Equal(tensors["h.1.mlp.c_fc.weight"].Values, loaded.Tensors["h.1.mlp.c_fc.weight"].Values);
    }

    [Fact]
    public void UntiedLmHead_IsRefused()
    {
        var config = RandomWeights.TinyConfig();
        var tensors = RandomWeights.For(config, 4);
        var stored = new Dictionary<string, StoredTensor>(tensors)
        {
            ["lm_head.weight"] = new(tensors["wte.weight"].Shape, new float[tensors["wte.weight"].Values.Length]),
        };

        var ex = Assert.Throws<FormatException>(() => GptCheckpoint.Canonicalize("f.safetensors", config, stored));

        Assert.Contains("lm_head.weight", ex.Message);
    }

    [Fact]
    public void WrongShape_NamesTheKeyAndBothShapes()
    {
        var config = RandomWeights.TinyConfig();
        var stored = new Dictionary<string, StoredTensor>(RandomWeights.For(config, 4))
        {
            // Stored as [out, in] (nn.Linear) instead of Conv1D's [in, out].
            ["h.0.attn.c_attn.weight"] = new([24, 8], new float[192]),
        };

        var ex = Assert.Throws<FormatException>(() => GptCheckpoint.Canonicalize("f.safetensors", config, stored));

        Assert.Contains("'h.0.attn.c_attn.weight'", ex.Message);
        Assert.Contains("[24, 8]", ex.Message);
        Assert.Contains("[8, 24]", ex.Message);
    }

    [Fact]
    public void MissingAndUnknownTensors_AreNamed()
    {
        var config = RandomWeights.TinyConfig();
        var missing = new Dictionary<string, StoredTensor>(RandomWeights.For(config, 4));
        missing.Remove("h.1.ln_2.bias");
        var unknown = new Dictionary<string, StoredTensor>(RandomWeights.For(config, 4)) { ["h.2.ln_1.weight"] = new([8], new float[8]) };

        Assert.Contains("'h.1.ln_2.bias'", Assert.Throws<FormatException>(() => GptCheckpoint.Canonicalize("f", config, missing)).Message);
        Assert.Contains("'h.2.ln_1.weight'", Assert.Throws<FormatException>(() => GptCheckpoint.Canonicalize("f", config, unknown)).Message);
    }

    [Fact]
    public void TokenizerFiles_AreCopiedBeside()
    {
        using var dir = new TempDirectory();
        var config = RandomWeights.TinyConfig();

        GptCheckpoint.Save(dir.Path, config, RandomWeights.For(config, 1), Repository.Data("gpt2"));

        Assert.Equal(File.ReadAllBytes(Path.Combine(Repository.Data("gpt2"), "merges.txt")), File.ReadAllBytes(dir.File("merges.txt")));
        Assert.True(File.Exists(dir.File("vocab.json")));
    }
}
