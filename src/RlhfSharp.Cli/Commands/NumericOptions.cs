// Every numeric option of `rlhf` is parsed here, in one voice (issue 17): the invariant culture, finite values only, and
// the range the option declares — [ConfigOption(Min = ...)] on a config record's field (ConfigOptions registers it) or
// .InRange(...) on an option a command makes itself. A bad value is one parse error naming the option and what it
// must be ("--batch-size must be a whole number >= 1 (got '0')"), never .NET's wording or type names
// ("System.Nullable`1[System.UInt64]"). Apply walks the whole command tree once, so a new option is covered as soon as
// it exists; the CLI audit test (NumericOptionAuditTests) walks the same tree and fails on an option with no declared range.
using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Runtime.CompilerServices;
using RlhfSharp.Runs;

namespace RlhfSharp.Cli.Commands;

internal static class NumericOptions
{
    private static readonly ConditionalWeakTable<Option, NumericRange> Ranges = [];

    /// <summary>Declares the values <paramref name="option"/> accepts (always finite; the bounds of <paramref name="range"/>).</summary>
    public static Option<T> InRange<T>(this Option<T> option, NumericRange range)
    {
        Register(option, range);
        return option;
    }

    /// <summary>Declares the range of an option made by reflection (ConfigOptions).</summary>
    public static void Register(Option option, NumericRange range) => Ranges.AddOrUpdate(option, range);

    /// <summary>The declared range of <paramref name="option"/>, or null when it declares none.</summary>
    public static NumericRange? RangeOf(Option option) => Ranges.TryGetValue(option, out var range) ? range : null;

    /// <summary>The number type an option's values have (int for int, int? and int[]), or null for a non-numeric option.</summary>
    public static Type? NumberType(Type valueType)
    {
        var type = Nullable.GetUnderlyingType(valueType) ?? valueType;
        if (type.IsArray) type = type.GetElementType()!;
        return type == typeof(int) || type == typeof(long) || type == typeof(ulong) || type == typeof(float) || type == typeof(double) ? type : null;
    }

    /// <summary>Every command under <paramref name="root"/> (itself included), depth first.</summary>
    public static IEnumerable<Command> Commands(Command root)
    {
        yield return root;
        foreach (var sub in root.Subcommands)
            foreach (var c in Commands(sub)) yield return c;
    }

    /// <summary>Gives every numeric option under <paramref name="root"/> the house parser.</summary>
    public static void Apply(Command root)
    {
        var install = typeof(NumericOptions).GetMethod(nameof(Install), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!;
        var done = new HashSet<Option>();
        foreach (var command in Commands(root))
            foreach (var option in command.Options)
                if (NumberType(option.ValueType) is not null && done.Add(option))
                    install.MakeGenericMethod(option.ValueType).Invoke(null, [option]);
    }

    private static void Install<T>(Option<T> option)
    {
        var defaultFactory = option.DefaultValueFactory;
        option.CustomParser = result =>
        {
            // No value given: the option's default (System.CommandLine calls a custom parser for defaults too).
            if (result.Tokens.Count == 0) return defaultFactory is null ? default : defaultFactory(result);
            var type = typeof(T);
            var number = NumberType(type)!;
            var range = RangeOf(option) ?? NumericRange.Any;
            if (type.IsArray)
            {
                var array = Array.CreateInstance(number, result.Tokens.Count);
                for (int i = 0; i < result.Tokens.Count; i++)
                {
                    if (Parse(result, option, number, range, result.Tokens[i].Value) is not { } element) return default;
                    array.SetValue(element, i);
                }
                return (T)(object)array;
            }
            return Parse(result, option, number, range, result.Tokens[^1].Value) is { } value ? (T)value : default;
        };
    }

    /// <summary>The value of <paramref name="text"/>, or null after adding the one error naming the option.</summary>
    private static object? Parse(ArgumentResult result, Option option, Type number, NumericRange range, string text)
    {
        const NumberStyles Whole = NumberStyles.AllowLeadingSign;
        const NumberStyles Real = NumberStyles.Float;
        var c = CultureInfo.InvariantCulture;
        object? value = null;
        double x = double.NaN;
        if (number == typeof(int) && int.TryParse(text, Whole, c, out int i)) (value, x) = (i, i);
        else if (number == typeof(long) && long.TryParse(text, Whole, c, out long l)) (value, x) = (l, l);
        else if (number == typeof(ulong) && ulong.TryParse(text, Whole, c, out ulong u)) (value, x) = (u, u);
        else if (number == typeof(float) && float.TryParse(text, Real, c, out float f)) (value, x) = (f, f);
        else if (number == typeof(double) && double.TryParse(text, Real, c, out double d)) (value, x) = (d, d);
        if (value is not null && range.Contains(x)) return value;
        object sample = number == typeof(float) || number == typeof(double) ? 0.0 : (object)0;
        var bounds = number == typeof(ulong) && double.IsNegativeInfinity(range.Min) ? NumericRange.NonNegative : range;
        result.AddError($"{option.Name} must be {ConfigRanges.Requirement(bounds, sample)}{TypeLimit(number, range)} (got '{Shown(text)}')");
        return null;
    }

    /// <summary>" up to 2147483647" when the type, not the declared range, sets the upper limit of a whole number.</summary>
    private static string TypeLimit(Type number, NumericRange range)
    {
        if (!double.IsPositiveInfinity(range.Max)) return "";
        if (number == typeof(int)) return $" up to {int.MaxValue}";
        if (number == typeof(long)) return $" up to {long.MaxValue}";
        if (number == typeof(ulong)) return $" up to {ulong.MaxValue}";
        return "";
    }

    private static string Shown(string text) => text.Length <= 40 ? text : text[..40] + "…";
}
