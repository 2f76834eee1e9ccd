// `rlhf cai`: Constitutional AI (Bai et al. 2022; Alignment/Constitutional) against a policy endpoint and a critic endpoint,
// any OpenAI-compatible servers (`rlhf serve`, vLLM, llama.cpp's server, Ollama, OpenAI):
//   rlhf cai revise   SL-CAI: draft, critique and revise by each principle; writes the (prompt, draft, critique, revision,
//                     principle) records and an SFT dataset {"prompt","completion": final revision} that `rlhf sft` reads
//   rlhf cai compare  RL-CAI: two samples per prompt judged by a drawn principle (its check, or the critic as an AI judge
//                     in both orders) into a preference store that `rlhf reward train --data STORE.db` reads
//   rlhf cai eval     the share of the policy's drafts satisfying each checked principle, and the story world's gold reward
// A CAI round is revise → sft on the revisions → the new policy; docs/alignment.md has the commands and the measured rounds.
using System.CommandLine;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using RlhfSharp.Alignment;
using RlhfSharp.Alignment.Constitutional;
using RlhfSharp.Feedback;
using RlhfSharp.Feedback.Labelers;
using RlhfSharp.Runs;
using RlhfSharp.Text.StoryWorld;

namespace RlhfSharp.Cli.Commands;

internal static class CaiCommand
{
    /// <summary>The story world's held-out prompt stream (the one `rlhf compare` and `rlhf rft` evaluate on).</summary>
    private const ulong HeldOutSeed = 0x4E1D_0C7UL;

    /// <summary>The options every subcommand shares: the constitution, the endpoints, the prompts and the sampling.</summary>
    private sealed class Shared
    {
        private static readonly CaiOptions Defaults = new();
        public readonly Option<string> Constitution = new("--constitution") { Description = "Constitution file: JSONL, one principle a line (docs/alignment.md).", Required = true };
        public readonly Option<string> PolicyUrl = new("--policy-url") { Description = "The policy's OpenAI-compatible API root, e.g. http://127.0.0.1:8000/v1.", Required = true };
        public readonly Option<string> PolicyModel = new("--policy-model") { Description = "Model name sent to the policy endpoint.", DefaultValueFactory = _ => "rlhfsharp" };
        public readonly Option<string> PolicyApi = new("--policy-api") { Description = "chat (/v1/chat/completions) or completions (/v1/completions, raw text: the story world's models and the paper's Human:/Assistant: format).", DefaultValueFactory = _ => "chat" };
        public readonly Option<string?> PolicyKey = new("--policy-api-key-env") { Description = "Environment variable holding the policy endpoint's API key (omit for servers that need none)." };
        public readonly Option<string?> CriticUrl = new("--critic-url") { Description = "The critic's OpenAI-compatible API root (needed for principles without a check)." };
        public readonly Option<string> CriticModel = new("--critic-model") { Description = "Model name sent to the critic endpoint.", DefaultValueFactory = _ => "rlhfsharp" };
        public readonly Option<string> CriticApi = new("--critic-api") { Description = "chat or completions, as --policy-api.", DefaultValueFactory = _ => "chat" };
        public readonly Option<string?> CriticKey = new("--critic-api-key-env") { Description = "Environment variable holding the critic endpoint's API key (omit for servers that need none)." };
        public readonly Option<string?> Prompts = new("--prompts") { Description = "Prompts JSONL ({\"prompt\"}); default: story-world prompts." };
        public readonly Option<int> StoryPrompts = new Option<int>("--story-prompts") { Description = "Story-world prompts used without --prompts.", DefaultValueFactory = _ => 64 }.InRange(new(1));
        public readonly Option<bool> HeldOut = new("--held-out") { Description = "Story-world prompts from the held-out stream (the one `rlhf compare` and `rlhf rft` evaluate on)." };
        public readonly Option<float> Temperature = new Option<float>("--temperature") { Description = "Sampling temperature of drafts and revisions.", DefaultValueFactory = _ => Defaults.Temperature }.InRange(NumericRange.NonNegative);
        public readonly Option<int> MaxTokens = new Option<int>("--max-tokens") { Description = "Most tokens of a draft, critique or revision.", DefaultValueFactory = _ => Defaults.MaxTokens }.InRange(new(1));
        public readonly Option<ulong> Seed = new Option<ulong>("--seed") { Description = "Seed of principle sampling and of every request (servers that honour seeds repeat a run).", DefaultValueFactory = _ => Defaults.Seed }.InRange(NumericRange.NonNegative);
        public readonly Option<int> Parallel = new Option<int>("--parallel") { Description = "Prompts in flight at once (a batching server decodes them together).", DefaultValueFactory = _ => Defaults.Parallel }.InRange(new(1));

        public void AddTo(Command command)
        {
            foreach (var o in new Option[] { Constitution, PolicyUrl, PolicyModel, PolicyApi, PolicyKey, CriticUrl, CriticModel, CriticApi, CriticKey, Prompts, StoryPrompts, HeldOut, Temperature, MaxTokens, Seed, Parallel })
                command.Options.Add(o);
            PolicyApi.AcceptOnlyFromAmong("chat", "completions");
            CriticApi.AcceptOnlyFromAmong("chat", "completions");
        }

        public CaiOptions Options(ParseResult p) => new(
            PolicyApi: Api(p.GetValue(PolicyApi)!), CriticApi: Api(p.GetValue(CriticApi)!), Temperature: p.GetValue(Temperature),
            MaxTokens: p.GetValue(MaxTokens), Seed: p.GetValue(Seed), Parallel: p.GetValue(Parallel));

        public ChatEndpoint Policy(ParseResult p) => new(new ChatEndpointOptions(p.GetValue(PolicyUrl)!, p.GetValue(PolicyModel)!, p.GetValue(PolicyKey)), "policy");

        public ChatEndpoint? Critic(ParseResult p) => p.GetValue(CriticUrl) is { } url
            ? new ChatEndpoint(new ChatEndpointOptions(url, p.GetValue(CriticModel)!, p.GetValue(CriticKey)), "critic") : null;

        public List<string> ReadPrompts(ParseResult p) => p.GetValue(Prompts) is { } file
            ? PromptData.Read(DataPaths.Resolve(file))
            : [.. Stories.Prompts(p.GetValue(HeldOut) ? HeldOutSeed : 1, p.GetValue(StoryPrompts))];

        private static EndpointApi Api(string name) => name == "completions" ? EndpointApi.Completions : EndpointApi.Chat;
    }

    public static Command Create()
    {
        var command = new Command("cai", "Constitutional AI: critique and revision by principles (SL-CAI), principle-guided AI comparisons (RL-CAI).");
        command.Subcommands.Add(Revise());
        command.Subcommands.Add(Compare());
        command.Subcommands.Add(Eval());
        return command;
    }

    private static Command Revise()
    {
        var shared = new Shared();
        var defaults = new CaiOptions();
        var samples = new Option<int>("--samples") { Description = "K: revision samples drawn for a checked principle until one passes its check.", DefaultValueFactory = _ => defaults.Samples }.InRange(new(1));
        var perPrompt = new Option<int>("--principles-per-prompt") { Description = "Revision steps per prompt, principles drawn without replacement; 0: every principle, in file order.", DefaultValueFactory = _ => 0 }.InRange(NumericRange.NonNegative);
        var context = new Option<string>("--revision-context") { Description = "What the policy sees when revising: conversation (the paper's: prompt, response, critique, revision request) or prompt (the prompt alone: a re-sample, for models that cannot read the conversation).", DefaultValueFactory = _ => "conversation" };
        context.AcceptOnlyFromAmong("conversation", "prompt");
        var records = new Option<string>("--records") { Description = "JSONL file for the (prompt, draft, critique, revision, principle) records, one per step.", Required = true };
        var sftOut = new Option<string>("--sft-out") { Description = "JSONL file for the SFT dataset {\"prompt\",\"completion\"} of final revisions (`rlhf sft --data`).", Required = true };
        var command = new Command("revise", "SL-CAI: draft, critique and revise by each principle; writes the records and an SFT dataset of final revisions.");
        shared.AddTo(command);
        foreach (var o in new Option[] { samples, perPrompt, context, records, sftOut }) command.Options.Add(o);
        command.SetAction(async (p, ct) =>
        {
            var constitution = Constitution.Read(DataPaths.Resolve(p.GetValue(shared.Constitution)!));
            var options = shared.Options(p) with
            {
                Samples = p.GetValue(samples), PrinciplesPerPrompt = p.GetValue(perPrompt),
                RevisionContext = p.GetValue(context) == "prompt" ? RevisionContext.Prompt : RevisionContext.Conversation,
            };
            var prompts = shared.ReadPrompts(p);
            var policy = shared.Policy(p);
            var critic = shared.Critic(p);
            var cai = new ConstitutionalAi(constitution, policy, critic, options);
            await policy.EnsureReachableAsync(ct);
            if (critic is not null) await critic.EnsureReachableAsync(ct);
            var results = await cai.ReviseAsync(prompts, ct);

            var json = new JsonSerializerOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };
            var recordLines = results.SelectMany(r => r.Steps).Select(s => s.ToJson().ToJsonString(json));
            var sftLines = results.Where(r => r.FinalRevision.Trim().Length > 0)
                .Select(r => new JsonObject { ["prompt"] = r.Prompt, ["completion"] = r.FinalRevision }.ToJsonString(json));
            WriteAtomically(p.GetValue(records)!, recordLines);
            WriteAtomically(p.GetValue(sftOut)!, sftLines);

            var before = PrincipleSatisfaction.Measure(constitution, [.. results.Select(r => (r.Prompt, r.Draft))]);
            var after = PrincipleSatisfaction.Measure(constitution, [.. results.Select(r => (r.Prompt, r.FinalRevision))]);
            var sampled = results.SelectMany(r => r.Steps).Where(s => s.RevisionMethod == "sampled-until-pass").ToList();
            Console.Out.WriteLine($"cai revise: {results.Count} prompts, {results.Sum(r => r.Steps.Count)} steps ({sampled.Count} sampled-until-pass, {sampled.Count(s => s.Passed == true)} passed)");
            if (constitution.Checked.Any())
            {
                Console.Out.WriteLine($"drafts:    {before}");
                Console.Out.WriteLine($"revisions: {after}");
            }
            Console.Out.WriteLine($"records written to {p.GetValue(records)}; SFT data ({sftLines.Count()} lines) to {p.GetValue(sftOut)}");
            return 0;
        });
        return command;
    }

    private static Command Compare()
    {
        var shared = new Shared();
        var db = new LabelCommand.StoreOptions();
        var campaign = new Option<string>("--campaign") { Description = "Campaign the comparisons are stored under.", DefaultValueFactory = _ => "cai" };
        var name = new Option<string>("--name") { Description = "Labeller name the judgments are stored under.", DefaultValueFactory = _ => "cai-feedback" };
        var command = new Command("compare", "RL-CAI: two samples per prompt compared by a drawn principle (its check, or the critic in both orders) into a preference store.");
        shared.AddTo(command);
        db.AddTo(command);
        foreach (var o in new Option[] { campaign, name }) command.Options.Add(o);
        command.SetAction(async (p, ct) =>
        {
            var constitution = Constitution.Read(DataPaths.Resolve(p.GetValue(shared.Constitution)!));
            var prompts = shared.ReadPrompts(p);
            var policy = shared.Policy(p);
            var critic = shared.Critic(p);
            var cai = new ConstitutionalAi(constitution, policy, critic, shared.Options(p));
            await policy.EnsureReachableAsync(ct);
            if (critic is not null) await critic.EnsureReachableAsync(ct);
            await using var store = await db.OpenAsync(p);
            var (labels, ties, skips) = await cai.CompareAsync(prompts, store, p.GetValue(campaign)!, p.GetValue(name)!, p.GetValue(shared.CriticModel)!, p.GetValue(shared.CriticKey), ct);
            // A critic that understood nothing has labelled nothing: say so instead of a count (as `label judge` does).
            if (skips > 0 && labels + ties == 0)
                throw new FeedbackException($"cai compare: all {skips} comparisons were skips; the critic at {p.GetValue(shared.CriticUrl)} understood none (see `rlhf judge train` for a critic of our own).", 502);
            Console.Out.WriteLine($"cai compare: {labels + ties + skips} comparisons stored in campaign \"{p.GetValue(campaign)}\" ({labels} preferences, {ties} ties, {skips} skips)");
            return 0;
        });
        return command;
    }

    private static Command Eval()
    {
        var shared = new Shared();
        var command = new Command("eval", "The share of the policy's samples that satisfy each checked principle, and the story world's gold reward.");
        shared.AddTo(command);
        command.SetAction(async (p, ct) =>
        {
            var constitution = Constitution.Read(DataPaths.Resolve(p.GetValue(shared.Constitution)!));
            if (!constitution.Checked.Any()) throw new ArgumentException($"cai eval: {p.GetValue(shared.Constitution)} has no principle with a check; there is nothing to measure.");
            var prompts = shared.ReadPrompts(p);
            var policy = shared.Policy(p);
            var cai = new ConstitutionalAi(new Constitution([.. constitution.Checked]), policy, null, shared.Options(p));
            await policy.EnsureReachableAsync(ct);
            var drafts = await cai.DraftAsync(prompts, ct);
            Console.Out.WriteLine($"cai eval: {PrincipleSatisfaction.Measure(constitution, [.. prompts.Zip(drafts)])}");
            return 0;
        });
        return command;
    }

    /// <summary>Writes the lines to a temporary name and renames it, so a failed run never leaves a torn file.</summary>
    private static void WriteAtomically(string path, IEnumerable<string> lines)
    {
        if (Path.GetDirectoryName(Path.GetFullPath(path)) is { } dir) Directory.CreateDirectory(dir);
        string temp = path + ".tmp";
        File.WriteAllLines(temp, lines, new UTF8Encoding(false));
        File.Move(temp, path, overwrite: true);
    }
}
