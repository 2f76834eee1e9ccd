// Starts the labelling app on a free 127.0.0.1 port over a given store, with helpers to make labellers and queries.
using System.Net.Http.Headers;
using Microsoft.AspNetCore.Builder;
using RlhfSharp.Feedback;

namespace RlhfSharp.Web.Tests;

internal sealed class RunningApp : IAsyncDisposable
{
    public required IPreferenceStore Store { get; init; }
    public required WebApplication App { get; init; }
    public required Uri Address { get; init; }

    public static async Task<RunningApp> StartAsync(IPreferenceStore store, LabelingAppOptions? options = null, TimeProvider? clock = null)
    {
        await store.MigrateAsync();
        var app = LabelingApp.Build(store, (options ?? new LabelingAppOptions()) with { Host = "127.0.0.1", Port = 0 }, clock: clock);
        await app.StartAsync();
        return new RunningApp { Store = store, App = app, Address = LabelingApp.BoundAddress(app) };
    }

    /// <summary>A client that carries no credentials (cookies off, so each test controls exactly what is sent).</summary>
    public HttpClient Client(string? bearer = null)
    {
        var c = new HttpClient(new SocketsHttpHandler { UseCookies = false, MaxConnectionsPerServer = 64 }) { BaseAddress = Address };
        if (bearer is not null)
            c.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        return c;
    }

    public async Task<string> AddLabelerAsync(string name, LabelerRole role = LabelerRole.Labeler) =>
        (await Store.AddLabelerAsync(name, role)).Token;

    /// <summary>Adds <paramref name="count"/> text pairs "prompt i" with candidates "A i" / "B i".</summary>
    public Task<IReadOnlyList<long>> AddPairsAsync(int count, string campaign = "default", int start = 0) =>
        Store.AddQueriesAsync([.. Enumerable.Range(start, count).Select(i =>
            new NewQuery(QueryKind.Text, $"prompt {i}", [new Candidate($"A {i}", "sft"), new Candidate($"B {i}", "ppo")], campaign))]);

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
        await Store.DisposeAsync();
    }
}
