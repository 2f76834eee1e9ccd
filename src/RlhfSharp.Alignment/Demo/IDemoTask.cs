// What a demo run is about: the data side of DemoPipeline (corpus, tokenizer, demonstrations, prompts, gold scorer, how the
// oracle labels). The story world is the built-in task; SentimentDemoTask is Ziegler et al. 2019's mock-sentiment task.
using RlhfSharp.Alignment.LanguageModeling;
using RlhfSharp.Text;
using RlhfSharp.Text.StoryWorld;

namespace RlhfSharp.Alignment.Demo;

/// <summary>The data a demo run trains and judges on; the pipeline's stages are the same for every task.</summary>
public interface IDemoTask
{
    /// <summary>Short name recorded in the run folder (task.txt) and used by `rlhf demo --task`.</summary>
    string Name { get; }

    /// <summary>Pre-training documents (joined by EOS into one token stream); <paramref name="count"/> caps how many.</summary>
    IReadOnlyList<string> PretrainDocuments(ulong seed, int count);

    /// <summary>The tokenizer every model of the run uses, learned from (or chosen for) <paramref name="documents"/>.</summary>
    ITokenizer CreateTokenizer(IReadOnlyList<string> documents, int vocabSize);

    /// <summary>SFT demonstrations, or null when the pre-trained model itself is the reference policy (the sft stage then copies it).</summary>
    IReadOnlyList<SftExample>? SftExamples(ulong seed, int count);

    /// <summary>Prompts for labelled pairs and PPO rollouts; the same seed gives the same prompts.</summary>
    IReadOnlyList<string> TrainingPrompts(ulong seed, int count);

    /// <summary>Prompts the evaluation judges policies on; a task with a fixed pool (a corpus) keeps them out of <see cref="TrainingPrompts"/>.</summary>
    IReadOnlyList<string> HeldOutPrompts(ulong seed, int count);

    /// <summary>The gold reward of <paramref name="response"/> to <paramref name="prompt"/> (higher is better).</summary>
    double Gold(string prompt, string response);

    /// <summary>Bradley–Terry temperature of the oracle on gold rewards: small enough that labels carry the gold ordering.</summary>
    double OracleTemperature { get; }

    /// <summary>Pairs whose gold rewards differ by less than this are ties and are not labelled (0: never).</summary>
    double OracleTieThreshold { get; }

    /// <summary>The report's subtitle.</summary>
    string Subtitle(DemoConfig config);

    /// <summary>What the report and the CLI summary call the baseline and KL reference: "SFT", or "pre-trained" for a task without demonstrations.</summary>
    string ReferenceName { get; }
}

/// <summary>The built-in story world: generated stories, demonstrations and prompts, judged by the story gold scorer.</summary>
public sealed class StoryDemoTask : IDemoTask
{
    public string Name => "story";

    public IReadOnlyList<string> PretrainDocuments(ulong seed, int count) => PretrainTrainer.StoryWorldDocuments(seed, count);

    public ITokenizer CreateTokenizer(IReadOnlyList<string> documents, int vocabSize) =>
        BpeTrainer.Train(string.Join("\n", documents), new BpeTrainerOptions { VocabSize = vocabSize });

    public IReadOnlyList<SftExample>? SftExamples(ulong seed, int count) => SftData.StoryWorld(seed, count);

    // The story world generates its prompts: a different seed is a different stream, so held-out prompts are a fresh draw.
    public IReadOnlyList<string> TrainingPrompts(ulong seed, int count) => Stories.Prompts(seed, count);

    public IReadOnlyList<string> HeldOutPrompts(ulong seed, int count) => Stories.Prompts(seed, count);

    public double Gold(string prompt, string response) => Stories.GoldReward(response, prompt);

    // Gold rewards differ by tenths between two samples; at the Bradley–Terry temperature 1 the oracle's labels are close to
    // coin flips and the reward model learns nothing. 0.1 (and the reward trainer's 1e-3 learning rate) are the settings
    // RewardTrainerTests uses to reach the oracle's self-agreement.
    public double OracleTemperature => 0.1;

    public double OracleTieThreshold => 0;

    public string Subtitle(DemoConfig config) => $"story world, model {config.ModelSize}, seed {config.Seed}";

    public string ReferenceName => "SFT";
}
