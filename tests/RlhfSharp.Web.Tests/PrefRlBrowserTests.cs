// Christiano et al.'s loop with a person in it: a running preference loop (Control) asks its queries through the labelling
// app; a labeller in chromium sees the clip pair, answers with the keyboard, and the answers become the predictor's
// comparisons. The test lives here, beside the browser harness; Control is a test-only reference (the app never needs it).
using System.Collections.Concurrent;
using RlhfSharp.Control.Preferences;
using RlhfSharp.Control.Rl;
using RlhfSharp.Feedback;
using Xunit.Abstractions;

namespace RlhfSharp.Web.Tests;

public sealed class PrefRlBrowserTests(ITestOutputHelper output)
{
    [ChromiumFact]
    public async Task Given_a_running_prefrl_loop_When_a_labeller_answers_its_clip_pairs_with_keys_Then_the_answers_are_the_predictors_comparisons()
    {
        await using var app = await RunningApp.StartAsync(new InMemoryPreferenceStore(), new LabelingAppOptions(Campaign: "prefrl"));
        var token = await app.AddLabelerAsync("ada");
        var waiting = new BlockingCollection<long>();
        var labeler = new StoreLabeler(app.Store, TimeSpan.FromMilliseconds(50)) { OnWaiting = waiting.Add };
        // Two PPO updates and a budget of 2: one label before RL, one flushed after the last update.
        var cfg = new PreferenceConfig
        {
            EnvId = "CartPole-v1",
            Ppo = PpoConfig.ForEnv("CartPole-v1") with { TotalSteps = 512 },
            Schedule = new LabelSchedule(Total: 2, PreRl: 1),
            RenderClips = true,
            InitialFitSteps = 10,
            RefitSteps = 5,
        };
        var loop = Task.Run(() => PreferenceLoop.Run(cfg, labeler, seed: 3));

        var pw = await Microsoft.Playwright.Playwright.CreateAsync();
        var browser = await Chromium.LaunchAsync(pw);
        try
        {
            long Next()
            {
                if (!waiting.TryTake(out long id, TimeSpan.FromSeconds(90)))
                    throw new TimeoutException($"the loop posted no query within 90 s (loop state: {loop.Status}, {loop.Exception?.GetBaseException().Message})");
                return id;
            }
            long first = Next();
            var page = await browser.NewPageAsync(new() { ViewportSize = new() { Width = 1280, Height = 800 } });
            page.SetDefaultTimeout(15_000);
            await page.GotoAsync(new Uri(app.Address, "/").ToString());
            await page.FillAsync("#token", token);
            await page.PressAsync("#token", "Enter");
            // The pair is two animated CartPole clips from the loop's segment pool.
            await Microsoft.Playwright.Assertions.Expect(page.Locator("img.clip")).ToHaveCountAsync(2);
            string src = await page.Locator("img.clip").First.GetAttributeAsync("src") ?? "";
            Assert.StartsWith("data:image/svg+xml", src);
            Assert.Contains("animate", Uri.UnescapeDataString(src));
            await page.Keyboard.PressAsync("1");
            await Microsoft.Playwright.Assertions.Expect(page.Locator("#done-count")).ToHaveTextAsync("1");

            // The second query comes after PPO's updates; the page does not poll, so the labeller reloads for it.
            long second = Next();
            Assert.NotEqual(first, second);
            await page.ReloadAsync();
            await Microsoft.Playwright.Assertions.Expect(page.Locator("img.clip")).ToHaveCountAsync(2);
            await page.Keyboard.PressAsync("2");

            var result = await loop.WaitAsync(TimeSpan.FromSeconds(120));
            output.WriteLine($"labels {result.LabelsUsed}, comparisons {result.Comparisons.Count}, wall {result.WallSeconds:F1}s");
            Assert.Equal(2, result.LabelsUsed);
            // Key 1 preferred the left clip (μ = 1), key 2 the right one (μ = 0), in the order they were asked.
            Assert.Equal([1f, 0f], result.Comparisons.Select(c => c.Mu).ToArray());
            var judgments = (await app.Store.GetJudgmentsAsync("prefrl")).OrderBy(j => j.QueryId).ToList();
            Assert.Equal([first, second], judgments.Select(j => j.QueryId).ToArray());
            Assert.All(result.Comparisons, c => Assert.Equal(c.First.Length, c.Second.Length));
        }
        finally
        {
            await browser.CloseAsync();
            pw.Dispose();
        }
    }
}
