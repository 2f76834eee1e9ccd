// RL on a metric from the command line (the toy translation task): `mt data` → `pretrain` → `sft` → `ppo --reward-metric
// bleu` → `mt eval`, all tiny (the pipeline and its columns are tested here; BLEU before and after RL is measured in
// docs/alignment.md), and the one-line errors when the reward is named twice, not at all, a prompt lacks its reference, or
// a PPO-ptx pair lacks its completion.
using System.Diagnostics;
using System.Text.Json;
using RlhfSharp.Models;
using RlhfSharp.Tensors;
using RlhfSharp.Text.StoryWorld;
using Xunit.Abstractions;

namespace RlhfSharp.Cli.Tests;

[Collection(ConsoleCollection.Name)]
public sealed class MtTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "rlhf-mt-" + Guid.NewGuid().ToString("N")[..8]);

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    [Fact]
    public void Given_translation_data_When_sft_then_ppo_on_bleu_Then_metrics_carry_the_bleu_reward_and_eval_scores_held_out()
    {
        var clock = Stopwatch.StartNew();
        string data = Path.Combine(_dir, "data"), basePath = Path.Combine(_dir, "base"), sft = Path.Combine(_dir, "sft"), ppo = Path.Combine(_dir, "ppo");
        // Given the task's files,
        var write = RlhfRunner.Run("mt", "data", "--out", data, "--pairs", "64", "--prompts", "16", "--held-out", "8", "--corpus", "300", "--seed", "2");
        Assert.True(write.Exit == 0, string.Join(" | ", write.ErrorLines));
        var heldOut = File.ReadAllLines(Path.Combine(data, "heldout.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(8, heldOut.Count);
        Assert.All(heldOut, row => Assert.Equal(row.GetProperty("reference").GetString(),
            Translation.Translate(row.GetProperty("prompt").GetString()!["Translate: ".Length..].TrimEnd('\n'))));
        // a tiny model pre-trained on both languages and fine-tuned on the pairs (MLE),
        Run("pretrain", "--corpus", Path.Combine(data, "corpus.txt"), "--vocab-size", "1024", "--steps", "4", "--batch-size", "4", "--eval-interval", "4", "--eval-batches", "1",
            "--out", basePath, "--run", Path.Combine(_dir, "runs", "pre"));
        Run("sft", "--model", basePath, "--data", Path.Combine(data, "train.jsonl"), "--steps", "2", "--batch-size", "4", "--eval-interval", "2", "--eval-batches", "1",
            "--out", sft, "--run", Path.Combine(_dir, "runs", "sft"));
        output.WriteLine($"{clock.Elapsed.TotalSeconds:F1} s: data, pretrain, sft");

        // When PPO optimises sentence BLEU against the prompts' references (value model: the SFT trunk, fresh head),
        string run = Path.Combine(_dir, "runs", "ppo");
        var rl = Run("ppo", "--policy", sft, "--reward-metric", "bleu", "--prompts", Path.Combine(data, "prompts.jsonl"), "--steps", "2",
            "--batch-size", "8", "--mini-batch-size", "4", "--ppo-epochs", "1", "--max-new-tokens", "12", "--out", ppo, "--run", run,
            "--ptx-corpus", Path.Combine(data, "train.jsonl"), "--ptx-coef", "0.5", "--ptx-batch-size", "4");
        output.WriteLine($"{clock.Elapsed.TotalSeconds:F1} s: ppo\n{rl}");

        // Then every step logs BLEU and chrF on their 0–100 scale, the reward (objective/scores) being BLEU ÷ 100,
        var steps = File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Select(l => JsonDocument.Parse(l).RootElement)
            .Where(m => m.TryGetProperty("objective/scores", out _)).ToList();
        Assert.Equal(2, steps.Count);
        foreach (var m in steps)
        {
            double bleu = m.GetProperty("objective/bleu").GetDouble();
            Assert.InRange(bleu, 0, 100);
            Assert.InRange(m.GetProperty("objective/chrf").GetDouble(), 0, 100);
            Assert.Equal(bleu / 100, m.GetProperty("objective/scores").GetDouble(), 5);
            // the MLE term of the mixed objective (PPO-ptx on the SFT pairs) is a finite, positive log-loss,
            Assert.InRange(m.GetProperty("loss/ptx_avg").GetDouble(), 1e-3, 50);
        }
        Assert.True(File.Exists(Path.Combine(ppo, "model.safetensors")));
        // and `mt eval` scores the policy's greedy translations of the held-out prompts.
        var eval = Run("mt", "eval", "--model", ppo, "--data", Path.Combine(data, "heldout.jsonl"), "--max-new-tokens", "12");
        var scores = JsonDocument.Parse(eval).RootElement;
        Assert.Equal(8, scores.GetProperty("sentences").GetInt32());
        Assert.InRange(scores.GetProperty("corpus_bleu").GetDouble(), 0, 100);
        Assert.InRange(scores.GetProperty("sentence_chrf").GetDouble(), 0, 100);
        output.WriteLine($"{clock.Elapsed.TotalSeconds:F1} s in all");
    }

    [Fact]
    public void Ppo_names_its_reward_once_and_a_metric_needs_a_reference_on_every_prompt()
    {
        Directory.CreateDirectory(_dir);
        string model = Path.Combine(_dir, "model");
        var tok = RlhfSharp.Text.CharTokenizer.FromCorpus("Translate: Tom smiled. Mia sang.\nbo");
        Gpt.Create(new GptConfig { VocabSize = tok.VocabSize, BlockSize = 32, NEmbd = 16, NLayer = 1, NHead = 1, EosTokenId = tok.EosId }, new Rng(1)).Save(model);
        tok.Save(model);
        string prompts = Path.Combine(_dir, "prompts.jsonl");
        File.WriteAllLines(prompts, ["{\"prompt\": \"Translate: Tom smiled.\\n\", \"reference\": \"Tom bo.\"}", "{\"prompt\": \"Translate: Mia sang.\\n\"}"]);
        string[] common = ["ppo", "--policy", model, "--prompts", prompts, "--out", Path.Combine(_dir, "out"), "--run", Path.Combine(_dir, "run"), "--steps", "1"];

        var both = RlhfRunner.Run([.. common, "--reward", model, "--reward-metric", "bleu"]);
        Assert.Equal(1, both.Exit);
        Assert.Equal("rlhf: error: ppo: --reward and --reward-metric are exclusive: give a reward model folder or a metric, not both.", Assert.Single(both.ErrorLines));

        var neither = RlhfRunner.Run(common);
        Assert.Equal(1, neither.Exit);
        Assert.Contains("name the reward: --reward RM", Assert.Single(neither.ErrorLines), StringComparison.Ordinal);

        // PPO-ptx on SFT pairs: a row without its completion is one error naming the file and line.
        string pairs = Path.Combine(_dir, "pairs.jsonl");
        File.WriteAllLines(pairs, ["{\"prompt\": \"Translate: Tom smiled.\\n\", \"completion\": \"Tom bo.\"}", "{\"prompt\": \"Translate: Mia sang.\\n\"}"]);
        string referenced = Path.Combine(_dir, "referenced.jsonl");
        File.WriteAllLines(referenced, ["{\"prompt\": \"Translate: Tom smiled.\\n\", \"reference\": \"Tom bo.\"}"]);
        var badPtx = RlhfRunner.Run(["ppo", "--policy", model, "--prompts", referenced, "--out", Path.Combine(_dir, "out"), "--run", Path.Combine(_dir, "run"), "--steps", "1",
            "--reward-metric", "bleu", "--ptx-corpus", pairs, "--ptx-coef", "1"]);
        Assert.Equal(1, badPtx.Exit);
        Assert.StartsWith($"rlhf: error: {pairs}:2: ", Assert.Single(badPtx.ErrorLines), StringComparison.Ordinal);

        var missing = RlhfRunner.Run([.. common, "--reward-metric", "chrf"]);
        Assert.Equal(1, missing.Exit);
        Assert.Equal($"rlhf: error: {prompts}:2: field \"reference\" is missing: a metric reward compares each response with its prompt's reference.",
            Assert.Single(missing.ErrorLines));
    }

    private string Run(params string[] args)
    {
        var r = RlhfRunner.Run(args);
        Assert.True(r.Exit == 0, $"rlhf {args[0]}: exit {r.Exit}: {string.Join(" | ", r.ErrorLines)}");
        return r.Out;
    }
}
