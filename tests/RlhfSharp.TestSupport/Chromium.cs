// Debian's chromium driven by Microsoft.Playwright (its node driver ships inside the NuGet package; Playwright's own
// browser download cannot work here), started as docs/design.md says, and the fact that skips where it is missing.
using Microsoft.Playwright;
using Xunit;

namespace RlhfSharp.TestSupport;

public static class Chromium
{
    public const string ExecutablePath = "/usr/bin/chromium";

    /// <summary>Why browser tests skip here, or null when chromium is installed.</summary>
    public static string? SkipReason =>
        File.Exists(ExecutablePath) ? null : $"{ExecutablePath} is not installed (apt-get install chromium); CI installs it.";

    /// <summary>A headless chromium with the flags it needs in a container (no sandbox, no GPU, no background traffic).</summary>
    public static Task<IBrowser> LaunchAsync(IPlaywright playwright) =>
        playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = ExecutablePath,
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });
}

/// <summary>A fact that skips, saying why, on a machine without Debian's chromium (CI installs it).</summary>
public sealed class ChromiumFactAttribute : FactAttribute
{
    public ChromiumFactAttribute()
    {
        if (Chromium.SkipReason is string reason) Skip = reason;
    }
}
