// Supervised fine-tuning (InstructGPT step 1, Ouyang et al. 2022 §3.5): the pre-trained model learns demonstrations by
// maximum likelihood of the completion given the prompt,
//     L(θ) = −(1/|C|) Σ_{(x,y)} Σ_{t ∈ y ∪ {EOS}} log π_θ(y_t | x, y_<t)        (|C| = completion tokens in the batch)
// Implementation details, numbered as in the code (LmTrainingLoop.cs holds 1–5):
//   a. prompt ++ completion ++ EOS, cut to the block from the prompt's start (TokenRows.Encode);
//   b. prompt positions and padding get weight 0 (right or left padding, positions count real tokens only);
//   c. the last HeldOutFraction of the examples is held out for loss and perplexity;
//   d. with Lora.R > 0 only a LoRA adapter trains (Hu et al. 2021); the result's Model is the adapted model.
using RlhfSharp.Models;
using RlhfSharp.Runs;
using RlhfSharp.Tensors;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment.LanguageModeling;

public sealed class SftTrainer(SftConfig config)
{
    private const ulong LoraStream = 0x10A7UL;

    public SftConfig Config { get; } = config;

    /// <summary>
    /// Fine-tunes <paramref name="model"/> in place on <paramref name="examples"/>. With a run folder, writes config.json,
    /// metrics.jsonl, TensorBoard events and checkpoints there; a folder opened with resume continues from its last
    /// checkpoint bit-identically. Cancellation stops after the current step and writes a checkpoint.
    /// </summary>
    public LmTrainResult Train(Gpt model, ITokenizer tokenizer, IReadOnlyList<SftExample> examples, RunDirectory? run = null,
        IProgress<AlignmentProgress>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        if (examples.Count < 2) throw new ArgumentException($"SFT needs at least 2 examples (one to train on, one held out); got {examples.Count}.");
        if (tokenizer.VocabSize > model.Config.VocabSize)
            throw new ArgumentException($"SFT: the tokenizer has {tokenizer.VocabSize} tokens but the model's vocabulary is {model.Config.VocabSize}.");
        if (Config.AppendEos && tokenizer.EosId is null)
            throw new ArgumentException("SFT: AppendEos is set but the tokenizer has no end-of-text token.");
        // The model learns the chat format it is trained in: a tokenizer without a template gets the default, which every
        // checkpoint and the saved model folder then carry in tokenizer_config.json (rendering and serving use the same one).
        tokenizer.ChatTemplate ??= ChatTemplate.For(tokenizer);
        // a. tokenise; b. masks are built per batch; c. held-out split inside the source.
        var rows = SftBatches.Encode(tokenizer, examples, model.Config.BlockSize, Config.AppendEos);
        var data = new SftBatchSource(rows, Config.Training, Config.Padding);
        if (run is not null && !run.Resumed) run.WriteConfig(Config);
        // d. LoRA: a handle on the same base with a fresh adapter (its own RNG stream of the seed).
        Config.Lora.Validate();
        if (Config.Lora.Enabled && model.Adapter is null)
            model = model.WithAdapter(LoraAdapter.Create(model, Config.Lora, new Rng(Config.Training.Seed ^ LoraStream)));
        return LmTrainingLoop.Run("sft", model, tokenizer, data, Config.Training, run, progress, ct) with { Model = model };
    }

    /// <summary>Mean completion-token loss of <paramref name="model"/> on <paramref name="examples"/> (the SFT objective, no training).</summary>
    public static double CompletionLoss(Gpt model, ITokenizer tokenizer, IReadOnlyList<SftExample> examples, int batchSize = 16, bool appendEos = true)
    {
        var rows = SftBatches.Encode(tokenizer, examples, model.Config.BlockSize, appendEos);
        return LmTrainingLoop.Evaluate(model, rows.Chunk(batchSize).Select(c => SftBatches.Build(c, SftPadding.Right)).ToList());
    }
}
