// `rlhf serve` driven by the official `openai` npm package (a client nobody here wrote), as issue #18 asks: models.list,
// models.retrieve (ours and an unknown id), chat plain and streaming (with include_usage), chat logprobs, completions
// with logprobs, echo with max_tokens 0 (prompt scoring), and an unsupported feature raising the SDK's BadRequestError.
// The server runs in process on a real port; node runs a script that prints what the SDK returned as one JSON line,
// which the test compares with the server's raw HTTP replies. The package is installed once into a folder under the
// system temp directory (nothing is written into the repository); the test skips only where node or npm is missing.
using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using RlhfSharp.Models;
using RlhfSharp.Tensors;
using RlhfSharp.Text;
using RlhfSharp.Web.Serving;

namespace RlhfSharp.Web.Tests;

public sealed class OpenAiNodeClientTests
{
    /// <summary>The SDK version the issue was found with, pinned so the test does not change under us.</summary>
    private const string Package = "openai@6.49.0";

    public static string? SkipReason =>
        Which("node") is null ? "node is not installed (apt-get install nodejs npm); CI has node 20."
        : Which("npm") is null ? "npm is not installed (apt-get install npm)." : null;

    private static string? Which(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator).Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);

    private static readonly CharTokenizer Chars = CharTokenizer.FromCorpus(string.Concat(Enumerable.Range(32, 95).Select(c => (char)c)) + "\n");

    private const string Script = """
        import OpenAI, { BadRequestError, NotFoundError } from 'openai';
        const client = new OpenAI({ baseURL: process.argv[2], apiKey: 'unused', maxRetries: 0 });
        const out = {};
        out.models = (await client.models.list()).data.map(m => m.id);
        out.retrieved = (await client.models.retrieve('tiny')).id;
        try { await client.models.retrieve('no-such-model'); out.missing = 'no error'; }
        catch (e) { out.missing = { notFound: e instanceof NotFoundError, status: e.status }; }
        const messages = [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello there' }];
        const chat = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 12, temperature: 0 });
        out.chat = { text: chat.choices[0].message.content, finish: chat.choices[0].finish_reason, usage: chat.usage };
        const stream = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 12, temperature: 0, stream: true, stream_options: { include_usage: true } });
        let text = '', chunks = 0, usage = null, finish = null;
        for await (const chunk of stream) {
          chunks++;
          for (const c of chunk.choices) { text += c.delta?.content ?? ''; finish = c.finish_reason ?? finish; }
          if (chunk.usage) usage = chunk.usage;
        }
        out.streamed = { text, chunks, usage, finish };
        const lp = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 2 });
        out.chatLogprobs = lp.choices[0].logprobs.content.map(c => ({ token: c.token, logprob: c.logprob, top: c.top_logprobs.map(t => t.token) }));
        const cmpl = await client.completions.create({ model: 'tiny', prompt: 'the cat', max_tokens: 6, temperature: 0, logprobs: 2 });
        out.completion = { text: cmpl.choices[0].text, logprobs: cmpl.choices[0].logprobs };
        const echo = await client.completions.create({ model: 'tiny', prompt: 'hello world', max_tokens: 0, echo: true, logprobs: 1 });
        out.echo = { text: echo.choices[0].text, logprobs: echo.choices[0].logprobs };
        try {
          await client.chat.completions.create({ model: 'tiny', messages, tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object', properties: {} } } }] });
          out.error = 'no error';
        } catch (e) { out.error = { badRequest: e instanceof BadRequestError, status: e.status, param: e.param ?? null, message: e.message }; }
        console.log(JSON.stringify(out));
        """;

    /// <summary>A folder with the pinned package installed (once per machine; later runs reuse it).</summary>
    private static async Task<string> InstallAsync()
    {
        string dir = Path.Combine(Path.GetTempPath(), "rlhfsharp-openai-npm", Package.Replace('@', '-'));
        Directory.CreateDirectory(dir);
        if (!File.Exists(Path.Combine(dir, "node_modules", "openai", "package.json")))
        {
            await File.WriteAllTextAsync(Path.Combine(dir, "package.json"), """{ "private": true, "type": "module" }""");
            var (code, stdout, stderr) = await RunAsync("npm", dir, TimeSpan.FromMinutes(5), "install", Package, "--no-audit", "--no-fund", "--no-save");
            Assert.True(code == 0, $"npm install {Package} failed ({code}) in {dir}:\n{stdout}\n{stderr}");
        }
        return dir;
    }

    private static async Task<(int Code, string Stdout, string Stderr)> RunAsync(string file, string dir, TimeSpan timeout, params string[] args)
    {
        var info = new ProcessStartInfo(file) { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', args)} ran longer than {timeout}: {await stderr}");
        }
        return (process.ExitCode, await stdout, await stderr);
    }

    [ServerFact]
    public async Task Given_the_official_openai_npm_package_When_it_calls_every_endpoint_Then_it_parses_what_raw_http_gets_and_raises_BadRequestError()
    {
        string dir = await InstallAsync();
        var model = Gpt.Create(new GptConfig { VocabSize = Chars.VocabSize, BlockSize = 128, NEmbd = 16, NLayer = 1, NHead = 2, EosTokenId = Chars.EosId }, new Rng(5));
        await using var app = ModelServer.Build(model, Chars, new ModelServerOptions(Port: 0, ModelName: "tiny"));
        await app.StartAsync();
        var address = LabelingApp.BoundAddress(app);
        string script = Path.Combine(dir, "drive.mjs");
        await File.WriteAllTextAsync(script, Script);
        var (code, stdout, stderr) = await RunAsync("node", dir, TimeSpan.FromMinutes(2), script, new Uri(address, "/v1").ToString());
        Assert.True(code == 0, $"node exited with {code}:\n{stderr}");
        var got = JsonNode.Parse(stdout.Trim().Split('\n')[^1])!;

        // What the server says over raw HTTP to the same requests (greedy, so deterministic).
        using var http = new HttpClient { BaseAddress = address };
        async Task<JsonNode> Post(string path, string json)
        {
            var res = await http.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, res.StatusCode);
            return JsonNode.Parse(await res.Content.ReadAsStringAsync())!;
        }
        const string messages = """[{"role":"system","content":"be brief"},{"role":"user","content":"hello there"}]""";
        var chat = await Post("/v1/chat/completions", $$"""{"model":"tiny","messages":{{messages}},"max_tokens":12,"temperature":0}""");
        var completion = await Post("/v1/completions", """{"model":"tiny","prompt":"the cat","max_tokens":6,"temperature":0,"logprobs":2}""");
        var echo = await Post("/v1/completions", """{"model":"tiny","prompt":"hello world","max_tokens":0,"echo":true,"logprobs":1}""");

        Assert.Equal(["tiny"], got["models"]!.AsArray().Select(m => (string)m!));
        Assert.Equal("tiny", (string?)got["retrieved"]);
        Assert.True((bool)got["missing"]!["notFound"]!, got["missing"]!.ToJsonString());
        Assert.Equal(404, (int)got["missing"]!["status"]!);

        string text = (string)chat["choices"]![0]!["message"]!["content"]!;
        Assert.Equal(text, (string?)got["chat"]!["text"]);
        Assert.Equal((string?)chat["choices"]![0]!["finish_reason"], (string?)got["chat"]!["finish"]);
        Assert.Equal(chat["usage"]!.ToJsonString(), got["chat"]!["usage"]!.ToJsonString());
        Assert.Equal(text, (string?)got["streamed"]!["text"]);
        Assert.Equal((string?)chat["choices"]![0]!["finish_reason"], (string?)got["streamed"]!["finish"]);
        Assert.Equal(chat["usage"]!.ToJsonString(), got["streamed"]!["usage"]!.ToJsonString());
        Assert.True((int)got["streamed"]!["chunks"]! >= 3, $"expected several chunks, got {got["streamed"]!["chunks"]}");

        var chatLogprobs = got["chatLogprobs"]!.AsArray();
        Assert.NotEmpty(chatLogprobs);
        Assert.All(chatLogprobs, c => Assert.Equal((string?)c!["token"], (string?)c["top"]![0])); // greedy: the chosen token ranks first
        var rawLogprobs = (await Post("/v1/chat/completions", $$"""{"model":"tiny","messages":{{messages}},"max_tokens":6,"temperature":0,"logprobs":true,"top_logprobs":2}"""))["choices"]![0]!["logprobs"]!["content"]!.AsArray();
        Assert.Equal(rawLogprobs.Select(c => (string)c!["token"]!), chatLogprobs.Select(c => (string)c!["token"]!));
        Assert.Equal(rawLogprobs.Select(c => (double)c!["logprob"]!), chatLogprobs.Select(c => (double)c!["logprob"]!));

        Assert.Equal((string?)completion["choices"]![0]!["text"], (string?)got["completion"]!["text"]);
        Assert.Equal(completion["choices"]![0]!["logprobs"]!.ToJsonString(), got["completion"]!["logprobs"]!.ToJsonString());
        Assert.Equal("hello world", (string?)got["echo"]!["text"]);
        Assert.Equal(echo["choices"]![0]!["logprobs"]!.ToJsonString(), got["echo"]!["logprobs"]!.ToJsonString());
        Assert.Null(got["echo"]!["logprobs"]!["token_logprobs"]![0]);
        Assert.Equal(11, got["echo"]!["logprobs"]!["tokens"]!.AsArray().Count);

        var error = got["error"]!;
        Assert.True((bool)error["badRequest"]!, error.ToJsonString());
        Assert.Equal(400, (int)error["status"]!);
        Assert.Equal("tools", (string?)error["param"]);
        await app.StopAsync();
    }
}
