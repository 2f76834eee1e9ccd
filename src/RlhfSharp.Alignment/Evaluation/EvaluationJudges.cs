// Who judges `rlhf eval`'s comparisons: the gold scorer itself (deterministic), the noisy oracle over it (Bradley–Terry),
// or an AI judge at an OpenAI-compatible URL; and which gold scorer: the story world's, or VADER's compound sentiment
// (Ziegler et al.'s mock-sentiment task).
using RlhfSharp.Feedback.Labelers;
using RlhfSharp.Text.StoryWorld;

namespace RlhfSharp.Alignment.Evaluation;

public static class EvaluationJudges
{
    /// <summary>(prompt, response) → true reward: VADER's compound score with the lexicon file, else the story world's gold reward.</summary>
    public static Func<string, string, double> GoldScorer(string? vaderLexicon)
    {
        if (vaderLexicon is null) return (prompt, response) => Stories.GoldReward(response, prompt);
        var vader = VaderSentiment.Load(vaderLexicon);
        return (_, response) => vader.Compound(response);
    }

    /// <summary>
    /// "gold" (<see cref="GoldJudge"/>), "oracle" (<see cref="OracleLabeler"/> seeded by <paramref name="seed"/>) or the
    /// http(s) URL of an API root (<see cref="AiJudge"/> asking for <paramref name="model"/>, its key in the environment
    /// variable <paramref name="apiKeyVariable"/>).
    /// </summary>
    public static ILabeler Create(string spec, Func<string, string, double> gold, ulong seed, string model, string? apiKeyVariable) => spec switch
    {
        "gold" => new GoldJudge(gold),
        "oracle" => new OracleLabeler((p, c) => gold(p, c.Content), new OracleOptions(Seed: (int)(seed & int.MaxValue))),
        _ when Uri.TryCreate(spec, UriKind.Absolute, out var u) && (u.Scheme == "http" || u.Scheme == "https")
            => new AiJudge(new AiJudgeOptions(spec, model, ApiKeyVariable: apiKeyVariable)),
        _ => throw new ArgumentException($"judge: expected gold, oracle or an http(s) URL; got \"{spec}\"."),
    };
}
