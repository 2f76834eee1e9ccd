// TRL's dataset forms end to end: each form read from JSONL and from Parquet (written here with Parquet.Net), rendered
// through the chat template as TRL's maybe_apply_chat_template renders it; refusals naming file, line and the accepted
// forms; and a conversational preference file and a Parquet file training a reward model and DPO.
using System.Text.Json.Nodes;
using RlhfSharp.Alignment.Dpo;
using RlhfSharp.Alignment.LanguageModeling;
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Feedback;
using RlhfSharp.Models;
using RlhfSharp.Tensors;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment.Tests;

public sealed class DatasetFormsTests
{
    private const string Eos = "<|endoftext|>";

    private static JsonArray Msgs(params (string Role, string Content)[] m) =>
        new([.. m.Select(x => (JsonNode)new JsonObject { ["role"] = x.Role, ["content"] = x.Content })]);

    private static string WriteJsonl(TempDirectory tmp, string name, params JsonObject[] rows)
    {
        string path = tmp.File(name);
        File.WriteAllLines(path, rows.Select(r => r.ToJsonString()));
        return path;
    }

    private static string WriteParquet(TempDirectory tmp, string name, params JsonObject[] rows)
    {
        string path = tmp.File(name);
        using (var stream = File.Create(path)) Blocking.Run(() => ParquetRows.WriteAsync(stream, rows));
        return path;
    }

    [Fact]
    public void ConversationalPreferences_ExplicitAndImplicit_RenderAsTrl()
    {
        using var tmp = new TempDirectory();
        string path = WriteJsonl(tmp, "p.jsonl",
            new JsonObject { ["prompt"] = Msgs(("user", "Sky?")), ["chosen"] = Msgs(("assistant", "Blue.")), ["rejected"] = Msgs(("assistant", "Green.")) },
            new JsonObject { ["chosen"] = Msgs(("user", "Sky?"), ("assistant", "Blue.")), ["rejected"] = Msgs(("user", "Sky?"), ("assistant", "Green.")) },
            new JsonObject { ["chosen"] = "The sky is blue.", ["rejected"] = "The sky is green." });
        var ex = PreferenceData.ReadJsonl(path);
        // prompt = render(prompt, generation prompt); each answer = render(prompt ++ answer) minus the shared prefix.
        Assert.Equal(("User: Sky?\nAssistant:", " Blue." + Eos, " Green." + Eos, true), (ex[0].Prompt, ex[0].Responses[0], ex[0].Responses[1], ex[0].Templated));
        Assert.Equal((ex[0].Prompt, ex[0].Responses[0], ex[0].Responses[1]), (ex[1].Prompt, ex[1].Responses[0], ex[1].Responses[1]));
        // Standard implicit prompt: TRL's extract_prompt keeps the space with the answers.
        Assert.Equal(("The sky is", " blue.", " green.", false), (ex[2].Prompt, ex[2].Responses[0], ex[2].Responses[1], ex[2].Templated));
    }

    [Fact]
    public void SftForms_TextMessagesAndConversationalPromptCompletion()
    {
        using var tmp = new TempDirectory();
        string path = WriteJsonl(tmp, "s.jsonl",
            new JsonObject { ["text"] = "The sky is blue." },
            new JsonObject { ["messages"] = Msgs(("user", "Sky?"), ("assistant", "Blue.")) },
            new JsonObject { ["prompt"] = Msgs(("user", "Sky?")), ["completion"] = Msgs(("assistant", "Blue.")) },
            new JsonObject { ["prompt"] = "The sky is", ["completion"] = " blue." });
        var ex = SftData.ReadJsonl(path);
        Assert.Equal(new SftExample("", "The sky is blue.", path + ":1"), ex[0]);
        Assert.Equal(new SftExample("", "User: Sky?\nAssistant: Blue." + Eos, path + ":2", Templated: true), ex[1]);
        Assert.Equal(new SftExample("User: Sky?\nAssistant:", " Blue." + Eos, path + ":3", Templated: true), ex[2]);
        Assert.Equal(new SftExample("The sky is", " blue.", path + ":4"), ex[3]);

        // Templated rows keep the template's EOS as one token and get no second one; plain rows get ours.
        var tok = BpeTrainer.Train("User: Sky? Assistant: Blue. The sky is blue.", new BpeTrainerOptions { VocabSize = 270 });
        var (t1, _) = TokenRows.Encode(tok, ex[2].Prompt, ex[2].Completion, 64, templated: true);
        Assert.Equal(1, t1.Count(t => t == tok.EosId));
        Assert.Equal(tok.EosId, t1[^1]);
        var (t3, _) = TokenRows.Encode(tok, ex[3].Prompt, ex[3].Completion, 64);
        Assert.Equal([.. tok.Encode("The sky is"), .. tok.Encode(" blue."), tok.EosId!.Value], t3);
    }

    [Fact]
    public void UnpairedAndPromptOnlyForms()
    {
        using var tmp = new TempDirectory();
        string kto = WriteParquet(tmp, "k.parquet",
            new JsonObject { ["prompt"] = "The sky is", ["completion"] = " blue.", ["label"] = true },
            new JsonObject { ["prompt"] = "The sky is", ["completion"] = " green.", ["label"] = false });
        var u = UnpairedData.Read(kto);
        Assert.Equal([true, false], u.Select(x => x.Desirable));
        Assert.Equal(kto + ": row 2", u[1].Source);

        string prompts = WriteJsonl(tmp, "q.jsonl", new JsonObject { ["prompt"] = Msgs(("user", "Sky?")) }, new JsonObject { ["prompt"] = "Once" });
        Assert.Equal(["User: Sky?\nAssistant:", "Once"], PromptData.Read(prompts));
        // A finished assistant turn would put the EOS token inside a generation prompt: refused.
        string bad = WriteJsonl(tmp, "b.jsonl", new JsonObject { ["prompt"] = Msgs(("user", "a"), ("assistant", "b"), ("user", "c")) });
        var ex = Assert.Throws<FormatException>(() => PromptData.Read(bad));
        Assert.StartsWith(bad + ":1: field \"prompt\" renders with the special token", ex.Message);
    }

    [Fact]
    public void RefusedForms_NameFileLineAndTheAcceptedForms()
    {
        using var tmp = new TempDirectory();
        string path = WriteJsonl(tmp, "r.jsonl", new JsonObject { ["prompt"] = "a", ["chosen"] = "b", ["rejected"] = "c" }, new JsonObject { ["prompt"] = "x", ["completion"] = "y", ["label"] = true });
        var ex = Assert.Throws<FormatException>(() => PreferenceData.ReadJsonl(path));
        Assert.StartsWith(path + ":2: this is an unpaired preference", ex.Message);
        Assert.Contains(DatasetForms.Preference, ex.Message);
        string sft = WriteJsonl(tmp, "s.jsonl", new JsonObject { ["question"] = "a" });
        ex = Assert.Throws<FormatException>(() => SftData.ReadJsonl(sft));
        Assert.Equal($"{sft}:1: not an SFT example; the accepted forms are {DatasetForms.Sft}.", ex.Message);
        string msg = WriteJsonl(tmp, "m.jsonl", new JsonObject { ["messages"] = new JsonArray(new JsonObject { ["role"] = "user", ["content"] = 3 }) });
        ex = Assert.Throws<FormatException>(() => SftData.ReadJsonl(msg));
        Assert.StartsWith(msg + ":1: field \"messages[0].content\" must be a string", ex.Message);
    }

    // The same preferences as a conversational JSONL file and as a Parquet file: identical examples, and both train a reward
    // model (every training pair ranked right afterwards) and DPO (loss from ln 2 down, every parameter moved).
    [Fact]
    public void ConversationalJsonlAndParquet_TrainARewardModelAndDpo()
    {
        using var tmp = new TempDirectory();
        string[] topics = ["sky", "sea", "sun", "tree", "bird", "cat", "dog", "rain"];
        var rows = topics.Select(t => new JsonObject
        {
            ["prompt"] = Msgs(("user", $"Tell me about the {t}.")),
            ["chosen"] = Msgs(("assistant", $"The {t} is lovely.")),
            ["rejected"] = Msgs(("assistant", "No.")),
        }).ToArray();
        string jsonl = WriteJsonl(tmp, "prefs.jsonl", rows);
        string parquet = WriteParquet(tmp, "prefs.parquet", rows);
        var fromJsonl = PreferenceData.ReadJsonl(jsonl);
        var fromParquet = PreferenceData.ReadJsonl(parquet);
        Assert.Equal(fromJsonl.Select(e => (e.Prompt, e.Responses[0], e.Responses[1], e.Templated)), fromParquet.Select(e => (e.Prompt, e.Responses[0], e.Responses[1], e.Templated)));

        var tok = BpeTrainer.Train(string.Join(" ", fromJsonl.Select(e => e.Prompt + e.Responses[0] + e.Responses[1]).Select(s => s.Replace(Eos, " "))),
            new BpeTrainerOptions { VocabSize = 320 });
        var sft = Gpt.Create(new GptConfig { VocabSize = tok.VocabSize, BlockSize = 48, NEmbd = 32, NLayer = 1, NHead = 2, EosTokenId = tok.EosId }, new Rng(3));

        var reward = new RewardTrainer(new RewardTrainerConfig { Epochs = 30, BatchSize = 8, LearningRate = 3e-3f, HeldOutFraction = 0, NormalizationSamples = 8, NormalizationMaxNewTokens = 4, Seed = 1 })
            .Train(sft, tok, fromJsonl);
        var rm = reward.Ensemble.First;
        foreach (var e in fromParquet)
        {
            var rowsOf = e.Responses.Select(r => TokenRows.Encode(tok, e.Prompt, r, 48, templated: true).Tokens).ToList();
            var s = rm.ScoreTokens(rowsOf);
            Assert.True(s[0] > s[1], $"reward model ranks the rejected answer first for {e.Prompt}");
        }

        var before = (float[])sft.Parameters.Clone();
        var dpo = new DpoTrainer(new DpoConfig { Epochs = 10, BatchSize = 8, LearningRate = 3e-3f, HeldOutFraction = 0 }).Train(sft, tok, fromParquet);
        Assert.Equal(Math.Log(2), dpo.History[0]["train/loss"], 5);
        Assert.True(dpo.History[^1]["train/loss"] < 0.5, $"DPO loss {dpo.History[^1]["train/loss"]} did not fall below 0.5");
        Assert.NotEqual(before, dpo.Policy.Parameters);
    }
}
