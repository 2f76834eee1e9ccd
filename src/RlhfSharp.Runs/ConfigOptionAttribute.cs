// Marks a property of a trainer's configuration record as a command-line option: its help text lives here, beside the
// default (the property's initial value) and the name config.json uses (the snake_case property name, or the
// [JsonPropertyName] that gives TRL's or CleanRL's). The CLI builds its options from these (ConfigOptions), so help,
// defaults and names have one place. The option is --kebab-of-the-json-name unless Name says otherwise; Aliases keep
// older spellings working.
namespace RlhfSharp.Runs;

[AttributeUsage(AttributeTargets.Property)]
public sealed class ConfigOptionAttribute(string description) : Attribute
{
    /// <summary>The help text.</summary>
    public string Description { get; } = description;

    /// <summary>The option's name when it is not "--" + the JSON name with '-' for '_'.</summary>
    public string? Name { get; init; }

    /// <summary>Other accepted spellings (e.g. "--lr").</summary>
    public string[] Aliases { get; init; } = [];
}
