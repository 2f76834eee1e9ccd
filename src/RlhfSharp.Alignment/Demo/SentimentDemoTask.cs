// Ziegler et al. 2019's mock-sentiment task on a plain-text corpus: continue the first words of a sentence so that the
// continuation reads positive, with VADER's compound score (Hutto & Gilbert 2014) of the continuation as the gold reward
// that the oracle's comparisons come from (Ziegler used a sentiment classifier trained on Amazon reviews in its place).
//   a. paragraphs of the corpus are pre-training documents; every HeldOutEvery-th paragraph is held out of pre-training;
//   b. every sentence gets one prompt, its first k words (k fixed per sentence by the task seed); training prompts come from
//      the pre-training paragraphs, held-out prompts from the held-out ones, minus any that equal a training prompt;
//   c. no SFT: Ziegler's policy and reference start from the pre-trained language model, and ours is trained on the very
//      corpus the prompts come from, so demonstrations would only repeat pre-training; the sft stage copies that model.
using RlhfSharp.Alignment.LanguageModeling;
using RlhfSharp.Feedback.Labelers;
using RlhfSharp.Tensors;
using RlhfSharp.Text;

namespace RlhfSharp.Alignment.Demo;

/// <summary>Settings of the mock-sentiment task's data.</summary>
public sealed record SentimentTaskOptions
{
    /// <summary>Fewest words of a sentence that make its prompt.</summary>
    public int MinPromptWords { get; init; } = 3;

    /// <summary>Most words of a sentence that make its prompt.</summary>
    public int MaxPromptWords { get; init; } = 6;

    /// <summary>Words a sentence must have after its prompt, so that the prompt is a start and not the whole sentence.</summary>
    public int MinRestWords { get; init; } = 4;

    /// <summary>Every this-many-th paragraph is held out of pre-training and supplies the evaluation prompts.</summary>
    public int HeldOutEvery { get; init; } = 20;

    /// <summary>A saved tokenizer folder (e.g. GPT-2's vocab.json + merges.txt); null learns a byte-level BPE on the corpus.</summary>
    public string? TokenizerDirectory { get; init; }

    /// <summary>Characters of the corpus the BPE is learned from (the start of the pre-training text; merges converge well before 4 MB).</summary>
    public int TokenizerCorpusChars { get; init; } = 1_500_000;

    /// <summary>
    /// Bradley–Terry temperature of the oracle on compound scores. Two continuations' scores differ by a few tenths when
    /// either carries sentiment; at 0.1 a gap of 0.3 is labelled the gold way 95% of the time (at 1, 57%: near a coin flip).
    /// On Austen, 0.03 raised the reward model's held-out accuracy (0.79 against 0.75, on its own cleaner labels) but not
    /// PPO's gold win rate (0.61 against 0.65–0.66 at the same KL), so the default stays at 0.1.
    /// </summary>
    public double OracleTemperature { get; init; } = 0.1;

    /// <summary>
    /// Pairs closer than this in compound score are ties and go unlabelled: two continuations without a sentiment word both
    /// score 0, a labeller has no preference there, and a coin-flip label would only add noise to the reward model's data.
    /// </summary>
    public double OracleTieThreshold { get; init; } = 0.05;

    /// <summary>Seed of the per-sentence prompt lengths.</summary>
    public ulong Seed { get; init; } = 1;

    public void Validate()
    {
        if (MinPromptWords < 1 || MaxPromptWords < MinPromptWords)
            throw new ArgumentException($"sentiment task: prompt words {MinPromptWords}..{MaxPromptWords} must satisfy 1 ≤ min ≤ max.");
        if (MinRestWords < 1) throw new ArgumentException($"sentiment task: MinRestWords = {MinRestWords} must be at least 1.");
        if (HeldOutEvery < 2) throw new ArgumentException($"sentiment task: HeldOutEvery = {HeldOutEvery} must be at least 2.");
        if (!(OracleTemperature > 0)) throw new ArgumentException($"sentiment task: OracleTemperature = {OracleTemperature} must be positive.");
        if (!(OracleTieThreshold >= 0)) throw new ArgumentException($"sentiment task: OracleTieThreshold = {OracleTieThreshold} must be non-negative.");
        if (TokenizerCorpusChars < 1000) throw new ArgumentException($"sentiment task: TokenizerCorpusChars = {TokenizerCorpusChars} must be at least 1000.");
    }
}

public sealed class SentimentDemoTask : IDemoTask
{
    private readonly VaderSentiment _vader;
    private readonly IReadOnlyList<string> _documents;
    private readonly string[] _trainingPrompts, _heldOutPrompts;

    /// <summary>Reads the corpus and the lexicon now, so a missing file fails before any stage runs.</summary>
    public SentimentDemoTask(string corpusPath, string lexiconPath, SentimentTaskOptions? options = null)
    {
        Options = options ?? new SentimentTaskOptions();
        Options.Validate();
        CorpusPath = corpusPath;
        var paragraphs = PlainTextCorpus.ReadParagraphs(corpusPath);
        if (!File.Exists(lexiconPath)) throw new FileNotFoundException($"sentiment task: lexicon {lexiconPath} not found.", lexiconPath);
        _vader = VaderSentiment.Load(lexiconPath);

        // a–b. Held-out paragraphs by position; one prompt per sentence long enough to have a continuation.
        var rng = new Rng(Options.Seed);
        var documents = new List<string>();
        List<string> training = [], heldOut = [];
        for (int p = 0; p < paragraphs.Count; p++)
        {
            bool held = p % Options.HeldOutEvery == Options.HeldOutEvery - 1;
            if (!held) documents.Add(paragraphs[p].Text);
            foreach (string sentence in PlainTextCorpus.Sentences(paragraphs[p].Text))
            {
                var words = PlainTextCorpus.Words(sentence);
                int k = Options.MinPromptWords + rng.NextInt(Options.MaxPromptWords - Options.MinPromptWords + 1);
                if (words.Length < k + Options.MinRestWords) continue;
                (held ? heldOut : training).Add(string.Join(' ', words[..k]));
            }
        }
        var trainingSet = training.ToHashSet(StringComparer.Ordinal);
        _documents = documents;
        _trainingPrompts = [.. training];
        _heldOutPrompts = [.. heldOut.Where(h => !trainingSet.Contains(h))];
        if (_trainingPrompts.Length == 0 || _heldOutPrompts.Length == 0)
            throw new InvalidDataException($"sentiment task: corpus {corpusPath} gave {_trainingPrompts.Length} training and {_heldOutPrompts.Length} held-out prompts; " +
                $"it needs sentences of at least {Options.MinPromptWords + Options.MinRestWords} words in at least {Options.HeldOutEvery} paragraphs.");
    }

    /// <summary>
    /// The benchmark's sizes: the whole corpus for pre-training, Ziegler's 24-token continuations, a KL target below the
    /// goal's 8 nats, and 256 held-out prompts so the win rate's 95% interval is about ±0.05 wide. PPO: with the story
    /// world's settings (learning rate 5e-4, β₀ 0.05, horizon 1000) β barely moved in 40 batches and KL reached 21 nats; a
    /// horizon of 400 episodes lets β move up to 3% per batch of 64, enough to hold the target. Tried on Austen, same
    /// pre-training and pairs: batches of 32 × 80 (win rate 0.65 at KL 5.9), learning rates 2.5e-4 and 5e-4 (no better).
    /// What moved the win rate was a longer PPO run at the KL target: at 60 batches (learning rate 1e-4, target 7) gold was
    /// still climbing at a flat KL, win rate 0.66 at KL 7.0; 100 batches at 2e-4, target 7.5, gave 0.83 [0.78, 0.87] at KL 7.3
    /// (target 8 on the same reward model: 0.78 at 7.8). 4000 pairs × 5 reward epochs gave a less accurate reward model (0.71).
    /// The ceiling was not PPO but a mismatch: a response cut at 24 tokens was scored without the EOS every comparison the
    /// reward model learned from ends with, so PPO optimised scores the model had never been trained on. Scoring cut
    /// responses with the EOS appended (PpoEndCutResponses) and 8000 pairs × 2 epochs (held-out accuracy 0.77, against a
    /// gold-vs-oracle ceiling of 0.95) gave 0.945 [0.910, 0.967] at KL 7.5 (seed 1) and 0.936 at KL 9.3 (seed 2, target
    /// 7.5: the adaptive β overshoots); the target of 6.5 leaves room for that overshoot below the goal's 8 nats.
    /// The over-optimisation stages are trimmed (snapshots every 20 updates on 64 prompts, best-of-32, two fixed β) to keep
    /// the default run near 12 minutes on 2 cores.
    /// </summary>
    public static DemoConfig DefaultConfig { get; } = new DemoConfig() with
    {
        PretrainDocuments = 1_000_000, VocabSize = 2048, PretrainSteps = 1500, Pairs = 8000, MaxNewTokens = 24, RewardEpochs = 2,
        PpoEndCutResponses = true, PpoSteps = 100, PpoBatchSize = 64, PpoLearningRate = 2e-4f, InitialKlCoef = 0.1, KlHorizon = 400, TargetKl = 6.5, EvalPrompts = 256,
        SnapshotEvery = 20, OverOptimisationPrompts = 64, BestOfNMax = 32, BestOfNPrompts = 64, FrontierBetas = [0.3, 0.1], FrontierSteps = 40,
    };

    /// <summary>Small sizes that still produce every stage and report section.</summary>
    public static DemoConfig QuickConfig { get; } = DemoConfig.Quick with { PretrainDocuments = 400, VocabSize = 384, PpoEndCutResponses = true };

    public SentimentTaskOptions Options { get; }

    public string CorpusPath { get; }

    public string Name => "sentiment";

    /// <summary>Every sentence start that training prompts are drawn from (with repeats, as the corpus has them).</summary>
    public IReadOnlyList<string> TrainingPromptPool => _trainingPrompts;

    /// <summary>Every sentence start that held-out prompts are drawn from.</summary>
    public IReadOnlyList<string> HeldOutPromptPool => _heldOutPrompts;

    /// <summary>The first <paramref name="count"/> training paragraphs in corpus order.</summary>
    public IReadOnlyList<string> PretrainDocuments(ulong seed, int count) => _documents.Count <= count ? _documents : _documents.Take(count).ToList();

    public ITokenizer CreateTokenizer(IReadOnlyList<string> documents, int vocabSize)
    {
        if (Options.TokenizerDirectory is string dir) return TokenizerFiles.Load(dir);
        var sample = new List<string>();
        long chars = 0;
        foreach (string d in documents)
        {
            if (chars >= Options.TokenizerCorpusChars) break;
            sample.Add(d);
            chars += d.Length;
        }
        return BpeTrainer.Train(sample, new BpeTrainerOptions { VocabSize = vocabSize });
    }

    public IReadOnlyList<SftExample>? SftExamples(ulong seed, int count) => null;

    public IReadOnlyList<string> TrainingPrompts(ulong seed, int count) => Draw(_trainingPrompts, seed, count);

    public IReadOnlyList<string> HeldOutPrompts(ulong seed, int count) => Draw(_heldOutPrompts, seed, count);

    /// <summary>VADER's compound score of the continuation alone: the prompt's own sentiment is not the policy's doing.</summary>
    public double Gold(string prompt, string response) => _vader.Compound(response);

    public double OracleTemperature => Options.OracleTemperature;

    public double OracleTieThreshold => Options.OracleTieThreshold;

    public string Subtitle(DemoConfig config) =>
        $"mock sentiment (Ziegler et al. 2019) on {Path.GetFileName(CorpusPath.TrimEnd(Path.DirectorySeparatorChar))}, gold = VADER compound of the continuation; " +
        $"no SFT (the pre-trained model is the reference), model {config.ModelSize}, seed {config.Seed}";

    /// <summary>No SFT stage trains here: the baseline PPO is judged against is the pre-trained model itself.</summary>
    public string ReferenceName => "pre-trained";

    /// <summary>A seeded sample without replacement while the pool lasts (then a fresh permutation).</summary>
    private static List<string> Draw(string[] pool, ulong seed, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var rng = new Rng(seed);
        var result = new List<string>(count);
        while (result.Count < count)
        {
            var order = rng.Permutation(pool.Length);
            for (int i = 0; i < order.Length && result.Count < count; i++) result.Add(pool[order[i]]);
        }
        return result;
    }
}
