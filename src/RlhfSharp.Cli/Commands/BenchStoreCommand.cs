// `rlhf bench store`: judgments/s into the SQLite preference store with synchronous=NORMAL (the default) and with
// synchronous=FULL (`--durable`), on a fresh file in --dir (the disk you would keep feedback.db on). The measuring is
// RlhfSharp.Bench's StoreBench; this file parses the options and prints one JSON line per mode.
using System.CommandLine;
using System.Text.Json;
using RlhfSharp.Bench;
using RlhfSharp.Feedback;

namespace RlhfSharp.Cli.Commands;

internal static class BenchStoreCommand
{
    public static Command Create()
    {
        var judgments = new Option<int>("--judgments") { Description = "Judgments stored per mode (each is a hand-out and an answer: two commits).", DefaultValueFactory = _ => 2000 }.InRange(new(1));
        var labelers = new Option<int>("--labelers") { Description = "Labellers writing at once.", DefaultValueFactory = _ => 1 }.InRange(new(1));
        var dir = new Option<string>("--dir") { Description = "Folder for the temporary store file (default: the current folder; a tmpfs would hide the fsync cost).", DefaultValueFactory = _ => "." };
        var rounds = new Option<int>("--rounds") { Description = "Alternating NORMAL/FULL rounds; each is printed.", DefaultValueFactory = _ => 1 }.InRange(new(1));
        var command = new Command("store", "Judgments/s into the SQLite store, default (synchronous=NORMAL) and --durable (synchronous=FULL).");
        foreach (var o in new Option[] { judgments, labelers, dir, rounds }) command.Options.Add(o);
        command.SetAction(parseResult =>
        {
            int n = parseResult.GetValue(judgments), l = parseResult.GetValue(labelers), r = parseResult.GetValue(rounds);
            if (n < 1) throw new ArgumentException($"--judgments must be at least 1 (got {n}).");
            if (l < 1) throw new ArgumentException($"--labelers must be at least 1 (got {l}).");
            if (r < 1) throw new ArgumentException($"--rounds must be at least 1 (got {r}).");
            string folder = Path.GetFullPath(parseResult.GetValue(dir)!);
            for (int round = 0; round < r; round++)
                foreach (bool durable in new[] { false, true })
                {
                    var result = Blocking.Run(() => StoreBench.MeasureAsync(folder, durable, n, l));
                    var fields = result.ToFields();
                    fields["dir"] = folder;
                    Console.Out.WriteLine(JsonSerializer.Serialize(fields));
                }
            return 0;
        });
        return command;
    }
}
