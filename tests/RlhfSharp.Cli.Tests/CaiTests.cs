// `rlhf cai` end to end over real HTTP: a tiny story-world GPT behind `rlhf serve`'s server (in-process Kestrel on a free
// port) is the policy (/v1/completions) and the critic (/v1/chat/completions). `cai revise` must write one record per
// (prompt, principle) whose fields agree with the checks, and an SFT file of the final revisions that `rlhf sft` reads;
// `cai compare` must store one judged comparison per prompt that `rlhf reward train` reads. A randomly initialised model
// (it follows no instruction): the plumbing and the check-decided records are what is tested; rounds on a trained model
// are measured in docs/alignment.md.
using System.Text.Json.Nodes;
using RlhfSharp.Alignment.LanguageModeling;
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Feedback.Stores;
using RlhfSharp.Models;
using RlhfSharp.Tensors;
using RlhfSharp.Text.StoryWorld;
using RlhfSharp.Web;
using RlhfSharp.Web.Serving;

namespace RlhfSharp.Cli.Tests;

[Collection(ConsoleCollection.Name)]
public sealed class CaiTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "rlhf-cai-" + Guid.NewGuid().ToString("N")[..8]);

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    [Fact]
    public async Task Given_a_served_policy_and_critic_When_cai_revises_and_compares_Then_records_sft_data_and_store_rows_agree_with_the_checks()
    {
        // Given a tiny model served over the OpenAI-compatible API (block 256: the paper's conversation must fit),
        Directory.CreateDirectory(_dir);
        var tok = Stories.TrainTokenizer(512);
        var gpt = Gpt.Create(new GptConfig { VocabSize = tok.VocabSize, BlockSize = 256, NEmbd = 32, NLayer = 1, NHead = 2, EosTokenId = tok.EosId }, new Rng(3));
        await using var app = ModelServer.Build(gpt, tok, new ModelServerOptions(Port: 0));
        await app.StartAsync();
        string url = new Uri(LabelingApp.BoundAddress(app), "/v1").ToString();
        // and a constitution of two checked principles and one the critic decides.
        string constitution = Path.Combine(_dir, "c.jsonl");
        File.WriteAllLines(constitution, [
            """{"name":"long","critique_request":"Is the response too short?","revision_request":"Please rewrite it longer.","check":"min-length","min_words":3}""",
            """{"name":"ending","critique_request":"Does the response end unfinished?","revision_request":"Please rewrite it to end with a finished sentence.","check":"proper-ending"}""",
            """{"name":"kind","critique_request":"Identify specific ways in which the response is unkind.","revision_request":"Please rewrite it to remove anything unkind.","comparison":"Which response is kinder?"}""",
        ]);
        string records = Path.Combine(_dir, "records.jsonl"), sft = Path.Combine(_dir, "sft.jsonl"), db = Path.Combine(_dir, "prefs.db");
        string[] endpoints = ["--constitution", constitution, "--policy-url", url, "--policy-api", "completions", "--critic-url", url, "--critic-api", "chat",
            "--story-prompts", "6", "--max-tokens", "12", "--seed", "5"];

        // When cai revise runs (the paper's conversation format, K = 4 samples for a checked principle),
        var revise = RlhfRunner.Run(["cai", "revise", .. endpoints, "--samples", "4", "--records", records, "--sft-out", sft]);
        Assert.True(revise.Exit == 0, $"cai revise: exit {revise.Exit}: {string.Join(" | ", revise.ErrorLines)}");

        // Then there is one record per prompt and principle, in order, and each agrees with what the checks say:
        var lines = File.ReadAllLines(records).Select(l => JsonNode.Parse(l)!.AsObject()).ToList();
        var prompts = Stories.Prompts(1, 6);
        Assert.Equal(18, lines.Count);
        int sampled = 0;
        for (int i = 0; i < lines.Count; i++)
        {
            var r = lines[i];
            string prompt = (string)r["prompt"]!, draft = (string)r["draft"]!, revision = (string)r["revision"]!, method = (string)r["revision_method"]!;
            Assert.Equal(prompts[i / 3], prompt);
            Assert.Equal(new[] { "long", "ending", "kind" }[i % 3], (string)r["principle"]!);
            if (i % 3 > 0) Assert.Equal((string)lines[i - 1]["revision"]!, draft); // each step revises the previous step's result
            if ((string?)r["check"] is { } check)
            {
                string? before = StoryChecks.Violation(check, draft, prompt, minWords: 3), after = StoryChecks.Violation(check, revision, prompt, minWords: 3);
                if (before is null)
                {
                    Assert.Equal("unchanged", method);
                    Assert.Equal(draft, revision);
                }
                else
                {
                    sampled++;
                    Assert.Equal("sampled-until-pass", method);
                    Assert.Contains(before, (string)r["critique"]!, StringComparison.Ordinal);
                    Assert.InRange((int)r["samples_drawn"]!, 1, 4);
                    Assert.Equal(after is null, (bool)r["passed"]!);
                    if (!(bool)r["passed"]!) Assert.Equal(draft, revision); // none passed: the response stands
                }
            }
            else
            {
                Assert.Equal("generated", method);
                Assert.False(string.IsNullOrEmpty((string)r["critique"]!)); // the critic's words, over the chat endpoint
            }
        }
        Assert.True(sampled > 0, "no record was sampled-until-pass; the test did not reach the revision sampling");
        // and the SFT file holds each prompt's final revision, in the form `rlhf sft --data` reads.
        var examples = SftData.ReadJsonl(sft);
        var finals = lines.Where((_, i) => i % 3 == 2).Select(l => ((string)l["prompt"]!, (string)l["revision"]!)).Where(x => x.Item2.Trim().Length > 0).ToList();
        Assert.Equal(finals, examples.Select(e => (e.Prompt, e.Completion)));

        // When cai compare runs into a store,
        var compare = RlhfRunner.Run(["cai", "compare", .. endpoints, "--db", db]);
        Assert.True(compare.Exit == 0, $"cai compare: exit {compare.Exit}: {string.Join(" | ", compare.ErrorLines)}");
        Assert.Contains("cai compare: 6 comparisons stored in campaign \"cai\"", compare.Out, StringComparison.Ordinal);

        // Then every prompt has one judged pair, a checked principle's verdict is its check's, and reward training reads them.
        int usable;
        await using (var store = await SqlitePreferenceStore.OpenAsync(db))
        {
            var queries = (await store.GetQueriesAsync("cai")).ToDictionary(q => q.Id);
            var judgments = await store.GetJudgmentsAsync("cai");
            Assert.Equal(6, judgments.Count);
            usable = judgments.Count(j => j.Answer.Kind != Feedback.AnswerKind.Skip);
            foreach (var j in judgments)
            {
                var q = queries[j.QueryId];
                if (q.Candidates[0].Metadata!.TryGetValue("check", out var check))
                {
                    int minWords = check == "min-length" ? 3 : StoryChecks.DefaultMinWords;
                    bool a = StoryChecks.Violation(check, q.Candidates[0].Content, q.Prompt, minWords) is null, b = StoryChecks.Violation(check, q.Candidates[1].Content, q.Prompt, minWords) is null;
                    Assert.Equal(a == b ? Feedback.AnswerKind.Tie : Feedback.AnswerKind.Preferred, j.Answer.Kind);
                    if (a != b) Assert.Equal(a ? 0 : 1, j.Answer.Preferred);
                }
            }
        }
        Assert.Equal(usable, (await PreferenceData.LoadAsync(db, "cai")).Count);
    }

    [Fact]
    public void Given_a_bad_constitution_or_no_server_When_cai_revise_runs_Then_one_line_names_the_file_line_and_field_or_the_endpoint()
    {
        Directory.CreateDirectory(_dir);
        string bad = Path.Combine(_dir, "bad.jsonl"), good = Path.Combine(_dir, "good.jsonl");
        File.WriteAllLines(bad, ["""{"name":"a","critique_request":"x","revision_request":"y","check":"proper-ending"}""", """{"name":"b","critique_request":"x"}"""]);
        File.WriteAllLines(good, ["""{"name":"a","critique_request":"x","revision_request":"y","check":"proper-ending"}"""]);
        string[] rest = ["--policy-url", "http://127.0.0.1:9/v1", "--records", Path.Combine(_dir, "r.jsonl"), "--sft-out", Path.Combine(_dir, "s.jsonl")];

        var parse = RlhfRunner.Run(["cai", "revise", "--constitution", bad, .. rest]);
        var unreachable = RlhfRunner.Run(["cai", "revise", "--constitution", good, .. rest]);

        Assert.Equal(1, parse.Exit);
        Assert.Equal($"rlhf: error: {bad}:2: field \"revision_request\" is missing.", Assert.Single(parse.ErrorLines));
        Assert.Equal(1, unreachable.Exit);
        Assert.StartsWith("rlhf: error: policy at http://127.0.0.1:9/v1: no policy answers there", Assert.Single(unreachable.ErrorLines), StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_dir, "r.jsonl")), "a failed run left a records file");
    }
}
