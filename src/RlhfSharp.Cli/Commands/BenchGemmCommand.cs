// `rlhf bench gemm`: GFLOP/s of Gemm.Multiply beside OpenBLAS's cblas_sgemm on the same inputs in the same
// process, for the transformer-sized shapes the engine runs most, each form (NN, NT, TN), 1 and 2 threads.
// OpenBLAS (Debian's libopenblas0-pthread) is only a yardstick here; without it its column is null. The measuring is
// RlhfSharp.Bench's GemmBench; this file parses the options and prints.
using System.CommandLine;
using RlhfSharp.Runs;
using System.Globalization;
using RlhfSharp.Bench;

namespace RlhfSharp.Cli.Commands;

internal static class BenchGemmCommand
{
    public static Command Create()
    {
        var json = new Option<bool>("--json") { Description = "Print one JSON array (one object per shape, form and thread count) instead of a table." };
        var repetitions = new Option<int>("--repetitions")
        {
            Description = "Timed runs per side and configuration after one warm-up, alternating ours and OpenBLAS; the fastest of each is reported.",
            DefaultValueFactory = _ => 9,
        }.InRange(new(1));
        var only = new Option<string?>("--shape") { Description = "Measure only this shape, written M,K,N (default: all five)." };
        var cpuTime = new Option<bool>("--cpu-time")
        {
            Description = "Time 1-thread runs by the calling thread's CPU time (Linux) instead of the wall clock: steadier when other processes load the machine. 2-thread runs stay wall-clock.",
        };
        var command = new Command("gemm", "GEMM GFLOP/s, ours against OpenBLAS cblas_sgemm (libopenblas.so.0), per shape, form and thread count.");
        command.Options.Add(json);
        command.Options.Add(repetitions);
        command.Options.Add(only);
        command.Options.Add(cpuTime);
        command.SetAction(parseResult =>
        {
            int reps = parseResult.GetValue(repetitions);
            if (reps < 1) throw new ArgumentException($"--repetitions must be at least 1 (got {reps}).");
            var shapes = parseResult.GetValue(only) is string text ? [ParseShape(text)] : GemmBench.Shapes;
            bool useCpuTime = parseResult.GetValue(cpuTime);
            if (useCpuTime && !OperatingSystem.IsLinux()) throw new ArgumentException("--cpu-time needs Linux (clock_gettime with CLOCK_THREAD_CPUTIME_ID).");
            var blas = OpenBlas.TryLoad(out string? whyNot);
            if (blas is null) Console.Error.WriteLine($"rlhf bench gemm: OpenBLAS not available ({whyNot}); openblas_gflops is null.");
            else Console.Error.WriteLine($"rlhf bench gemm: OpenBLAS kernels: {blas.CoreName}.");
            var results = GemmBench.Run(shapes, reps, useCpuTime, blas);
            Console.Out.Write(parseResult.GetValue(json) ? GemmBench.ToJson(results) : ToTable(results));
            return 0;
        });
        return command;
    }

    private static (int M, int K, int N) ParseShape(string text)
    {
        var parts = text.Split(',');
        if (parts.Length == 3 &&
            int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int m) && m > 0 &&
            int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int k) && k > 0 &&
            int.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n > 0)
        {
            return (m, k, n);
        }
        throw new ArgumentException($"--shape: expected three positive integers M,K,N but got '{text}'.");
    }

    private static string ToTable(List<GemmResult> results)
    {
        var text = new System.Text.StringBuilder();
        var ci = CultureInfo.InvariantCulture;
        text.AppendLine("    M     K     N  form  threads   ours GFLOP/s  OpenBLAS GFLOP/s  ratio");
        foreach (var r in results)
        {
            text.AppendLine(string.Format(ci, "{0,5} {1,5} {2,5}  {3,-4}  {4,7}  {5,13:F1}  {6,16}  {7,5}",
                r.M, r.K, r.N, r.Form, r.Threads, r.Ours,
                r.OpenBlas is double o ? o.ToString("F1", ci) : "n/a",
                r.Ratio is double q ? q.ToString("F3", ci) : "n/a"));
        }
        return text.ToString();
    }
}
