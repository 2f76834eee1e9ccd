// Pre-training (the "pre-trained model p_PT" of InstructGPT and Ziegler et al.): a GPT learns the next token of raw text,
//     L(θ) = −(1/BT) Σ_{b,t} log p_θ(x_{b,t+1} | x_{b,≤t})
// on windows of T+1 tokens cut from one token stream (documents joined by EOS, as GPT-2's WebText training did).
// Implementation details, numbered as in the code (LmTrainingLoop.cs holds 1–5):
//   a. the stream's last HeldOutFraction is held out; held-out windows are fixed, spread evenly over it;
//   b. training windows start every T tokens and are visited in a fresh shuffled order each epoch;
//   c. initialisation is GPT-2's (Gpt.Create), from its own stream of the seed.
using RlhfSharp.Models;
using RlhfSharp.Runs;
using RlhfSharp.Tensors;
using RlhfSharp.Text;
using RlhfSharp.Text.StoryWorld;

namespace RlhfSharp.Alignment.LanguageModeling;

public sealed class PretrainTrainer(PretrainConfig config)
{
    private const ulong InitStream = 0x1A17C0DEUL;

    public PretrainConfig Config { get; } = config;

    /// <summary>The architecture this config trains with <paramref name="tokenizer"/>'s vocabulary (EOS also serves as BOS, as in GPT-2).</summary>
    public GptConfig ModelConfig(ITokenizer tokenizer)
    {
        var named = GptConfig.Named(Config.ModelSize, tokenizer.VocabSize);
        if (Config.BlockSize < 0) throw new ArgumentException($"pretrain config: BlockSize = {Config.BlockSize} is negative.");
        var config = named with
        {
            BlockSize = Config.BlockSize > 0 ? Config.BlockSize : named.BlockSize,
            Dropout = Config.Dropout,
            EosTokenId = tokenizer.EosId,
            BosTokenId = tokenizer.EosId,
        };
        config.Validate("pretrain config");
        return config;
    }

    /// <summary>c. A freshly initialised model for <paramref name="tokenizer"/>.</summary>
    public Gpt CreateModel(ITokenizer tokenizer) => Gpt.Create(ModelConfig(tokenizer), new Rng(Config.Training.Seed ^ InitStream));

    /// <summary>
    /// Trains <paramref name="model"/> in place on <paramref name="tokens"/>. With a run folder, writes config.json,
    /// metrics.jsonl, TensorBoard events and checkpoints there; a folder opened with resume continues from its last
    /// checkpoint bit-identically. Cancellation stops after the current step and writes a checkpoint.
    /// </summary>
    public LmTrainResult Train(Gpt model, ITokenizer tokenizer, int[] tokens, RunDirectory? run = null,
        IProgress<AlignmentProgress>? progress = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokens);
        Config.Training.Validate("pretrain config");
        int T = model.Config.BlockSize;
        var data = new TokenStreamSource(tokens, T, model.Config.VocabSize, Config.Training);
        if (run is not null && !run.Resumed) run.WriteConfig(Config);
        return LmTrainingLoop.Run("pretrain", model, tokenizer, data, Config.Training, run, progress, ct);
    }

    /// <summary>Encodes documents into one stream, each followed by EOS when the tokenizer has one.</summary>
    public static int[] Tokenize(ITokenizer tokenizer, IEnumerable<string> documents)
    {
        var stream = new List<int>();
        foreach (string doc in documents)
        {
            stream.AddRange(tokenizer.Encode(doc));
            if (tokenizer.EosId is int eos) stream.Add(eos);
        }
        return stream.ToArray();
    }

    /// <summary>The built-in corpus: <paramref name="count"/> story-world stories (used when no corpus is given).</summary>
    public static IReadOnlyList<string> StoryWorldDocuments(ulong seed, int count) => Stories.Generate(seed, count);
}

/// <summary>Windows of T+1 tokens of one stream: a. held-out tail, b. shuffled training windows at stride T.</summary>
internal sealed class TokenStreamSource : ILmBatchSource
{
    private readonly int[] _tokens;
    private readonly int _T, _batchSize, _trainWindows;
    private readonly EpochOrder _order;

    public TokenStreamSource(int[] tokens, int T, int vocab, LmTrainingOptions o)
    {
        for (int i = 0; i < tokens.Length; i++)
            if ((uint)tokens[i] >= (uint)vocab)
                throw new ArgumentException($"pretrain: token {tokens[i]} at stream position {i} is outside the model's vocabulary [0, {vocab}).");
        int heldOutLength = (int)Math.Ceiling(tokens.Length * o.HeldOutFraction);
        int trainLength = tokens.Length - heldOutLength;
        if (trainLength < T + 1 || heldOutLength < T + 1)
            throw new ArgumentException(
                $"pretrain: {tokens.Length} tokens are too few for block size {T}: training ({trainLength}) and held-out ({heldOutLength}) parts each need at least {T + 1}. Give more text, a smaller block or a larger HeldOutFraction.");
        _tokens = tokens;
        _T = T;
        _batchSize = o.BatchSize;
        _trainWindows = (trainLength - 1) / T; // window w covers [w·T, w·T + T], inside the training part
        _order = new EpochOrder(_trainWindows, o.Seed);

        // a. Fixed held-out windows, evenly spread over the tail.
        int available = (heldOutLength - 1) / T;
        int wanted = Math.Min(available, o.EvalBatches * o.BatchSize);
        var starts = Enumerable.Range(0, wanted).Select(i => trainLength + (int)((long)i * available / wanted) * T).ToList();
        HeldOut = starts.Chunk(o.BatchSize).Select(Window).ToList();
    }

    public LmDataPosition Position { get => _order.Position; set => _order.Position = value; }

    public IReadOnlyList<LmBatch> HeldOut { get; }

    public LmBatch Next()
    {
        var starts = new int[_batchSize];
        for (int b = 0; b < starts.Length; b++) starts[b] = _order.Next() * _T;
        return Window(starts);
    }

    // Rows x[s .. s+T), targets x[s+1 .. s+T].
    private LmBatch Window(int[] starts)
    {
        int B = starts.Length, T = _T;
        var input = new int[B * T];
        var targets = new int[B * T];
        for (int b = 0; b < B; b++)
        {
            Array.Copy(_tokens, starts[b], input, b * T, T);
            Array.Copy(_tokens, starts[b] + 1, targets, b * T, T);
        }
        var weights = new float[B * T];
        weights.AsSpan().Fill(1f);
        return new LmBatch(new GptInput(B, T, input), targets, weights, (long)B * T);
    }
}
