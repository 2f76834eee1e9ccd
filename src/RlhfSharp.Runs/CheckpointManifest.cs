// manifest.json of a checkpoint folder: the size and SHA-256 of every other file in it, written last (after the trainer
// has written its files, before the folder is renamed into place). "This checkpoint validates" means: the manifest
// parses, and every file it lists is there with that size and hash. Resume (RunDirectory.LatestCheckpoint) uses it to
// skip a checkpoint a disk error, a partial copy or a hand edit has damaged, and falls back to the one before.
//   {"format":"rlhfsharp-checkpoint-manifest","version":1,"files":{"model.safetensors":{"bytes":N,"sha256":"hex"},...}}
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace RlhfSharp.Runs;

public static class CheckpointManifest
{
    public const string FileName = "manifest.json";
    private const string Format = "rlhfsharp-checkpoint-manifest";

    /// <summary>Hashes every file under <paramref name="dir"/> (sub-folders included) and writes DIR/manifest.json.</summary>
    public static void Write(string dir)
    {
        var files = new JsonObject();
        foreach (string file in Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            string name = RelativeName(dir, file);
            if (name == FileName) continue;
            files[name] = new JsonObject { ["bytes"] = new FileInfo(file).Length, ["sha256"] = Hash(file) };
        }
        var root = new JsonObject { ["format"] = Format, ["version"] = 1, ["files"] = files };
        File.WriteAllText(Path.Combine(dir, FileName), root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>Null when <paramref name="dir"/> validates against its manifest; otherwise why not, naming the file.</summary>
    public static string? Problem(string dir)
    {
        string manifest = Path.Combine(dir, FileName);
        if (!File.Exists(manifest)) return $"{manifest} is missing";
        JsonObject files;
        try
        {
            var root = JsonNode.Parse(File.ReadAllText(manifest)) as JsonObject;
            if (root?["format"]?.GetValue<string>() != Format || root["files"] is not JsonObject f) return $"{manifest} is not a checkpoint manifest";
            files = f;
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or FormatException)
        {
            return $"{manifest} does not parse ({ex.Message})";
        }
        foreach (var (name, entry) in files)
        {
            string file = Path.Combine(dir, name);
            if (!File.Exists(file)) return $"{file} is missing";
            long expected;
            string? hash;
            try
            {
                expected = entry!["bytes"]!.GetValue<long>();
                hash = entry["sha256"]!.GetValue<string>();
            }
            catch (Exception ex) when (ex is InvalidOperationException or FormatException or NullReferenceException)
            {
                return $"{manifest}: entry '{name}' is malformed";
            }
            long actual = new FileInfo(file).Length;
            if (actual != expected) return $"{file} holds {actual} bytes, the manifest says {expected}";
            if (!string.Equals(Hash(file), hash, StringComparison.OrdinalIgnoreCase)) return $"{file} does not match its SHA-256 in the manifest";
        }
        return null;
    }

    private static string Hash(string file)
    {
        using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    private static string RelativeName(string dir, string file) => Path.GetRelativePath(dir, file).Replace(Path.DirectorySeparatorChar, '/');
}
