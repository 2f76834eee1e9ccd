// Marks a property of a trainer's configuration record as a command-line option: its help text lives here, beside the
// default (the property's initial value) and the name config.json uses (the snake_case property name, or the
// [JsonPropertyName] that gives TRL's or CleanRL's). The CLI builds its options from these (ConfigOptions), so help,
// defaults and names have one place. The option is --kebab-of-the-json-name unless Name says otherwise; Aliases keep
// older spellings working. A numeric field also declares its range here (Min, Max, exclusive or not): the CLI refuses a
// value outside it naming the option, a --config file naming the setting, and ConfigRanges.Validate the record's source.
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;

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

    /// <summary>Smallest allowed value of a numeric field (NaN: not declared; -Infinity: no lower bound).</summary>
    public double Min { get; init; } = double.NaN;

    /// <summary>Largest allowed value of a numeric field (NaN or +Infinity: no upper bound).</summary>
    public double Max { get; init; } = double.NaN;

    /// <summary>The value must be strictly above Min.</summary>
    public bool MinExclusive { get; init; }

    /// <summary>The value must be strictly below Max.</summary>
    public bool MaxExclusive { get; init; }

    /// <summary>The declared range, or null when the field declares none (Min not set).</summary>
    public NumericRange? Range => double.IsNaN(Min) ? null : new NumericRange(Min, double.IsNaN(Max) ? double.PositiveInfinity : Max, MinExclusive, MaxExclusive);

    /// <summary>The field's name in config.json: [JsonPropertyName], else the snake_case property name.</summary>
    public static string JsonName(PropertyInfo property) =>
        property.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name ?? JsonNamingPolicy.SnakeCaseLower.ConvertName(property.Name);
}

/// <summary>
/// The values a numeric setting may take: always finite, between Min and Max (each bound inclusive unless said
/// otherwise). One description ("> 0", "in [0, 1)") serves every message.
/// </summary>
public sealed record NumericRange(double Min, double Max = double.PositiveInfinity, bool MinExclusive = false, bool MaxExclusive = false)
{
    /// <summary>Any finite value.</summary>
    public static readonly NumericRange Any = new(double.NegativeInfinity);

    /// <summary>Greater than 0.</summary>
    public static readonly NumericRange Positive = new(0, MinExclusive: true);

    /// <summary>0 or more.</summary>
    public static readonly NumericRange NonNegative = new(0);

    /// <summary>Whether <paramref name="value"/> is finite and inside the range.</summary>
    public bool Contains(double value) =>
        double.IsFinite(value)
        && (MinExclusive ? value > Min : value >= Min)
        && (MaxExclusive ? value < Max : value <= Max);

    /// <summary>"> 0", ">= 1", "in [0, 1)", "<= 100" or "" for any finite value.</summary>
    public string Describe()
    {
        bool low = !double.IsNegativeInfinity(Min), high = !double.IsPositiveInfinity(Max);
        string Num(double x) => x.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        if (low && high) return $"in {(MinExclusive ? "(" : "[")}{Num(Min)}, {Num(Max)}{(MaxExclusive ? ")" : "]")}";
        if (low) return $"{(MinExclusive ? ">" : ">=")} {Num(Min)}";
        if (high) return $"{(MaxExclusive ? "<" : "<=")} {Num(Max)}";
        return "";
    }
}

/// <summary>Checks a configuration record's numeric fields against the ranges their [ConfigOption] declares.</summary>
public static class ConfigRanges
{
    /// <summary>
    /// Throws ArgumentException "SOURCE: NAME = VALUE must be ..." at the first numeric field (nested records included)
    /// that is not finite or lies outside its declared range. Fields without a declared range must still be finite.
    /// </summary>
    public static void Validate(object record, string source)
    {
        ArgumentNullException.ThrowIfNull(record);
        Validate(record, source, "");
    }

    private static void Validate(object record, string source, string prefix)
    {
        foreach (var property in record.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (property.GetIndexParameters().Length > 0) continue;
            object? value = property.GetValue(record);
            if (value is null) continue;
            var attribute = property.GetCustomAttribute<ConfigOptionAttribute>();
            string name = prefix + ConfigOptionAttribute.JsonName(property);
            if (attribute is null)
            {
                var type = property.PropertyType;
                if (type.IsClass && type != typeof(string) && !type.IsArray && type.Namespace?.StartsWith("RlhfSharp", StringComparison.Ordinal) == true)
                    Validate(value, source, name + ".");
                continue;
            }
            var range = attribute.Range ?? NumericRange.Any;
            IEnumerable<object> values = value is Array array ? array.Cast<object>() : [value];
            foreach (object v in values)
            {
                if (!TryNumber(v, out double x)) continue;
                if (!range.Contains(x))
                    throw new ArgumentException($"{source}: {name} = {Format(v)} must be {Requirement(range, v)}.");
            }
        }
    }

    /// <summary>"a finite number > 0", "a whole number >= 1"...: what a value of this kind must be.</summary>
    public static string Requirement(NumericRange range, object sample)
    {
        string kind = sample is float or double ? "a finite number" : "a whole number";
        string bounds = range.Describe();
        return bounds.Length == 0 ? kind : $"{kind} {bounds}";
    }

    private static bool TryNumber(object v, out double x)
    {
        switch (v)
        {
            case int i: x = i; return true;
            case long l: x = l; return true;
            case ulong u: x = u; return true;
            case uint u32: x = u32; return true;
            case float f: x = f; return true;
            case double d: x = d; return true;
            default: x = 0; return false;
        }
    }

    private static string Format(object v) => Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture) ?? "";
}
