// Options made from the configuration records: every [ConfigOption] field is reachable, defaults come from the record,
// a --config file (JSON, YAML, or a run's whole config.json) sets fields by their config.json names, the command line
// wins over the file, and an unknown key is refused by name.
using System.CommandLine;
using RlhfSharp.Alignment.Dpo;
using RlhfSharp.Alignment.LanguageModeling;
using RlhfSharp.Alignment.Ppo;
using RlhfSharp.Alignment.RewardModeling;
using RlhfSharp.Cli.Commands;
using RlhfSharp.Runs;
using ControlPpoConfig = RlhfSharp.Control.Rl.PpoConfig;
using ReinforceConfig = RlhfSharp.Control.Rl.ReinforceConfig;

namespace RlhfSharp.Cli.Tests;

public sealed class ConfigOptionsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("configopts-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private static (Command Command, ConfigOptions<T> Settings) Make<T>() where T : class, new()
    {
        var command = new Command("x");
        return (command, new ConfigOptions<T>(command));
    }

    private static T Build<T>(ConfigOptions<T> settings, Command command, params string[] args) where T : class, new()
    {
        var root = new RootCommand { command };
        var p = root.Parse(["x", .. args]);
        Assert.Empty(p.Errors);
        return settings.Build(p);
    }

    [Fact]
    public void EveryMarkedFieldIsAnOption_WithTheRecordsDefault()
    {
        static bool Marked(System.Reflection.PropertyInfo p) => p.GetCustomAttributes(typeof(ConfigOptionAttribute), false).Length > 0;
        foreach (var type in new[] { typeof(PpoConfig), typeof(DpoConfig), typeof(RewardTrainerConfig), typeof(LmTrainingOptions), typeof(RlhfSharp.Models.LoraConfig) })
        {
            var marked = type.GetProperties().Where(Marked).ToList();
            Assert.NotEmpty(marked);
            // Every settable field of the record is marked, so every one is reachable from the command line; a nested
            // record (LoRA settings) is reachable through its own marked fields (checked in this loop too).
            var settable = type.GetProperties().Where(p => p.SetMethod is not null && p.Name != nameof(PpoConfig.SnapshotEvery)
                && !(p.PropertyType.IsClass && p.PropertyType != typeof(string) && p.PropertyType.GetProperties().Any(Marked))).ToList();
            Assert.Equal(settable.Select(p => p.Name).Order(), marked.Select(p => p.Name).Order());
        }
        var (command, settings) = Make<PpoConfig>();
        Assert.Equal(new PpoConfig(), Build(settings, command));
        Assert.Contains("(default: 0.05)", settings[nameof(PpoConfig.InitialKlCoef)].Description);
    }

    [Fact]
    public void TrlNamesAndOlderAliases_SetTheSameField()
    {
        var (command, settings) = Make<PpoConfig>();
        Assert.Equal(3, Build(settings, command, "--num-ppo-epochs", "3").Epochs);
        Assert.Equal(3, Build(settings, command, "--ppo-epochs", "3").Epochs);
        Assert.Equal(0.5f, Build(settings, command, "--cliprange", "0.5").ClipRange);
        Assert.Equal(0.2, Build(settings, command, "--kl-coef", "0.2").InitialKlCoef);
    }

    [Fact]
    public void ConfigFile_JsonYamlAndRunConfig_CommandLineWins()
    {
        var (command, settings) = Make<SftConfig>();
        string json = Path.Combine(_dir, "sft.json");
        File.WriteAllText(json, """{"padding": "left", "training": {"max_steps": 7, "learning_rate": 0.001}}""");
        var fromJson = Build(settings, command, "--config", json);
        Assert.Equal(SftPadding.Left, fromJson.Padding);
        Assert.Equal(7, fromJson.Training.Steps);
        Assert.Equal(1e-3f, fromJson.Training.LearningRate);
        Assert.Equal(new SftConfig().Training.BatchSize, fromJson.Training.BatchSize);
        Assert.Equal(9, Build(settings, command, "--config", json, "--steps", "9").Training.Steps);

        string yaml = Path.Combine(_dir, "sft.yaml");
        File.WriteAllText(yaml, "padding: left\ntraining:\n  max_steps: 11\n  adam_beta2: 0.99\n  seed: 5\n");
        var fromYaml = Build(settings, command, "--config", yaml);
        Assert.Equal((SftPadding.Left, 11, 0.99f, 5UL), (fromYaml.Padding, fromYaml.Training.Steps, fromYaml.Training.Beta2, fromYaml.Training.Seed));

        // A run's config.json: its "trainer" section is the record.
        using (var run = RunDirectory.Open(Path.Combine(_dir, "run"), resume: false)) run.WriteConfig(fromYaml);
        Assert.Equal(fromYaml, Build(settings, command, "--config", Path.Combine(_dir, "run", "config.json")));
    }

    [Fact]
    public void ConfigFile_UnknownKeyOrBadValue_IsRefusedByName()
    {
        var (command, settings) = Make<DpoConfig>();
        string file = Path.Combine(_dir, "dpo.yaml");
        File.WriteAllText(file, "beta: 0.2\nbeat: 0.3\n");
        var ex = Assert.Throws<ArgumentException>(() => Build(settings, command, "--config", file));
        Assert.Contains($"{file}: unknown setting 'beat'", ex.Message);
        File.WriteAllText(file, "num_train_epochs: many\n");
        var bad = Assert.Throws<FormatException>(() => Build(settings, command, "--config", file));
        Assert.Contains("num_train_epochs", bad.Message);
    }

    /// <summary>`rl`'s two records on one command, as RlCommand builds them: PPO's (with --algo <paramref name="algo"/>) or REINFORCE's.</summary>
    private static (ControlPpoConfig? Ppo, ReinforceConfig? Reinforce) BuildRl(string algo, params string[] args)
    {
        var command = new Command("x");
        var (ppo, reinforce) = RlCommand.AddSettings(command);
        var p = new RootCommand { command }.Parse(["x", .. args]);
        Assert.Empty(p.Errors);
        return algo == "reinforce" ? (null, reinforce.Build(p)) : (RlCommand.BuildPpo(ppo, p, algo), null);
    }

    [Fact]
    public void Rl_TheEnvironmentsPresetIsTheDefault_AndAGivenOptionOrFileWins()
    {
        Assert.Equal(ControlPpoConfig.ForEnv("CartPole-v1"), BuildRl("ppo", "--env", "CartPole-v1").Ppo!, new RecordWithHidden());
        Assert.Equal(ControlPpoConfig.ForEnv("CartPole-v1"), BuildRl("ppo").Ppo!, new RecordWithHidden()); // CartPole-v1 is the default env
        var lr = BuildRl("ppo", "--env", "CartPole-v1", "--learning-rate", "3e-4").Ppo!;
        Assert.Equal(ControlPpoConfig.ForEnv("CartPole-v1") with { LearningRate = 3e-4 }, lr, new RecordWithHidden());
        Assert.NotEqual(3e-4, ControlPpoConfig.ForEnv("CartPole-v1").LearningRate);
        // Another environment brings its own preset; CleanRL's names and the older spellings set the same fields.
        var pendulum = BuildRl("ppo", "--env", "Pendulum-v1", "--steps", "2048", "--ent-coef", "0.001", "--hidden", "32", "32").Ppo!;
        Assert.Equal(ControlPpoConfig.ForEnv("Pendulum-v1") with { TotalSteps = 2048, EntropyCoef = 0.001, Hidden = [32, 32] }, pendulum, new RecordWithHidden());
        Assert.True(BuildRl("ppo-penalty", "--env", "Acrobot-v1").Ppo!.KlPenalty);

        // A file's env_id picks the preset too; its other keys and then the command line are laid over it.
        string yaml = Path.Combine(_dir, "rl.yaml");
        File.WriteAllText(yaml, "env_id: MountainCar-v0\ngamma: 0.95\nclip_vloss: false\n");
        var fromFile = BuildRl("ppo", "--config", yaml, "--gamma", "0.97").Ppo!;
        Assert.Equal(ControlPpoConfig.ForEnv("MountainCar-v0") with { Gamma = 0.97, ClipValueLoss = false }, fromFile, new RecordWithHidden());
    }

    [Fact]
    public void Rl_ReinforceSharesTheOptionsItHas_WithItsOwnDefaults()
    {
        var (_, reinforce) = BuildRl("reinforce", "--env", "Acrobot-v1", "--num-envs", "3", "--steps", "5000", "--baseline-steps", "4");
        Assert.Equal(new ReinforceConfig { EnvId = "Acrobot-v1", EpisodesPerBatch = 3, TotalSteps = 5000, BaselineSteps = 4, Hidden = reinforce!.Hidden }, reinforce);
        // Its own defaults where PPO's preset differs (γ 0.99 against CartPole's 0.98).
        Assert.Equal(0.99, BuildRl("reinforce").Reinforce!.Gamma);
        // Every settable field of both records is an option (kl_penalty through --algo).
        var command = new Command("x");
        var (ppo, rein) = RlCommand.AddSettings(command);
        foreach (var (type, has) in new (Type, Func<string, bool>)[] { (typeof(ControlPpoConfig), n => HasOption(ppo, n)), (typeof(ReinforceConfig), n => HasOption(rein, n)) })
            foreach (var property in type.GetProperties().Where(p => p.SetMethod is not null && p.Name != nameof(ControlPpoConfig.KlPenalty)))
                Assert.True(has(property.Name), $"{type.Name}.{property.Name} has no option");
        Assert.Contains("(reinforce: 0.99)", ppo[nameof(ControlPpoConfig.Gamma)].Description);
        Assert.Same(ppo[nameof(ControlPpoConfig.Gamma)], rein[nameof(ReinforceConfig.Gamma)]);
    }

    private static bool HasOption<T>(ConfigOptions<T> settings, string property) where T : class, new()
    {
        try
        {
            return settings[property] is not null;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    /// <summary>Control configs compared field by field, the Hidden array by its values.</summary>
    private sealed class RecordWithHidden : IEqualityComparer<ControlPpoConfig>
    {
        private static readonly int[] None = [];

        public bool Equals(ControlPpoConfig? x, ControlPpoConfig? y) =>
            x is not null && y is not null && x.Hidden.SequenceEqual(y.Hidden) && x with { Hidden = None } == y with { Hidden = None };

        public int GetHashCode(ControlPpoConfig obj) => 0;
    }
}
