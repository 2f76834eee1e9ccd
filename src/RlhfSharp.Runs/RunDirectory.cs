// One training run on disk (docs/design.md, "Formats"): runs/NAME/ holding config.json (the command line that started
// the run with every option resolved, and the trainer's configuration record, both snake_case), metrics.jsonl,
// TensorBoard event files beside it, checkpoints/step-NNNNNNNN/ folders written atomically (each with a manifest.json of
// checksums written last, CheckpointManifest), and status.json once the run has finished. Opening a run removes the
// staging folders a killed save left behind (.step-N.tmp-*); resume continues from the newest checkpoint that validates.
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace RlhfSharp.Runs;

/// <summary>A checkpoint folder of a run and the step it was taken at.</summary>
public sealed record Checkpoint(long Step, string Path);

/// <summary>status.json: "finished" once the run's outputs are written, the last step, and where the output went.</summary>
/// <param name="Note">Why it ended where it did when that was not the configured end (an over-optimisation monitor's stop), else null.</param>
public sealed record RunStatus(string State, long Step, string? Output, [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Note = null);

public sealed class RunDirectory : IDisposable
{
    public const string ConfigFileName = "config.json";
    public const string MetricsFileName = "metrics.jsonl";
    public const string CheckpointsFolderName = "checkpoints";
    public const string StatusFileName = "status.json";

    /// <summary>config.json's section holding the trainer's own configuration record.</summary>
    public const string TrainerSection = "trainer";
    private const string CheckpointPrefix = "step-";

    /// <summary>How config.json is written and read: snake_case names, enums as snake_case strings, NaN allowed.</summary>
    public static JsonSerializerOptions ConfigJsonOptions => ConfigJson;

    private static readonly JsonSerializerOptions ConfigJson = new()
    {
        WriteIndented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    private MetricsWriter? _metrics;
    private TensorBoardWriter? _tensorBoard;

    /// <summary>The run's folder (absolute).</summary>
    public string Path { get; }

    /// <summary>True when the run was opened to continue from its last checkpoint.</summary>
    public bool Resumed { get; }

    private readonly Action<string>? _warn;

    // Checkpoint folders already checked against their manifests (true: valid), so a run hashes each one once.
    private readonly Dictionary<string, bool> _validated = new(StringComparer.Ordinal);

    private RunDirectory(string path, bool resumed, Action<string>? warn)
    {
        Path = path;
        Resumed = resumed;
        _warn = warn;
    }

    /// <summary>
    /// Creates runs/NAME for a new run, or opens it to resume. A new run refuses a folder that already holds
    /// metrics or checkpoints (nothing written is ever overwritten by accident); resuming needs the folder to exist.
    /// Leftover staging files and folders of writes a kill interrupted are removed. <paramref name="warn"/> hears of
    /// checkpoints resume skips because they do not validate (the library never prints).
    /// </summary>
    public static RunDirectory Open(string path, bool resume, Action<string>? warn = null)
    {
        string full = System.IO.Path.GetFullPath(path);
        if (resume)
        {
            if (!Directory.Exists(full))
                throw new DirectoryNotFoundException($"Cannot resume: run folder {full} does not exist.");
            RemoveStaging(full);
            return new RunDirectory(full, true, warn);
        }
        RemoveStaging(full);
        if (File.Exists(System.IO.Path.Combine(full, MetricsFileName)) || Directory.Exists(System.IO.Path.Combine(full, CheckpointsFolderName)))
            throw new IOException($"Run folder {full} already holds a run; resume it or choose another name.");
        Directory.CreateDirectory(full);
        return new RunDirectory(full, false, warn);
    }

    /// <summary>
    /// Opens an existing run folder to read it (a report, the recorded command line) while its writer may still be
    /// running: nothing is cleaned up or created.
    /// </summary>
    public static RunDirectory OpenToRead(string path)
    {
        string full = System.IO.Path.GetFullPath(path);
        if (!Directory.Exists(full)) throw new DirectoryNotFoundException($"Run folder {full} does not exist.");
        return new RunDirectory(full, true, null);
    }

    /// <summary>
    /// Deletes AtomicFile's hidden staging names (.NAME.tmp-*, .NAME.old-*) in the run folder and its checkpoints folder:
    /// only a killed write leaves them, and one run folder has one writer. A checkpoints folder left holding nothing
    /// else is removed too, so a run killed during its first save can start again.
    /// </summary>
    private static void RemoveStaging(string runPath)
    {
        string checkpoints = System.IO.Path.Combine(runPath, CheckpointsFolderName);
        foreach (string folder in new[] { runPath, checkpoints })
        {
            if (!Directory.Exists(folder)) continue;
            foreach (string entry in Directory.EnumerateFileSystemEntries(folder).ToList())
            {
                if (!AtomicFile.IsTemporaryName(System.IO.Path.GetFileName(entry))) continue;
                if (Directory.Exists(entry)) Directory.Delete(entry, recursive: true);
                else File.Delete(entry);
            }
        }
        if (Directory.Exists(checkpoints) && !Directory.EnumerateFileSystemEntries(checkpoints).Any()) Directory.Delete(checkpoints);
    }

    /// <summary>
    /// Writes the trainer's resolved configuration (snake_case, indented) into config.json's "trainer" section,
    /// keeping the other sections (the command line that started the run), atomically.
    /// </summary>
    public void WriteConfig<T>(T config) =>
        UpdateConfig(root => root[TrainerSection] = JsonSerializer.SerializeToNode(config, ConfigJson));

    /// <summary>Reads config.json's "trainer" section back; a malformed file gives an error naming it and the line.</summary>
    public T ReadConfig<T>()
    {
        string file = System.IO.Path.Combine(Path, ConfigFileName);
        var section = ReadConfigRoot()[TrainerSection] ?? throw new FormatException($"{file}: no \"{TrainerSection}\" section.");
        try
        {
            return section.Deserialize<T>(ConfigJson) ?? throw new FormatException($"{file}: the \"{TrainerSection}\" section is null.");
        }
        catch (JsonException ex)
        {
            throw new FormatException($"{file}, section \"{TrainerSection}\": {ex.Message}", ex);
        }
    }

    /// <summary>config.json as a JSON object (empty when the file does not exist yet).</summary>
    public JsonObject ReadConfigRoot()
    {
        string file = System.IO.Path.Combine(Path, ConfigFileName);
        if (!File.Exists(file)) return [];
        try
        {
            return JsonNode.Parse(File.ReadAllText(file)) as JsonObject ?? throw new FormatException($"{file}: expected a JSON object.");
        }
        catch (JsonException ex)
        {
            throw new FormatException($"{file} line {(ex.LineNumber ?? 0) + 1}: {ex.Message}", ex);
        }
    }

    /// <summary>Reads config.json, lets <paramref name="edit"/> change it, and writes it back atomically.</summary>
    public void UpdateConfig(Action<JsonObject> edit)
    {
        var root = ReadConfigRoot();
        edit(root);
        AtomicFile.WriteAllText(System.IO.Path.Combine(Path, ConfigFileName), root.ToJsonString(ConfigJson) + "\n");
    }

    /// <summary>Records that the run is complete (its outputs are written): `--resume` then has nothing to do.</summary>
    public void MarkFinished(long step, string? output, string? note = null)
    {
        var status = new RunStatus("finished", step, output is null ? null : System.IO.Path.GetFullPath(output), note);
        AtomicFile.WriteAllText(System.IO.Path.Combine(Path, StatusFileName), JsonSerializer.Serialize(status, ConfigJson) + "\n");
    }

    /// <summary>The run's status.json, or null while the run has not finished.</summary>
    public static RunStatus? ReadStatus(string runPath)
    {
        string file = System.IO.Path.Combine(runPath, StatusFileName);
        if (!File.Exists(file)) return null;
        try
        {
            return JsonSerializer.Deserialize<RunStatus>(File.ReadAllText(file), ConfigJson);
        }
        catch (JsonException ex)
        {
            throw new FormatException($"{file} line {(ex.LineNumber ?? 0) + 1}: {ex.Message}", ex);
        }
    }

    /// <summary>
    /// The metrics file, opened on first use. When resuming, lines after the latest checkpoint's step are dropped,
    /// since those steps will be trained (and logged) again.
    /// </summary>
    public MetricsWriter Metrics => _metrics ??= new MetricsWriter(
        System.IO.Path.Combine(Path, MetricsFileName), Resumed ? LatestCheckpoint()?.Step ?? 0 : null);

    /// <summary>
    /// A TensorBoard events file in the run folder, created on first use. When resuming, it starts with a restart
    /// mark just after the latest checkpoint's step, so TensorBoard hides the steps that will be replayed.
    /// </summary>
    public TensorBoardWriter TensorBoard => _tensorBoard ??= CreateTensorBoard();

    private TensorBoardWriter CreateTensorBoard()
    {
        var writer = new TensorBoardWriter(Path);
        if (Resumed) writer.MarkRestart((LatestCheckpoint()?.Step ?? 0) + 1);
        return writer;
    }

    /// <summary>Logs one step's metrics to metrics.jsonl and TensorBoard.</summary>
    public void Log(long step, IReadOnlyDictionary<string, double> values)
    {
        Metrics.Write(step, values);
        TensorBoard.AddScalars(step, values);
    }

    /// <summary>The folder a checkpoint of <paramref name="step"/> lives in.</summary>
    public string CheckpointPath(long step) =>
        System.IO.Path.Combine(Path, CheckpointsFolderName, CheckpointPrefix + step.ToString("D8", CultureInfo.InvariantCulture));

    /// <summary>
    /// Writes a checkpoint folder atomically (<paramref name="writeInto"/> fills a temporary folder, the manifest of
    /// checksums is added last, then the folder is renamed), then deletes all but the newest <paramref name="keepLast"/>
    /// checkpoints (0 keeps all).
    /// </summary>
    public Checkpoint SaveCheckpoint(long step, Action<string> writeInto, int keepLast = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(step);
        ArgumentNullException.ThrowIfNull(writeInto);
        string path = CheckpointPath(step);
        AtomicFile.WriteDirectory(path, dir =>
        {
            writeInto(dir);
            CheckpointManifest.Write(dir);
        });
        _validated[path] = true;
        if (keepLast > 0)
        {
            foreach (var old in Checkpoints().SkipLast(keepLast)) Directory.Delete(old.Path, recursive: true);
        }
        return new Checkpoint(step, path);
    }

    /// <summary>Completed checkpoints, oldest first (temporary folders of an interrupted save are skipped).</summary>
    public IReadOnlyList<Checkpoint> Checkpoints()
    {
        string dir = System.IO.Path.Combine(Path, CheckpointsFolderName);
        if (!Directory.Exists(dir)) return [];
        var list = new List<Checkpoint>();
        foreach (string sub in Directory.GetDirectories(dir))
        {
            string name = System.IO.Path.GetFileName(sub);
            if (AtomicFile.IsTemporaryName(name) || !name.StartsWith(CheckpointPrefix, StringComparison.Ordinal)) continue;
            if (long.TryParse(name.AsSpan(CheckpointPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out long step))
                list.Add(new Checkpoint(step, sub));
        }
        return list.OrderBy(c => c.Step).ToList();
    }

    /// <summary>
    /// The newest checkpoint that validates against its manifest (what `--resume` continues from), or null. A newer one
    /// that does not validate is skipped with a warning naming it and the file at fault; it stays on disk until the run
    /// writes that step again.
    /// </summary>
    public Checkpoint? LatestCheckpoint()
    {
        foreach (var checkpoint in Checkpoints().Reverse())
        {
            if (!_validated.TryGetValue(checkpoint.Path, out bool valid))
            {
                string? problem = CheckpointManifest.Problem(checkpoint.Path);
                valid = problem is null;
                _validated[checkpoint.Path] = valid;
                if (!valid) _warn?.Invoke($"skipping checkpoint {checkpoint.Path} (step {checkpoint.Step}): {problem}.");
            }
            if (valid) return checkpoint;
        }
        return null;
    }

    public void Dispose()
    {
        _metrics?.Dispose();
        _tensorBoard?.Dispose();
    }
}
