// The built-in story world: a seeded generator of short English-like stories (our grammar and vocabulary),
// giving pre-training text, SFT demonstrations and RL prompts, plus the gold reward. `pretrain`, `sft` and `demo`
// run on it when given no files. Stories have a mood (positive, neutral, negative) that biases their word choice,
// so sentiment is learnable from the text, and the gold scorer can measure it.
namespace RlhfSharp.Text.StoryWorld;

/// <summary>One SFT example: a story opening and a well-formed continuation (which starts with a space).</summary>
public sealed record Demonstration(string Prompt, string Completion);

public static class Stories
{
    // Separate streams per use, so held-out prompts do not replay the demonstrations' openings.
    private const ulong CorpusStream = 0x51A7E5C0A1UL, DemonstrationStream = 0xD3E0AA11UL, PromptStream = 0x9B0F7E21UL;

    /// <summary>n stories of 3–5 sentences each.</summary>
    public static IReadOnlyList<string> Generate(ulong seed, int n) => Make(seed ^ CorpusStream, n, s => string.Join(" ", s));

    /// <summary>Pre-training text: n stories, one per line, each line ended by <paramref name="separator"/>.</summary>
    public static string Corpus(ulong seed, int n, string separator = "\n") =>
        string.Concat(Generate(seed, n).Select(story => story + separator));

    /// <summary>SFT pairs: the prompt is a story's first sentence; the completion is " " + the next one or two sentences.</summary>
    public static IReadOnlyList<Demonstration> Demonstrations(ulong seed, int n)
    {
        var rng = new StoryRng(seed ^ DemonstrationStream);
        var result = new List<Demonstration>(n);
        for (int i = 0; i < n; i++)
        {
            var sentences = Story(rng);
            int take = Math.Min(sentences.Count - 1, 1 + rng.NextInt(2));
            result.Add(new Demonstration(sentences[0], " " + string.Join(" ", sentences.Skip(1).Take(take))));
        }
        return result;
    }

    /// <summary>Held-out RL prompts: story openings from their own random stream.</summary>
    public static IReadOnlyList<string> Prompts(ulong seed, int n) => Make(seed ^ PromptStream, n, s => s[0]);

    /// <summary>n single sentences: every sentence of consecutive stories (openings, middles and endings), in order.</summary>
    public static IReadOnlyList<string> Sentences(ulong seed, int n)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        var rng = new StoryRng(seed);
        var result = new List<string>(n);
        while (result.Count < n) result.AddRange(Story(rng).Take(n - result.Count));
        return result;
    }

    /// <summary>
    /// A byte-level BPE tokenizer learned on 4,000 generated stories (deterministic). At the default size nearly
    /// every story word, with its leading space, is one token, so models see words rather than letters.
    /// </summary>
    public static Gpt2Tokenizer TrainTokenizer(int vocabSize = 1024) =>
        BpeTrainer.Train(Corpus(0, 4000), new BpeTrainerOptions { VocabSize = vocabSize });

    /// <summary>The gold reward of a completion (see <see cref="GoldScorer"/> for the definition).</summary>
    public static double GoldReward(string completion, string? prompt = null) => GoldScorer.Score(completion, prompt).Reward;

    private static IReadOnlyList<string> Make(ulong seed, int n, Func<List<string>, string> select)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        var rng = new StoryRng(seed);
        var result = new List<string>(n);
        for (int i = 0; i < n; i++) result.Add(select(Story(rng)));
        return result;
    }

    // An opening, one to three middle sentences, an ending; mood −1, 0 or +1 and one protagonist for the whole story.
    private static List<string> Story(StoryRng rng)
    {
        int mood = rng.NextInt(3) - 1;
        var openings = StoryGrammar.Templates.Where(t => t.Role == SentenceRole.Opening).ToArray();
        var middles = StoryGrammar.Templates.Where(t => t.Role == SentenceRole.Middle).ToArray();
        var endings = StoryGrammar.Templates.Where(t => t.Role == SentenceRole.Ending).ToArray();
        var hero = StoryGrammar.Character(rng, mood);
        var sentences = new List<string> { StoryGrammar.Generate(openings[rng.NextInt(openings.Length)], rng, mood, hero) };
        int middle = 1 + rng.NextInt(3);
        for (int i = 0; i < middle; i++) sentences.Add(StoryGrammar.Generate(middles[rng.NextInt(middles.Length)], rng, mood, hero));
        sentences.Add(StoryGrammar.Generate(endings[rng.NextInt(endings.Length)], rng, mood, hero));
        return sentences;
    }
}
