// `rlhf-faults`: the long form of the fault-injection suite, by hand (the tests run a short form).
//   dotnet tests/RlhfSharp.Faults/bin/Release/net10.0/rlhf-faults.dll [--trainers pretrain,sft,...] [--faults N]
//       [--rounds R] [--seed S] [--work DIR]
//   --faults  interruptions per trainer and round (default 8); --rounds  repetitions (default 1), each with fresh moments;
//   "label-serve" among --trainers (included by default) kills the labelling app under 20 concurrent labellers instead;
//   --seed    seeds the moments and the signal choice (default: from the clock, printed); --work keeps the folder.
// Prints one line per trainer and round, then the totals; exits 1 when any run ended with other bits than an
// uninterrupted one.
using System.Globalization;
using RlhfSharp.Faults;

var trainers = ResumeJobs.Trainers.Append("label-serve").ToList();
int faults = 8, rounds = 1;
int seed = Environment.TickCount & 0x7fffffff;
string? work = null;
for (int i = 0; i < args.Length; i++)
{
    string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
    switch (args[i])
    {
        case "--trainers": trainers = [.. Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)]; break;
        case "--faults": faults = int.Parse(Value(), CultureInfo.InvariantCulture); break;
        case "--rounds": rounds = int.Parse(Value(), CultureInfo.InvariantCulture); break;
        case "--seed": seed = int.Parse(Value(), CultureInfo.InvariantCulture); break;
        case "--work": work = Value(); break;
        default: Console.Error.WriteLine($"rlhf-faults: unknown option {args[i]}"); return 2;
    }
}
foreach (string t in trainers.Where(t => t != "label-serve")) ResumeJobs.Command(t, "x", "y"); // an unknown name is refused before any work
string dir = work ?? Path.Combine(Path.GetTempPath(), "rlhf-faults-" + Guid.NewGuid().ToString("N")[..8]);
Console.WriteLine($"rlhf-faults: seed {seed}, {faults} faults × {rounds} rounds per trainer, in {dir}");
ResumeJobs.BuildChain(dir);
var random = new Random(seed);
var outcomes = new List<FaultOutcome>();
for (int r = 0; r < rounds; r++)
    foreach (string trainer in trainers)
    {
        if (trainer == "label-serve")
        {
            var l = LabelServeFaults.Run(Path.Combine(dir, "label-serve"), faults, labelers: 20, queries: 400, random, line => Console.Error.WriteLine("  " + line));
            outcomes.Add(new FaultOutcome(trainer, l.Kills, 0, l.Kills, 0, l.Mismatch, l.Seconds));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{trainer,-13} round {r}  SIGKILL {l.Kills,2}  acknowledged {l.Acknowledged}  stored {l.Stored}  {l.Seconds,6:F1} s  {(l.Matched ? "nothing lost" : "MISMATCH: " + l.Mismatch)}"));
            continue;
        }
        var o = FaultInjector.Run(dir, trainer, faults, random, $"r{r}", line => Console.Error.WriteLine("  " + line));
        outcomes.Add(o);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{trainer,-13} round {r}  SIGKILL {o.Kills,2}  SIGTERM {o.Terms,2}  resumes {o.Resumes,2}  restarts {o.Restarts}  {o.Seconds,6:F1} s  {(o.Matched ? "same bits" : "MISMATCH: " + o.Mismatch)}"));
    }
Console.WriteLine($"total: {outcomes.Sum(o => o.Kills)} SIGKILL, {outcomes.Sum(o => o.Terms)} SIGTERM, {outcomes.Sum(o => o.Resumes)} resumes, " +
    $"{outcomes.Sum(o => o.Restarts)} restarts, {outcomes.Count(o => !o.Matched)} mismatches of {outcomes.Count} runs");
if (work is null) try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
return outcomes.All(o => o.Matched) ? 0 : 1;
