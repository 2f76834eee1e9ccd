// The AI judge (RLAIF, Bai et al. 2022; Lee et al. 2023): an LLM behind any OpenAI-compatible chat-completions
// endpoint picks the better response. It is asked in both orders and the two verdicts are averaged, which
// cancels position bias; an answer it cannot parse becomes a skip with the reason, and so does a query too long for the
// judge's context (a 400 with code context_length_exceeded, as OpenAI, vLLM and `rlhf serve` send); calls time out and retry.
// The HTTP side (timeouts, Retry-After, jittered back-off) is ChatEndpoint's, shared with Constitutional AI's policy and
// critic. Hand-written rather than Polly: it is a few lines, and the loop also owns the per-request timeout and the
// attempt count the error reports.
using System.Text;
using System.Text.RegularExpressions;
using OpenAI.Chat;

namespace RlhfSharp.Feedback.Labelers;

/// <summary>Where the judge lives and how it is asked.</summary>
/// <param name="BaseUrl">The API root that holds /chat/completions, e.g. http://127.0.0.1:8080/v1.</param>
/// <param name="Model">The model name sent with each request.</param>
/// <param name="ApiKeyVariable">Name of the environment variable holding the API key; null for servers that need none.</param>
/// <param name="Timeout">Per-request time limit.</param>
/// <param name="MaxRetries">Retries after a timeout, a 429 or a 5xx before giving up.</param>
/// <param name="InitialBackoff">Wait before the first retry; doubled for each further one.</param>
/// <param name="Instructions">The system message: what "better" means for this campaign.</param>
public sealed record AiJudgeOptions(
    string BaseUrl,
    string Model,
    string? ApiKeyVariable = "OPENAI_API_KEY",
    TimeSpan? Timeout = null,
    int MaxRetries = 3,
    TimeSpan? InitialBackoff = null,
    string Instructions = AiJudge.DefaultInstructions);

public sealed partial class AiJudge : ILabeler
{
    /// <summary>The default system message (what "better" means); `rlhf judge train` trains a judge on exactly this.</summary>
    public const string DefaultInstructions = "You compare responses to a prompt. Reply with the number of the better response and nothing else, or with the word tie if they are equally good.";

    /// <summary>The most tokens a verdict may take (the request's max_completion_tokens): a judge's context must hold the question and these.</summary>
    public const int MaxAnswerTokens = 16;

    private readonly AiJudgeOptions _options;
    private readonly ChatEndpoint _endpoint;

    public AiJudge(AiJudgeOptions options, string name = "ai-judge")
    {
        _options = options ?? throw new ArgumentNullException(nameof(options));
        _endpoint = new ChatEndpoint(new ChatEndpointOptions(options.BaseUrl, options.Model, options.ApiKeyVariable, options.Timeout,
            options.MaxRetries, options.InitialBackoff), "AI judge");
        Name = name;
    }

    public string Name { get; }

    /// <summary>
    /// Refuses an endpoint nothing answers at, before any work is spent on it (the retries in AnswerAsync are for a busy
    /// server, not a missing one). Any HTTP answer, even a 404 from a server without /models, counts as reachable.
    /// </summary>
    public Task EnsureReachableAsync(CancellationToken ct = default) => _endpoint.EnsureReachableAsync(ct);

    public async Task<Answer> AnswerAsync(Query query, CancellationToken ct = default)
    {
        int k = query.Candidates.Count;
        var forward = Enumerable.Range(0, k).ToArray();
        var backward = forward.Reverse().ToArray();
        int? first, second;
        string firstRaw, secondRaw;
        try
        {
            (first, firstRaw) = await VerdictAsync(query, forward, ct);
            (second, secondRaw) = await VerdictAsync(query, backward, ct);
        }
        catch (ContextTooSmallException ex)
        {
            // This query does not fit the judge; others may. The server's words say by how much.
            return Answer.Skip($"the judge's context is too small for this query: {Clip(ex.Message)}");
        }
        if (first is null) return Answer.Skip($"judge answer not understood: \"{Clip(firstRaw)}\"");
        if (second is null) return Answer.Skip($"judge answer not understood: \"{Clip(secondRaw)}\"");
        if (k == 2) return PairVerdict(first.Value, second.Value);
        if (first == second && first >= 0) return Answer.Prefer(first.Value);
        return Answer.Skip($"judge changed its choice with the order of the responses ({first} then {second})");
    }

    /// <summary>
    /// The label of a pair from its two understood verdicts, asked as (0, 1) then (1, 0): each is the candidate that order
    /// named (0 or 1), or −1 for a tie. +1 for candidate 0, −1 for candidate 1, 0 for a tie; the two orders are summed, so
    /// a judge that always names the first position scores 0: a tie rather than a biased label. `rlhf rlaif` labels its
    /// pairs in-process with this same rule.
    /// </summary>
    public static Answer PairVerdict(int first, int second)
    {
        int Vote(int v) => v == -1 ? 0 : v == 0 ? 1 : -1;
        int sum = Vote(first) + Vote(second);
        return sum > 0 ? Answer.Prefer(0) : sum < 0 ? Answer.Prefer(1) : Answer.Tie();
    }

    /// <summary>Asks once with the candidates in <paramref name="order"/>; returns the chosen original index, −1 for a tie, null if unreadable.</summary>
    private async Task<(int? Choice, string Raw)> VerdictAsync(Query query, int[] order, CancellationToken ct)
    {
        var user = UserMessage(query.Prompt, order.Select(i => query.Candidates[i].Content).ToList());
        var raw = await CompleteAsync([new SystemChatMessage(_options.Instructions), new UserChatMessage(user)], ct);
        var parsed = ParseVerdict(raw, order.Length);
        return (parsed is int p && p >= 0 ? order[p] : parsed, raw);
    }

    /// <summary>
    /// The user message that asks for one verdict on <paramref name="responses"/> in the order shown (the system message is
    /// <see cref="AiJudgeOptions.Instructions"/>); a judge trained by `rlhf judge train` learns to answer exactly this.
    /// </summary>
    public static string UserMessage(string prompt, IReadOnlyList<string> responses)
    {
        var text = new StringBuilder();
        text.Append("Prompt:\n").Append(prompt).Append("\n\n");
        for (int i = 0; i < responses.Count; i++)
            text.Append("Response ").Append(i + 1).Append(":\n").Append(responses[i]).Append("\n\n");
        text.Append("Which response is better? Reply with a number from 1 to ").Append(responses.Count).Append(", or tie.");
        return text.ToString();
    }

    /// <summary>
    /// The judge's pick as a 0-based position, −1 for tie, null when the reply names no single position. Surrounding
    /// white space is ignored: our models' chat replies start with a space (" 1", GPT-2's leading-space token).
    /// </summary>
    public static int? ParseVerdict(string reply, int count)
    {
        var text = reply.Trim();
        if (TieWord().IsMatch(text) && !Number().IsMatch(text)) return -1;
        // A number too long for an int (a babbling model's digit run) names no response: int.MaxValue is out of range below.
        var numbers = Number().Matches(text).Select(m => int.TryParse(m.Value, System.Globalization.CultureInfo.InvariantCulture, out int v) ? v : int.MaxValue).Distinct().ToList();
        // Exactly one number and it names a response: anything else ("1 or 2", "3 of 2") is not an answer.
        return numbers.Count == 1 && numbers[0] >= 1 && numbers[0] <= count ? numbers[0] - 1 : null;
    }

    /// <summary>Longest Retry-After honoured (ChatEndpoint's).</summary>
    public static readonly TimeSpan MaxRetryAfter = ChatEndpoint.MaxRetryAfter;

    internal static TimeSpan RetryDelay(int attempt, TimeSpan backoff, TimeSpan? retryAfter, double uniform) =>
        ChatEndpoint.RetryDelay(attempt, backoff, retryAfter, uniform);

    internal static TimeSpan? ParseRetryAfter(string? value, DateTimeOffset now) => ChatEndpoint.ParseRetryAfter(value, now);

    private Task<string> CompleteAsync(ChatMessage[] messages, CancellationToken ct) =>
        _endpoint.ChatAsync(messages, new GenerationRequest(Temperature: 0f, MaxTokens: MaxAnswerTokens), ct);

    private static string Clip(string s) => s.Length <= 200 ? s : s[..200] + "…";

    [GeneratedRegex(@"\btie\b", RegexOptions.IgnoreCase)]
    private static partial Regex TieWord();

    [GeneratedRegex(@"\d+")]
    private static partial Regex Number();
}
