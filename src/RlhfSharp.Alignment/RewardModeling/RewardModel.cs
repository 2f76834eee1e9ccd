// A trained reward model: a GPT trunk with a scalar head read at the last real token (HF's GPT2ForSequenceClassification
// `score.weight`), its tokenizer, and the normalisation r = gain·raw + bias fitted after training so that the reference
// policy's samples score mean 0 (std 1 with a gain): Ziegler et al. 2019 §2.2 and InstructGPT §3.5 do the same.
// An ensemble of M such models (bootstrap resamples) reports mean and spread (Christiano et al. 2017 §2.2.3).
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using RlhfSharp.Models;
using AtomicFile = RlhfSharp.Runs.AtomicFile;
using RlhfSharp.Tensors;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment.RewardModeling;

/// <summary>The affine map from the head's raw output to the reported reward.</summary>
/// <param name="Gain">Multiplies the raw score (1 unless the std was normalised too).</param>
/// <param name="Bias">Added after the gain.</param>
public sealed record RewardNormalization(double Gain = 1, double Bias = 0)
{
    public const string FileName = "reward_normalization.json";

    public double Apply(double raw) => Gain * raw + Bias;
}

public sealed class RewardModel
{
    public RewardModel(Gpt model, ITokenizer tokenizer, RewardNormalization? normalization = null)
    {
        if (!model.Heads.HasFlag(GptHeads.Reward))
            throw new ArgumentException("reward model: the GPT has no reward head (score.weight); build it with WithHeads(GptHeads.Reward, rng).");
        if (tokenizer.VocabSize > model.Config.VocabSize)
            throw new ArgumentException($"reward model: tokenizer has {tokenizer.VocabSize} ids but the model's vocabulary is {model.Config.VocabSize}.");
        Model = model;
        Tokenizer = tokenizer;
        Normalization = normalization ?? new RewardNormalization();
    }

    public Gpt Model { get; }
    public ITokenizer Tokenizer { get; }
    public RewardNormalization Normalization { get; set; }

    /// <summary>Raw head outputs for token rows (each prompt ++ response, EOS included if the response has one).</summary>
    public float[] RawScores(IReadOnlyList<int[]> rows, int batchSize = 32)
    {
        var result = new float[rows.Count];
        var opts = new GptForwardOptions { Logits = false, KeepActivations = false };   // scoring: nothing is backpropagated
        for (int start = 0; start < rows.Count; start += batchSize)
        {
            var chunk = rows.Skip(start).Take(batchSize).Select(r => r.Length > Model.Config.BlockSize ? r[^Model.Config.BlockSize..] : r).ToList();
            var pass = Model.Forward(TokenRows.RightPadded(chunk), opts);
            pass.Rewards!.CopyTo(result, start);
        }
        return result;
    }

    /// <summary>Normalised rewards for token rows.</summary>
    public float[] ScoreTokens(IReadOnlyList<int[]> rows)
    {
        var raw = RawScores(rows);
        for (int i = 0; i < raw.Length; i++) raw[i] = (float)Normalization.Apply(raw[i]);
        return raw;
    }

    /// <summary>Normalised reward of one response to one prompt (EOS appended, as in training).</summary>
    public double Score(string prompt, string response) => ScoreTokens([TokenRows.Encode(Tokenizer, prompt, response, Model.Config.BlockSize).Tokens])[0];

    /// <summary>Writes a model folder (config.json, model.safetensors, tokenizer files) plus the normalisation.</summary>
    public void Save(string directory)
    {
        Model.Save(directory);
        Tokenizer.Save(directory);
        // The tokenizer pads with the config's pad_token_id (not EOS), so transformers reads the score where we do.
        TokenizerConfig.SetPadToken(directory, Tokenizer, GptConfig.ReadJson(Path.Combine(directory, "config.json")).PadTokenId!.Value);
        var json = new JsonObject
        {
            ["gain"] = Normalization.Gain,
            ["bias"] = Normalization.Bias,
        };
        AtomicFile.WriteAllText(Path.Combine(directory, RewardNormalization.FileName), json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>Loads a folder written by <see cref="Save"/> (a missing normalisation file means gain 1, bias 0).</summary>
    public static RewardModel Load(string directory)
    {
        var gpt = Gpt.Load(directory);
        if (!gpt.Heads.HasFlag(GptHeads.Reward))
            throw new FormatException($"{directory}: not a reward model (no '{Models.Checkpoints.GptCheckpoint.RewardHeadWeight}' tensor).");
        var tokenizer = TokenizerFiles.Load(directory);
        var norm = new RewardNormalization();
        string file = Path.Combine(directory, RewardNormalization.FileName);
        if (File.Exists(file))
        {
            try
            {
                var obj = JsonNode.Parse(File.ReadAllText(file)) as JsonObject ?? throw new FormatException("not a JSON object");
                double gain = obj["gain"]?.GetValue<double>() ?? throw new FormatException("field \"gain\" is missing");
                double bias = obj["bias"]?.GetValue<double>() ?? throw new FormatException("field \"bias\" is missing");
                if (!double.IsFinite(gain) || !double.IsFinite(bias)) throw new FormatException($"gain {gain} and bias {bias} must be finite");
                norm = new RewardNormalization(gain, bias);
            }
            catch (Exception ex) when (ex is JsonException or FormatException or InvalidOperationException)
            {
                throw new FormatException($"{file}: {ex.Message}.", ex);
            }
        }
        return new RewardModel(gpt, tokenizer, norm);
    }
}

/// <summary>M reward models trained on bootstrap resamples; the mean is the reward, the spread drives query selection.</summary>
public sealed class RewardEnsemble
{
    public const string FileName = "ensemble.json";

    public RewardEnsemble(IReadOnlyList<RewardModel> members)
    {
        if (members.Count == 0) throw new ArgumentException("reward ensemble: no members.");
        Members = members;
    }

    public IReadOnlyList<RewardModel> Members { get; }

    public RewardModel First => Members[0];

    /// <summary>
    /// Holds every member's weights as <paramref name="dtype"/> in place (Gpt.Bf16.cs). A member with a LoRA adapter cannot
    /// be narrowed: its base is shared with the adapter's handle.
    /// </summary>
    public void HoldFrozenWeightsAs(FrozenDtype dtype)
    {
        if (dtype == FrozenDtype.F32) return;
        for (int i = 0; i < Members.Count; i++)
        {
            var model = Members[i].Model;
            if (model.Adapter is not null)
                throw new ArgumentException($"frozen_dtype {dtype.ToString().ToLowerInvariant()}: reward model member {i} is a LoRA adapter on its base; merge it first (`rlhf lora merge`) to hold it in BF16.");
            model.HoldFrozenWeightsAs(dtype);
        }
    }

    /// <summary>Per row: the members' mean normalised reward and their standard deviation (0 for one member).</summary>
    public (float[] Mean, float[] Std) ScoreTokens(IReadOnlyList<int[]> rows)
    {
        var all = Members.Select(m => m.ScoreTokens(rows)).ToArray();
        var mean = new float[rows.Count];
        var std = new float[rows.Count];
        for (int i = 0; i < rows.Count; i++)
        {
            double s = 0, sq = 0;
            foreach (var a in all) { s += a[i]; sq += a[i] * (double)a[i]; }
            double mu = s / all.Length;
            mean[i] = (float)mu;
            std[i] = all.Length > 1 ? (float)Math.Sqrt(Math.Max(0, (sq - all.Length * mu * mu) / (all.Length - 1))) : 0f;
        }
        return (mean, std);
    }

    public (double Mean, double Std) Score(string prompt, string response)
    {
        var row = TokenRows.Encode(First.Tokenizer, prompt, response, First.Model.Config.BlockSize).Tokens;
        var (m, s) = ScoreTokens([row]);
        return (m[0], s[0]);
    }

    /// <summary>Member 0 at the top of <paramref name="directory"/> (a plain reward-model folder), others in member-N/.</summary>
    public void Save(string directory)
    {
        Members[0].Save(directory);
        var names = new JsonArray { "." };
        for (int i = 1; i < Members.Count; i++)
        {
            string name = "member-" + i.ToString(CultureInfo.InvariantCulture);
            Members[i].Save(Path.Combine(directory, name));
            names.Add(name);
        }
        AtomicFile.WriteAllText(Path.Combine(directory, FileName), new JsonObject { ["members"] = names }.ToJsonString() + "\n");
    }

    /// <summary>Loads an ensemble folder, or a plain reward-model folder as an ensemble of one.</summary>
    public static RewardEnsemble Load(string directory)
    {
        if (!Directory.Exists(directory)) throw new DirectoryNotFoundException($"{directory}: reward model folder not found.");
        string file = Path.Combine(directory, FileName);
        if (!File.Exists(file)) return new RewardEnsemble([RewardModel.Load(directory)]);
        JsonArray members;
        try { members = (JsonNode.Parse(File.ReadAllText(file))?["members"] as JsonArray) ?? throw new FormatException("field \"members\" must be an array"); }
        catch (JsonException ex) { throw new FormatException($"{file}: {ex.Message}", ex); }
        return new RewardEnsemble(members.Select(n => RewardModel.Load(Path.Combine(directory, n?.GetValue<string>() ?? throw new FormatException($"{file}: a member name is null.")))).ToList());
    }
}
