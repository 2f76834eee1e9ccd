// Command-line options made from a trainer's configuration record (issue 16: one place for options, help and defaults).
// Every property marked [ConfigOption] becomes an option named after its config.json name (--num-ppo-epochs for
// num_ppo_epochs), with the attribute's help, the record's initial value as default, and any older aliases; a property
// holding a nested record (LmTrainingOptions inside SftConfig) contributes its own options. The record is then built in
// three layers: its defaults, a --config FILE (JSON or YAML, the keys of config.json's "trainer" section, nested objects
// for nested records), and the options given on the command line. Unknown keys in the file are refused by name.
// Two records may serve one command (`rl`: PpoConfig or ReinforceConfig by --algo): an option both have (same name and
// type) is made once and shared, and so is --config. Defaults may depend on a setting (PPO's per-environment presets):
// Build's presets step resolves the record once, asks for the defaults that fit it, and lays the file and options over those.
using System.CommandLine;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using RlhfSharp.Runs;
using YamlDotNet.RepresentationModel;

namespace RlhfSharp.Cli.Commands;

internal sealed class ConfigOptions<T> where T : class, new()
{
    private readonly List<(string[] Path, Option Option)> _options = [];
    private readonly JsonObject _defaults;

    private readonly string? _label;

    /// <summary>The --config FILE option every trainer accepts (shared with another record's options on the same command).</summary>
    public Option<string?> ConfigFile { get; }

    /// <param name="command">The command the options are added to.</param>
    /// <param name="defaults">The record whose values are the defaults (default: new T()).</param>
    /// <param name="skip">Properties the command sets itself (by C# name), e.g. derived from other options.</param>
    /// <param name="label">
    /// When a second record shares the command: its name in the help of a shared option whose default differs
    /// ("(default: 0.98; reinforce: 0.99)").
    /// </param>
    public ConfigOptions(Command command, T? defaults = null, string[]? skip = null, string? label = null)
    {
        _label = label;
        _defaults = (JsonObject)JsonSerializer.SerializeToNode(defaults ?? new T(), RunDirectory.ConfigJsonOptions)!;
        Add(command, typeof(T), _defaults, [], skip ?? []);
        if (command.Options.OfType<Option<string?>>().FirstOrDefault(o => o.Name == "--config") is { } shared) ConfigFile = shared;
        else
        {
            ConfigFile = new("--config") { Description = "JSON or YAML file of settings (the keys of a run's config.json \"trainer\" section); options given on the command line win." };
            command.Options.Add(ConfigFile);
        }
    }

    /// <summary>Whether <paramref name="option"/> sets a field of this record.</summary>
    public bool Has(Option option) => _properties.ContainsKey(option);

    /// <summary>The option made for a property (by its C# name).</summary>
    public Option this[string property] => _properties.Single(kv => kv.Value.Name == property).Key;

    private readonly Dictionary<Option, PropertyInfo> _properties = [];

    private void Add(Command command, Type type, JsonObject defaults, string[] prefix, string[] skip)
    {
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            string json = JsonName(property);
            if (property.GetCustomAttribute<ConfigOptionAttribute>() is not { } attribute)
            {
                // A nested record contributes its own options.
                if (defaults[json] is JsonObject nested && property.PropertyType.IsClass && property.PropertyType != typeof(string))
                    Add(command, property.PropertyType, nested, [.. prefix, json], skip);
                continue;
            }
            if (skip.Contains(property.Name)) continue;
            string name = attribute.Name ?? "--" + json.Replace('_', '-');
            var option = command.Options.FirstOrDefault(o => o.Name == name);
            if (option is not null)
            {
                // Another record's option of the same name: shared, so it must set a field of the same type.
                if (option.ValueType != property.PropertyType)
                    throw new InvalidOperationException($"{name}: {type.Name}.{property.Name} is {property.PropertyType.Name} but the option already sets {option.ValueType.Name}.");
                string text = DefaultText(defaults[json]);
                if (_label is not null && text.Length > 0 && !option.Description!.EndsWith(text, StringComparison.Ordinal))
                    option.Description += $" ({_label}: {text[" (default: ".Length..^1]})";
            }
            else
            {
                option = (Option)Activator.CreateInstance(typeof(Option<>).MakeGenericType(property.PropertyType), name, attribute.Aliases)!;
                option.Description = attribute.Description + DefaultText(defaults[json]);
                // Enums are given as config.json writes them (dr_grpo), or by their C# name (DrGrpo).
                if (property.PropertyType.IsEnum)
                    typeof(ConfigOptions<T>).GetMethod(nameof(AcceptSnakeCase), BindingFlags.NonPublic | BindingFlags.Static)!
                        .MakeGenericMethod(property.PropertyType).Invoke(null, [option]);
                // A list (hidden layer widths) is given as values after one option: --hidden 64 64.
                if (property.PropertyType.IsArray) option.AllowMultipleArgumentsPerToken = true;
                if (attribute.Range is { } range) NumericOptions.Register(option, range);
                command.Options.Add(option);
            }
            _options.Add(([.. prefix, json], option));
            _properties[option] = property;
        }
    }

    private static void AcceptSnakeCase<TEnum>(Option<TEnum> option) where TEnum : struct, Enum
    {
        var values = Enum.GetValues<TEnum>();
        string Snake(TEnum v) => JsonNamingPolicy.SnakeCaseLower.ConvertName(v.ToString());
        option.HelpName = string.Join('|', values.Select(Snake));
        option.CustomParser = result =>
        {
            string text = result.Tokens.Count > 0 ? result.Tokens[^1].Value : "";
            foreach (var v in values)
                if (text == Snake(v) || string.Equals(text, v.ToString(), StringComparison.OrdinalIgnoreCase)) return v;
            result.AddError($"{option.Name}: '{text}' is not one of {string.Join(", ", values.Select(Snake))}.");
            return default;
        };
    }

    private static string DefaultText(JsonNode? value) => value switch
    {
        null => "",
        JsonValue v when v.GetValueKind() == JsonValueKind.String => $" (default: {v.GetValue<string>()})",
        JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => "",
        _ => $" (default: {value.ToJsonString()})",
    };

    private static string JsonName(PropertyInfo property) => ConfigOptionAttribute.JsonName(property);

    /// <summary>Whether the setting of <paramref name="property"/> (C# name) was given on the command line or in --config FILE.</summary>
    public bool IsSet(ParseResult p, string property)
    {
        var option = this[property];
        if (p.GetResult(option) is { Implicit: false }) return true;
        if (p.GetValue(ConfigFile) is not { } file) return false;
        JsonNode? node = ReadFile(file);
        foreach (string part in _options.Single(o => o.Option == option).Path) node = (node as JsonObject)?[part];
        return node is not null;
    }

    /// <summary>
    /// Defaults, then --config FILE, then the options given: the resolved record. With <paramref name="presets"/>, the
    /// record so resolved picks the defaults to use instead (PpoConfig.ForEnv of its env_id), and the file and the options
    /// are laid over those, so what was given still wins; then <paramref name="adjust"/> has the last word.
    /// </summary>
    public T Build(ParseResult p, Func<T, T>? adjust = null, Func<T, T>? presets = null)
    {
        var config = Resolve(p, _defaults);
        if (presets is not null) config = Resolve(p, (JsonObject)JsonSerializer.SerializeToNode(presets(config), RunDirectory.ConfigJsonOptions)!);
        return adjust is null ? config : adjust(config);
    }

    private T Resolve(ParseResult p, JsonObject defaults)
    {
        var node = (JsonObject)defaults.DeepClone();
        if (p.GetValue(ConfigFile) is { } file) Merge(node, ReadFile(file), file, "");
        foreach (var (path, option) in _options)
        {
            var result = p.GetResult(option);
            if (result is null || result.Implicit) continue;
            var target = node;
            foreach (string part in path[..^1]) target = (JsonObject)target[part]!;
            object? value = typeof(ParseResult).GetMethods()
                .Single(m => m.Name == nameof(ParseResult.GetValue) && m.IsGenericMethodDefinition && m.GetParameters() is [{ ParameterType.IsGenericType: true } only]
                    && only.ParameterType.GetGenericTypeDefinition() == typeof(Option<>))
                .MakeGenericMethod(_properties[option].PropertyType).Invoke(p, [option]);
            target[path[^1]] = value is null ? null : JsonSerializer.SerializeToNode(value, value.GetType(), RunDirectory.ConfigJsonOptions);
        }
        T config;
        try
        {
            config = node.Deserialize<T>(RunDirectory.ConfigJsonOptions) ?? throw new FormatException("the configuration is null.");
        }
        catch (JsonException ex)
        {
            throw new FormatException($"{(p.GetValue(ConfigFile) is { } f ? f + ": " : "")}setting {ex.Path?.TrimStart('$', '.')}: {ex.Message}", ex);
        }
        // The options given were checked as they were parsed (NumericOptions); this catches the --config file's values.
        ConfigRanges.Validate(config, p.GetValue(ConfigFile) is { } source ? source : "settings");
        return config;
    }

    /// <summary>Overlays <paramref name="from"/> onto <paramref name="into"/>; a key the record does not have is refused by name.</summary>
    private static void Merge(JsonObject into, JsonObject from, string file, string prefix)
    {
        foreach (var (key, value) in from)
        {
            if (!into.ContainsKey(key))
                throw new ArgumentException($"{file}: unknown setting '{prefix}{key}' (known: {string.Join(", ", into.Select(kv => kv.Key))}).");
            if (into[key] is JsonObject nested && value is JsonObject sub) Merge(nested, sub, file, prefix + key + ".");
            else into[key] = value?.DeepClone();
        }
    }

    private static JsonObject ReadFile(string file)
    {
        if (!File.Exists(file)) throw new FileNotFoundException($"--config: {file} does not exist.", file);
        string text = RlhfSharp.Text.Utf8TextFile.ReadAllText(file);
        bool yaml = file.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) || file.EndsWith(".yml", StringComparison.OrdinalIgnoreCase);
        if (!yaml)
        {
            try
            {
                var root = JsonNode.Parse(text) as JsonObject ?? throw new FormatException($"{file}: expected a JSON object of settings.");
                // A whole config.json of a run is accepted too: its "trainer" section holds the settings.
                return root[RunDirectory.TrainerSection] is JsonObject trainer ? trainer : root;
            }
            catch (JsonException ex)
            {
                throw new FormatException($"{file} line {(ex.LineNumber ?? 0) + 1}: {ex.Message}", ex);
            }
        }
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(text));
        }
        catch (YamlDotNet.Core.YamlException ex)
        {
            throw new FormatException($"{file} line {ex.Start.Line}: {ex.Message}", ex);
        }
        if (stream.Documents.Count == 0) return [];
        return ToJson(stream.Documents[0].RootNode, file) as JsonObject ?? throw new FormatException($"{file}: expected a YAML mapping of settings.");
    }

    private static JsonNode? ToJson(YamlNode node, string file) => node switch
    {
        YamlMappingNode map => new JsonObject(map.Children.Select(kv => KeyValuePair.Create(((YamlScalarNode)kv.Key).Value ?? "", ToJson(kv.Value, file)))),
        YamlSequenceNode seq => new JsonArray([.. seq.Children.Select(c => ToJson(c, file))]),
        YamlScalarNode { Style: YamlDotNet.Core.ScalarStyle.SingleQuoted or YamlDotNet.Core.ScalarStyle.DoubleQuoted } s => JsonValue.Create(s.Value),
        YamlScalarNode s => Scalar(s.Value ?? ""),
        _ => throw new FormatException($"{file} line {node.Start.Line}: unsupported YAML node."),
    };

    /// <summary>A plain YAML scalar: null, a boolean, a number, or a string.</summary>
    private static JsonNode? Scalar(string text)
    {
        if (text is "" or "~" or "null" or "Null" or "NULL") return null;
        if (text is "true" or "True" or "TRUE") return JsonValue.Create(true);
        if (text is "false" or "False" or "FALSE") return JsonValue.Create(false);
        if (long.TryParse(text, System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out long l)) return JsonValue.Create(l);
        if (double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out double d)) return JsonValue.Create(d);
        return JsonValue.Create(text);
    }
}
