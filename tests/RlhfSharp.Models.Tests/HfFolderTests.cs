// Complete Hugging Face folders: weights written as BF16/F16 (rounded to nearest even, read back), generation_config.json,
// the reward model's config as GPT2ForSequenceClassification writes it (with a pad_token_id that is not the EOS its rows
// end with), and the trainer state under our own file name with the old name still read.
using System.Text.Json;
using RlhfSharp.Models.Checkpoints;
using RlhfSharp.Tensors;

namespace RlhfSharp.Models.Tests;

public sealed class HfFolderTests
{
    [Fact]
    public void Bf16AndF16_RoundToNearestEven_AndReadBack()
    {
        using var dir = new TempDirectory();
        // bf16 keeps 7 mantissa bits: 1 + 2^-8 lies halfway between 1 and 1 + 2^-7 and goes to the even one, 1;
        // 1 + 3·2^-8 lies halfway between 1 + 2^-7 (odd) and 1 + 2^-6 (even) and goes to 1 + 2^-6; 1 + 2^-8 + 2^-20 is past halfway.
        float[] x = [1f + 1f / 256, 1f + 3f / 256, 1f + 1f / 256 + 1f / (1 << 20), -2.5f, float.NaN, 1e30f];
        float[] bf16 = [1f, 1f + 1f / 64, 1f + 1f / 128, -2.5f, float.NaN];
        string path = Path.Combine(dir.Path, "b.safetensors");
        Safetensors.Write(path, new Dictionary<string, StoredTensor> { ["t"] = new([x.Length], x) }, dtype: SafetensorsDtype.BF16);
        var read = Safetensors.Read(path).Tensors["t"].Values;
        Assert.Equal(bf16, read[..5]);
        Assert.True(Math.Abs(read[5] / 1e30 - 1) < 1.0 / 256, $"bf16(1e30) = {read[5]}"); // bf16 keeps float32's range
        Assert.Contains("\"dtype\":\"BF16\"", System.Text.Encoding.UTF8.GetString(File.ReadAllBytes(path)));

        string f16 = Path.Combine(dir.Path, "h.safetensors");
        Safetensors.Write(f16, new Dictionary<string, StoredTensor> { ["t"] = new([x.Length], x) }, dtype: SafetensorsDtype.F16);
        // half keeps 10 mantissa bits: 1 + 2^-8 is exact; 1e30 overflows to +∞.
        Assert.Equal([1f + 1f / 256, 1f + 3f / 256, 1f + 1f / 256, -2.5f, float.NaN, float.PositiveInfinity], Safetensors.Read(f16).Tensors["t"].Values);
    }

    [Fact]
    public void RewardModelFolder_IsASequenceClassifier_WithAPadThatIsNotEos_AndEveryFolderHasAGenerationConfig()
    {
        using var dir = new TempDirectory();
        var config = new GptConfig { VocabSize = 20, BlockSize = 8, NEmbd = 8, NLayer = 1, NHead = 2, BosTokenId = 19, EosTokenId = 19 };
        var rm = Gpt.Create(config, new Rng(1), GptHeads.Reward);
        rm.Save(dir.Path, dtype: SafetensorsDtype.BF16);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir.Path, "config.json")));
        var c = doc.RootElement;
        Assert.Equal("GPT2ForSequenceClassification", c.GetProperty("architectures")[0].GetString());
        Assert.Equal(0, c.GetProperty("pad_token_id").GetInt32());
        Assert.Equal(1, c.GetProperty("num_labels").GetInt32());
        Assert.Equal("LABEL_0", c.GetProperty("id2label").GetProperty("0").GetString());
        Assert.Equal(0, c.GetProperty("label2id").GetProperty("LABEL_0").GetInt32());
        Assert.Equal("bfloat16", c.GetProperty("torch_dtype").GetString());
        Assert.Equal(0, GptConfig.ReadJson(Path.Combine(dir.Path, "config.json")).PadTokenId);
        Assert.Contains(GptCheckpoint.RewardHeadWeight, Safetensors.Read(Path.Combine(dir.Path, "model.safetensors")).Tensors.Keys);
        using var gen = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir.Path, GptCheckpoint.GenerationConfigFileName)));
        Assert.Equal(19, gen.RootElement.GetProperty("eos_token_id").GetInt32());
        Assert.Equal(19, gen.RootElement.GetProperty("pad_token_id").GetInt32());
        // BF16 weights load back as the rounded values.
        var back = Gpt.Load(dir.Path);
        Assert.Equal(Safetensors.ToBFloat16Bits(rm.Parameters[5]), (ushort)(BitConverter.SingleToUInt32Bits(back.Parameters[5]) >> 16));
    }

    private sealed record State(int Step);

    [Fact]
    public void TrainerState_IsWrittenUnderOurName_AndTheOldNameIsStillRead()
    {
        using var dir = new TempDirectory();
        TrainerCheckpoint.WriteState(dir.Path, new State(7));
        Assert.True(File.Exists(Path.Combine(dir.Path, "rlhf_trainer_state.json")));
        Assert.False(File.Exists(Path.Combine(dir.Path, "trainer_state.json")));
        File.Move(Path.Combine(dir.Path, TrainerCheckpoint.StateFileName), Path.Combine(dir.Path, TrainerCheckpoint.LegacyStateFileName));
        Assert.Equal(7, TrainerCheckpoint.ReadState<State>(dir.Path).Step);
    }
}
