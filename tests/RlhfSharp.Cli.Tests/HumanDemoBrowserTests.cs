// `demo --human` in a real browser: Debian's chromium (driven by Microsoft.Playwright) signs in to the demo's labelling
// app with the token the stage hands out and answers every pair with the keyboard; the reward stage trains on it.
using Microsoft.Playwright;
using RlhfSharp.Alignment.Demo;
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Cli.Commands;
using RlhfSharp.Feedback.Stores;
using Xunit.Abstractions;

namespace RlhfSharp.Cli.Tests;

public sealed class HumanDemoBrowserTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "rlhf-human-browser-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    /// <summary>Signs in on the start page with <paramref name="token"/> and prefers the left answer ("1") <paramref name="count"/> times.</summary>
    private async Task JudgeInBrowserAsync(Uri app, string token, int count)
    {
        using var pw = await Playwright.CreateAsync();
        await using var browser = await Chromium.LaunchAsync(pw);
        var page = await browser.NewPageAsync(new() { ViewportSize = new() { Width = 1280, Height = 800 } });
        page.SetDefaultTimeout(20_000);
        await page.GotoAsync(app.ToString());
        await page.FillAsync("#token", token);
        await page.PressAsync("#token", "Enter");
        await page.Locator("#cand-0").WaitForAsync();
        string shot = Path.Combine(AppContext.BaseDirectory, "screenshots", "demo-human-label.png");
        Directory.CreateDirectory(Path.GetDirectoryName(shot)!);
        await page.ScreenshotAsync(new() { Path = shot, FullPage = true });
        output.WriteLine($"screenshot: {shot}");
        for (int i = 1; i <= count; i++)
        {
            await page.Keyboard.PressAsync("1");
            await Assertions.Expect(page.Locator("#done-count")).ToHaveTextAsync(i.ToString(System.Globalization.CultureInfo.InvariantCulture));
            // The count moves before the next pair is fetched, and keys are ignored until it is on screen (fresh, unchosen boxes).
            if (i < count) await Assertions.Expect(page.Locator("#cand-0.chosen")).ToHaveCountAsync(0);
        }
        // No wait for "Nothing left" here: the demo's labels stage ends (and closes the app) as soon as the last judgment
        // is stored, which can be before the page asks for the next pair, so that request may find no server. The tenth
        // acknowledged judgment above is what this person had to do; the test checks what the pipeline made of them.
    }

    [ChromiumFact]
    public async Task Given_the_demo_waiting_for_people_When_a_labeller_signs_in_and_presses_1_for_every_pair_Then_the_reward_model_trains_on_those_choices()
    {
        const int Judgments = 10;
        var config = HumanDemoTests.Small with { Pairs = Judgments };
        Task? person = null;
        using (var guard = new CancellationTokenSource(TimeSpan.FromMinutes(4)))
        {
            var labeler = new HumanDemoLabeler(new HumanLabelingOptions(HumanDemoTests.WebApp, TimeSpan.FromMilliseconds(100),
                (url, token) => person = HumanDemoTests.CancelOnFailure(Task.Run(() => JudgeInBrowserAsync(url, token, Judgments)), guard)));
            HumanDemoTests.RunSurfacingPersonFailure(() => new DemoPipeline(config) { Labeler = labeler }.Run(_dir, resume: false, ct: guard.Token), () => person);
        }
        await person!;

        // Every pair as shown (left, right) became (chosen, rejected): the left answer was preferred each time.
        await using var store = await SqlitePreferenceStore.OpenAsync(Path.Combine(_dir, HumanDemoLabeler.StoreFileName));
        var shown = (await store.GetQueriesAsync(HumanDemoLabeler.Campaign)).Select(q => (q.Prompt, q.Candidates[0].Content, q.Candidates[1].Content)).Order().ToList();
        var lines = PreferenceData.ReadJsonl(Path.Combine(_dir, "labels", "preferences.jsonl"));
        Assert.Equal(shown, lines.Select(e => (e.Prompt, e.Responses[0], e.Responses[1])).Order().ToList());
        Assert.True(File.Exists(Path.Combine(_dir, "reward", RewardEnsemble.FileName)), "the reward stage ran on the browser's judgments");
        Assert.Contains("report", File.ReadAllText(Path.Combine(_dir, DemoPipeline.StagesFileName)));
    }
}
