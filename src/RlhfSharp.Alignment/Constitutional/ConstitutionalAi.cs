// Constitutional AI (Bai et al. 2022) over HTTP: a policy endpoint and a critic endpoint, any OpenAI-compatible servers
// (ours: `rlhf serve`), spoken to through ChatEndpoint (the AI judge's client, with its retries).
//
// Supervised stage (SL-CAI), per prompt x:
//   1. draft y₀ ~ policy(x)
//   2. for each principle p (all, in file order, or a seeded sample of them), with y the latest response:
//        critic principle:  c = critic(x, y, p.critique_request);  y' = policy(x, y, p.critique_request, c, p.revision_request)
//        checked principle: c = "no violation …" and y' = y when p's check passes y; else c = the rule violated, and y' is
//                           the first of K samples from the policy (asked with the revision request) that passes the check
//                           and every check met at an earlier step (revision_method "sampled-until-pass"; none
//                           passing: y stands, "passed": false). Our tiny
//                           models cannot follow instructions, so for them this is rejection sampling against the rule.
//   3. the SFT pair is (x, y_final).
// RL-CAI stage, per prompt: two samples from the policy and one principle drawn at random; a checked principle prefers the
// sample that passes (both or neither: a tie), a critic principle is the AI judge's verdict (asked in both orders, position
// bias cancelled) with the principle's comparison question in its instructions; judgments go to a preference store.
//
// Conversation formats. --api completions: the paper's own text format (a pre-trained LM read it few-shot):
//   "Human: x\n\nAssistant: y\n\nCritiqueRequest: …\n\nCritique: c\n\nRevisionRequest: …\n\nRevision:"
// and the draft is the raw continuation of x. --api chat: the same turns as chat messages (user x, assistant y, user
// critique request, assistant c, user revision request). RevisionContext.Prompt asks for a revision with x alone (a model
// that cannot read the conversation, such as a story-world model with a 64-token context, re-samples).
// Every request carries a seed derived from (seed, prompt, step, sample), so a server that honours seeds (ours) repeats a run.
using System.Globalization;
using System.Text.Json.Nodes;
using OpenAI.Chat;
using RlhfSharp.Feedback;
using RlhfSharp.Feedback.Labelers;
using RlhfSharp.Text.StoryWorld;

namespace RlhfSharp.Alignment.Constitutional;

/// <summary>Which API an endpoint is asked through.</summary>
public enum EndpointApi
{
    /// <summary>/v1/chat/completions with chat messages.</summary>
    Chat,
    /// <summary>/v1/completions with raw text (the paper's Human:/Assistant: format).</summary>
    Completions,
}

/// <summary>What the policy sees when asked for a revision.</summary>
public enum RevisionContext
{
    /// <summary>The paper's: the prompt, the response, the critique request, the critique and the revision request.</summary>
    Conversation,
    /// <summary>The prompt alone: the revision is a fresh sample (for models that cannot read the conversation).</summary>
    Prompt,
}

/// <summary>Settings of a CAI run.</summary>
/// <param name="PolicyApi">How the policy is asked.</param>
/// <param name="CriticApi">How the critic is asked (critic principles only).</param>
/// <param name="RevisionContext">What the policy sees when revising.</param>
/// <param name="PrinciplesPerPrompt">Revision steps per prompt: principles sampled without replacement; 0: all, in file order.</param>
/// <param name="Samples">K: revision samples drawn for a checked principle until one passes.</param>
/// <param name="Temperature">Sampling temperature of drafts and revisions.</param>
/// <param name="MaxTokens">Most tokens of a draft, critique or revision.</param>
/// <param name="Seed">Seed of principle sampling and of every request's seed.</param>
/// <param name="Parallel">Prompts in flight at once (a batching server such as `rlhf serve` decodes them together).</param>
public sealed record CaiOptions(
    EndpointApi PolicyApi = EndpointApi.Chat,
    EndpointApi CriticApi = EndpointApi.Chat,
    RevisionContext RevisionContext = RevisionContext.Conversation,
    int PrinciplesPerPrompt = 0,
    int Samples = 8,
    float Temperature = 1f,
    int MaxTokens = 48,
    ulong Seed = 1,
    int Parallel = 4)
{
    public void Validate()
    {
        if (PrinciplesPerPrompt < 0) throw new ArgumentException($"principles per prompt must be 0 (all) or more; got {PrinciplesPerPrompt}.");
        if (Samples < 1) throw new ArgumentException($"samples must be 1 or more; got {Samples}.");
        if (!(Temperature >= 0) || float.IsInfinity(Temperature)) throw new ArgumentException($"temperature must be 0 or more; got {Temperature}.");
        if (MaxTokens < 1) throw new ArgumentException($"max tokens must be 1 or more; got {MaxTokens}.");
        if (Parallel < 1) throw new ArgumentException($"parallel must be 1 or more; got {Parallel}.");
    }
}

/// <summary>One critique-and-revision step (one line of the records file).</summary>
/// <param name="Draft">The response critiqued at this step: the policy's draft at step 0, the previous revision after.</param>
/// <param name="RevisionMethod">"generated" (the policy revised), "unchanged" (the check found no violation) or "sampled-until-pass".</param>
/// <param name="SamplesDrawn">For sampled-until-pass: revision samples drawn.</param>
/// <param name="Passed">For a checked principle: whether the revision passes the check.</param>
public sealed record CaiRecord(string Prompt, int Step, string Principle, string Draft, string Critique, string Revision,
    string RevisionMethod, string? Check, int? SamplesDrawn, bool? Passed)
{
    public JsonObject ToJson() => new()
    {
        ["prompt"] = Prompt, ["step"] = Step, ["principle"] = Principle, ["draft"] = Draft, ["critique"] = Critique, ["revision"] = Revision,
        ["revision_method"] = RevisionMethod, ["check"] = Check, ["samples_drawn"] = SamplesDrawn, ["passed"] = Passed,
    };
}

/// <summary>A prompt's draft, its critique-and-revision steps and its final revision.</summary>
public sealed record CaiResult(string Prompt, string Draft, IReadOnlyList<CaiRecord> Steps, string FinalRevision);

/// <summary>Share of responses that satisfy each checked principle, all of them, and the story world's mean gold reward.</summary>
public sealed record PrincipleSatisfaction(IReadOnlyDictionary<string, double> PerPrinciple, double All, double Gold, int Responses)
{
    /// <summary>Measures <paramref name="responses"/> (prompt, response) against the constitution's checked principles.</summary>
    public static PrincipleSatisfaction Measure(Constitution constitution, IReadOnlyList<(string Prompt, string Response)> responses)
    {
        var per = new Dictionary<string, double>(StringComparer.Ordinal);
        var checkedPrinciples = constitution.Checked.ToList();
        foreach (var p in checkedPrinciples)
            per[p.Name] = responses.Count == 0 ? double.NaN : responses.Count(r => p.Violation(r.Prompt, r.Response) is null) / (double)responses.Count;
        double all = responses.Count == 0 ? double.NaN : responses.Count(r => checkedPrinciples.All(p => p.Violation(r.Prompt, r.Response) is null)) / (double)responses.Count;
        double gold = responses.Count == 0 ? double.NaN : responses.Average(r => Stories.GoldReward(r.Response, r.Prompt));
        return new PrincipleSatisfaction(per, all, gold, responses.Count);
    }

    /// <summary>"all 0.406 (proper-ending 0.500, …), story-world gold 0.123 over N".</summary>
    public override string ToString()
    {
        string F(double x) => x.ToString("0.000", CultureInfo.InvariantCulture);
        return $"all checks {F(All)} ({string.Join(", ", PerPrinciple.Select(kv => $"{kv.Key} {F(kv.Value)}"))}), story-world gold {F(Gold)} over {Responses}";
    }
}

public sealed class ConstitutionalAi
{
    /// <summary>The AI judge's instructions for a critic principle's comparison (RL-CAI).</summary>
    public static string ComparisonInstructions(Principle principle) =>
        $"You compare responses to a prompt by one principle. {principle.Comparison} Reply with the number of the better response and nothing else, or with the word tie if they are equally good.";

    private readonly Constitution _constitution;
    private readonly ChatEndpoint _policy;
    private readonly ChatEndpoint? _critic;
    private readonly CaiOptions _options;

    /// <param name="critic">Needed only when the constitution has a principle without a check.</param>
    public ConstitutionalAi(Constitution constitution, ChatEndpoint policy, ChatEndpoint? critic, CaiOptions options)
    {
        _constitution = constitution;
        _policy = policy;
        _critic = critic;
        _options = options;
        options.Validate();
        if (critic is null && constitution.Principles.FirstOrDefault(p => p.Check is null) is { } needsCritic)
            throw new ArgumentException($"principle \"{needsCritic.Name}\" has no check, so it needs a critic endpoint (--critic-url).");
    }

    /// <summary>The policy's draft for each prompt (one sample each), in prompt order.</summary>
    public async Task<IReadOnlyList<string>> DraftAsync(IReadOnlyList<string> prompts, CancellationToken ct = default)
    {
        var drafts = new string[prompts.Count];
        await System.Threading.Tasks.Parallel.ForEachAsync(Enumerable.Range(0, prompts.Count), Limit(ct),
            async (i, token) => drafts[i] = await AskPolicyAsync(prompts[i], SeedFor(i, 0, 0), token));
        return drafts;
    }

    /// <summary>SL-CAI: draft, then critique and revise by each principle (steps 1–3 of the file header), per prompt.</summary>
    public async Task<IReadOnlyList<CaiResult>> ReviseAsync(IReadOnlyList<string> prompts, CancellationToken ct = default)
    {
        var results = new CaiResult[prompts.Count];
        await System.Threading.Tasks.Parallel.ForEachAsync(Enumerable.Range(0, prompts.Count), Limit(ct),
            async (i, token) => results[i] = await ReviseOneAsync(i, prompts[i], token));
        return results;
    }

    private async Task<CaiResult> ReviseOneAsync(int index, string prompt, CancellationToken ct)
    {
        // 1. draft
        string draft = await AskPolicyAsync(prompt, SeedFor(index, 0, 0), ct);
        string current = draft;
        var steps = new List<CaiRecord>();
        var kept = new List<Principle>(); // checked principles met so far: a sampled revision must not break them again
        // 2. critique and revision, one principle at a time
        foreach (var (principle, step) in PrinciplesFor(index).Select((p, s) => (p, s + 1)))
        {
            CaiRecord record;
            if (principle.Check is { } check)
            {
                if (principle.Violation(prompt, current) is not { } violation)
                {
                    record = new CaiRecord(prompt, step, principle.Name, current, $"No violation of the rule \"{check}\".", current, "unchanged", check, null, true);
                }
                else
                {
                    string critique = $"The response violates the rule \"{check}\": {violation}.";
                    string? passing = null;
                    int drawn = 0;
                    while (passing is null && drawn < _options.Samples)
                    {
                        drawn++;
                        string sample = await AskRevisionAsync(prompt, current, principle, critique, SeedFor(index, step, drawn), ct);
                        if (principle.Violation(prompt, sample) is null && kept.All(k => k.Violation(prompt, sample) is null)) passing = sample;
                    }
                    record = new CaiRecord(prompt, step, principle.Name, current, critique, passing ?? current, "sampled-until-pass", check, drawn, passing is not null);
                }
            }
            else
            {
                string critique = await AskCriticAsync(prompt, current, principle, ct);
                string revision = await AskRevisionAsync(prompt, current, principle, critique, SeedFor(index, step, 1), ct);
                record = new CaiRecord(prompt, step, principle.Name, current, critique, revision, "generated", null, null, null);
            }
            steps.Add(record);
            current = record.Revision;
            if (principle.Check is not null && record.Passed == true) kept.Add(principle);
            else if (principle.Check is null) kept.RemoveAll(k => k.Violation(prompt, current) is not null); // a generated revision may break one
        }
        // 3. the final revision is the SFT target
        return new CaiResult(prompt, draft, steps, current);
    }

    /// <summary>
    /// RL-CAI: two samples per prompt and a principle drawn per prompt, as store queries of <paramref name="campaign"/>, each
    /// labelled by the principle's check or by the critic as an AI judge; returns (labels, ties, skips).
    /// </summary>
    public async Task<(int Labels, int Ties, int Skips)> CompareAsync(IReadOnlyList<string> prompts, IPreferenceStore store, string campaign,
        string labelerName, string criticModel, string? criticKeyVariable, CancellationToken ct = default)
    {
        var pairs = new (string A, string B)[prompts.Count];
        await System.Threading.Tasks.Parallel.ForEachAsync(Enumerable.Range(0, prompts.Count), Limit(ct), async (i, token) =>
            pairs[i] = (await AskPolicyAsync(prompts[i], SeedFor(i, 0, 1), token), await AskPolicyAsync(prompts[i], SeedFor(i, 0, 2), token)));
        var rng = new Random(unchecked((int)(_options.Seed * 0x9E3779B1UL)));
        var principles = new List<Principle>(prompts.Count);
        var queries = new List<NewQuery>(prompts.Count);
        for (int i = 0; i < prompts.Count; i++)
        {
            var principle = _constitution.Principles[rng.Next(_constitution.Principles.Count)];
            principles.Add(principle);
            var meta = new Dictionary<string, string> { ["principle"] = principle.Name };
            if (principle.Check is { } check) meta["check"] = check;
            queries.Add(new NewQuery(QueryKind.Text, prompts[i], [new Candidate(pairs[i].A, "cai-policy", meta), new Candidate(pairs[i].B, "cai-policy", meta)], campaign));
        }
        await store.AddQueriesAsync(queries, ct);
        var byName = _constitution.Principles.ToDictionary(p => p.Name, StringComparer.Ordinal);
        var judges = new Dictionary<string, AiJudge>(StringComparer.Ordinal);
        var me = await LabelingSession.FindOrAddLabelerAsync(store, labelerName, ct);
        int labels = 0, ties = 0, skips = 0;
        await LabelingSession.RunAsync(store, me.Id, async (query, token) =>
        {
            var principle = byName[query.Candidates[0].Metadata!["principle"]];
            Answer answer;
            if (principle.Check is not null)
            {
                bool a = principle.Violation(query.Prompt, query.Candidates[0].Content) is null, b = principle.Violation(query.Prompt, query.Candidates[1].Content) is null;
                answer = a == b ? Answer.Tie() : Answer.Prefer(a ? 0 : 1);
            }
            else
            {
                if (!judges.TryGetValue(principle.Name, out var judge))
                {
                    judges[principle.Name] = judge = new AiJudge(new AiJudgeOptions(_critic!.BaseUrl, criticModel, criticKeyVariable,
                        Instructions: ComparisonInstructions(principle)), labelerName);
                }
                answer = await judge.AnswerAsync(query, token);
            }
            if (answer.Kind == AnswerKind.Tie) ties++;
            else if (answer.Kind == AnswerKind.Skip) skips++;
            else labels++;
            return answer;
        }, int.MaxValue, campaign, overlap: 1, ct: ct);
        return (labels, ties, skips);
    }

    private IEnumerable<Principle> PrinciplesFor(int index)
    {
        var all = _constitution.Principles;
        int n = _options.PrinciplesPerPrompt;
        if (n == 0 || n >= all.Count) return n == 0 ? all : Shuffled(index, all);
        return Shuffled(index, all).Take(n);
    }

    private List<Principle> Shuffled(int index, IReadOnlyList<Principle> all)
    {
        var rng = new Random(unchecked((int)SeedFor(index, -1, 0)));
        var list = all.ToList();
        for (int i = list.Count - 1; i > 0; i--)
        {
            int j = rng.Next(i + 1);
            (list[i], list[j]) = (list[j], list[i]);
        }
        return list;
    }

    private ParallelOptions Limit(CancellationToken ct) => new() { MaxDegreeOfParallelism = _options.Parallel, CancellationToken = ct };

    /// <summary>A request's seed from (run seed, prompt index, step, sample): SplitMix64 of their mix, kept to 31 bits.</summary>
    private long SeedFor(int prompt, int step, int sample)
    {
        ulong z = _options.Seed * 0x9E3779B97F4A7C15UL + (ulong)prompt * 0xBF58476D1CE4E5B9UL + (ulong)(step + 2) * 0x94D049BB133111EBUL + (ulong)sample;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return (long)((z ^ (z >> 31)) & 0x7FFF_FFFFUL);
    }

    private GenerationRequest Sampling(long seed) => new(_options.Temperature, _options.MaxTokens, seed);

    private Task<string> AskPolicyAsync(string prompt, long seed, CancellationToken ct) => Guard(_policy, _options.PolicyApi == EndpointApi.Completions
        ? _policy.CompleteTextAsync(prompt, Sampling(seed), ct)
        : _policy.ChatAsync([new UserChatMessage(prompt)], Sampling(seed), ct));

    /// <summary>A request too long for the endpoint's model stops the run with the endpoint named (no record is half-made).</summary>
    private static async Task<string> Guard(ChatEndpoint endpoint, Task<string> request)
    {
        try
        {
            return await request;
        }
        catch (ContextTooSmallException ex)
        {
            throw new FeedbackException($"{endpoint.Role} at {endpoint.BaseUrl}: {ex.Message} (lower --max-tokens; for revisions by a model with a short context, --revision-context prompt)", 400);
        }
    }

    private Task<string> AskCriticAsync(string prompt, string response, Principle principle, CancellationToken ct) => Guard(_critic!, _options.CriticApi == EndpointApi.Completions
        ? _critic!.CompleteTextAsync(PaperText(prompt, response, principle) + "\n\nCritique:", new GenerationRequest(0f, _options.MaxTokens), ct)
        : _critic!.ChatAsync([new UserChatMessage(prompt), new AssistantChatMessage(response), new UserChatMessage(principle.CritiqueRequest)],
            new GenerationRequest(0f, _options.MaxTokens), ct));

    private Task<string> AskRevisionAsync(string prompt, string response, Principle principle, string critique, long seed, CancellationToken ct)
    {
        if (_options.RevisionContext == RevisionContext.Prompt) return AskPolicyAsync(prompt, seed, ct);
        return Guard(_policy, _options.PolicyApi == EndpointApi.Completions
            ? _policy.CompleteTextAsync(PaperText(prompt, response, principle) + $"\n\nCritique: {critique.Trim()}\n\nRevisionRequest: {principle.RevisionRequest}\n\nRevision:", Sampling(seed), ct)
            : _policy.ChatAsync([new UserChatMessage(prompt), new AssistantChatMessage(response), new UserChatMessage(principle.CritiqueRequest),
                new AssistantChatMessage(critique), new UserChatMessage(principle.RevisionRequest)], Sampling(seed), ct));
    }

    /// <summary>The paper's text format up to the critique request.</summary>
    internal static string PaperText(string prompt, string response, Principle principle) =>
        $"Human: {prompt.Trim()}\n\nAssistant: {response.Trim()}\n\nCritiqueRequest: {principle.CritiqueRequest}";
}
