// The pages in a real browser: Debian's chromium driven by Microsoft.Playwright (its node driver ships inside the
// NuGet package). A labeller signs in and judges with the keyboard; the judgments must be in the store.
using Microsoft.Playwright;
using RlhfSharp.Feedback;
using Xunit.Abstractions;

namespace RlhfSharp.Web.Tests;

public sealed class BrowserTests(ITestOutputHelper output)
{
    private static readonly string ScreenshotDir = Path.Combine(AppContext.BaseDirectory, "screenshots");

    private static async Task<(IPlaywright, IBrowser)> LaunchAsync()
    {
        var pw = await Playwright.CreateAsync();
        var browser = await Chromium.LaunchAsync(pw);
        return (pw, browser);
    }

    private static async Task<IPage> SignInAsync(IBrowser browser, RunningApp app, string token)
    {
        var page = await browser.NewPageAsync(new() { ViewportSize = new() { Width = 1280, Height = 800 } });
        page.SetDefaultTimeout(15_000);
        await page.GotoAsync(new Uri(app.Address, "/").ToString());
        await page.FillAsync("#token", token);
        await page.PressAsync("#token", "Enter");
        try
        {
            // Poll the DOM for the labelling page rather than wait on navigation events, which chromium builds
            // newer than Playwright's own can report late.
            await page.Locator("#done-count").WaitForAsync();
        }
        catch (TimeoutException ex)
        {
            throw new TimeoutException($"sign-in did not reach /label; the page at {page.Url} says: \"{await page.InnerTextAsync("#status")}\"", ex);
        }
        return page;
    }

    private async Task ScreenshotAsync(IPage page, string name)
    {
        Directory.CreateDirectory(ScreenshotDir);
        var path = Path.Combine(ScreenshotDir, name);
        await page.ScreenshotAsync(new() { Path = path, FullPage = true });
        output.WriteLine($"screenshot: {path}");
    }

    [ChromiumFact]
    public async Task Given_a_labeller_When_signing_in_and_judging_three_pairs_with_keys_1_2_T_Then_three_judgments_are_stored()
    {
        await using var app = await RunningApp.StartAsync(new InMemoryPreferenceStore());
        var longText = string.Join("\n", Enumerable.Range(1, 80).Select(i => $"Line {i} of a long answer that has to scroll inside its box."));
        var ids = await app.Store.AddQueriesAsync([
            new NewQuery(QueryKind.Text, "Write a <b>friendly</b> greeting. <img src=x onerror=\"document.title='pwned'\">",
                [new Candidate("Hello there! Lovely to meet you."), new Candidate(longText)]),
            new NewQuery(QueryKind.Text, "Summarise: the cat sat on the mat.", [new Candidate("A dog ran."), new Candidate("A cat sat on a mat.")]),
            new NewQuery(QueryKind.Text, "Say yes.", [new Candidate("Yes."), new Candidate("Yes!")]),
        ]);
        var token = await app.AddLabelerAsync("ada");
        var (pw, browser) = await LaunchAsync();
        try
        {
            var page = await SignInAsync(browser, app, token);
            await page.Locator("#cand-0").WaitForAsync();
            // Untrusted text is shown as text, never parsed as markup.
            Assert.Contains("<b>friendly</b>", await page.InnerTextAsync("#prompt"));
            Assert.Equal(0, await page.Locator("#prompt img").CountAsync());
            // The long candidate scrolls inside its box instead of stretching the page.
            Assert.True(await page.EvalOnSelectorAsync<bool>("#cand-1 .text", "e => e.scrollHeight > e.clientHeight"));
            await ScreenshotAsync(page, "label-pair.png");
            // On a narrow window the two candidates stack instead of squeezing side by side.
            await page.SetViewportSizeAsync(700, 900);
            var left = await page.Locator("#cand-0").BoundingBoxAsync();
            var right = await page.Locator("#cand-1").BoundingBoxAsync();
            Assert.True(right!.Y >= left!.Y + left.Height, $"at 700 px the right candidate (y={right.Y}) should sit below the left one (bottom {left.Y + left.Height})");
            await ScreenshotAsync(page, "label-pair-narrow.png");
            await page.SetViewportSizeAsync(1280, 800);
            var wideLeft = await page.Locator("#cand-0").BoundingBoxAsync();
            var wideRight = await page.Locator("#cand-1").BoundingBoxAsync();
            Assert.Equal(wideLeft!.Y, wideRight!.Y, 1);

            await page.Keyboard.PressAsync("1");
            await Assertions.Expect(page.Locator("#done-count")).ToHaveTextAsync("1");
            await Assertions.Expect(page.Locator("#prompt")).ToContainTextAsync("cat sat");
            await page.Keyboard.PressAsync("2");
            await Assertions.Expect(page.Locator("#done-count")).ToHaveTextAsync("2");
            await Assertions.Expect(page.Locator("#prompt")).ToContainTextAsync("Say yes");
            await page.Keyboard.PressAsync("t");
            await Assertions.Expect(page.Locator("#done-count")).ToHaveTextAsync("3");
            await Assertions.Expect(page.Locator("#status")).ToContainTextAsync("Nothing left");
            Assert.NotEqual("pwned", await page.TitleAsync());

            var judgments = (await app.Store.GetJudgmentsAsync()).OrderBy(j => j.QueryId).ToList();
            Assert.Equal(3, judgments.Count);
            Assert.Equal(ids, judgments.Select(j => j.QueryId).ToList());
            Assert.Equal(Answer.Prefer(0).Kind, judgments[0].Answer.Kind);
            Assert.Equal(0, judgments[0].Answer.Preferred);
            Assert.Equal(1, judgments[1].Answer.Preferred);
            Assert.Equal(AnswerKind.Tie, judgments[2].Answer.Kind);
            Assert.All(judgments, j => Assert.True(j.TimeSpent > TimeSpan.Zero));

            await page.GotoAsync(new Uri(app.Address, "/progress").ToString());
            await Assertions.Expect(page.Locator("#judged")).ToHaveTextAsync("3");
        }
        finally
        {
            await browser.CloseAsync();
            pw.Dispose();
        }
    }

    [ChromiumFact]
    public async Task Given_a_ranking_a_clip_pair_and_a_skip_When_answered_with_keys_Then_the_store_holds_them_and_clip_script_never_runs()
    {
        await using var app = await RunningApp.StartAsync(new InMemoryPreferenceStore());
        // An animated clip that also tries to run script: inside <img> it animates but its script must not run.
        static string Clip(string colour, int to) =>
            $"<svg xmlns='http://www.w3.org/2000/svg' width='200' height='120' viewBox='0 0 200 120'><rect width='200' height='120' fill='#eef'/>" +
            $"<circle cx='20' cy='60' r='14' fill='{colour}'><animate attributeName='cx' from='20' to='{to}' dur='2s' fill='freeze'/></circle>" +
            "<script>parent.document.title='pwned'</script></svg>";
        await app.Store.AddQueriesAsync([
            new NewQuery(QueryKind.Text, "Rank these answers to 2+2.", [new Candidate("5"), new Candidate("4"), new Candidate("four, I think")]),
            new NewQuery(QueryKind.Clip, "The agent should move right.", [new Candidate(Clip("#c33", 180)), new Candidate(Clip("#33c", 60))]),
            new NewQuery(QueryKind.Text, "Translate 'chat'.", [new Candidate("cat"), new Candidate("chat")]),
            new NewQuery(QueryKind.Text, "Order by size.", [new Candidate("mouse"), new Candidate("dog"), new Candidate("elephant")]),
        ]);
        var token = await app.AddLabelerAsync("bo");
        var (pw, browser) = await LaunchAsync();
        try
        {
            var page = await SignInAsync(browser, app, token);
            await page.Locator("#ranking li").First.WaitForAsync();
            Assert.Equal(3, await page.Locator("#ranking li").CountAsync());
            await page.Keyboard.PressAsync("2");
            await page.Keyboard.PressAsync("3"); // the last one falls into place
            await ScreenshotAsync(page, "label-ranking.png");
            await page.Keyboard.PressAsync("Enter");
            await Assertions.Expect(page.Locator("#done-count")).ToHaveTextAsync("1");

            await page.Locator("img.clip").First.WaitForAsync();
            Assert.Equal(2, await page.Locator("img.clip").CountAsync());
            await page.WaitForFunctionAsync("() => [...document.querySelectorAll('img.clip')].every(i => i.complete && i.naturalWidth > 0)");
            await ScreenshotAsync(page, "label-clips.png");
            await page.ClickAsync("#replay");
            await page.Keyboard.PressAsync("1");
            await Assertions.Expect(page.Locator("#done-count")).ToHaveTextAsync("2");

            await Assertions.Expect(page.Locator("#prompt")).ToContainTextAsync("Translate");
            await page.Keyboard.PressAsync("s");
            await Assertions.Expect(page.Locator("#skip-box")).ToBeVisibleAsync();
            await page.SelectOptionAsync("#skip-reason", "unreadable");
            await page.Keyboard.PressAsync("Enter");
            await Assertions.Expect(page.Locator("#done-count")).ToHaveTextAsync("3");
            Assert.NotEqual("pwned", await page.TitleAsync());

            // Ranking by drag: the elephant dragged to the top; the visible order is the ranking.
            await Assertions.Expect(page.Locator("#prompt")).ToContainTextAsync("Order by size");
            await page.Locator("#ranking li", new() { HasText = "elephant" }).DragToAsync(page.Locator("#ranking li").First, new() { TargetPosition = new() { X = 20, Y = 5 } });
            await Assertions.Expect(page.Locator("#ranking li").First).ToContainTextAsync("elephant");
            await page.ClickAsync("#rank-submit");
            await Assertions.Expect(page.Locator("#done-count")).ToHaveTextAsync("4");

            var j = (await app.Store.GetJudgmentsAsync()).OrderBy(x => x.QueryId).ToList();
            Assert.Equal(4, j.Count);
            Assert.Equal([2, 0, 1], j[3].Answer.Ranking!);
            Assert.Equal(AnswerKind.Ranking, j[0].Answer.Kind);
            Assert.Equal([1, 2, 0], j[0].Answer.Ranking!);
            Assert.Equal(0, j[1].Answer.Preferred);
            Assert.Equal(AnswerKind.Skip, j[2].Answer.Kind);
            Assert.Equal("unreadable", j[2].Answer.SkipReason);
        }
        finally
        {
            await browser.CloseAsync();
            pw.Dispose();
        }
    }

    [ChromiumFact]
    public async Task Given_an_admin_When_opening_the_dashboard_Then_labellers_and_gold_accuracy_are_shown_and_flagging_works()
    {
        await using var app = await RunningApp.StartAsync(new InMemoryPreferenceStore(), new LabelingAppOptions(GoldRate: 1, MinGoldForFlag: 2, FlagAccuracyBelow: 0.7));
        await app.Store.AddQueriesAsync([.. Enumerable.Range(0, 2).Select(i =>
            new NewQuery(QueryKind.Text, $"gold {i}", [new Candidate("good"), new Candidate("bad")], GoldAnswer: Answer.Prefer(0)))]);
        var (cy, _) = await app.Store.AddLabelerAsync("cy", LabelerRole.Labeler);
        for (var i = 0; i < 2; i++)
        {
            var a = (await app.Store.NextAssignmentAsync(cy.Id, goldRate: 1))!;
            await app.Store.SubmitAsync(a.Id, cy.Id, Answer.Prefer(1), TimeSpan.FromSeconds(3));
        }
        var adminToken = await app.AddLabelerAsync("root", LabelerRole.Admin);
        var (pw, browser) = await LaunchAsync();
        try
        {
            var page = await SignInAsync(browser, app, adminToken);
            await page.GotoAsync(new Uri(app.Address, "/admin").ToString());
            var cyRow = page.Locator("#labelers tbody tr", new() { HasText = "cy" });
            await Assertions.Expect(cyRow).ToContainTextAsync("0/2");
            await Assertions.Expect(cyRow).ToContainTextAsync("low gold accuracy");
            await Assertions.Expect(page.Locator("#t-judgments")).ToHaveTextAsync("2");
            await ScreenshotAsync(page, "admin.png");
            await cyRow.GetByRole(AriaRole.Button, new() { Name = "Flag", Exact = true }).ClickAsync();
            await Assertions.Expect(cyRow).ToContainTextAsync("flagged");
            Assert.True((await app.Store.GetLabelersAsync()).Single(l => l.Name == "cy").Flagged);
            // Revoking asks first; accepted, the row says so and the audit log lists both actions by this admin.
            page.Dialog += async (_, dialog) => await dialog.AcceptAsync();
            await cyRow.GetByRole(AriaRole.Button, new() { Name = "Revoke", Exact = true }).ClickAsync();
            await Assertions.Expect(cyRow).ToContainTextAsync("revoked");
            Assert.True((await app.Store.GetLabelersAsync()).Single(l => l.Name == "cy").Revoked);
            await Assertions.Expect(page.Locator("#audit tbody")).ToContainTextAsync("revoke");
            await Assertions.Expect(page.Locator("#audit tbody")).ToContainTextAsync("admin \"root\"");
        }
        finally
        {
            await browser.CloseAsync();
            pw.Dispose();
        }
    }

    [ChromiumFact]
    public async Task Given_one_comparison_open_in_two_tabs_When_each_tab_answers_differently_Then_the_first_answer_stands_and_the_second_tab_moves_on()
    {
        await using var app = await RunningApp.StartAsync(new InMemoryPreferenceStore());
        await app.AddPairsAsync(2);
        var token = await app.AddLabelerAsync("ada");
        var (pw, browser) = await LaunchAsync();
        try
        {
            var first = await SignInAsync(browser, app, token);
            var second = await SignInAsync(browser, app, token);
            await Assertions.Expect(first.Locator("#prompt")).ToHaveTextAsync("prompt 0");
            await Assertions.Expect(second.Locator("#prompt")).ToHaveTextAsync("prompt 0");

            await first.Keyboard.PressAsync("1");
            await Assertions.Expect(first.Locator("#done-count")).ToHaveTextAsync("1");
            await second.Keyboard.PressAsync("2");
            await Assertions.Expect(second.Locator("#status")).ToContainTextAsync("not saved");
            await Assertions.Expect(second.Locator("#prompt")).ToHaveTextAsync("prompt 1");
            Assert.Equal("0", await second.InnerTextAsync("#done-count"));

            var judgment = Assert.Single(await app.Store.GetJudgmentsAsync());
            Assert.Equal(0, judgment.Answer.Preferred);
        }
        finally
        {
            await browser.CloseAsync();
            pw.Dispose();
        }
    }
}
